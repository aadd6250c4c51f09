#pragma once
// AdamW over the flat parameter vector with ZeRO sharding (DESIGN §4).
//
// The update is torch::optim::AdamW's (LibTorch 1.13), element for element:
//   p *= 1 - lr * wd * factor                   (decoupled weight decay, skipped where 0)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g * g
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)     (eps outside the sqrt)
// with one step counter t for all parameters (every parameter steps every step; a parameter
// without a gradient this step gets a zero gradient, as the trainer's averaging does).
//
// Stages:
//  0: replicated. exp_avg/exp_avg_sq over all Ψ elements; the parameters are the master
//     weights. Needs the full averaged gradient (GradBuckets in allreduce mode). No all-gather.
//  1: sharded optimizer state. Rank r keeps master weights (fp32), exp_avg and exp_avg_sq for
//     its slice [begin, end) of the padded flat vector only; it updates that slice from the full
//     averaged gradient and all-gathers the parameters.
//  2: as 1, but the gradient is reduce-scattered (GradBuckets in reduce_scatter mode), so each
//     rank receives only its slice's average: half the gradient traffic of stage 1.
// The constructor turns every parameter into a view of one flat parameter buffer (so the
// all-gather writes the model's weights directly); build it BEFORE GradBuckets and after the
// initial broadcast of the weights.
//
// state_bytes() counts this rank's optimizer state: stage 0: exp_avg + exp_avg_sq = 2 x 4 x Ψ
// bytes (8Ψ for fp32; no master, the parameters are it); stages 1/2: master + exp_avg +
// exp_avg_sq = 3 x 4 x S bytes with S = padded_numel / N (12Ψ/N plus 12 x padding/N; with one
// rank the parameters are the master, as in stage 0: 8Ψ). Not counted:
// the flat parameter and gradient buffers (the model's own weights and grads), the stage-2
// shard gradient (4S) and a scratch buffer of at most 64 Ki elements.
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "pyramidclip/optim/flat_layout.h"

namespace pc {

class Comm;
class GradBuckets;

struct ZeroAdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 1e-2;  // times each parameter's FlatParam::weight_decay factor
  int stage = 1;               // 0, 1 or 2
};

class ZeroAdamW {
 public:
  // `params` in `layout`'s order (same shapes), one dtype (fp32; fp64 allowed for tests) and
  // device; layout.world_size == comm.size().
  ZeroAdamW(FlatLayout layout, std::vector<at::Tensor> params, Comm& comm, ZeroAdamWOptions options = {});

  // One step with learning rate `lr` from GradBuckets (after finalize()): checks that its layout
  // and mode match the stage. Then all-gathers the parameters (stages 1/2) unless gather = false.
  void step(double lr, const GradBuckets& grads, bool gather = true);
  // Same from a gradient tensor: the full averaged flat gradient (numel() or padded_numel()
  // elements; any stage) or this rank's slice (shard_numel() elements; stages 1/2).
  void step(double lr, const at::Tensor& grad, bool gather = true);
  // Stages 1/2: every rank's slice of the master weights -> the model's parameters.
  void gather_params();
  // Stages 1/2: the parameters changed outside step() on every rank alike (e.g. the trainer's
  // clamp of logit_scale, loaded model weights): copy them into this rank's master slice, or the
  // next gather would undo the change. No-op for stage 0 (the parameters are the master).
  void reload_master_from_params();

  int stage() const { return opts_.stage; }
  const FlatLayout& layout() const { return layout_; }
  int64_t step_count() const { return t_; }  // the bias-correction t of the last step
  void set_step_count(int64_t t) { t_ = t; }  // checkpoint restore
  const ZeroAdamWOptions& options() const { return opts_; }

  // The slice of the flat vector this rank's state covers: [0, Ψ) for stage 0, else
  // [layout.shard_begin(rank), shard_end(rank)).
  int64_t state_begin() const { return begin_; }
  int64_t state_end() const { return end_; }
  // 1-D state over [state_begin(), state_end()) — writable, for checkpoint load (then call
  // gather_params() after loading master in stages 1/2). master(): stage 0 a view of the
  // parameters.
  at::Tensor& master() { return master_; }
  at::Tensor& exp_avg() { return exp_avg_; }
  at::Tensor& exp_avg_sq() { return exp_avg_sq_; }
  const at::Tensor& flat_params() const { return flat_params_; }  // [padded_numel], views = params
  int64_t state_bytes() const;

 private:
  void update(double lr, const at::Tensor& grad_slice);  // grad over [begin_, end_)

  FlatLayout layout_;
  std::vector<at::Tensor> params_;
  Comm& comm_;
  ZeroAdamWOptions opts_;
  int64_t begin_ = 0, end_ = 0;
  int64_t t_ = 0;
  at::Tensor flat_params_, master_, exp_avg_, exp_avg_sq_, scratch_;
  std::vector<DecaySpan> spans_;
};

}  // namespace pc
