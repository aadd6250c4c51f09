// SyncBN across 2 MPI ranks (mpirun -np 2): each rank runs the image tower on its half of a batch
// with BatchNorm synchronized through a BnSync adapted from pc::Comm (the adapter the trainer
// uses); everything must equal one process running local BatchNorm on the whole batch:
// embeddings, input gradients, parameter gradients averaged over ranks, running statistics.
// Also: activation checkpointing with SyncBN communicates no more than without it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>

#include "model_scale_util.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/model/batch_norm.h"

namespace pc {
namespace {

using testing::max_abs_diff;

// The trainer's adapter: pc::Comm behind the model's BnSync interface (counts calls for the test).
class CommBnSync : public BnSync {
 public:
  explicit CommBnSync(Comm& comm) : comm_(comm) {}
  void allreduce_sum(at::Tensor& t) override {
    ++calls;
    comm_.allreduce_sum(t);
  }
  int world_size() const override { return comm_.size(); }
  int calls = 0;

 private:
  Comm& comm_;
};

Comm& world() {
  static std::unique_ptr<Comm> comm = [] {
    torch::set_num_threads(1);  // two ranks share the cores
    return make_mpi_comm();
  }();
  return *comm;
}

double rel(double diff, const at::Tensor& ref) { return diff / std::max(1.0, ref.abs().max().item<double>()); }

// Reference: one process, local BN, full batch of b. Ranks: b / world rows each, SyncBN.
// loss = mean over rows of <embedding, r_i> (per rank: over its rows), as the trainer's convention
// (gradients averaged over ranks).
void check_tower(const ModelConfig& c, int64_t b) {
  Comm& comm = world();
  const int rank = comm.rank(), n = comm.size();
  ASSERT_EQ(b % n, 0);
  const int64_t local = b / n;
  torch::manual_seed(51);  // same data on every rank
  at::Tensor images = torch::randn({b, 3, c.image_size, c.image_size});
  at::Tensor r = torch::randn({b, c.embed_dim});

  torch::manual_seed(52);
  PyramidClip ref(c);
  ref->train();
  at::Tensor xr = images.clone().requires_grad_(true);
  at::Tensor er = ref->encode_image(xr);
  (er * r).sum(1).mean().backward();

  torch::manual_seed(52);
  PyramidClip model(c);
  model->train();
  auto sync = std::make_shared<CommBnSync>(comm);
  model->set_batchnorm_sync(sync);
  at::Tensor x = images.narrow(0, rank * local, local).clone().requires_grad_(true);
  at::Tensor e = model->encode_image(x);
  (e * r.narrow(0, rank * local, local)).sum(1).mean().backward();
  EXPECT_GT(sync->calls, 0);

  EXPECT_LE(max_abs_diff(e, er.narrow(0, rank * local, local)), 1e-5);
  // SyncBN's input gradient is that of the sum of the rank losses; the reference is their mean
  at::Tensor gx_ref = xr.grad().narrow(0, rank * local, local);
  EXPECT_LE(rel(max_abs_diff(x.grad() / n, gx_ref), gx_ref), 1e-5);
  auto ref_params = ref->named_parameters();
  double worst = 0;
  for (const auto& p : model->named_parameters()) {
    const at::Tensor& g = p.value().grad();
    const at::Tensor& gr = ref_params[p.key()].grad();
    ASSERT_EQ(g.defined(), gr.defined()) << p.key();
    if (!g.defined()) continue;
    at::Tensor avg = g.clone();
    comm.allreduce_sum(avg);
    avg /= n;
    const double d = rel(max_abs_diff(avg, gr), gr);
    worst = std::max(worst, d);
    EXPECT_LE(d, 1e-5) << p.key();
  }
  auto ref_buffers = ref->named_buffers();
  ASSERT_GT(testing::count_batchnorm_buffers(*model), 0);
  for (const auto& bb : model->named_buffers())
    EXPECT_LE(max_abs_diff(bb.value(), ref_buffers[bb.key()]), 1e-5) << bb.key();
  if (rank == 0)
    std::printf("[ syncbn   ] %s: worst relative parameter-gradient difference %.2e\n", c.vision.c_str(), worst);
}

TEST(SyncBatchNormMpi, OfficialVitHalvesEqualFullBatch) {
  ModelConfig c = testing::tiny_config(true);
  check_tower(c, 8);
}

TEST(SyncBatchNormMpi, ResNetHalvesEqualFullBatch) { check_tower(testing::small_resnet_config(), 8); }

// Checkpointed + SyncBN equals plain SyncBN, and the recompute reuses the recorded statistics:
// the same number of allreduces (one per BatchNorm forward and one per BatchNorm backward).
TEST(SyncBatchNormMpi, CheckpointingAddsNoCommunication) {
  Comm& comm = world();
  const int rank = comm.rank();
  for (const ModelConfig& base : {testing::tiny_config(true), testing::small_resnet_config()}) {
    torch::manual_seed(53 + rank);  // different data per rank
    at::Tensor images = torch::randn({4, 3, base.image_size, base.image_size});
    int calls[2] = {0, 0};
    PyramidClip models[2] = {PyramidClip{nullptr}, PyramidClip{nullptr}};
    for (int ck = 0; ck < 2; ++ck) {
      ModelConfig c = base;
      c.checkpoint_image = ck == 1;
      torch::manual_seed(54);
      models[ck] = PyramidClip(c);
      models[ck]->train();
      auto sync = std::make_shared<CommBnSync>(comm);
      models[ck]->set_batchnorm_sync(sync);
      models[ck]->encode_image(images).pow(2).sum().backward();
      calls[ck] = sync->calls;
    }
    EXPECT_EQ(calls[0], calls[1]) << base.vision;
    EXPECT_LE(testing::max_grad_diff(*models[0], *models[1]), 1e-6) << base.vision;
    testing::expect_buffers_equal(*models[0], *models[1], 0.0);
  }
}

}  // namespace
}  // namespace pc
