// GradBuckets on 2 MPI ranks: bucketed, overlapped averaging gives exactly the plain flat
// allreduce average (fp32, 2 ranks: a + b is exact whatever the message split), for a model whose
// modules run 3 times per forward and which has an unused parameter; hook calls per backward;
// no_sync accumulation; the ZeRO-2 reduce-scatter mode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/grad_buckets.h"
#include <mpi.h>

#include <optional>

namespace pc {
namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    emb = register_module("emb", torch::nn::Embedding(32, 12));
    fc1 = register_module("fc1", torch::nn::Linear(12, 12));
    unused = register_module("unused", torch::nn::Linear(3, 3));  // never in the graph
    ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({12})));
    head = register_module("head", torch::nn::Linear(12, 5));
  }
  at::Tensor forward(const at::Tensor& tokens) {
    at::Tensor h = emb(tokens);
    for (int k = 0; k < 3; ++k) h = h + torch::tanh(fc1(ln(h)));  // fc1 and ln: 3 uses each
    return head(h.mean(1));
  }
  torch::nn::Embedding emb{nullptr};
  torch::nn::Linear fc1{nullptr}, unused{nullptr}, head{nullptr};
  torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(Net);

std::vector<at::Tensor> trainable(Net& net) {
  std::vector<at::Tensor> ps;
  for (auto& p : net->parameters())
    if (p.requires_grad()) ps.push_back(p);
  return ps;
}

// The reference: one flat MPI_Allreduce of all gradients (straight MPI, not our Comm), divided
// by the world size with ATen; parameters without a gradient contribute zeros.
void plain_average(const std::vector<at::Tensor>& params) {
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  at::Tensor flat = torch::zeros({total});
  int64_t off = 0;
  for (const auto& p : params) {
    if (p.grad().defined()) flat.narrow(0, off, p.numel()).copy_(p.grad().reshape(-1));
    off += p.numel();
  }
  MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr<float>(), static_cast<int>(total), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  flat.div_(world);
  off = 0;
  for (const auto& p : params) {
    const_cast<at::Tensor&>(p).mutable_grad() = flat.narrow(0, off, p.numel()).view(p.sizes()).clone();
    off += p.numel();
  }
}

// rank- and step-dependent local batch
at::Tensor local_loss(Net& net, int rank, int step) {
  torch::manual_seed(1000 * step + rank);
  at::Tensor tokens = torch::randint(0, 32, {4, 6}, torch::kLong);
  at::Tensor labels = torch::randint(0, 5, {4}, torch::kLong);
  return torch::nn::functional::cross_entropy(net->forward(tokens), labels);
}

struct Pair {
  Net ref, net;
};

Pair make_pair() {
  torch::manual_seed(7);
  Net ref;
  torch::manual_seed(7);
  Net net;
  return {ref, net};
}

void expect_equal_grads(Net& ref, Net& net, bool unused_zero = true) {
  auto rp = ref->named_parameters(), np = net->named_parameters();
  for (const auto& item : rp) {
    const at::Tensor& g = np[item.key()].grad();
    ASSERT_TRUE(g.defined()) << item.key();
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(torch::equal(g, item.value().grad())) << item.key() << " max diff "
                                                      << (g - item.value().grad()).abs().max().item<float>();
  }
  if (unused_zero) {
    EXPECT_EQ(net->unused->weight.grad().abs().sum().item<float>(), 0.0f);
  }
}

