#pragma once
// Bucketed gradient averaging that overlaps backward (DESIGN §4).
//
// The trainable parameters' gradients live in ONE flat buffer (param.grad() is a view into it,
// parameters concatenated in the given order, the total padded with zeros to a multiple of the
// world size: the same layout as optim's FlatLayout). The buffer is cut into buckets of about
// `bucket_bytes`, walking the parameters in REVERSE order, the order backward produces their
// gradients. A post-hook on every parameter's AccumulateGrad node marks the parameter ready; when
// all parameters of a bucket are ready the bucket's average (allreduce, or for ZeRO-2 a
// reduce-scatter to the owners of its elements) starts asynchronously on the Comm while backward
// continues. finalize() starts what is left, waits, and reports the exposed wait.
//
// When is a gradient final? AccumulateGrad runs ONCE per backward call for every parameter that
// gets a gradient, however often the parameter was used in the forward: autograd sums all uses in
// the node's input buffer first (tested: modules used 3 times give 1 hook call per backward).
// Reentrant backward (a custom Function that calls backward() on a recomputed graph) would call
// it once per inner backward; so by default the first synchronized step only COUNTS the calls
// per parameter (no overlap on that step) and later steps mark a parameter ready when it reaches
// that count. A parameter that got no gradient at calibration blocks its bucket until finalize()
// (its gradient is whatever is in the buffer: zeros after zero_grad()), unless
// expect_graph(loss) says which parameters the coming backward reaches (DDP's
// find_unused_parameters). A gradient arriving after its bucket was started raises an error:
// several backward calls in one step need set_sync(false) on all but the last.
//
// Threads: hooks run on the thread that runs backward (CPU: the caller). All ranks must build the
// same graph (same parameters reached, same order), as collectives require anyway; buckets are
// started strictly in bucket order, so every rank issues the same sequence of collectives.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace pc {

class Comm;

struct GradBucketsOptions {
  int64_t bucket_bytes = int64_t{25} << 20;  // a parameter is never split: a bucket holds at least one
  bool overlap = true;         // false: no launches from hooks, every bucket starts in finalize()
  bool reduce_scatter = false;  // ZeRO-2: rank r receives only its shard of the average (shard_grad())
  bool calibrate = true;        // learn hook calls per parameter on the first synchronized step
};

struct GradSyncStats {
  double exposed_s = 0;  // wall time of finalize(): communication not hidden behind backward
  double comm_s = 0;     // sum of the collectives' own run times (MPI: on the communication thread)
  int64_t bytes = 0;     // bytes reduced (the whole flat buffer)
  int buckets = 0;
  int launched_in_backward = 0;  // buckets started from hooks; the rest started in finalize()
};

class GradBuckets {
 public:
  // `params`: the trainable parameters in the same order and shapes on every rank, one dtype and
  // device. Every param.grad() becomes a zeroed view into the flat buffer. The parameters must
  // stay alive as long as this object.
  GradBuckets(std::vector<at::Tensor> params, Comm& comm, GradBucketsOptions options = {});
  ~GradBuckets();  // waits for started buckets, removes the hooks
  GradBuckets(const GradBuckets&) = delete;
  GradBuckets& operator=(const GradBuckets&) = delete;

  // Zeroes the flat buffer (and the ZeRO-2 shard). Module/Optimizer::zero_grad() of LibTorch 1.13
  // zero in place too and keep the views; a gradient reset to undefined is re-pointed on its next
  // accumulation.
  void zero_grad();

  // Optional, before backward(): marks the parameters that `loss`'s graph does not reach as ready
  // (their gradient this step is what the buffer holds), so their buckets need not wait for
  // finalize(). Only for graphs where every gradient flows through the outer graph (no reentrant
  // backward).
  void expect_graph(const at::Tensor& loss);
  // The same for a backward from several outputs (torch::autograd::backward(outputs, grads)),
  // e.g. the last replay of a gradient-cache step: parameters whose gradient came from earlier
  // no_sync passes only (logit_scale there) then do not hold their bucket back.
  void expect_graph(const std::vector<at::Tensor>& roots);

  // no_sync: with false, backward only accumulates locally (gradient accumulation, the micro-batches
  // of a gradient-cache step); set true before the LAST backward of the step.
  void set_sync(bool on);
  bool sync() const;
  // Overlap on/off at run time (benchmarks); takes effect with the next step (after finalize()).
  void set_overlap(bool on);

  // Starts the buckets not started yet, waits for all, divides by the world size. Afterwards
  // param.grad() (allreduce mode) or shard_grad() (reduce_scatter mode) holds the mean over ranks.
  // In reduce_scatter mode only shard_grad() is averaged: param.grad() keeps this rank's local
  // gradients.
  void finalize();

  const at::Tensor& flat_grad() const;  // [padded_numel()]
  // This rank's [shard_begin(), shard_end()) of the averaged gradient: a view of flat_grad() in
  // allreduce mode, a separate buffer in reduce_scatter mode.
  at::Tensor shard_grad() const;

  int64_t numel() const;         // sum of the parameters' numel
  int64_t padded_numel() const;  // numel rounded up to a multiple of the world size
  int64_t offset(size_t param) const;
  int64_t shard_begin() const;
  int64_t shard_end() const;
  size_t num_params() const;
  int num_buckets() const;
  std::pair<int64_t, int64_t> bucket_range(int bucket) const;  // [begin, end) in the flat buffer
  bool reduce_scatter() const;

  const GradSyncStats& last_stats() const;  // of the last finalize()
  std::vector<int> last_hook_calls() const;  // per parameter, in the last synchronized backward
  std::vector<int> expected_hook_calls() const;  // learned by calibration (-1: not calibrated yet)

  struct State;

 private:
  std::shared_ptr<State> s_;
};

// RAII no_sync: gradients of the backward calls inside the scope only accumulate locally.
class NoSyncGuard {
 public:
  explicit NoSyncGuard(GradBuckets& b) : b_(b), prev_(b.sync()) { b_.set_sync(false); }
  ~NoSyncGuard() { b_.set_sync(prev_); }
  NoSyncGuard(const NoSyncGuard&) = delete;
  NoSyncGuard& operator=(const NoSyncGuard&) = delete;

 private:
  GradBuckets& b_;
  bool prev_;
};

}  // namespace pc
