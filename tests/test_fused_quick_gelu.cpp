// The fused QuickGELU kernel against x * sigmoid(1.702 x) in double: values and gradients over
// the whole range (large negative and positive inputs included), and the MLP with and without it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/model/layers.h"

namespace pc {
namespace {

TEST(FusedQuickGelu, MatchesDoubleReference) {
  torch::manual_seed(7);
  // 1037 values: not a multiple of any vector width; spread to +-60 so both sigmoid branches and
  // the saturated ends are hit
  at::Tensor x64 = torch::cat({torch::randn({1000}, torch::kDouble) * 4, torch::linspace(-60, 60, 37, torch::kDouble)});
  const at::Tensor dy64 = torch::randn({x64.numel()}, torch::kDouble);
  at::Tensor ref_in = x64.clone().requires_grad_();
  at::Tensor ref = ref_in * torch::sigmoid(kQuickGeluAlpha * ref_in);
  (ref * dy64).sum().backward();

  at::Tensor in = x64.to(at::kFloat).requires_grad_();
  at::Tensor out = fused_quick_gelu(in);
  (out * dy64.to(at::kFloat)).sum().backward();
  // relative to each value's size (plus a floor for the values near 0)
  const at::Tensor out_err = (out.to(at::kDouble) - ref).abs() / (ref.abs() + 1e-6);
  const at::Tensor grad_err = (in.grad().to(at::kDouble) - ref_in.grad()).abs() / (ref_in.grad().abs() + 1e-6);
  EXPECT_LT(out_err.max().item<double>(), 1e-5);
  EXPECT_LT(grad_err.max().item<double>(), 1e-5);
}

TEST(FusedQuickGelu, MlpMatchesUnfusedPath) {
  torch::manual_seed(8);
  Mlp mlp(24);
  const at::Tensor x = torch::randn({3, 7, 24});
  auto run = [&](bool fused) {
    set_fused_kernels(fused);
    mlp->zero_grad();
    at::Tensor out = mlp->forward(x);
    out.pow(2).sum().backward();
    set_fused_kernels(true);
    return std::make_pair(out.detach(), mlp->c_fc->weight.grad().clone());
  };
  const auto fused = run(true), plain = run(false);
  EXPECT_TRUE(torch::allclose(fused.first, plain.first, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(fused.second, plain.second, 1e-4, 1e-5));
}

TEST(FusedQuickGelu, OnlyForCpuFloat) {
  EXPECT_TRUE(fused_quick_gelu_applies(torch::randn({4})));
  EXPECT_FALSE(fused_quick_gelu_applies(torch::randn({4}).to(at::kBFloat16)));
  EXPECT_FALSE(fused_quick_gelu_applies(torch::randn({4}, torch::kDouble)));
  set_fused_kernels(false);
  EXPECT_FALSE(fused_quick_gelu_applies(torch::randn({4})));
  set_fused_kernels(true);
}

}  // namespace
}  // namespace pc
