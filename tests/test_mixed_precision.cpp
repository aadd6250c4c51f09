// Mixed precision (mixed_precision.h): the bf16 autocast forward of the tiny models returns fp32
// unit embeddings and a loss close to fp32's; checkpointing replays the autocast state; the
// dynamic loss scaler skips overflowing steps, backs off, grows, and unscales exactly.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "model_scale_util.h"
#include "pyramidclip/model/mixed_precision.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

using testing::max_abs_diff;

TEST(Autocast, GuardSetsAndRestoresState) {
  ASSERT_FALSE(at::autocast::is_cpu_enabled());
  {
    AutocastGuard off(at::kFloat);
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
  }
  {
    AutocastGuard bf16(at::kBFloat16);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), at::kBFloat16);
    at::Tensor a = torch::randn({4, 4}), b = torch::randn({4, 4});
    EXPECT_EQ(a.mm(b).scalar_type(), at::kBFloat16);
    {
      AutocastOffGuard fp32;
      EXPECT_EQ(a.mm(b).scalar_type(), at::kFloat);
    }
    EXPECT_EQ(a.mm(b).scalar_type(), at::kBFloat16);
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(parse_precision("bf16"), at::kBFloat16);
  EXPECT_EQ(parse_precision("fp16"), at::kHalf);
  EXPECT_EQ(parse_precision("fp32"), at::kFloat);
  EXPECT_THROW(parse_precision("fp8"), UserError);
  EXPECT_TRUE(autocast_supported(at::kBFloat16, at::kCPU));
  EXPECT_FALSE(autocast_supported(at::kHalf, at::kCPU));  // CPU autocast in LibTorch 1.13 is bf16-only
}

// bf16 forward of a whole model vs fp32: fp32 unit embeddings, loss within a bound derived from the
// embedding error. Cross-entropy is 2-Lipschitz in the logits (max norm: its logit gradient
// softmax - onehot has L1 norm <= 2), each logit is s * <a, b> with unit a, b, so
// |dL| <= 2 s (|da| + |db|) per direction: |dL_total| <= (pairs) * 2 s * 2 max|de|.
void check_bf16_forward(const ModelConfig& c) {
  torch::manual_seed(31);
  PyramidClip model(c);
  model->train();
  torch::manual_seed(32);
  Batch batch = testing::random_batch(c, 6);
  Embeddings e32 = model->forward(batch);
  at::Tensor l32 = testing::toy_loss(e32);
  Embeddings e16;
  {
    AutocastGuard autocast(at::kBFloat16);
    e16 = model->forward(batch);
  }
  at::Tensor l16 = testing::toy_loss(e16);  // the loss outside the autocast region: fp32
  double worst = 0;
  for (auto [a, b] : {std::pair{&e32.image_global, &e16.image_global}, {&e32.image_local, &e16.image_local},
                      {&e32.roi, &e16.roi}, {&e32.text, &e16.text}, {&e32.summary, &e16.summary},
                      {&e32.tags, &e16.tags}}) {
    ASSERT_TRUE(b->defined());
    EXPECT_EQ(b->scalar_type(), at::kFloat);
    EXPECT_TRUE(torch::allclose(b->norm(2, 1), torch::ones({b->size(0)}), 1e-5, 1e-5));
    worst = std::max(worst, (*a - *b).norm(2, 1).max().item<double>());
  }
  EXPECT_EQ(e16.logit_scale.scalar_type(), at::kFloat);
  EXPECT_EQ(l16.scalar_type(), at::kFloat);
  const double s = e32.logit_scale.item<double>();
  const double bound = 6 * 2 * s * 2 * worst;
  const double diff = std::abs(l32.item<double>() - l16.item<double>());
  // bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 2e-3); a few layers of GEMMs leave the
  // embeddings a few 1e-3 off. Both checks: the derived bound and 1% of the loss.
  EXPECT_LT(worst, 0.05) << "embedding error of the bf16 forward";
  EXPECT_LE(diff, bound);
  EXPECT_LE(diff, 0.01 * l32.item<double>());
  ::testing::Test::RecordProperty("loss_fp32", std::to_string(l32.item<double>()));
  ::testing::Test::RecordProperty("loss_bf16", std::to_string(l16.item<double>()));
  ::testing::Test::RecordProperty("max_embedding_error", std::to_string(worst));
  std::printf("[ bf16     ] loss fp32 %.6f bf16 %.6f |diff| %.2e (bound %.2e), max |de| %.2e\n", l32.item<double>(),
              l16.item<double>(), diff, bound, worst);
  // and the backward runs (bf16 GEMM gradients reach the fp32 parameters)
  l16.backward();
  for (const auto& p : model->named_parameters())
    if (p.value().requires_grad()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_EQ(p.value().grad().scalar_type(), at::kFloat) << p.key();
    }
}

