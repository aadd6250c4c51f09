// SyncBN math without MPI (batch_norm.h): the synchronized path on one "rank" equals the native
// BatchNorm, and two in-process ranks (threads with a barrier allreduce) on the halves of a batch
// equal one BatchNorm on the whole batch: outputs, input and parameter gradients, running stats.
// The 2-process version over MPI and the whole towers are in test_sync_bn_mpi.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "model_scale_util.h"
#include "pyramidclip/model/batch_norm.h"
#include "pyramidclip/model/checkpoint.h"

namespace pc {
namespace {

using testing::max_abs_diff;

// A BnSync whose world has `world` members but that sums nothing: global statistics = local ones.
struct LoopbackSync : BnSync {
  explicit LoopbackSync(int w) : world(w) {}
  void allreduce_sum(at::Tensor& t) override {
    EXPECT_EQ(t.scalar_type(), at::kDouble);
    ++calls;
  }
  int world_size() const override { return world; }
  int world, calls = 0;
};

// Allreduce among threads: every member adds its tensor, all wait, all read the sum.
struct ThreadGroup {
  explicit ThreadGroup(int w) : world(w) {}
  void allreduce(at::Tensor& t) {
    std::unique_lock<std::mutex> lock(m);
    acc = arrived == 0 ? t.clone() : acc + t;
    const int64_t gen = generation;
    if (++arrived == world) {
      result = acc;
      arrived = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return generation != gen; });
    }
    t.copy_(result);
  }
  int world, arrived = 0;
  int64_t generation = 0;
  at::Tensor acc, result;
  std::mutex m;
  std::condition_variable cv;
};

struct ThreadSync : BnSync {
  explicit ThreadSync(ThreadGroup& g) : group(g) {}
  void allreduce_sum(at::Tensor& t) override { group.allreduce(t); }
  int world_size() const override { return group.world; }
  ThreadGroup& group;
};

template <typename BN>
void check_loopback(BN bn_sync, BN bn_ref, at::Tensor x) {
  auto sync = std::make_shared<LoopbackSync>(2);
  bn_sync->train();
  bn_ref->train();
  at::Tensor xs = x.clone().requires_grad_(true), xr = x.clone().requires_grad_(true);
  at::Tensor w = torch::randn(x.sizes());
  for (int step = 0; step < 2; ++step) {  // two steps: running stats compound
    at::Tensor ys = batch_norm(*bn_sync, xs, sync, 1.5);
    at::Tensor yr = batch_norm(*bn_ref, xr, nullptr, 1.5);
    EXPECT_LE(max_abs_diff(ys, yr), 1e-5);
    (ys * w).sum().backward();
    (yr * w).sum().backward();
  }
  EXPECT_EQ(sync->calls, 4);  // one packed allreduce per forward and per backward
  EXPECT_LE(max_abs_diff(xs.grad(), xr.grad()), 1e-5);
  EXPECT_LE(max_abs_diff(bn_sync->weight.grad(), bn_ref->weight.grad()), 1e-4);
  EXPECT_LE(max_abs_diff(bn_sync->bias.grad(), bn_ref->bias.grad()), 1e-4);
  EXPECT_LE(max_abs_diff(bn_sync->running_mean, bn_ref->running_mean), 1e-6);
  EXPECT_LE(max_abs_diff(bn_sync->running_var, bn_ref->running_var), 1e-6);
  EXPECT_EQ(bn_sync->num_batches_tracked.template item<int64_t>(), 2);
  // eval: running statistics, no communication
  bn_sync->eval();
  bn_ref->eval();
  EXPECT_LE(max_abs_diff(batch_norm(*bn_sync, x, sync), batch_norm(*bn_ref, x)), 1e-6);
  EXPECT_EQ(sync->calls, 4);
}

TEST(SyncBatchNorm, OneRankEqualsNativeRowsAndImages) {
  torch::manual_seed(41);
  check_loopback(torch::nn::BatchNorm1d(6), torch::nn::BatchNorm1d(6), torch::randn({40, 6}) * 3 + 2);
  check_loopback(torch::nn::BatchNorm2d(5), torch::nn::BatchNorm2d(5), torch::randn({4, 5, 6, 7}) - 1);
}

TEST(SyncBatchNorm, WorldOfOneIsLocal) {
  torch::nn::BatchNorm1d bn(3);
  auto sync = std::make_shared<LoopbackSync>(1);
  batch_norm(*bn, torch::randn({8, 3}), sync);
  EXPECT_EQ(sync->calls, 0);
}

