// NCCL + CUDA runtime wrappers (see nccl_ops.h). Compiles with the CUDA toolkit's headers only.
#include "nccl_ops.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace pc::nccl {
namespace {

static_assert(kUniqueIdBytes == NCCL_UNIQUE_ID_BYTES, "ncclUniqueId size changed");
static_assert(sizeof(ncclUniqueId) == NCCL_UNIQUE_ID_BYTES, "ncclUniqueId layout changed");

void check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess && rc != ncclInProgress)
    throw std::runtime_error(std::string(what) + " failed: " + ncclGetErrorString(rc) + " (" +
                             std::to_string(static_cast<int>(rc)) + ")");
}

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(rc));
}

ncclDataType_t to_nccl(DType t) {
  switch (t) {
    case DType::f16: return ncclFloat16;
    case DType::bf16:
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
      return ncclBfloat16;
#else
      throw std::runtime_error("bfloat16 needs NCCL >= 2.10");
#endif
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i8: return ncclInt8;
    case DType::u8: return ncclUint8;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
  }
  throw std::runtime_error("unknown NCCL dtype");
}

ncclRedOp_t to_nccl(Op op) {
  switch (op) {
    case Op::sum: return ncclSum;
    case Op::avg:
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
      return ncclAvg;
#else
      throw std::runtime_error("average needs NCCL >= 2.10");
#endif
    case Op::max: return ncclMax;
    case Op::min: return ncclMin;
  }
  throw std::runtime_error("unknown NCCL reduction");
}

ncclComm_t as_comm(void* c) { return static_cast<ncclComm_t>(c); }
cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }
cudaEvent_t as_event(void* e) { return static_cast<cudaEvent_t>(e); }

}  // namespace

int version() {
  int v = 0;
  check(ncclGetVersion(&v), "ncclGetVersion");
  return v;
}

UniqueId unique_id() {
  ncclUniqueId id;
  check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  UniqueId out;
  std::memcpy(out.data(), id.internal, kUniqueIdBytes);
  return out;
}

void* comm_init_rank(const UniqueId& id, int nranks, int rank) {
  ncclUniqueId nid;
  std::memcpy(nid.internal, id.data(), kUniqueIdBytes);
  ncclComm_t comm = nullptr;
  check(ncclCommInitRank(&comm, nranks, nid, rank), "ncclCommInitRank");
  return comm;
}

void comm_destroy(void* comm) {
  if (comm) ncclCommDestroy(as_comm(comm));
}

void all_reduce(const void* in, void* out, std::size_t count, DType t, Op op, void* comm, void* stream) {
  check(ncclAllReduce(in, out, count, to_nccl(t), to_nccl(op), as_comm(comm), as_stream(stream)), "ncclAllReduce");
}

void reduce(const void* in, void* out, std::size_t count, DType t, Op op, int root, void* comm, void* stream) {
  check(ncclReduce(in, out, count, to_nccl(t), to_nccl(op), root, as_comm(comm), as_stream(stream)), "ncclReduce");
}

void reduce_scatter(const void* in, void* out, std::size_t recv_count, DType t, Op op, void* comm, void* stream) {
  check(ncclReduceScatter(in, out, recv_count, to_nccl(t), to_nccl(op), as_comm(comm), as_stream(stream)),
        "ncclReduceScatter");
}

void all_gather(const void* in, void* out, std::size_t send_count, DType t, void* comm, void* stream) {
  check(ncclAllGather(in, out, send_count, to_nccl(t), as_comm(comm), as_stream(stream)), "ncclAllGather");
}

void broadcast(const void* in, void* out, std::size_t count, DType t, int root, void* comm, void* stream) {
  check(ncclBroadcast(in, out, count, to_nccl(t), root, as_comm(comm), as_stream(stream)), "ncclBroadcast");
}

void group_start() { check(ncclGroupStart(), "ncclGroupStart"); }
void group_end() { check(ncclGroupEnd(), "ncclGroupEnd"); }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no driver/device" error
    return 0;
  }
  return n;
}

int current_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

void* stream_create() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  return s;
}

void stream_destroy(void* stream) {
  if (stream) cudaStreamDestroy(as_stream(stream));
}

void stream_synchronize(void* stream) { check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize"); }

void* event_create() {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  return e;
}

void event_destroy(void* event) {
  if (event) cudaEventDestroy(as_event(event));
}

void event_record(void* event, void* stream) {
  check(cudaEventRecord(as_event(event), as_stream(stream)), "cudaEventRecord");
}

void stream_wait_event(void* stream, void* event) {
  check(cudaStreamWaitEvent(as_stream(stream), as_event(event), 0), "cudaStreamWaitEvent");
}

bool event_query(void* event) {
  cudaError_t rc = cudaEventQuery(as_event(event));
  if (rc == cudaErrorNotReady) return false;
  check(rc, "cudaEventQuery");
  return true;
}

void event_synchronize(void* event) { check(cudaEventSynchronize(as_event(event)), "cudaEventSynchronize"); }

}  // namespace pc::nccl
