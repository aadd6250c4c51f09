#pragma once
// Thin, torch-free wrappers of the NCCL and CUDA-runtime calls the NCCL backend needs. Streams,
// events and communicators travel as void* (cudaStream_t, cudaEvent_t, ncclComm_t), so this
// header needs neither nccl.h nor cuda_runtime.h, and nccl_ops.cpp compiles against the CUDA
// toolkit alone (no CUDA LibTorch). Every call throws std::runtime_error on failure.
#include <array>
#include <cstddef>
#include <cstdint>

namespace pc::nccl {

enum class DType { f16, bf16, f32, f64, i8, u8, i32, i64 };
enum class Op { sum, avg, max, min };

constexpr std::size_t kUniqueIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES (checked in nccl_ops.cpp)
using UniqueId = std::array<char, kUniqueIdBytes>;

int version();  // ncclGetVersion: 22809 = 2.28.9
UniqueId unique_id();
void* comm_init_rank(const UniqueId& id, int nranks, int rank);  // on the current device
void comm_destroy(void* comm);

void all_reduce(const void* in, void* out, std::size_t count, DType t, Op op, void* comm, void* stream);
void reduce(const void* in, void* out, std::size_t count, DType t, Op op, int root, void* comm, void* stream);
// recv_count elements per rank; in holds nranks * recv_count
void reduce_scatter(const void* in, void* out, std::size_t recv_count, DType t, Op op, void* comm, void* stream);
// send_count elements per rank; out holds nranks * send_count
void all_gather(const void* in, void* out, std::size_t send_count, DType t, void* comm, void* stream);
void broadcast(const void* in, void* out, std::size_t count, DType t, int root, void* comm, void* stream);
void group_start();
void group_end();

// CUDA runtime
int device_count();  // 0 when no device or no driver
int current_device();
void set_device(int device);
void* stream_create();  // non-blocking stream on the current device
void stream_destroy(void* stream);
void stream_synchronize(void* stream);
void* event_create();  // timing disabled
void event_destroy(void* event);
void event_record(void* event, void* stream);
void stream_wait_event(void* stream, void* event);
bool event_query(void* event);  // true when complete
void event_synchronize(void* event);

}  // namespace pc::nccl
