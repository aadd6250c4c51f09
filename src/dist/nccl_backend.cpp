// Entry points of the NCCL backend inside pc_dist. The implementation (src/dist/nccl/) is
// compiled into pc_dist only when CMake found NCCL and a CUDA LibTorch (PC_HAVE_NCCL);
// otherwise these say that it is unavailable.
#include "pyramidclip/dist/nccl_comm.h"

#include <c10/util/Exception.h>

#ifdef PC_HAVE_NCCL
#include "nccl/nccl_comm_impl.h"
#include "nccl/nccl_ops.h"
#endif

namespace pc {

#ifdef PC_HAVE_NCCL
bool nccl_available() { return true; }
int nccl_device_count() { return nccl::device_count(); }
std::unique_ptr<Comm> make_nccl_comm() { return nccl::create_comm(make_mpi_comm(), nccl::torch_cuda_glue()); }
#else
bool nccl_available() { return false; }
int nccl_device_count() { return 0; }
std::unique_ptr<Comm> make_nccl_comm() {
  TORCH_CHECK(false, "this build has no NCCL backend (configure with nccl.h, libnccl and a CUDA LibTorch)");
}
#endif

}  // namespace pc