TEST(GradBuckets, EqualsFlatAllreduceAverageExactly) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  auto [ref, net] = make_pair();
  auto ref_params = trainable(ref);
  GradBucketsOptions o;
  o.bucket_bytes = 48;  // about one bucket per parameter
  GradBuckets buckets(trainable(net), *comm, o);
  EXPECT_GT(buckets.num_buckets(), 6);
  EXPECT_EQ(buckets.padded_numel() % 2, 0);
  // buckets tile the flat buffer from the end (reverse parameter order)
  EXPECT_EQ(buckets.bucket_range(0).second, buckets.padded_numel());
  EXPECT_EQ(buckets.bucket_range(buckets.num_buckets() - 1).first, 0);
  for (int b = 1; b < buckets.num_buckets(); ++b)
    EXPECT_EQ(buckets.bucket_range(b).second, buckets.bucket_range(b - 1).first);

  for (int step = 0; step < 3; ++step) {
    for (auto& p : ref_params) p.mutable_grad() = at::Tensor();
    local_loss(ref, r, step).backward();
    plain_average(ref_params);

    buckets.zero_grad();
    local_loss(net, r, step).backward();
    buckets.finalize();
    expect_equal_grads(ref, net);

    // AccumulateGrad runs once per backward, however often a module ran in the forward
    const auto calls = buckets.last_hook_calls();
    auto ps = trainable(net);
    for (size_t i = 0; i < ps.size(); ++i)
      EXPECT_EQ(calls[i], ps[i].is_same(net->unused->weight) || ps[i].is_same(net->unused->bias) ? 0 : 1) << i;
    const auto& st = buckets.last_stats();
    EXPECT_EQ(st.buckets, buckets.num_buckets());
    if (step == 0) {
      EXPECT_EQ(st.launched_in_backward, 0);  // calibration step
    } else {
      // buckets after the one holding the unused parameter wait for finalize
      EXPECT_GT(st.launched_in_backward, 0);
      EXPECT_LT(st.launched_in_backward, st.buckets);
    }
    EXPECT_GE(st.exposed_s, 0.0);
  }
  EXPECT_EQ(buckets.expected_hook_calls()[0], 1);

  // expect_graph: the unused parameter is ready before backward, every bucket starts in backward
  for (auto& p : ref_params) p.mutable_grad() = at::Tensor();
  local_loss(ref, r, 9).backward();
  plain_average(ref_params);
  buckets.zero_grad();
  at::Tensor loss = local_loss(net, r, 9);
  buckets.expect_graph(loss);
  loss.backward();
  buckets.finalize();
  expect_equal_grads(ref, net);
  EXPECT_EQ(buckets.last_stats().launched_in_backward, buckets.num_buckets());
}

TEST(GradBuckets, OverlapOffAndFewBucketsGiveTheSame) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  for (int64_t bytes : {int64_t{1}, int64_t{25} << 20}) {
    auto [ref, net] = make_pair();
    auto ref_params = trainable(ref);
    GradBucketsOptions o;
    o.bucket_bytes = bytes;
    o.overlap = false;
    GradBuckets buckets(trainable(net), *comm, o);
    EXPECT_EQ(buckets.num_buckets(), bytes == 1 ? static_cast<int>(trainable(net).size()) : 1);
    for (int step = 0; step < 2; ++step) {
      for (auto& p : ref_params) p.mutable_grad() = at::Tensor();
      local_loss(ref, r, step).backward();
      plain_average(ref_params);
      buckets.zero_grad();
      local_loss(net, r, step).backward();
      buckets.finalize();
      expect_equal_grads(ref, net);
      EXPECT_EQ(buckets.last_stats().launched_in_backward, 0);
    }
  }
}

TEST(GradBuckets, NoSyncAccumulatesThreeBackwardsThenSyncs) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  auto [ref, net] = make_pair();
  auto ref_params = trainable(ref);
  GradBucketsOptions o;
  o.bucket_bytes = 300;
  GradBuckets buckets(trainable(net), *comm, o);
  for (int step = 0; step < 2; ++step) {  // step 0 calibrates, step 1 overlaps
    for (auto& p : ref_params) p.mutable_grad() = at::Tensor();
    for (int micro = 0; micro < 3; ++micro) local_loss(ref, r, 10 * step + micro).backward();  // the local sum
    plain_average(ref_params);

    buckets.zero_grad();
    {
      NoSyncGuard no_sync(buckets);
      local_loss(net, r, 10 * step + 0).backward();
      local_loss(net, r, 10 * step + 1).backward();
    }
    EXPECT_TRUE(buckets.sync());
    local_loss(net, r, 10 * step + 2).backward();
    buckets.finalize();
    expect_equal_grads(ref, net);
    EXPECT_EQ(buckets.last_hook_calls()[0], 1);  // only the synchronized backward counts
  }
}

