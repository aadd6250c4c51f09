// Multi-head attention as nn.MultiheadAttention computes it, on batch-first activations, with the
// heads folded into the batch dimension of one bmm (no per-head loops).
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "pyramidclip/model/layers.h"

namespace pc {

at::Tensor causal_mask(int64_t length, const at::TensorOptions& options) {
  return at::full({length, length}, -std::numeric_limits<float>::infinity(), options.dtype(at::kFloat)).triu_(1);
}

at::Tensor key_padding_bias(const at::Tensor& keep) {
  at::Tensor bias = at::zeros(keep.sizes(), keep.options().dtype(at::kFloat));
  bias.masked_fill_(keep.logical_not(), -std::numeric_limits<float>::infinity());
  return bias.unsqueeze(1);  // [B, 1, Lk]
}

at::Tensor pooled_rows(const at::Tensor& x, const at::Tensor& rows) {
  if (!rows.defined()) return x.select(1, 0);
  return x.index({at::arange(x.size(0), rows.options()), rows});
}

at::Tensor expand_bias_to_heads(const at::Tensor& bias, int64_t heads) {
  const int64_t b = bias.size(0);
  return bias.unsqueeze(1).expand({b, heads, bias.size(1), bias.size(2)}).reshape({b * heads, bias.size(1), bias.size(2)});
}

namespace {

// [B, L, D] -> [B*H, L, D/H]
at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  const int64_t b = x.size(0), l = x.size(1), d = x.size(2);
  return x.reshape({b, l, heads, d / heads}).transpose(1, 2).reshape({b * heads, l, d / heads});
}

// [B*H, L, Dh] -> [B, L, H*Dh]
at::Tensor merge_heads(const at::Tensor& x, int64_t batch) {
  const int64_t heads = x.size(0) / batch, l = x.size(1), dh = x.size(2);
  return x.view({batch, heads, l, dh}).transpose(1, 2).reshape({batch, l, heads * dh});
}

// q [N, Lq, Dh], k/v [N, Lk, Dh] -> [N, Lq, Dh]
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(2)));
  at::Tensor scores = bias.defined() ? at::baddbmm(bias, q, k.transpose(1, 2), /*beta=*/1.0, /*alpha=*/scale)
                                     : at::bmm(q, k.transpose(1, 2)).mul_(scale);
  // softmax in fp32 under autocast (CPU autocast in LibTorch 1.13 would run it in bf16); the
  // probabilities go back to v's precision for the GEMM, as autocast would cast them
  const bool reduced = scores.scalar_type() == at::kBFloat16 || scores.scalar_type() == at::kHalf;
  if (!reduced) return at::bmm(at::softmax(scores, -1), v);
  return at::bmm(at::softmax(scores, -1, at::kFloat).to(v.scalar_type()), v);
}

}  // namespace

at::Tensor scaled_dot_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                                const at::Tensor& bias) {
  return merge_heads(attend(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), bias), q.size(0));
}

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t width, int64_t heads_) : heads(heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::empty({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  reset_parameters();
}

void MultiheadAttentionImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(in_proj_weight);
  in_proj_bias.zero_();
  out_proj->bias.zero_();
}

namespace {

// The key bias adds q.b_k to every score of a query's row, which softmax cancels: its gradient is
// zero in exact arithmetic and rounding noise in practice, which Adam scales up to lr-sized steps
// (m / sqrt(v) of noise is ~1) that differ with every change of summation order, e.g. the per-rank
// batch. It is held constant instead (the forward pass uses its value).
at::Tensor without_key_bias_grad(const at::Tensor& in_proj_bias, int64_t d) {
  if (!in_proj_bias.requires_grad() || !torch::GradMode::is_enabled()) return in_proj_bias;
  return at::cat({in_proj_bias.narrow(0, 0, d), in_proj_bias.narrow(0, d, d).detach(), in_proj_bias.narrow(0, 2 * d, d)});
}

}  // namespace

at::Tensor MultiheadAttentionImpl::forward(const at::Tensor& x, const at::Tensor& bias) {
  const int64_t b = x.size(0), l = x.size(1), d = x.size(2), dh = d / heads;
  at::Tensor packed = at::linear(x, in_proj_weight, without_key_bias_grad(in_proj_bias, d));  // one GEMM for q, k, v
  if (fused_attention_applies(packed, bias)) return out_proj->forward(fused_self_attention(packed, heads, bias));
  // unfused: one copy puts q, k, v in [3, B*H, L, Dh] order for the batched GEMMs
  at::Tensor qkv = packed.view({b, l, 3, heads, dh})
                       .permute({2, 0, 3, 1, 4})
                       .reshape({3, b * heads, l, dh});
  at::Tensor out = attend(qkv[0], qkv[1], qkv[2], bias);
  return out_proj->forward(merge_heads(out, b));
}

at::Tensor MultiheadAttentionImpl::forward_rows(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& bias) {
  const int64_t d = x.size(2);
  // keys and values of every row (2/3 of the projection), the query of the pooled rows only
  const at::Tensor qkv_bias = without_key_bias_grad(in_proj_bias, d);
  at::Tensor kv = at::linear(x, in_proj_weight.narrow(0, d, 2 * d), qkv_bias.narrow(0, d, 2 * d));
  at::Tensor q = at::linear(pooled_rows(x, rows), in_proj_weight.narrow(0, 0, d), qkv_bias.narrow(0, 0, d));
  at::Tensor out = scaled_dot_attention(q.unsqueeze(1), kv.narrow(2, 0, d), kv.narrow(2, d, d), heads, bias);
  return out_proj->forward(out.squeeze(1));
}

}  // namespace pc