TEST(Autocast, Bf16ForwardOfficialVit) { check_bf16_forward(testing::tiny_config(true)); }
TEST(Autocast, Bf16ForwardStandardVit) { check_bf16_forward(testing::tiny_config(false)); }
TEST(Autocast, Bf16ForwardResNet) { check_bf16_forward(testing::small_resnet_config()); }

// The backward (and so the recompute) runs after the autocast region closed: checkpointing must
// replay the bf16 state, else the recomputed activations (fp32) would not be the ones the first
// pass used and the gradients would differ at the 1e-2 level. Checkpointing keeps autocast's
// weight-cast cache off (see checkpoint.h), so the exact reference is a plain run without the
// cache; with the cache, a weight used by both views has ONE bf16 cast whose two incoming
// gradients are summed in bf16 before the cast back, hence bf16-level differences (~1e-3 relative).
TEST(Autocast, CheckpointReplaysAutocastState) {
  ModelConfig c = testing::tiny_config(true);
  torch::manual_seed(33);
  PyramidClip plain(c), cached{nullptr};
  torch::manual_seed(33);
  cached = PyramidClip(c);
  torch::manual_seed(33);
  c.checkpoint_image = c.checkpoint_text = true;
  PyramidClip ckpt(c);
  torch::manual_seed(34);
  Batch batch = testing::random_batch(c, 4);
  for (PyramidClip* m : {&plain, &cached, &ckpt}) {
    (*m)->train();
    Embeddings e;
    {
      AutocastGuard autocast(at::kBFloat16);
      at::autocast::set_autocast_cache_enabled(m == &cached);
      e = (*m)->forward(batch);
      at::autocast::set_autocast_cache_enabled(true);
    }
    testing::toy_loss(e).backward();
  }
  EXPECT_LE(testing::max_grad_diff(*plain, *ckpt), 1e-6);
  testing::expect_buffers_equal(*plain, *ckpt, 0.0);
  double worst = 0;
  auto pc = ckpt->named_parameters();
  for (const auto& p : cached->named_parameters())
    if (p.value().grad().defined())
      worst = std::max(worst, max_abs_diff(p.value().grad(), pc[p.key()].grad()) /
                                  std::max(1e-3, p.value().grad().abs().max().item<double>()));
  EXPECT_LE(worst, 2e-2);  // bf16 accumulation of the shared casts' gradients
}

// ---------------------------------------------------------------- loss scaler