// Under activation checkpointing the recompute takes SyncBN's statistics from the first pass: no
// extra allreduce, running statistics updated once, gradients as without checkpointing, and a
// retained graph can be backpropagated twice.
TEST(SyncBatchNorm, CheckpointRecomputeReusesStatistics) {
  torch::manual_seed(44);
  at::Tensor x0 = torch::randn({12, 5}) * 2 + 1;
  at::Tensor w = torch::randn({12, 5});
  auto run = [&](bool ckpt, std::shared_ptr<LoopbackSync> sync, torch::nn::BatchNorm1d bn) {
    bn->train();
    at::Tensor x = x0.clone().requires_grad_(true);
    std::shared_ptr<BnSync> s = sync;
    auto impl = bn.ptr();
    auto fn = [impl, s](const at::Tensor& in) { return at::silu(batch_norm(*impl, in * 1.5, s)); };
    at::Tensor y = ckpt ? checkpoint(fn, x, bn->parameters()) : fn(x);
    (y * w).sum().backward({}, /*retain_graph=*/true);
    at::Tensor g1 = x.grad().clone();
    (y * w).sum().backward();
    EXPECT_LE(max_abs_diff(x.grad(), 2 * g1), 1e-6);  // the second pass adds the same gradient
    return g1;
  };
  auto s0 = std::make_shared<LoopbackSync>(2), s1 = std::make_shared<LoopbackSync>(2);
  torch::nn::BatchNorm1d b0(5), b1(5);
  at::Tensor g0 = run(false, s0, b0), g1 = run(true, s1, b1);
  EXPECT_EQ(s0->calls, 3);  // forward + 2 backward
  EXPECT_EQ(s1->calls, 3);  // the same: the recomputes do not communicate
  EXPECT_LE(max_abs_diff(g0, g1), 1e-6);
  EXPECT_TRUE(torch::equal(b0->running_mean, b1->running_mean));
  EXPECT_TRUE(torch::equal(b0->running_var, b1->running_var));
  EXPECT_EQ(b1->num_batches_tracked.item<int64_t>(), 1);
}

// Two threads, each with a Conv2d -> SyncBN (BatchNorm2d) -> QuickGELU-ish head on half of the
// batch, against one process on the whole batch. Each rank's loss is the mean over its rows; the
// reference loss the mean over all rows: parameter gradients averaged over ranks and input
// gradients divided by the world size (SyncBN gives d(sum of rank losses)/dx) must match.
TEST(SyncBatchNorm, TwoThreadRanksEqualFullBatch) {
  torch::manual_seed(42);
  const int64_t b = 8, world = 2;
  at::Tensor x = torch::randn({b, 3, 5, 5});
  at::Tensor head = torch::randn({b, 4, 5, 5});
  auto make = [] {
    torch::manual_seed(43);
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).padding(1));
    auto bn = torch::nn::BatchNorm2d(4);
    return std::make_pair(conv, bn);
  };
  auto loss_of = [](const at::Tensor& y, const at::Tensor& h) { return (at::silu(y) * h).sum({1, 2, 3}).mean(); };

  auto [rconv, rbn] = make();
  at::Tensor xr = x.clone().requires_grad_(true);
  at::Tensor yr = batch_norm(*rbn, rconv->forward(xr));
  loss_of(yr, head).backward();

  ThreadGroup group(world);
  struct Rank {
    torch::nn::Conv2d conv{nullptr};
    torch::nn::BatchNorm2d bn{nullptr};
    at::Tensor x, y;
  };
  std::vector<Rank> ranks(world);
  for (int64_t r = 0; r < world; ++r) std::tie(ranks[r].conv, ranks[r].bn) = make();
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      auto sync = std::make_shared<ThreadSync>(group);
      Rank& k = ranks[r];
      k.x = x.narrow(0, r * b / world, b / world).clone().requires_grad_(true);
      k.y = batch_norm(*k.bn, k.conv->forward(k.x), sync);
      loss_of(k.y, head.narrow(0, r * b / world, b / world)).backward();
    });
  for (auto& t : threads) t.join();

  for (int64_t r = 0; r < world; ++r) {
    const Rank& k = ranks[r];
    EXPECT_LE(max_abs_diff(k.y, yr.narrow(0, r * b / world, b / world)), 1e-5);
    EXPECT_LE(max_abs_diff(k.x.grad() / world, xr.grad().narrow(0, r * b / world, b / world)), 1e-5);
    EXPECT_LE(max_abs_diff(k.bn->running_mean, rbn->running_mean), 1e-6);
    EXPECT_LE(max_abs_diff(k.bn->running_var, rbn->running_var), 1e-6);
  }
  auto avg = [&](auto get) { return (get(ranks[0]) + get(ranks[1])) / 2; };
  EXPECT_LE(max_abs_diff(avg([](const Rank& k) { return k.conv->weight.grad(); }), rconv->weight.grad()), 1e-5);
  EXPECT_LE(max_abs_diff(avg([](const Rank& k) { return k.conv->bias.grad(); }), rconv->bias.grad()), 1e-5);
  EXPECT_LE(max_abs_diff(avg([](const Rank& k) { return k.bn->weight.grad(); }), rbn->weight.grad()), 1e-5);
  EXPECT_LE(max_abs_diff(avg([](const Rank& k) { return k.bn->bias.grad(); }), rbn->bias.grad()), 1e-5);
}

}  // namespace
}  // namespace pc
