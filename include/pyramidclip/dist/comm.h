#pragma once
// Collective communication over ranks (DESIGN §4): MPI for CPU tensors, NCCL for CUDA tensors,
// behind one interface. Every call is collective: all ranks issue the same calls in the same
// order. Tensors are contiguous; the "flat" calls see them as 1-D.
//
// Asynchronous calls return a Work handle. The MPI backend runs every collective (synchronous
// or not) on ONE communication thread per process, in the order the calls were issued, so that
// a collective started from an autograd hook can overlap the rest of backward. The tensors of
// an asynchronous call must not be touched until wait() returns (the handle keeps them alive).
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pc {

class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the result is in the output tensor (NCCL: until the current CUDA stream is
  // ordered after the collective) and rethrows the collective's failure, if any.
  virtual void wait() = 0;
  virtual bool completed() = 0;  // non-blocking poll
  // Seconds the collective itself ran (MPI: on the communication thread); 0 when unknown.
  virtual double seconds() const { return 0; }
};
using WorkPtr = std::shared_ptr<Work>;

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "mpi" or "nccl"
  virtual int device() const { return -1; }  // the CUDA device this rank's collectives run on (-1: host)

  virtual void allreduce_sum(at::Tensor& t) = 0;      // in place
  virtual void allreduce_max(at::Tensor& t) = 0;
  virtual at::Tensor all_gather(const at::Tensor& t) = 0;  // concat along dim 0; equal shapes on all ranks
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  // Flat reduce-scatter: in.numel() == size() * out.numel(); out = sum over ranks of
  // in[rank * n, (rank + 1) * n). `in` and `out` must not overlap.
  virtual void reduce_scatter_sum(const at::Tensor& in, at::Tensor& out);
  // Flat all-gather: out.numel() == size() * in.numel(); out[r * n, (r + 1) * n) = rank r's in.
  // `in` may be exactly that slice of `out` (in-place all-gather).
  virtual void all_gather_into(const at::Tensor& in, at::Tensor& out);

  // Asynchronous forms. average = true divides the sum by size() (on the communication thread /
  // as NCCL's ncclAvg), so that gradient averaging overlaps too.
  virtual WorkPtr allreduce_sum_async(at::Tensor t, bool average = false);
  virtual WorkPtr reduce_scatter_sum_async(at::Tensor in, at::Tensor out, bool average = false);
  // Variable-count reduce-scatter (ZeRO-2 gradient buckets that straddle shard boundaries):
  // in.numel() == sum(counts); rank r receives the sum of the counts[r] elements that follow
  // counts[0..r). out.numel() == counts[rank()] (may be 0).
  virtual WorkPtr reduce_scatter_v_sum_async(at::Tensor in, at::Tensor out, std::vector<int64_t> counts,
                                             bool average = false);
  virtual WorkPtr all_gather_into_async(at::Tensor in, at::Tensor out);
};

// MPI_COMM_WORLD (MPI must be initialized, see MpiRuntime). Each MpiComm works on its own
// duplicate of MPI_COMM_WORLD; all MpiComm objects of a process share the one communication
// thread (so MPI sees a single caller: MPI_THREAD_SERIALIZED suffices). When MPI was
// initialized with less than MPI_THREAD_SERIALIZED, collectives run on the calling thread and
// the asynchronous calls complete before they return (correct, no overlap).
std::unique_ptr<Comm> make_mpi_comm();

// "mpi", "nccl" or "auto" (NCCL when this build has it and a CUDA device is visible, else MPI).
// NCCL bootstraps over MPI (the unique id is broadcast), so MPI must be initialized either way.
// Throws c10::Error for an unknown name or "nccl" in a build without NCCL.
std::unique_ptr<Comm> make_comm(const std::string& backend);
bool nccl_available();  // compiled with NCCL and a CUDA LibTorch

// RAII MPI_Init_thread(MPI_THREAD_SERIALIZED) / MPI_Finalize; safe when already initialized
// (e.g. by a test main). thread_level() is what MPI provided (MPI_THREAD_* value).
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  int thread_level() const { return thread_level_; }
 private:
  bool owns_ = false;
  int thread_level_ = 0;
};

// Autograd all-gather: forward concatenates every rank's x along dim 0; backward gives each
// rank the gradient of its own slice summed over all ranks (so the local-loss form yields
// the gradient of the global-batch loss). With comm == nullptr or size 1 it returns x.
at::Tensor all_gather_with_grad(const at::Tensor& x, Comm* comm);

}  // namespace pc
