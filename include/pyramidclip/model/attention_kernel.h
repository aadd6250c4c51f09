#pragma once
// Fused CPU attention kernel (fp32): softmax(scale * Q K^T + bias) V per (sample, head), with the
// scores of one query row kept in L1 instead of a [B*H, Lq, Lk] tensor written and read by
// bmm -> softmax -> bmm. LibTorch 1.13 without MKL runs bmm as one small OpenBLAS GEMM per
// (sample, head) and its softmax over a short last dimension is slow; on the tiny model the
// unfused path was ~30 % of a training step. Torch-free: fused_attention.cpp wraps it in an
// autograd function and threads it over (sample, head) pairs.
#include <cstdint>

namespace pc::kernel {

// Row-major views with strides in elements. Head h of sample b starts at
// base + b * batch_stride + h * head_dim; rows (tokens) are row_stride apart; the head_dim
// values of one row are contiguous.
struct HeadView {
  float* base = nullptr;
  int64_t batch_stride = 0, row_stride = 0;
  float* at(int64_t b, int64_t h, int64_t head_dim) const { return base + b * batch_stride + h * head_dim; }
};

struct AttentionArgs {
  int64_t batch = 0, heads = 0, q_len = 0, k_len = 0, head_dim = 0;
  float scale = 1.0f;
  HeadView q, k, v, out;
  // Additive bias for pair n = b * heads + h, query row i: bias + n * bias_pair_stride +
  // i * bias_row_stride, k_len contiguous values (strides may be 0: broadcast). nullptr: none.
  const float* bias = nullptr;
  int64_t bias_pair_stride = 0, bias_row_stride = 0;
  // Softmax probabilities [batch * heads, q_len, k_len], contiguous: written by the forward
  // kernel, read by the backward kernel.
  float* probs = nullptr;
};

// out and probs for pairs [pair_begin, pair_end).
void attention_forward(const AttentionArgs& a, int64_t pair_begin, int64_t pair_end);

// Gradients for pairs [pair_begin, pair_end): grad_out is read through `grad_out`; the results
// are written (not accumulated) through grad_q / grad_k / grad_v, which may interleave in one
// buffer (a packed qkv gradient). Needs a.q, a.k, a.v and a.probs from the forward pass.
struct AttentionGrads {
  HeadView grad_out, grad_q, grad_k, grad_v;
};
void attention_backward(const AttentionArgs& a, const AttentionGrads& g, int64_t pair_begin, int64_t pair_end);

}  // namespace pc::kernel