TEST(GradScaler, OverflowSkipsStepAndBacksOff) {
  GradScaler scaler;  // 65536, backoff 0.5
  at::Tensor g1 = torch::ones({5}), g2 = torch::ones({3});
  g2[1] = std::numeric_limits<float>::infinity();
  at::Tensor found = scaler.unscale_({g1, g2});
  EXPECT_EQ(found.item<float>(), 1.0f);
  EXPECT_FALSE(scaler.update(found.item<float>() > 0));
  EXPECT_EQ(scaler.scale(), 32768.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // NaN too
  at::Tensor g3 = torch::zeros({4});
  g3[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(scaler.unscale_({g3}).item<float>(), 1.0f);
  EXPECT_FALSE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 16384.0);
  // finite: step taken
  EXPECT_EQ(scaler.unscale_({torch::ones({2}) * 1e30}).item<float>(), 0.0f);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(GradScaler, GrowsAfterIntervalOfGoodSteps) {
  GradScalerOptions o;
  o.init_scale = 8;
  o.growth_interval = 3;
  GradScaler scaler(o);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 8.0);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 16.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // an overflow in the middle restarts the count
  EXPECT_TRUE(scaler.update(false));
  EXPECT_FALSE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 8.0);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 8.0);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 16.0);
  scaler.load(1024, 2);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 2048.0);
  // defaults as torch.cuda.amp.GradScaler
  GradScaler d;
  EXPECT_EQ(d.options().growth_interval, 2000);
  EXPECT_EQ(d.options().growth_factor, 2.0);
  EXPECT_EQ(d.options().backoff_factor, 0.5);
  EXPECT_EQ(d.scale(), 65536.0);
}

TEST(GradScaler, UnscaledGradientsEqualTrueGradients) {
  ModelConfig c = testing::tiny_config(true);
  torch::manual_seed(35);
  PyramidClip model(c);
  model->train();
  torch::manual_seed(36);
  Batch batch = testing::random_batch(c, 4);
  std::vector<at::Tensor> params;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  // BatchNorm running statistics do not affect this step's gradients (train mode uses batch stats)
  testing::toy_loss(model->forward(batch)).backward();
  std::vector<at::Tensor> want;
  for (auto& p : params) want.push_back(p.grad().clone());
  model->zero_grad();
  GradScaler scaler;
  scaler.scale(testing::toy_loss(model->forward(batch))).backward();
  std::vector<at::Tensor> grads;
  for (auto& p : params) grads.push_back(p.grad());
  EXPECT_EQ(scaler.unscale_(grads).item<float>(), 0.0f);
  double worst = 0;
  for (size_t i = 0; i < params.size(); ++i)
    worst = std::max(worst, max_abs_diff(want[i], params[i].grad()) / (1e-12 + want[i].abs().max().item<double>()));
  EXPECT_LE(worst, 1e-6);  // the scale is a power of 2: exact up to the order of accumulation
  EXPECT_TRUE(scaler.update(false));
}

TEST(GradScaler, TrainingLoopSkipsOnlyTheOverflowingStep) {
  torch::manual_seed(37);
  torch::nn::Linear lin(4, 1);
  torch::optim::SGD opt(lin->parameters(), 0.1);
  GradScalerOptions o;
  o.init_scale = 1024;
  GradScaler scaler(o);
  at::Tensor x = torch::randn({8, 4});
  for (int step = 0; step < 4; ++step) {
    opt.zero_grad();
    at::Tensor before = lin->weight.detach().clone();
    scaler.scale(lin->forward(x).pow(2).mean()).backward();
    if (step == 2) lin->weight.mutable_grad()[0][1] = std::numeric_limits<float>::infinity();  // injected overflow
    std::vector<at::Tensor> grads;
    for (auto& p : lin->parameters()) grads.push_back(p.grad());
    const bool ok = scaler.update(scaler.unscale_(grads).item<float>() > 0);
    if (ok) opt.step();
    EXPECT_EQ(ok, step != 2);
    EXPECT_EQ(torch::equal(before, lin->weight.detach()), step == 2);
  }
  EXPECT_EQ(scaler.scale(), 512.0);
}

TEST(GradScaler, DisabledIsIdentity) {
  GradScalerOptions o;
  o.enabled = false;
  GradScaler scaler(o);
  EXPECT_EQ(scaler.scale(), 1.0);
  at::Tensor loss = torch::tensor(2.5);
  EXPECT_EQ(scaler.scale(loss).item<double>(), 2.5);
  at::Tensor g = torch::full({2}, std::numeric_limits<float>::infinity());
  EXPECT_EQ(scaler.unscale_({g}).item<float>(), 0.0f);
  EXPECT_TRUE(scaler.update(true));
}

}  // namespace
}  // namespace pc
