// The two things the NCCL backend needs from a CUDA LibTorch (compiled only with one).
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>

#include "nccl_comm_impl.h"

namespace pc::nccl {
namespace {

void* current_stream(int device) {
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
}

void record_stream(const at::Tensor& t, void* stream) {
  c10::cuda::CUDACachingAllocator::recordStream(
      t.storage().data_ptr(),
      c10::cuda::getStreamFromExternal(static_cast<cudaStream_t>(stream), t.device().index()));
}

const CudaGlue kGlue{&current_stream, &record_stream};

}  // namespace

const CudaGlue* torch_cuda_glue() { return &kGlue; }

}  // namespace pc::nccl
