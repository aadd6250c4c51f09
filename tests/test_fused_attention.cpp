// The fused CPU attention kernel (src/model/attention_kernel.cpp) against the bmm / softmax / bmm
// path run in double: outputs and the packed qkv gradient, for head sizes below, at and above the
// kernel's 16-float vectors, sequence lengths that are and are not multiples of it, causal,
// key-padding and no bias; thread-count independence; the module with and without fusion.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/model/layers.h"

namespace pc {
namespace {

struct Case {
  int64_t batch, length, width, heads;
  enum Bias { kNone, kCausal, kKeyPadding } bias;
};

// bias in the layout MultiheadAttention passes it (double for the reference)
at::Tensor make_bias(const Case& c, at::ScalarType type) {
  if (c.bias == Case::kCausal) return causal_mask(c.length, at::TensorOptions().dtype(type)).to(type);
  if (c.bias == Case::kNone) return {};
  at::Tensor keep = torch::ones({c.batch, c.length}, torch::kBool);
  keep.index_put_({0, torch::indexing::Slice(c.length / 2, c.length)}, false);  // half of sample 0's keys
  keep.index_put_({c.batch - 1, c.length - 1}, false);                          // the last key of the last one
  return expand_bias_to_heads(key_padding_bias(keep), c.heads).to(type);
}

// reference: the unfused path in double
at::Tensor reference(const at::Tensor& qkv, const Case& c, const at::Tensor& bias) {
  const auto parts = qkv.chunk(3, 2);
  return scaled_dot_attention(parts[0], parts[1], parts[2], c.heads, bias);
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

void check_case(const Case& c) {
  SCOPED_TRACE("batch " + std::to_string(c.batch) + ", length " + std::to_string(c.length) + ", width " +
               std::to_string(c.width) + ", heads " + std::to_string(c.heads) + ", bias " + std::to_string(c.bias));
  torch::manual_seed(c.length * 31 + c.width);
  const at::Tensor qkv64 = torch::randn({c.batch, c.length, 3 * c.width}, torch::kDouble) * 1.5;
  const at::Tensor grad_out64 = torch::randn({c.batch, c.length, c.width}, torch::kDouble);

  at::Tensor ref_in = qkv64.clone().requires_grad_();
  at::Tensor ref_out = reference(ref_in, c, make_bias(c, at::kDouble));
  (ref_out * grad_out64).sum().backward();

  at::Tensor in = qkv64.to(at::kFloat).requires_grad_();
  ASSERT_TRUE(fused_attention_applies(in, make_bias(c, at::kFloat)));
  at::Tensor out = fused_self_attention(in, c.heads, make_bias(c, at::kFloat));
  (out * grad_out64.to(at::kFloat)).sum().backward();

  ASSERT_EQ(out.sizes(), ref_out.sizes());
  const double out_err = max_abs(out.to(at::kDouble) - ref_out) / max_abs(ref_out);
  const double grad_err = max_abs(in.grad().to(at::kDouble) - ref_in.grad()) / max_abs(ref_in.grad());
  EXPECT_LT(out_err, 2e-6);
  EXPECT_LT(grad_err, 2e-6);
  // masked keys get exactly zero gradient through k and v
  if (c.bias == Case::kKeyPadding) {
    const at::Tensor kv_grad = in.grad()[0].narrow(0, c.length / 2, c.length - c.length / 2).narrow(1, c.width, 2 * c.width);
    EXPECT_EQ(max_abs(kv_grad), 0.0);
  }
}

TEST(FusedAttention, MatchesUnfusedDoubleReference) {
  const Case cases[] = {
      {3, 7, 32, 4, Case::kNone},         // head dim 8 < one vector, length < one vector
      {2, 77, 64, 4, Case::kCausal},      // tiny text: head dim 16, 77 tokens
      {2, 37, 96, 4, Case::kNone},        // tiny image: head dim 24
      {2, 50, 128, 2, Case::kKeyPadding}, // head dim 64, padded keys
      {2, 16, 48, 3, Case::kCausal},      // length exactly one vector
      {1, 1, 16, 1, Case::kNone},         // a single token
      {4, 33, 40, 5, Case::kKeyPadding},  // odd sizes everywhere
  };
  for (const Case& c : cases) check_case(c);
}

TEST(FusedAttention, SameResultForAnyThreadCount) {
  torch::manual_seed(3);
  const Case c{8, 29, 64, 4, Case::kCausal};
  const at::Tensor qkv = torch::randn({c.batch, c.length, 3 * c.width});
  const at::Tensor grad_out = torch::randn({c.batch, c.length, c.width});
  auto run = [&](int threads) {
    at::set_num_threads(threads);
    at::Tensor in = qkv.clone().requires_grad_();
    at::Tensor out = fused_self_attention(in, c.heads, make_bias(c, at::kFloat));
    (out * grad_out).sum().backward();
    return std::make_pair(out.detach(), in.grad());
  };
  const auto one = run(1), two = run(2);
  at::set_num_threads(1);
  EXPECT_TRUE(torch::equal(one.first, two.first));
  EXPECT_TRUE(torch::equal(one.second, two.second));
}

TEST(FusedAttention, ModuleMatchesUnfusedPath) {
  torch::manual_seed(5);
  MultiheadAttention attn(48, 4);
  {
    torch::NoGradGuard no_grad;
    attn->in_proj_bias.normal_();
  }
  const at::Tensor x = torch::randn({3, 11, 48});
  const at::Tensor mask = causal_mask(11);
  auto run = [&](bool fused) {
    set_fused_kernels(fused);
    attn->zero_grad();
    at::Tensor out = attn->forward(x, mask);
    out.pow(2).sum().backward();
    set_fused_kernels(true);
    return std::make_pair(out.detach(), attn->in_proj_weight.grad().clone());
  };
  const auto fused = run(true), plain = run(false);
  EXPECT_TRUE(torch::allclose(fused.first, plain.first, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(fused.second, plain.second, 1e-4, 1e-5));
}

// Softmax cancels the key bias (it adds q.b_k to a whole row of scores): MultiheadAttention holds it
// constant, so its gradient is exactly zero instead of rounding noise that Adam would turn into
// lr-sized steps; everything else matches plain autograd through the full bias (double).
TEST(FusedAttention, KeyBiasGetsNoGradientTheRestMatchesAutograd) {
  torch::manual_seed(8);
  const int64_t d = 24, heads = 3;
  MultiheadAttention attn(d, heads);
  attn->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    attn->in_proj_bias.normal_();
  }
  const at::Tensor x = torch::randn({2, 7, d}, torch::kDouble);
  const at::Tensor mask = causal_mask(7).to(torch::kDouble);
  const at::Tensor grad_out = torch::randn({2, 7, d}, torch::kDouble);
  (attn->forward(x, mask) * grad_out).sum().backward();

  at::Tensor w = attn->in_proj_weight.detach().clone().requires_grad_();
  at::Tensor b = attn->in_proj_bias.detach().clone().requires_grad_();
  const auto qkv = at::linear(x, w, b).chunk(3, 2);
  (attn->out_proj->forward(scaled_dot_attention(qkv[0], qkv[1], qkv[2], heads, mask)) * grad_out).sum().backward();

  const at::Tensor got = attn->in_proj_bias.grad();
  EXPECT_EQ(got.narrow(0, d, d).abs().max().item<double>(), 0.0);
  EXPECT_LT(b.grad().narrow(0, d, d).abs().max().item<double>(), 1e-12 * b.grad().abs().max().item<double>());
  for (int64_t part : {0, 2})
    EXPECT_TRUE(torch::allclose(got.narrow(0, part * d, d), b.grad().narrow(0, part * d, d), 1e-12, 1e-12)) << part;
  EXPECT_TRUE(torch::allclose(attn->in_proj_weight.grad(), w.grad(), 1e-12, 1e-12));
}

TEST(FusedAttention, ReducedPrecisionKeepsTheUnfusedPath) {
  const at::Tensor qkv = torch::randn({2, 5, 24}).to(at::kBFloat16);
  EXPECT_FALSE(fused_attention_applies(qkv, {}));
  EXPECT_FALSE(fused_attention_applies(torch::randn({2, 5, 24}, torch::kDouble), {}));
  EXPECT_TRUE(fused_attention_applies(torch::randn({2, 5, 24}), {}));
}

}  // namespace
}  // namespace pc
