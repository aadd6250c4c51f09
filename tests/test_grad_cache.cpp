// Gradient-cache accumulation gives the loss and parameter gradients of the full batch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "random_batch.h"

#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/run/grad_cache.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

Batch random_batch(const ModelConfig& m, int64_t n) { return test::random_batch(m, n, 321, torch::kDouble); }

struct Result {
  double loss;
  std::vector<at::Tensor> grads;
};

Result run(const ModelConfig& cfg, const Batch& batch, int micro, StepPrecision precision = {}) {
  torch::manual_seed(0);
  PyramidClip model(cfg);
  model->to(torch::kDouble);
  model->train();
  LossConfig lc;
  LossOutput out = grad_cache_step(model, batch, micro, lc, nullptr, nullptr, nullptr, precision);
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

// fp16 loss scaling: every gradient (the replays' too, through the cached embedding gradients)
// is scale x the unscaled one; the reported loss is not scaled.
TEST(GradCache, LossScaleMultipliesEveryGradientNotTheLoss) {
  ModelConfig cfg = model_preset("tiny", /*official=*/false);
  cfg.with_roi = true;
  const Batch batch = random_batch(cfg, 8);
  for (int micro : {1, 4}) {
    const Result plain = run(cfg, batch, micro), scaled = run(cfg, batch, micro, {at::kFloat, 1024.0});
    EXPECT_EQ(scaled.loss, plain.loss);
    for (size_t i = 0; i < plain.grads.size(); ++i) {
      const double scale = plain.grads[i].abs().max().item<double>();
      EXPECT_LE((scaled.grads[i] / 1024.0 - plain.grads[i]).abs().max().item<double>(), 1e-12 * std::max(scale, 1e-12))
          << "micro-batches " << micro << ", parameter " << i;
    }
  }
}

// bf16 autocast: the loss stays fp32 and close to the fp32 loss; gradients stay fp32.
TEST(GradCache, Bf16AutocastKeepsLossAndGradientsInFp32) {
  ModelConfig cfg = model_preset("tiny", /*official=*/true);
  cfg.with_roi = true;
  Batch batch = random_batch(cfg, 8);
  for (at::Tensor* t : {&batch.global_images, &batch.local_images, &batch.roi}) *t = t->to(torch::kFloat);
  auto run_float = [&](at::ScalarType autocast, double* loss) {
    torch::manual_seed(0);
    PyramidClip model(cfg);
    model->train();
    LossOutput out = grad_cache_step(model, batch, 2, LossConfig{}, nullptr, nullptr, nullptr, {autocast, 1.0});
    EXPECT_EQ(out.total.scalar_type(), at::kFloat);
    *loss = out.total.item<double>();
    for (const auto& p : model->parameters()) {
      if (p.grad().defined()) {
        EXPECT_EQ(p.grad().scalar_type(), at::kFloat);
      }
    }
  };
  double fp32 = 0, bf16 = 0;
  run_float(at::kFloat, &fp32);
  run_float(at::kBFloat16, &bf16);
  EXPECT_NEAR(bf16, fp32, 0.02 * fp32);
  EXPECT_NE(bf16, fp32);  // autocast really ran in bf16
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
