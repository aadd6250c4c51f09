// Autograd wrapper of the fused CPU attention kernel (attention_kernel.cpp) for self-attention on
// a packed qkv projection: reads q, k, v straight out of the [B, L, 3D] linear output and writes
// [B, L, D] in merged-head order, so the head split/merge copies disappear too; the backward
// pass writes one packed [B, L, 3D] gradient for the qkv linear.
#include <torch/torch.h>

#include <atomic>
#include <cmath>

#include "pyramidclip/model/attention_kernel.h"
#include "pyramidclip/model/layers.h"

namespace pc {
namespace {

std::atomic<bool> g_fused_enabled{true};  // set_fused_kernels

// (sample, head) pairs per parallel task: a pair is ~L^2 * Dh multiply-adds, a few of them amortize
// the task overhead.
constexpr int64_t kPairsPerTask = 4;

kernel::HeadView head_view(const at::Tensor& t, int64_t offset) {  // t [B, L, *] contiguous in the last dim
  return {t.data_ptr<float>() + offset, t.stride(0), t.stride(1)};
}

kernel::AttentionArgs make_args(const at::Tensor& qkv, int64_t heads, const at::Tensor& bias) {
  const int64_t b = qkv.size(0), l = qkv.size(1), d = qkv.size(2) / 3;
  kernel::AttentionArgs a;
  a.batch = b;
  a.heads = heads;
  a.q_len = a.k_len = l;
  a.head_dim = d / heads;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)));
  a.q = head_view(qkv, 0);
  a.k = head_view(qkv, d);
  a.v = head_view(qkv, 2 * d);
  if (bias.defined()) {
    a.bias = bias.data_ptr<float>();
    a.bias_pair_stride = bias.stride(0);
    a.bias_row_stride = bias.stride(1);
  }
  return a;
}

// bias [Lq, Lk] / [N, 1, Lk] / [N, Lq, Lk] -> a [N, Lq, Lk] view with a contiguous last dimension
at::Tensor bias_view(const at::Tensor& bias, int64_t pairs, int64_t length) {
  if (!bias.defined() || bias.numel() == 0) return {};
  at::Tensor b = bias.to(at::kFloat).expand({pairs, length, length});
  return b.stride(2) == 1 ? b : b.contiguous();
}

class FusedSelfAttention : public torch::autograd::Function<FusedSelfAttention> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qkv_in, int64_t heads,
                            const at::Tensor& bias_in) {
    const at::Tensor qkv = qkv_in.contiguous();
    const int64_t b = qkv.size(0), l = qkv.size(1), d = qkv.size(2) / 3, pairs = b * heads;
    const at::Tensor bias = bias_view(bias_in, pairs, l);
    at::Tensor out = at::empty({b, l, d}, qkv.options());
    at::Tensor probs = at::empty({pairs, l, l}, qkv.options());
    kernel::AttentionArgs a = make_args(qkv, heads, bias);
    a.out = head_view(out, 0);
    a.probs = probs.data_ptr<float>();
    at::parallel_for(0, pairs, kPairsPerTask, [&](int64_t lo, int64_t hi) { kernel::attention_forward(a, lo, hi); });
    ctx->save_for_backward({qkv, probs});
    ctx->saved_data["heads"] = heads;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& qkv = saved[0];
    const int64_t heads = ctx->saved_data["heads"].toInt(), d = qkv.size(2) / 3;
    const at::Tensor grad_out = grads[0].contiguous();
    at::Tensor grad_qkv = at::empty_like(qkv);
    kernel::AttentionArgs a = make_args(qkv, heads, {});
    a.probs = const_cast<float*>(saved[1].data_ptr<float>());
    const kernel::AttentionGrads g{head_view(grad_out, 0), head_view(grad_qkv, 0), head_view(grad_qkv, d),
                                   head_view(grad_qkv, 2 * d)};
    at::parallel_for(0, qkv.size(0) * heads, kPairsPerTask,
                     [&](int64_t lo, int64_t hi) { kernel::attention_backward(a, g, lo, hi); });
    return {grad_qkv, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

void set_fused_kernels(bool enabled) { g_fused_enabled = enabled; }
bool fused_kernels_enabled() { return g_fused_enabled; }

bool fused_attention_applies(const at::Tensor& qkv, const at::Tensor& bias) {
  return g_fused_enabled && qkv.device().is_cpu() && qkv.scalar_type() == at::kFloat && qkv.dim() == 3 &&
         (!bias.defined() || (bias.device().is_cpu() && !bias.requires_grad()));
}

at::Tensor fused_self_attention(const at::Tensor& qkv, int64_t heads, const at::Tensor& bias) {
  TORCH_CHECK(fused_attention_applies(qkv, bias), "fused_self_attention: needs a CPU float [B, L, 3D] input");
  TORCH_CHECK(qkv.size(2) % (3 * heads) == 0, "fused_self_attention: width ", qkv.size(2) / 3,
              " is not divisible by ", heads, " heads");
  // autograd::Function cannot take an undefined tensor argument: "no bias" travels as an empty one
  return FusedSelfAttention::apply(qkv, heads, bias.defined() ? bias : at::empty({0}, qkv.options()));
}

}  // namespace pc
