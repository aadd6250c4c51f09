// Comm on 2 MPI ranks: the flat reduce-scatter / all-gather, the asynchronous forms and the
// backend factory against values computed by hand.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/nccl_comm.h"

namespace pc {
namespace {

std::vector<float> values(const at::Tensor& t) {
  at::Tensor c = t.contiguous().to(at::kFloat);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(DistComm, BackendAndThreadLevel) {
  auto comm = make_mpi_comm();
  ASSERT_EQ(comm->size(), 2);
  EXPECT_EQ(comm->backend(), "mpi");
  int level = 0;
  MPI_Query_thread(&level);
  EXPECT_GE(level, MPI_THREAD_SERIALIZED);  // so the communication thread is in use
}

TEST(DistComm, ReduceScatterSum) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  // rank 0: [0 1 2 3 4 5], rank 1: [0 2 4 6 8 10]; sums [0 3 6 | 9 12 15]
  at::Tensor in = torch::arange(6, torch::kFloat) * (r + 1);
  at::Tensor out = torch::full({3}, -1.0f);
  comm->reduce_scatter_sum(in, out);
  const std::vector<std::vector<float>> expect = {{0, 3, 6}, {9, 12, 15}};
  EXPECT_EQ(values(out), expect[r]);
  EXPECT_EQ(values(in), values(torch::arange(6, torch::kFloat) * (r + 1)));  // input untouched

  at::Tensor bad = torch::zeros({4});
  EXPECT_THROW(comm->reduce_scatter_sum(in, bad), c10::Error);
}

TEST(DistComm, AllGatherInto) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  at::Tensor in = torch::tensor({10.0 * r + 1, 10.0 * r + 2, 10.0 * r + 3}, torch::kDouble);
  at::Tensor out = torch::zeros({6}, torch::kDouble);
  comm->all_gather_into(in, out);
  EXPECT_EQ(values(out), (std::vector<float>{1, 2, 3, 11, 12, 13}));

  // in place: the input is this rank's slice of the output
  at::Tensor buf = torch::zeros({2, 4}, torch::kLong);
  buf[r].fill_(100 + r);
  at::Tensor mine = buf[r];
  comm->all_gather_into(mine, buf);
  EXPECT_EQ(values(buf), (std::vector<float>{100, 100, 100, 100, 101, 101, 101, 101}));
}

TEST(DistComm, AsyncCollectivesCompleteInIssueOrder) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  std::vector<at::Tensor> ts;
  std::vector<WorkPtr> works;
  for (int k = 0; k < 8; ++k) {
    ts.push_back(torch::full({1000 + k}, static_cast<float>(k + r)));  // sum: 2k + 1
    works.push_back(comm->allreduce_sum_async(ts.back(), /*average=*/k % 2 == 1));
  }
  // a synchronous call queues behind the asynchronous ones
  at::Tensor flag = torch::tensor({r + 5}, torch::kInt);
  comm->allreduce_max(flag);
  EXPECT_EQ(flag.item<int>(), 6);
  for (int k = 7; k >= 0; --k) {  // wait in any order
    works[k]->wait();
    EXPECT_TRUE(works[k]->completed());
    const float expect = k % 2 == 1 ? (2 * k + 1) / 2.0f : 2.0f * k + 1;
    EXPECT_TRUE(torch::all(ts[k] == expect).item<bool>()) << k;
  }

  // async reduce-scatter with average, all-gather
  at::Tensor in = torch::arange(8, torch::kFloat) + 8 * r;  // rank0 0..7, rank1 8..15
  at::Tensor out = torch::zeros({4});
  auto w1 = comm->reduce_scatter_sum_async(in, out, /*average=*/true);
  at::Tensor gathered = torch::zeros({4});
  auto w2 = comm->all_gather_into_async(torch::tensor({1.0f * r, 2.0f * r}), gathered);
  w1->wait();
  w2->wait();
  // average of [0..7] and [8..15] = [4..11]; rank r gets 4 elements
  EXPECT_EQ(values(out), values(torch::arange(4, torch::kFloat) + 4 + 4 * r));
  EXPECT_EQ(values(gathered), (std::vector<float>{0, 0, 1, 2}));
  EXPECT_GE(w1->seconds(), 0.0);
}

