#pragma once
// The NCCL Comm implementation. It needs from LibTorch only what a CPU LibTorch also has
// (tensor pointers, sizes, dtypes), except the current CUDA stream and the caching allocator's
// recordStream: those two come through CudaGlue, implemented in cuda_glue.cpp, which compiles
// only against a CUDA LibTorch. So this part builds (and link-checks against libnccl) on a
// CPU-only machine with the CUDA toolkit installed.
#include <ATen/ATen.h>

#include <memory>

#include "pyramidclip/dist/comm.h"

namespace pc::nccl {

struct CudaGlue {
  void* (*current_stream)(int device);                        // cudaStream_t of c10's current stream
  void (*record_stream)(const at::Tensor& t, void* stream);  // allocator: t is in use on `stream`
};

// Defined in cuda_glue.cpp (CUDA LibTorch only).
const CudaGlue* torch_cuda_glue();

// Collective over the ranks of `bootstrap` (an MPI comm), which also carries CPU tensors and
// the barrier. Picks the device (node-local rank modulo the visible devices).
std::unique_ptr<Comm> create_comm(std::unique_ptr<Comm> bootstrap, const CudaGlue* glue);

// Node-local rank from the launcher's environment (Open MPI, Slurm, MPICH), else -1.
int local_rank_from_env();

}  // namespace pc::nccl
