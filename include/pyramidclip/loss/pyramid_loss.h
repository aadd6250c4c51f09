#pragma once
// Softened InfoNCE over the six PyramidCLIP pairs (DESIGN §1), global-batch negatives through
// all_gather_with_grad, local-loss form (local rows x global columns: memory O(local x global)).
#include <ATen/ATen.h>

#include <map>
#include <string>

#include "pyramidclip/model/pyramid_clip.h"

namespace pc {

class Comm;

struct LossConfig {
  std::string objective = "pyramid";  // "pyramid" (six pairs) | "clip" (global view x T, alpha 0)
  double alpha = 0.2;                 // label softening
  double lambda = 1.0 / 3.0;          // cross-level global weight
  double mu = 1.0 / 3.0;              // cross-level local (ROI) weight
};

struct LossOutput {
  at::Tensor total;                          // scalar, this rank's share (mean over ranks = global loss)
  std::map<std::string, double> pairs;       // per-pair loss values: "peer_global", "peer_local",
                                             // "cross_global_oa", "cross_roi_s", "cross_local_oa", "cross_roi_t", or "clip"
};

// Softened InfoNCE for one pair on this rank's rows: a, b local [n,D] normalized; a_all, b_all
// gathered [N,D]; rows of this rank start at `offset` in the gathered order. Mean of both directions.
at::Tensor softened_infonce(const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_all,
                            const at::Tensor& b_all, int64_t offset, const at::Tensor& logit_scale,
                            double alpha);

// The weighted pyramid (or clip) loss. `comm` may be null (single process).
LossOutput pyramid_loss(const Embeddings& e, const LossConfig& cfg, Comm* comm);

}  // namespace pc
