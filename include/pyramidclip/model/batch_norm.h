#pragma once
// BatchNorm for the official ViT's LeFF blocks and the ModifiedResNet-50, with per-rank (local)
// or synchronized (SyncBN) batch statistics. The modules stay torch::nn::BatchNorm1d/2d, so the
// parameter and buffer names (weight, bias, running_mean, running_var, num_batches_tracked) and
// the official checkpoint keys are unchanged; only the forward goes through batch_norm() below.
//
// The model module must not depend on dist (DESIGN §2: util -> data -> model -> dist), so SyncBN
// talks to the other ranks through BnSync, which the trainer implements on top of its Comm.
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>

#include <memory>
#include <vector>

namespace pc {

// What synchronized BatchNorm needs from the communication layer.
class BnSync {
 public:
  virtual ~BnSync() = default;
  // Sums t over all ranks, in place. t is a contiguous float64 tensor of 2C+1 (forward) or 2C
  // (backward) elements on the activations' device. Collective: every rank makes the same calls
  // in the same order (they follow the model's BatchNorm calls, forward and backward).
  virtual void allreduce_sum(at::Tensor& t) = 0;
  virtual int world_size() const = 0;
};

// A module whose BatchNorms can be synchronized. bn_sync == nullptr (or world size 1): local
// statistics, exactly at::batch_norm.
class BatchNormSyncable {
 public:
  virtual ~BatchNormSyncable() = default;
  std::shared_ptr<BnSync> bn_sync;
};

// Sets bn_sync on root and every BatchNormSyncable module below it; returns how many it set.
int set_batchnorm_sync(torch::nn::Module& root, const std::shared_ptr<BnSync>& sync);

// BatchNorm on x with the channels in dim 1 ([N, C] rows, [N, C, L], [N, C, H, W]) using bn's
// parameters, buffers and mode, like bn.forward(x), with:
//  - sync (world size > 1) in training mode: SyncBN. Per-channel sum, sum of squares and count go
//    to the other ranks in ONE packed allreduce; normalization uses the global mean and biased
//    variance; running_mean/running_var get the global mean and the unbiased global variance
//    (as torch.nn.SyncBatchNorm). Backward allreduces sum(dy) and sum(dy * xhat) in one packed
//    call; the weight/bias gradients stay per-rank sums (the trainer's gradient averaging
//    completes them, as DDP does for torch.nn.SyncBatchNorm).
//  - eval mode: running statistics, no communication.
//  - scale: multiplies the output (folded into the affine parameters; LeFF's QuickGELU factor).
//  - bf16/fp16 input (autocast): normalized in fp32, fp32 output.
//  - inside an activation-checkpoint recompute (see detail::BnTape): running statistics and
//    num_batches_tracked are left alone, and SyncBN reuses the statistics of the first pass.
template <size_t D, typename Derived>
at::Tensor batch_norm(torch::nn::BatchNormImplBase<D, Derived>& bn, const at::Tensor& x,
                      const std::shared_ptr<BnSync>& sync = nullptr, double scale = 1.0);

// The SyncBN training-mode forward as a function (autograd: the custom Function described above).
// running_mean/running_var may be undefined (no update); momentum as PyTorch (new = (1-m) old + m batch).
at::Tensor sync_batch_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const at::Tensor& running_mean, const at::Tensor& running_var, double momentum, double eps,
                           const std::shared_ptr<BnSync>& sync);

namespace detail {

// Activation checkpointing support (checkpoint.h). The checkpointed forward runs with a tape in
// record mode: SyncBN appends the global statistics it computed. The recompute in backward runs
// with the same tape in replay mode: every training-mode BatchNorm skips its running-statistics
// and num_batches_tracked update (so one step updates them once, as without checkpointing), and
// SyncBN pops its statistics instead of communicating (no collective inside a recompute).
struct BnTape {
  struct Stats {
    at::Tensor mean, var;  // global, biased variance
    double count;
  };
  std::vector<Stats> stats;  // in call order
  bool replay = false;
  size_t cursor = 0;  // replay: next entry (reset for each recompute)
};

// Makes tape the current thread's tape for its lifetime (nullptr: none); restores the previous one.
class BnTapeScope {
 public:
  explicit BnTapeScope(BnTape* tape);
  ~BnTapeScope();
  BnTapeScope(const BnTapeScope&) = delete;
  BnTapeScope& operator=(const BnTapeScope&) = delete;

 private:
  BnTape* prev_;
};

}  // namespace detail
}  // namespace pc