TEST(GradBuckets, GradientCacheStyleStepOverlapsWithExpectGraph) {
  // like run/grad_cache: a scale parameter (logit_scale) gets its gradient in a no_sync backward
  // of the loss, the towers in the last, synchronized replay backward(outputs, grads). The scale
  // sits in bucket 0; expect_graph(outputs) marks it (and the unused parameter) ready, so every
  // bucket starts during the replay.
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  auto [ref, net] = make_pair();
  at::Tensor ref_scale = torch::full({1}, 2.0f).requires_grad_(), scale = torch::full({1}, 2.0f).requires_grad_();
  auto ref_params = trainable(ref);
  ref_params.push_back(ref_scale);
  auto params = trainable(net);
  params.push_back(scale);
  GradBucketsOptions o;
  o.bucket_bytes = 48;
  GradBuckets buckets(params, *comm, o);
  auto run = [&](Net& model, at::Tensor& sc, int step, GradBuckets* b) {
    torch::manual_seed(500 + 10 * step + r);
    at::Tensor tokens = torch::randint(0, 32, {4, 6}, torch::kLong);
    at::Tensor emb;
    {
      torch::NoGradGuard no_grad;
      emb = model->forward(tokens);
    }
    emb.requires_grad_(true);
    at::Tensor loss = (sc * emb).pow(2).mean();
    {
      std::optional<NoSyncGuard> local_only;
      if (b) local_only.emplace(*b);
      loss.backward();  // scale's gradient, and emb.grad()
    }
    at::Tensor out = model->forward(tokens);
    if (b) b->expect_graph(std::vector<at::Tensor>{out});
    torch::autograd::backward({out}, {emb.grad()});
  };
  for (int step = 0; step < 3; ++step) {
    for (auto& p : ref_params) p.mutable_grad() = at::Tensor();
    run(ref, ref_scale, step, nullptr);
    plain_average(ref_params);
    buckets.zero_grad();
    run(net, scale, step, &buckets);
    buckets.finalize();
    expect_equal_grads(ref, net);
    EXPECT_TRUE(torch::equal(scale.grad(), ref_scale.grad()));
    EXPECT_EQ(buckets.last_hook_calls().back(), 0);  // scale: no call in the synchronized backward
    if (step > 0) {
      EXPECT_EQ(buckets.last_stats().launched_in_backward, buckets.num_buckets());
    }
  }
}

TEST(GradBuckets, SecondSynchronizedBackwardIsAnError) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  auto [ref, net] = make_pair();
  GradBucketsOptions o;
  o.bucket_bytes = 256;
  GradBuckets buckets(trainable(net), *comm, o);
  local_loss(net, r, 0).backward();
  buckets.finalize();  // calibration
  buckets.zero_grad();
  local_loss(net, r, 1).backward();
  EXPECT_THROW(local_loss(net, r, 2).backward(), c10::Error);
  buckets.finalize();  // drains what was started, on both ranks alike
}

TEST(GradBuckets, ReduceScatterModeKeepsOnlyTheOwnShard) {
  auto comm = make_mpi_comm();
  const int r = comm->rank();
  auto [ref, net] = make_pair();
  auto ref_params = trainable(ref);
  GradBucketsOptions o;
  o.bucket_bytes = 200;
  o.reduce_scatter = true;
  GradBuckets buckets(trainable(net), *comm, o);
  EXPECT_EQ(buckets.shard_end() - buckets.shard_begin(), buckets.padded_numel() / 2);
  EXPECT_EQ(buckets.shard_begin(), r * buckets.padded_numel() / 2);
  for (int step = 0; step < 3; ++step) {
    for (auto& p : ref_params) p.mutable_grad() = at::Tensor();
    local_loss(ref, r, step).backward();
    plain_average(ref_params);
    at::Tensor ref_flat = torch::zeros({buckets.padded_numel()});
    for (size_t i = 0; i < ref_params.size(); ++i)
      ref_flat.narrow(0, buckets.offset(i), ref_params[i].numel()).copy_(ref_params[i].grad().reshape(-1));

    buckets.zero_grad();
    local_loss(net, r, step).backward();
    buckets.finalize();
    at::Tensor mine = ref_flat.narrow(0, buckets.shard_begin(), buckets.shard_end() - buckets.shard_begin());
    EXPECT_TRUE(torch::equal(buckets.shard_grad(), mine)) << step;
    if (step > 0) {
      EXPECT_GT(buckets.last_stats().launched_in_backward, 0);
    }
  }
}

}  // namespace
}  // namespace pc
