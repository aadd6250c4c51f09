#pragma once
// Gradient-cache accumulation (Gao et al., "Scaling Deep Contrastive Learning Batch Size under
// Memory Limited Setup"): a contrastive batch larger than memory, with the negatives of the
// WHOLE batch. Plain gradient accumulation would compute each micro-batch's loss against its
// own micro-batch only, which is a different loss.
//   1. embed every micro-batch without autograd (activations freed at once);
//   2. compute the loss on all embeddings (local rows of every micro-batch, gathered across
//      ranks as usual) and backpropagate it to the embeddings only;
//   3. re-run each micro-batch with autograd and backpropagate its cached embedding gradients.
// The parameter gradients equal those of one forward/backward on the full batch, except that
// BatchNorm layers see micro-batch statistics (the official ViT's LeFF blocks, RN50).
#include <cstdint>

#include "pyramidclip/data/batch.h"
#include "pyramidclip/loss/pyramid_loss.h"
#include "pyramidclip/model/pyramid_clip.h"

namespace pc {

class Comm;
class GradBuckets;

// Rows [begin, begin + n) of every defined tensor (and key) of a batch.
Batch slice_batch(const Batch& b, int64_t begin, int64_t n);

// Seconds spent in forward passes (embedding, loss, replay) and in backward passes.
struct PassTimes {
  double forward = 0, backward = 0;
};

// How the passes run: forwards under autocast to `autocast` (kFloat: none; the loss always runs
// in fp32 outside it), and every backward starts from loss * loss_scale (fp16 loss scaling).
struct StepPrecision {
  at::ScalarType autocast = at::kFloat;
  double loss_scale = 1.0;
};

// Forward + backward of one step in `micro_batches` pieces (1: the plain step). Gradients are
// accumulated into the parameters' .grad(); the loss is the full batch's. BatchNorm running
// statistics are updated once per micro-batch (by the pass with autograd only). With `buckets`,
// every backward but the last only accumulates locally (no_sync); the last one syncs.
LossOutput grad_cache_step(PyramidClip& model, const Batch& batch, int micro_batches, const LossConfig& cfg,
                           Comm* comm, PassTimes* times = nullptr, GradBuckets* buckets = nullptr,
                           StepPrecision precision = {});

}  // namespace pc
