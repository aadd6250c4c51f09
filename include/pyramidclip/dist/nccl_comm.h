#pragma once
// NCCL backend of Comm (DESIGN §4): CUDA tensors over NCCL, bootstrapped over MPI (rank 0's
// ncclUniqueId is broadcast with MPI). Built only when nccl.h/libnccl and a CUDA LibTorch are
// found at configure time (CMake prints which); otherwise these report "not available".
//
// Semantics: every collective is enqueued on the communicator's own CUDA stream after waiting
// for the caller's current stream; synchronous calls make the current stream wait for the
// result (they do not block the host), asynchronous calls return a Work whose wait() does that.
// CPU tensors (control flags, metrics) go over the MPI bootstrap communicator instead.
// One process per GPU: the device is the node-local rank modulo the visible device count.
#include <memory>

#include "pyramidclip/dist/comm.h"

namespace pc {

std::unique_ptr<Comm> make_nccl_comm();  // collective; throws when nccl_available() is false
int nccl_device_count();                 // visible CUDA devices; 0 without NCCL support

}  // namespace pc
