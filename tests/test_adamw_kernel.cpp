// The fused AdamW kernel (src/optim/adamw_kernel.cpp) against the ATen op sequence it replaces,
// and independent of where an array starts (vector body vs scalar tail: ZeRO ranks' slices begin
// anywhere, and their results must agree bitwise with a one-rank run).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/optim/adamw_kernel.h"

namespace pc {
namespace {

kernel::AdamWStep make_step(double lr, double wd, int t) {
  kernel::AdamWStep s;
  s.beta1 = 0.9;
  s.beta2 = 0.98;
  s.eps = 1e-8;
  s.decay = wd != 0 ? 1 - lr * wd : 1.0;
  s.step_size = lr / (1 - std::pow(s.beta1, t));
  s.sqrt_bias_correction2 = std::sqrt(1 - std::pow(s.beta2, t));
  return s;
}

// the ops of torch::optim::AdamW::step (LibTorch 1.13), in its order
void aten_update(at::Tensor p, at::Tensor m, at::Tensor v, const at::Tensor& g, double lr, double wd,
                 const kernel::AdamWStep& s) {
  if (wd != 0) p.mul_(1 - lr * wd);
  m.mul_(s.beta1).add_(g, 1 - s.beta1);
  v.mul_(s.beta2).addcmul_(g, g, 1 - s.beta2);
  at::Tensor denom = v.sqrt().div_(s.sqrt_bias_correction2).add_(s.eps);
  p.addcdiv_(m, denom, -s.step_size);
}

template <class T>
void run_against_aten(at::ScalarType type, double tolerance) {
  torch::manual_seed(1);
  const int64_t n = 1000 + 13;  // not a multiple of any vector width
  at::Tensor p = torch::randn({n}, type), m = torch::zeros({n}, type), v = torch::zeros({n}, type);
  at::Tensor rp = p.clone(), rm = m.clone(), rv = v.clone();
  const at::Tensor p_init = p.clone();
  for (int t = 1; t <= 20; ++t) {
    const at::Tensor g = torch::randn({n}, type) * (t % 3 == 0 ? 1e-6 : 1e-2);  // small and large gradients
    const double lr = 1e-3 * t, wd = t % 2 ? 0.1 : 0.0;
    const kernel::AdamWStep s = make_step(lr, wd, t);
    kernel::adamw_update(p.data_ptr<T>(), m.data_ptr<T>(), v.data_ptr<T>(), g.data_ptr<T>(), n, s);
    aten_update(rp, rm, rv, g, lr, wd, s);
  }
  const double scale = rp.abs().max().item<double>();
  EXPECT_LT((p - rp).abs().max().item<double>() / scale, tolerance);
  EXPECT_LT(((m - rm).abs().max() / rm.abs().max()).item<double>(), tolerance);
  EXPECT_LT(((v - rv).abs().max() / rv.abs().max()).item<double>(), tolerance);
  EXPECT_GT((p - p_init).abs().max().item<double>(), 1e-3);  // the parameters did move
}

TEST(AdamWKernel, MatchesAtenOpsFloat) { run_against_aten<float>(at::kFloat, 1e-6); }
TEST(AdamWKernel, MatchesAtenOpsDouble) { run_against_aten<double>(at::kDouble, 1e-14); }

TEST(AdamWKernel, ResultDoesNotDependOnTheSliceStart) {
  torch::manual_seed(2);
  const int64_t n = 301;
  const at::Tensor p0 = torch::randn({n}), g = torch::randn({n}) * 1e-2;
  const at::Tensor m0 = torch::randn({n}) * 1e-3, v0 = torch::rand({n}) * 1e-4;
  const kernel::AdamWStep s = make_step(1e-3, 0.1, 7);
  // whole array at once
  at::Tensor p = p0.clone(), m = m0.clone(), v = v0.clone();
  kernel::adamw_update(p.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), g.data_ptr<float>(), n, s);
  // the same elements in three unaligned pieces (as ZeRO slices or threads split it)
  at::Tensor q = p0.clone(), qm = m0.clone(), qv = v0.clone();
  for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, 3}, {3, 170}, {170, n}})
    kernel::adamw_update(q.data_ptr<float>() + lo, qm.data_ptr<float>() + lo, qv.data_ptr<float>() + lo,
                         g.data_ptr<float>() + lo, hi - lo, s);
  EXPECT_TRUE(torch::equal(p, q));
  EXPECT_TRUE(torch::equal(m, qm));
  EXPECT_TRUE(torch::equal(v, qv));
}

}  // namespace
}  // namespace pc
