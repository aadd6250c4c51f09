// 2-rank check: the local-loss form with gather-with-grad equals the single-process loss on the
// concatenated batch, for the loss value and for parameter gradients after averaging.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/loss/pyramid_loss.h"

namespace pc {
namespace {

// A tiny linear "tower" per modality so that gradients land on shared parameters.
struct Towers {
  at::Tensor w_img, w_roi, w_txt, log_scale;
  Towers() {
    torch::manual_seed(42);
    w_img = torch::randn({12, 6}, torch::kDouble).requires_grad_(true);
    w_roi = torch::randn({10, 6}, torch::kDouble).requires_grad_(true);
    w_txt = torch::randn({9, 6}, torch::kDouble).requires_grad_(true);
    log_scale = torch::tensor(std::log(1 / 0.07), torch::kDouble).requires_grad_(true);
  }
  Embeddings embed(const std::vector<at::Tensor>& x) const {
    auto n = [](const at::Tensor& y) { return y / y.norm(2, 1, true); };
    return {n(x[0].matmul(w_img)), n(x[1].matmul(w_img)), n(x[2].matmul(w_roi)), n(x[3].matmul(w_txt)),
            n(x[4].matmul(w_txt)), n(x[5].matmul(w_txt)), log_scale.exp()};
  }
  std::vector<at::Tensor> params() const { return {w_img, w_roi, w_txt, log_scale}; }
};

std::vector<at::Tensor> global_batch(int64_t rows) {
  torch::manual_seed(7);  // same on every rank
  return {torch::randn({rows, 12}, torch::kDouble), torch::randn({rows, 12}, torch::kDouble),
          torch::randn({rows, 10}, torch::kDouble), torch::randn({rows, 9}, torch::kDouble),
          torch::randn({rows, 9}, torch::kDouble),  torch::randn({rows, 9}, torch::kDouble)};
}

void check_against_single_process(const LossConfig& cfg) {
  auto comm = make_mpi_comm();
  ASSERT_EQ(comm->size(), 2) << "run with mpirun -np 2";
  const int64_t local = 5, rows = local * comm->size();
  auto full = global_batch(rows);

  Towers ref;
  auto ref_loss = pyramid_loss(ref.embed(full), cfg, nullptr).total;
  ref_loss.backward();

  Towers dist;
  std::vector<at::Tensor> mine;
  for (auto& t : full) mine.push_back(t.narrow(0, local * comm->rank(), local));
  auto loss = pyramid_loss(dist.embed(mine), cfg, comm.get()).total;
  loss.backward();

  auto total = loss.detach().clone().reshape({1});
  comm->allreduce_sum(total);
  EXPECT_NEAR(total.item<double>() / comm->size(), ref_loss.item<double>(), 1e-5 * std::abs(ref_loss.item<double>()));
  auto rp = ref.params(), dp = dist.params();
  for (size_t i = 0; i < rp.size(); ++i) {
    ASSERT_EQ(rp[i].grad().defined(), dp[i].grad().defined()) << "parameter " << i;
    if (!rp[i].grad().defined()) continue;  // unused by this objective (clip: no ROI tower)
    auto g = dp[i].grad().contiguous().clone();
    comm->allreduce_sum(g);
    g /= comm->size();
    double rel = (g - rp[i].grad()).norm().item<double>() / rp[i].grad().norm().item<double>();
    EXPECT_LT(rel, 1e-5) << "parameter " << i;
  }
}

TEST(DistributedLoss, PyramidEqualsSingleProcess) { check_against_single_process(LossConfig{}); }

TEST(DistributedLoss, ClipEqualsSingleProcess) {
  LossConfig cfg;
  cfg.objective = "clip";
  check_against_single_process(cfg);
}

TEST(Comm, AllGatherAndAllreduce) {
  auto comm = make_mpi_comm();
  auto x = torch::full({2, 3}, static_cast<float>(comm->rank() + 1));
  auto g = comm->all_gather(x);
  ASSERT_EQ(g.size(0), 2 * comm->size());
  for (int r = 0; r < comm->size(); ++r) EXPECT_EQ(g[2 * r][0].item<float>(), r + 1.0f);
  comm->allreduce_sum(x);
  EXPECT_EQ(x[0][0].item<float>(), comm->size() * (comm->size() + 1) / 2.0f);
}

}  // namespace
}  // namespace pc
