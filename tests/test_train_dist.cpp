// 2 ranks with the real tiny model: the local-loss form plus flat gradient averaging gives the
// loss and gradients of one process on the concatenated batch (the standard variant; the official
// one with SyncBN is covered end to end by train_parity).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/grad_sync.h"
#include "pyramidclip/loss/pyramid_loss.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/run/grad_cache.h"
#include "random_batch.h"

namespace pc {
namespace {

TEST(TrainDist, TwoRanksEqualOneProcessOnTheConcatenatedBatch) {
  auto comm = make_mpi_comm();
  ASSERT_EQ(comm->size(), 2);
  ModelConfig cfg = model_preset("tiny", /*official=*/false);
  cfg.with_roi = true;
  const int64_t local = 4, n = local * comm->size();
  Batch full = test::random_batch(cfg, n, 123, torch::kFloat, /*text_len=*/12);

  // double precision so that the comparison tests the algorithm, not float summation order
  for (auto* t : {&full.global_images, &full.local_images, &full.roi}) *t = t->to(torch::kDouble);
  torch::manual_seed(0);
  PyramidClip ref(cfg);
  ref->to(torch::kDouble);
  torch::manual_seed(0);
  PyramidClip dist(cfg);
  dist->to(torch::kDouble);

  auto ref_loss = pyramid_loss(ref->forward(full), LossConfig{}, nullptr).total;
  ref_loss.backward();
  auto loss = pyramid_loss(dist->forward(slice_batch(full, local * comm->rank(), local)), LossConfig{}, comm.get()).total;
  loss.backward();

  std::vector<at::Tensor> params;
  for (auto& p : dist->parameters())
    if (p.requires_grad()) params.push_back(p);
  average_gradients(params, *comm);

  auto total = loss.detach().reshape({1}).clone();
  comm->allreduce_sum(total);
  EXPECT_NEAR(total.item<double>() / 2, ref_loss.item<double>(), 1e-5 * ref_loss.item<double>());

  auto rp = ref->named_parameters(), dp = dist->named_parameters();
  int checked = 0;
  for (const auto& item : rp) {
    if (!item.value().requires_grad()) continue;
    const auto& g_ref = item.value().grad();
    const auto& g = dp[item.key()].grad();
    ASSERT_TRUE(g_ref.defined() && g.defined()) << item.key();
    const double scale = std::max(g_ref.norm().item<double>(), 1e-6);
    EXPECT_LT((g - g_ref).norm().item<double>() / scale, 1e-5) << item.key();
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace pc
