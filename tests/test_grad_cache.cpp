// Gradient-cache accumulation gives the loss and parameter gradients of the full batch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/run/grad_cache.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

Batch random_batch(const ModelConfig& m, int64_t n) {
  torch::manual_seed(321);
  Batch b;
  b.global_images = torch::randn({n, 3, m.image_size, m.image_size}, torch::kDouble);
  b.local_images = torch::randn({n, 3, m.image_size, m.image_size}, torch::kDouble);
  b.roi = torch::randn({n, 4, m.roi_dim}, torch::kDouble);
  b.roi_mask = torch::rand({n, 4}) > 0.3;
  b.roi_mask.select(1, 0).fill_(true);
  auto tokens = [&] {
    auto t = torch::randint(1, 400, {n, m.context_length}, torch::kLong);
    t.narrow(1, 10, m.context_length - 10).zero_();
    t.select(1, 0).fill_(m.vocab_size - 2);
    t.select(1, 9).fill_(m.vocab_size - 1);
    return t;
  };
  b.text = tokens();
  b.summary = tokens();
  b.tags = tokens();
  return b;
}

struct Result {
  double loss;
  std::vector<at::Tensor> grads;
};

Result run(const ModelConfig& cfg, const Batch& batch, int micro) {
  torch::manual_seed(0);
  PyramidClip model(cfg);
  model->to(torch::kDouble);
  model->train();
  LossConfig lc;
  LossOutput out = grad_cache_step(model, batch, micro, lc, nullptr);
  Result r{out.total.item<double>(), {}};
  for (const auto& p : model->parameters())
    r.grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return r;
}

TEST(GradCache, FourMicroBatchesGiveTheFullBatchLossAndGradients) {
  ModelConfig cfg = model_preset("tiny", /*official=*/false);  // no BatchNorm: exact
  cfg.with_roi = true;
  const Batch batch = random_batch(cfg, 8);
  const Result full = run(cfg, batch, 1), cached = run(cfg, batch, 4);
  EXPECT_NEAR(cached.loss, full.loss, 1e-10 * std::abs(full.loss));
  ASSERT_EQ(full.grads.size(), cached.grads.size());
  int64_t nonzero = 0;
  for (size_t i = 0; i < full.grads.size(); ++i) {
    const double scale = full.grads[i].abs().max().item<double>();
    nonzero += scale > 0;
    EXPECT_LE((cached.grads[i] - full.grads[i]).abs().max().item<double>(), 1e-9 * std::max(scale, 1e-12))
        << "parameter " << i;
  }
  EXPECT_GT(nonzero, static_cast<int64_t>(full.grads.size()) / 2);
}

TEST(GradCache, BatchNormStatisticsUpdateOncePerMicroBatch) {
  ModelConfig cfg = model_preset("tiny", /*official=*/true);  // LeFF blocks carry BatchNorm
  const Batch batch = random_batch(cfg, 8);
  auto tracked = [&](int micro) {
    torch::manual_seed(0);
    PyramidClip model(cfg);
    model->to(torch::kDouble);
    model->train();
    grad_cache_step(model, batch, micro, LossConfig{}, nullptr);
    std::vector<int64_t> n;
    for (const auto& item : model->named_buffers())
      if (item.key().find("num_batches_tracked") != std::string::npos) n.push_back(item.value().item<int64_t>());
    return n;
  };
  const std::vector<int64_t> one = tracked(1), two = tracked(2);
  ASSERT_FALSE(one.empty());
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_GT(one[i], 0);
    EXPECT_EQ(two[i], 2 * one[i]);  // the replay counts, the no-grad pass does not
  }
}

TEST(GradCache, MicroBatchesMustDivideTheBatch) {
  ModelConfig cfg = model_preset("tiny", false);
  const Batch batch = random_batch(cfg, 6);
  torch::manual_seed(0);
  PyramidClip model(cfg);
  model->to(torch::kDouble);
  EXPECT_THROW(grad_cache_step(model, batch, 4, LossConfig{}, nullptr), UserError);
}

}  // namespace
}  // namespace pc
