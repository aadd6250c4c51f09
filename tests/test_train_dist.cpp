// 2 ranks with the real tiny model: the local-loss form plus flat gradient averaging gives the
// loss and gradients of one process on the concatenated batch (the standard variant: the official
// one's LeFF BatchNorm uses per-rank statistics until synchronized BN lands).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/grad_sync.h"
#include "pyramidclip/loss/pyramid_loss.h"
#include "pyramidclip/model/pyramid_clip.h"

namespace pc {
namespace {

Batch random_batch(const ModelConfig& m, int64_t n) {
  torch::manual_seed(123);  // same global batch on every rank
  Batch b;
  b.global_images = torch::randn({n, 3, m.image_size, m.image_size});
  b.local_images = torch::randn({n, 3, m.image_size, m.image_size});
  b.roi = torch::randn({n, 4, m.roi_dim});
  b.roi_mask = torch::rand({n, 4}) > 0.3;
  b.roi_mask.select(1, 0).fill_(true);
  auto tokens = [&] {
    auto t = torch::randint(1, 400, {n, m.context_length}, torch::kLong);
    t.narrow(1, 12, m.context_length - 12).zero_();
    t.select(1, 0).fill_(m.vocab_size - 2);
    t.select(1, 11).fill_(m.vocab_size - 1);
    return t;
  };
  b.text = tokens();
  b.summary = tokens();
  b.tags = tokens();
  return b;
}

Batch slice(const Batch& b, int64_t start, int64_t n) {
  Batch s;
  for (auto [dst, src] : {std::pair{&s.global_images, &b.global_images}, {&s.local_images, &b.local_images},
                          {&s.roi, &b.roi}, {&s.roi_mask, &b.roi_mask}, {&s.text, &b.text},
                          {&s.summary, &b.summary}, {&s.tags, &b.tags}})
    *dst = src->narrow(0, start, n);
  return s;
}

TEST(TrainDist, TwoRanksEqualOneProcessOnTheConcatenatedBatch) {
  auto comm = make_mpi_comm();
  ASSERT_EQ(comm->size(), 2);
  ModelConfig cfg = model_preset("tiny", /*official=*/false);
  cfg.with_roi = true;
  const int64_t local = 4, n = local * comm->size();
  Batch full = random_batch(cfg, n);

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
  auto loss = pyramid_loss(dist->forward(slice(full, local * comm->rank(), local)), LossConfig{}, comm.get()).total;
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
