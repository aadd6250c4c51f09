// Softened InfoNCE (PyramidCLIP §3.3): cross-entropy against targets (1-alpha) on the positive
// and alpha/(N-1) on each of the N-1 negatives, in both directions, averaged.
#include <torch/torch.h>

#include "pyramidclip/loss/pyramid_loss.h"

namespace pc {
namespace {

// Mean over local rows of the soft cross-entropy of `logits` [n,N] whose positives sit at
// columns offset..offset+n-1.
at::Tensor soft_cross_entropy(const at::Tensor& logits, int64_t offset, double alpha) {
  const int64_t n = logits.size(0), N = logits.size(1);
  at::Tensor logp = at::log_softmax(logits, 1);
  at::Tensor cols = at::arange(offset, offset + n, logits.options().dtype(at::kLong));
  at::Tensor pos = logp.gather(1, cols.unsqueeze(1)).squeeze(1);  // [n]
  if (alpha == 0.0 || N == 1) return -pos.mean();
  // sum over negatives = sum over all - positive
  at::Tensor neg_sum = logp.sum(1) - pos;
  return -((1.0 - alpha) * pos + (alpha / static_cast<double>(N - 1)) * neg_sum).mean();
}

}  // namespace

at::Tensor softened_infonce(const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_all,
                            const at::Tensor& b_all, int64_t offset, const at::Tensor& logit_scale,
                            double alpha) {
  at::Tensor logits_ab = logit_scale * at::matmul(a, b_all.t());  // local rows x global columns
  at::Tensor logits_ba = logit_scale * at::matmul(b, a_all.t());
  return 0.5 * (soft_cross_entropy(logits_ab, offset, alpha) + soft_cross_entropy(logits_ba, offset, alpha));
}

}  // namespace pc
