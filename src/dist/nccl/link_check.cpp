// Link check of the NCCL backend on machines with the CUDA toolkit but a CPU LibTorch: pulls in
// the whole NcclComm implementation and calls into libnccl/libcudart without needing a GPU.
#include <cstdio>

#include "nccl_comm_impl.h"
#include "nccl_ops.h"

int main() {
  const int v = pc::nccl::version();
  std::printf("NCCL %d.%d.%d linked; %d CUDA device(s) visible\n", v / 10000, (v / 100) % 100, v % 100,
              pc::nccl::device_count());
  // reference the Comm implementation so that the linker resolves all of it
  auto* create = &pc::nccl::create_comm;
  return create == nullptr ? 1 : 0;
}
