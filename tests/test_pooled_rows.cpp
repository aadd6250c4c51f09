// Transformer::forward_pooled (the last block computes only the rows the tower keeps: CLS, EOT)
// against the full stack followed by the row selection, in double: outputs, the input gradient
// and every parameter gradient, with a causal mask at per-sample rows, key padding at row 0, and
// the LeFF fallback.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/model/layers.h"

namespace pc {
namespace {

struct Grads {
  at::Tensor out, input;
  std::vector<at::Tensor> params;
};

Grads run(Transformer& t, const at::Tensor& x0, const at::Tensor& grad_out, const std::function<at::Tensor(const at::Tensor&)>& f) {
  for (auto& p : t->parameters()) p.mutable_grad() = at::Tensor();
  at::Tensor x = x0.clone().requires_grad_();
  Grads g;
  g.out = f(x);
  (g.out * grad_out).sum().backward();
  g.input = x.grad();
  for (auto& p : t->parameters()) g.params.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return g;
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-300, b.abs().max().item<double>());
}

// every_parameter: all of the stack's parameters must take part (false when a run covers only a
// tail of the blocks)
void expect_same(const Grads& pooled, const Grads& full, double tolerance, bool every_parameter) {
  ASSERT_EQ(pooled.out.sizes(), full.out.sizes());
  EXPECT_LT(rel_err(pooled.out, full.out), tolerance);
  EXPECT_LT(rel_err(pooled.input, full.input), tolerance);
  ASSERT_EQ(pooled.params.size(), full.params.size());
  for (size_t i = 0; i < full.params.size(); ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i));
    EXPECT_LT(rel_err(pooled.params[i], full.params[i]), tolerance);
    if (every_parameter) EXPECT_GT(full.params[i].abs().max().item<double>(), 0.0);
  }
}

TEST(PooledRows, CausalMaskAtPerSampleRowsMatchesTheFullStack) {
  torch::manual_seed(3);
  const int64_t b = 3, l = 9, d = 32, heads = 4;
  Transformer t(d, 3, heads);
  t->to(torch::kDouble);
  const at::Tensor x = torch::randn({b, l, d}, torch::kDouble);
  const at::Tensor rows = torch::tensor({8, 2, 5}, torch::kLong);  // EOT positions
  const at::Tensor causal = causal_mask(l, x.options()).to(torch::kDouble);
  const at::Tensor rows_bias = expand_bias_to_heads(causal.index_select(0, rows).unsqueeze(1), heads);
  const at::Tensor grad_out = torch::randn({b, d}, torch::kDouble);
  Grads full = run(t, x, grad_out, [&](const at::Tensor& in) { return pooled_rows(t->forward(in, causal), rows); });
  Grads pooled = run(t, x, grad_out, [&](const at::Tensor& in) { return t->forward_pooled(in, causal, rows, rows_bias); });
  expect_same(pooled, full, 1e-12, true);
}

TEST(PooledRows, KeyPaddingAtTheClassTokenMatchesTheFullStack) {
  torch::manual_seed(4);
  const int64_t b = 2, l = 7, d = 24, heads = 3;
  Transformer t(d, 2, heads);
  t->to(torch::kDouble);
  const at::Tensor x = torch::randn({b, l, d}, torch::kDouble);
  at::Tensor keep = torch::ones({b, l}, torch::kBool);
  keep.index_put_({1, torch::indexing::Slice(4, l)}, false);
  const at::Tensor bias = expand_bias_to_heads(key_padding_bias(keep), heads).to(torch::kDouble);
  const at::Tensor grad_out = torch::randn({b, d}, torch::kDouble);
  // blocks [1, 2) only, as forward_roi runs a tail of the stack
  Grads full = run(t, x, grad_out, [&](const at::Tensor& in) { return pooled_rows(t->forward(in, bias, 1, 2), {}); });
  Grads pooled = run(t, x, grad_out, [&](const at::Tensor& in) { return t->forward_pooled(in, bias, {}, bias, 1, 2); });
  ASSERT_EQ(pooled.out.sizes(), (std::vector<int64_t>{b, d}));
  expect_same(pooled, full, 1e-12, false);
}

TEST(PooledRows, LeffLastBlockRunsInFull) {
  torch::manual_seed(5);
  const int64_t b = 2, grid = 2, l = 1 + grid * grid, d = 16, heads = 2;
  Transformer t(d, 2, heads, /*split=*/2, /*leff=*/true);  // both blocks LeFF
  t->to(torch::kDouble);
  t->train();
  const at::Tensor x = torch::randn({b, l, d}, torch::kDouble);
  const at::Tensor grad_out = torch::randn({b, d}, torch::kDouble);
  Grads full = run(t, x, grad_out, [&](const at::Tensor& in) { return pooled_rows(t->forward(in), {}); });
  Grads pooled = run(t, x, grad_out, [&](const at::Tensor& in) { return t->forward_pooled(in, {}, {}, {}); });
  expect_same(pooled, full, 1e-12, false);  // LeFF's MLP skips the class token: the last one gets no gradient
}

TEST(PooledRows, Float32MatchesTheFullStackClosely) {
  torch::manual_seed(6);
  const int64_t b = 4, l = 50, d = 64, heads = 4;  // the fused attention runs in the full stack's blocks
  Transformer t(d, 2, heads);
  const at::Tensor x = torch::randn({b, l, d});
  const at::Tensor grad_out = torch::randn({b, d});
  Grads full = run(t, x, grad_out, [&](const at::Tensor& in) { return pooled_rows(t->forward(in), {}); });
  Grads pooled = run(t, x, grad_out, [&](const at::Tensor& in) { return t->forward_pooled(in, {}, {}, {}); });
  expect_same(pooled, full, 1e-4, true);
}

}  // namespace
}  // namespace pc
