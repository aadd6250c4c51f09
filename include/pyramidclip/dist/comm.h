#pragma once
// Collective communication over ranks (DESIGN §4). This issue ships the MPI backend for CPU
// tensors; NCCL joins behind the same interface later. All calls are collective.
#include <ATen/ATen.h>

#include <memory>
#include <string>

namespace pc {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void allreduce_sum(at::Tensor& t) = 0;      // in place, contiguous tensor
  virtual void allreduce_max(at::Tensor& t) = 0;
  virtual at::Tensor all_gather(const at::Tensor& t) = 0;  // concat along dim 0; equal shapes on all ranks
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
};

// MPI_COMM_WORLD (MPI must be initialized, see MpiRuntime).
std::unique_ptr<Comm> make_mpi_comm();

// RAII MPI_Init / MPI_Finalize; safe when already initialized (e.g. by a test main).
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
 private:
  bool owns_ = false;
};

// Autograd all-gather: forward concatenates every rank's x along dim 0; backward gives each
// rank the gradient of its own slice summed over all ranks (so the local-loss form yields
// the gradient of the global-batch loss). With comm == nullptr or size 1 it returns x.
at::Tensor all_gather_with_grad(const at::Tensor& x, Comm* comm);

}  // namespace pc