TEST(DistComm, VariableCountReduceScatter) {
  // written for any world size (run by hand with -np 3/4: the ring has N-1 steps)
  auto comm = make_mpi_comm();
  const int r = comm->rank(), n = comm->size();
  const double ranks_sum = n * (n + 1) / 2.0;  // sum over ranks of (rank + 1)
  std::vector<std::vector<int64_t>> cases;
  std::vector<int64_t> c(n);
  for (int k = 0; k < n; ++k) c[k] = 2 + 3 * k;  // unequal
  cases.push_back(c);
  std::fill(c.begin(), c.end(), 0);
  c[0] = 7;  // everything to rank 0
  cases.push_back(c);
  std::fill(c.begin(), c.end(), 0);
  c[n - 1] = 9;  // everything to the last rank
  cases.push_back(c);
  for (int k = 0; k < n; ++k) c[k] = (k % 2) * 4;  // zeros in between
  cases.push_back(c);
  for (const auto& counts : cases) {
    int64_t total = 0, off = 0;
    for (int k = 0; k < n; ++k) total += counts[k];
    for (int k = 0; k < r; ++k) off += counts[k];
    for (bool average : {false, true}) {
      at::Tensor in = torch::arange(total, torch::kDouble) * (r + 1);
      at::Tensor out = torch::full({counts[r]}, -1.0, torch::kDouble);
      comm->reduce_scatter_v_sum_async(in, out, counts, average)->wait();
      at::Tensor expect = torch::arange(off, off + counts[r], torch::kDouble) * ranks_sum / (average ? n : 1);
      EXPECT_TRUE(torch::equal(out, expect)) << "counts[0] " << counts[0] << " average " << average;
    }
  }
  // float, equal counts, through reduce_scatter_sum
  at::Tensor in = torch::arange(5 * n, torch::kFloat) * (r + 1);
  at::Tensor out = torch::zeros({5});
  comm->reduce_scatter_sum(in, out);
  EXPECT_TRUE(torch::equal(out, torch::arange(5 * r, 5 * r + 5, torch::kFloat) * static_cast<float>(ranks_sum)));
  // integers go through MPI_Reduce_scatter
  at::Tensor li = torch::arange(3 * n, torch::kLong) * (r + 1);
  at::Tensor lo = torch::zeros({3}, torch::kLong);
  comm->reduce_scatter_sum(li, lo);
  EXPECT_TRUE(torch::equal(lo, torch::arange(3 * r, 3 * r + 3, torch::kLong) * static_cast<int64_t>(ranks_sum)));
}

TEST(DistComm, AllreduceAnySizeAndWorld) {
  // the float/double ring allreduce for sizes that do not divide by the world (run by hand with
  // -np 3/4 too), including fewer elements than ranks; integers take MPI_Allreduce
  auto comm = make_mpi_comm();
  const int r = comm->rank(), n = comm->size();
  const double ranks_sum = n * (n + 1) / 2.0;
  for (int64_t numel : {0, 1, 2, 5, 1001, (1 << 22) + 3}) {
    at::Tensor d = torch::arange(numel, torch::kDouble) * (r + 1);
    comm->allreduce_sum(d);
    EXPECT_TRUE(torch::equal(d, torch::arange(numel, torch::kDouble) * ranks_sum)) << numel;
    at::Tensor f = torch::arange(numel, torch::kFloat).remainder(97) * (r + 1);
    comm->allreduce_sum_async(f, /*average=*/true)->wait();
    EXPECT_TRUE(torch::equal(f, torch::arange(numel, torch::kFloat).remainder(97) * static_cast<float>(ranks_sum) /
                                    static_cast<float>(n)))
        << numel;
  }
  at::Tensor i = torch::full({3}, static_cast<int64_t>(r + 1));
  comm->allreduce_sum(i);
  EXPECT_TRUE(torch::equal(i, torch::full({3}, static_cast<int64_t>(ranks_sum))));
}

TEST(DistComm, IndependentCommunicatorsInterleave) {
  auto a = make_mpi_comm();
  auto b = make_mpi_comm();
  at::Tensor x = torch::ones({5000});
  at::Tensor y = torch::full({3000}, 2.0f);
  auto wa = a->allreduce_sum_async(x);
  auto wb = b->allreduce_sum_async(y);
  b->barrier();
  wa->wait();
  wb->wait();
  EXPECT_TRUE(torch::all(x == 2).item<bool>());
  EXPECT_TRUE(torch::all(y == 4).item<bool>());
}

TEST(DistComm, ExistingCallsStillWork) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  at::Tensor t = torch::tensor({1.0f + r, 5.0f});
  comm->allreduce_sum(t);
  EXPECT_EQ(values(t), (std::vector<float>{3, 10}));
  at::Tensor g = comm->all_gather(torch::full({1, 2}, static_cast<float>(r)));
  EXPECT_EQ(g.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(values(g), (std::vector<float>{0, 0, 1, 1}));
  at::Tensor b = torch::full({3}, static_cast<float>(r + 7));
  comm->broadcast(b, 1);
  EXPECT_EQ(values(b), (std::vector<float>{8, 8, 8}));
  comm->barrier();
}

TEST(DistComm, Factory) {
  auto comm = make_comm("mpi");
  EXPECT_EQ(comm->backend(), "mpi");
  auto automatic = make_comm("auto");  // no GPU here: MPI
  EXPECT_EQ(automatic->backend(), nccl_available() && nccl_device_count() > 0 ? "nccl" : "mpi");
  if (!nccl_available()) {
    EXPECT_THROW(make_comm("nccl"), c10::Error);
  }
  EXPECT_THROW(make_comm("gloo"), c10::Error);
}

}  // namespace
}  // namespace pc
