// Single-process checks of the softened InfoNCE and the six-pair weighting.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/loss/pyramid_loss.h"

namespace pc {
namespace {

at::Tensor unit_rows(int64_t n, int64_t d, at::ScalarType t = at::kDouble) {
  auto x = torch::randn({n, d}, torch::dtype(t));
  return x / x.norm(2, 1, true);
}

TEST(SoftenedInfoNCE, AlphaZeroIsStandardClipLoss) {
  torch::manual_seed(0);
  auto a = unit_rows(6, 8), b = unit_rows(6, 8);
  auto scale = torch::tensor(10.0, torch::kDouble);
  auto labels = torch::arange(6);
  auto logits = scale * a.matmul(b.t());
  double ref = 0.5 * (torch::nn::functional::cross_entropy(logits, labels).item<double>() +
                      torch::nn::functional::cross_entropy(logits.t(), labels).item<double>());
  EXPECT_NEAR(softened_infonce(a, b, a, b, 0, scale, 0.0).item<double>(), ref, 1e-12);
}

TEST(SoftenedInfoNCE, MatchesExplicitSoftTargets) {
  torch::manual_seed(1);
  const int64_t n = 5;
  const double alpha = 0.2;
  auto a = unit_rows(n, 4), b = unit_rows(n, 4);
  auto scale = torch::tensor(7.0, torch::kDouble);
  auto target = torch::full({n, n}, alpha / (n - 1), torch::kDouble);
  target.fill_diagonal_(1.0 - alpha);
  auto ce = [&](const at::Tensor& logits) { return -(target * torch::log_softmax(logits, 1)).sum(1).mean(); };
  auto logits = scale * a.matmul(b.t());
  double ref = 0.5 * (ce(logits) + ce(logits.t())).item<double>();
  EXPECT_NEAR(softened_infonce(a, b, a, b, 0, scale, alpha).item<double>(), ref, 1e-12);
}

// Central finite differences of the full six-pair loss w.r.t. every embedding and the scale.
TEST(PyramidLoss, GradientsMatchFiniteDifferences) {
  torch::manual_seed(2);
  const int64_t n = 4, d = 3;
  std::vector<at::Tensor> leaves;
  for (int i = 0; i < 6; ++i) leaves.push_back(torch::randn({n, d}, torch::kDouble).requires_grad_(true));
  auto scale = torch::tensor(3.0, torch::kDouble).requires_grad_(true);
  auto loss_of = [&](const std::vector<at::Tensor>& raw, const at::Tensor& s) {
    auto norm = [](const at::Tensor& x) { return x / x.norm(2, 1, true); };
    Embeddings e{norm(raw[0]), norm(raw[1]), norm(raw[2]), norm(raw[3]), norm(raw[4]), norm(raw[5]), s};
    return pyramid_loss(e, LossConfig{}, nullptr).total;
  };
  loss_of(leaves, scale).backward();
  const double h = 1e-6;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < leaves.size(); ++i) {
    for (int64_t k = 0; k < n * d; ++k) {
      auto plus = leaves, minus = leaves;
      plus[i] = leaves[i].detach().clone();
      minus[i] = leaves[i].detach().clone();
      plus[i].view(-1)[k] += h;
      minus[i].view(-1)[k] -= h;
      double fd = (loss_of(plus, scale).item<double>() - loss_of(minus, scale).item<double>()) / (2 * h);
      EXPECT_NEAR(leaves[i].grad().view(-1)[k].item<double>(), fd, 1e-7) << "embedding " << i << " element " << k;
    }
  }
  double fd = (loss_of(leaves, scale + h).item<double>() - loss_of(leaves, scale - h).item<double>()) / (2 * h);
  EXPECT_NEAR(scale.grad().item<double>(), fd, 1e-7);
}

TEST(PyramidLoss, WeightsCombinePairs) {
  torch::manual_seed(3);
  std::vector<at::Tensor> t;
  for (int i = 0; i < 6; ++i) t.push_back(unit_rows(8, 16));
  auto s = torch::tensor(5.0, torch::kDouble);
  Embeddings e{t[0], t[1], t[2], t[3], t[4], t[5], s};
  LossConfig cfg;
  cfg.lambda = 0.25;
  cfg.mu = 0.15;
  auto out = pyramid_loss(e, cfg, nullptr);
  auto L = [&](const at::Tensor& x, const at::Tensor& y) { return softened_infonce(x, y, x, y, 0, s, 0.2).item<double>(); };
  // e: image_global=t0, image_local=t1, roi=t2, text=t3, summary=t4, tags=t5
  double peer = (L(t[0], t[4]) + L(t[1], t[3])) / 2, cg = (L(t[0], t[5]) + L(t[2], t[4])) / 2,
         cl = (L(t[1], t[5]) + L(t[2], t[3])) / 2;
  EXPECT_NEAR(out.total.item<double>(), 0.6 * peer + 0.25 * cg + 0.15 * cl, 1e-12);
  EXPECT_EQ(out.pairs.size(), 6u);
  EXPECT_NEAR(out.pairs.at("cross_roi_t"), L(t[2], t[3]), 1e-12);
}

TEST(PyramidLoss, MissingModalitiesTrainWhatExists) {
  torch::manual_seed(4);
  auto g = unit_rows(8, 16), l = unit_rows(8, 16), txt = unit_rows(8, 16), sum = unit_rows(8, 16);
  auto s = torch::tensor(5.0, torch::kDouble);
  Embeddings e{g, l, at::Tensor(), txt, sum, at::Tensor(), s};  // no ROI, no tags
  auto out = pyramid_loss(e, LossConfig{}, nullptr);
  EXPECT_EQ(out.pairs.size(), 2u);
  double peer = (softened_infonce(g, sum, g, sum, 0, s, 0.2) + softened_infonce(l, txt, l, txt, 0, s, 0.2)).item<double>() / 2;
  EXPECT_NEAR(out.total.item<double>(), peer, 1e-12);
}

TEST(PyramidLoss, ClipObjectiveUsesGlobalViewAndCaptionWithoutSoftening) {
  torch::manual_seed(5);
  auto g = unit_rows(8, 16), txt = unit_rows(8, 16);
  auto s = torch::tensor(5.0, torch::kDouble);
  Embeddings e{g, at::Tensor(), at::Tensor(), txt, at::Tensor(), at::Tensor(), s};
  LossConfig cfg;
  cfg.objective = "clip";
  EXPECT_NEAR(pyramid_loss(e, cfg, nullptr).total.item<double>(), softened_infonce(g, txt, g, txt, 0, s, 0.0).item<double>(), 1e-12);
}

}  // namespace
}  // namespace pc
