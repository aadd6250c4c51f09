// Activation checkpointing (checkpoint.h): the primitive (recompute, RNG replay, gradients of
// inputs and parameters) and the towers: with checkpointing on, one training step of the official
// ViT (LeFF BatchNorm in train mode), the text tower and a ModifiedResNet gives the same loss,
// parameter gradients and BatchNorm running statistics as without.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "model_scale_util.h"
#include "pyramidclip/model/batch_norm.h"
#include "pyramidclip/model/checkpoint.h"
#include "pyramidclip/model/layers.h"

namespace pc {
namespace {

using testing::max_abs_diff;
using testing::max_grad_diff;

TEST(Checkpoint, RecomputesInBackwardWithSameRngAndGradients) {
  torch::manual_seed(3);
  torch::nn::Linear lin(8, 8);
  at::Tensor x0 = torch::randn({4, 8});
  int calls = 0;
  auto fn = [&](const at::Tensor& x) {
    ++calls;
    // dropout draws from the CPU generator: the recompute must see the same mask
    return at::dropout(at::tanh(lin->forward(x)), 0.5, /*train=*/true) * 3.0;
  };
  auto run = [&](bool ckpt) {
    lin->zero_grad();
    torch::manual_seed(11);
    at::Tensor x = x0.clone().requires_grad_(true);
    at::Tensor y = ckpt ? checkpoint(fn, x, lin->parameters()) : fn(x);
    if (ckpt) {
      EXPECT_NE(y.grad_fn()->name().find("CheckpointFunction"), std::string::npos) << y.grad_fn()->name();
    }
    (y * y).sum().backward();
    at::Tensor after = torch::rand({3});  // the RNG stream continues as without checkpointing
    return std::make_tuple(x.grad().clone(), lin->weight.grad().clone(), lin->bias.grad().clone(), after);
  };
  auto [gx, gw, gb, r] = run(false);
  calls = 0;
  auto [cx, cw, cb, cr] = run(true);
  EXPECT_EQ(calls, 2);  // forward without grad + recompute
  EXPECT_EQ(max_abs_diff(gx, cx), 0.0);
  EXPECT_EQ(max_abs_diff(gw, cw), 0.0);
  EXPECT_EQ(max_abs_diff(gb, cb), 0.0);
  EXPECT_TRUE(torch::equal(r, cr));
}

TEST(Checkpoint, PassThroughWithoutGradAndParamsOnlyInput) {
  torch::manual_seed(4);
  torch::nn::Linear lin(6, 5);
  int calls = 0;
  auto fn = [&](const at::Tensor& x) {
    ++calls;
    return lin->forward(x);
  };
  {
    torch::NoGradGuard no_grad;
    at::Tensor y = checkpoint(fn, torch::randn({2, 6}), lin->parameters());
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(calls, 1);
  // input without grad (the image batch at a ResNet stem): only the parameters get gradients
  at::Tensor x = torch::randn({3, 6});
  lin->zero_grad();
  checkpoint(fn, x, lin->parameters()).pow(2).sum().backward();
  at::Tensor want = lin->weight.grad().clone();
  lin->zero_grad();
  fn(x).pow(2).sum().backward();
  EXPECT_EQ(max_abs_diff(want, lin->weight.grad()), 0.0);
}

TEST(Checkpoint, BatchNormRunningStatsUpdatedOnce) {
  torch::manual_seed(5);
  torch::nn::BatchNorm1d bn(4);
  bn->train();
  at::Tensor x = torch::randn({16, 4}).requires_grad_(true);
  checkpoint([&](const at::Tensor& in) { return batch_norm(*bn, in); }, x, bn->parameters()).pow(3).sum().backward();
  torch::nn::BatchNorm1d ref(4);
  ref->train();
  at::Tensor xr = x.detach().clone().requires_grad_(true);
  batch_norm(*ref, xr).pow(3).sum().backward();
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);
  EXPECT_TRUE(torch::equal(bn->running_mean, ref->running_mean));
  EXPECT_TRUE(torch::equal(bn->running_var, ref->running_var));
  EXPECT_LE(max_abs_diff(x.grad(), xr.grad()), 1e-6);
  EXPECT_LE(max_abs_diff(bn->weight.grad(), ref->weight.grad()), 1e-6);
}

// One training step (forward of every path, toy loss, backward) of two identically initialized
// models, the second with checkpointing; returns the losses.
std::pair<double, double> step_both(const ModelConfig& base, PyramidClip& plain, PyramidClip& ckpt) {
  ModelConfig c = base;
  torch::manual_seed(21);
  plain = PyramidClip(c);
  torch::manual_seed(21);
  c.checkpoint_image = c.checkpoint_text = true;
  ckpt = PyramidClip(c);
  plain->train();
  ckpt->train();
  torch::manual_seed(22);
  Batch batch = testing::random_batch(base, 6);
  at::Tensor lp = testing::toy_loss(plain->forward(batch));
  lp.backward();
  at::Tensor lc = testing::toy_loss(ckpt->forward(batch));
  lc.backward();
  return {lp.item<double>(), lc.item<double>()};
}

TEST(Checkpoint, OfficialVitAndTextTowerMatchPlainStep) {
  const ModelConfig c = testing::tiny_config(true);
  PyramidClip plain{nullptr}, ckpt{nullptr};
  auto [lp, lc] = step_both(c, plain, ckpt);
  EXPECT_NEAR(lp, lc, 1e-6);
  const double gd = max_grad_diff(*plain, *ckpt);
  EXPECT_LE(gd, 1e-6);
  ASSERT_GT(testing::count_batchnorm_buffers(*plain), 0);
  // BatchNorm running statistics after one step: updated once, by the first pass, bit for bit
  testing::expect_buffers_equal(*plain, *ckpt, 0.0);
  for (const auto& b : ckpt->named_buffers())
    if (b.key().find("num_batches_tracked") != std::string::npos) {
      EXPECT_EQ(b.value().item<int64_t>(), 2) << b.key();  // global + local view
    }
  ::testing::Test::RecordProperty("max_grad_diff", std::to_string(gd));
}

TEST(Checkpoint, StandardVitWithEotPoolingMatchesPlainStep) {
  const ModelConfig c = testing::tiny_config(false);
  PyramidClip plain{nullptr}, ckpt{nullptr};
  auto [lp, lc] = step_both(c, plain, ckpt);
  EXPECT_NEAR(lp, lc, 1e-6);
  EXPECT_LE(max_grad_diff(*plain, *ckpt), 1e-6);
}

TEST(Checkpoint, ResNetStagesMatchPlainStep) {
  const ModelConfig c = testing::small_resnet_config();
  PyramidClip plain{nullptr}, ckpt{nullptr};
  auto [lp, lc] = step_both(c, plain, ckpt);
  EXPECT_NEAR(lp, lc, 1e-6);
  EXPECT_LE(max_grad_diff(*plain, *ckpt), 1e-6);
  testing::expect_buffers_equal(*plain, *ckpt, 0.0);
}

TEST(Checkpoint, EvalModeAndNoGradAreUnchanged) {
  ModelConfig c = testing::tiny_config(true);
  torch::manual_seed(23);
  PyramidClip plain(c);
  torch::manual_seed(23);
  c.checkpoint_image = c.checkpoint_text = true;
  PyramidClip ckpt(c);
  plain->eval();
  ckpt->eval();
  torch::manual_seed(24);
  at::Tensor images = torch::randn({3, 3, c.image_size, c.image_size});
  torch::NoGradGuard no_grad;
  EXPECT_EQ(max_abs_diff(plain->encode_image(images), ckpt->encode_image(images)), 0.0);
}

}  // namespace
}  // namespace pc
