// NCCL backend of Comm (see include/pyramidclip/dist/nccl_comm.h for the semantics).
//
// One CUDA stream per communicator carries every NCCL call, in the order the host issues them:
// a collective first makes that stream wait for the caller's current stream (so the inputs are
// computed), then runs, then records an event; wait() makes the caller's current stream wait for
// that event. The tensors are recorded on the communication stream so that the caching
// allocator does not hand their memory out while NCCL still uses it.
#include "nccl_comm_impl.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "nccl_ops.h"

namespace pc::nccl {
namespace {

DType to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return DType::f16;
    case at::kBFloat16: return DType::bf16;
    case at::kFloat: return DType::f32;
    case at::kDouble: return DType::f64;
    case at::kChar: return DType::i8;
    case at::kByte: return DType::u8;
    case at::kBool: return DType::u8;
    case at::kInt: return DType::i32;
    case at::kLong: return DType::i64;
    default: TORCH_CHECK(false, "NCCL comm: unsupported dtype ", t);
  }
}

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : prev_(current_device()) {
    if (prev_ != device) set_device(device);
  }
  ~DeviceGuard() {
    try {
      set_device(prev_);
    } catch (...) {
    }
  }

 private:
  int prev_;
};

class NcclWork final : public Work {
 public:
  NcclWork(void* done, int device, const CudaGlue* glue, std::vector<at::Tensor> keep)
      : done_(done), device_(device), glue_(glue), keep_(std::move(keep)) {}
  ~NcclWork() override { event_destroy(done_); }

  void wait() override {
    DeviceGuard guard(device_);
    stream_wait_event(glue_->current_stream(device_), done_);
    keep_.clear();
  }
  bool completed() override {
    DeviceGuard guard(device_);
    return event_query(done_);
  }

 private:
  void* done_;
  int device_;
  const CudaGlue* glue_;
  std::vector<at::Tensor> keep_;
};

class NcclComm final : public Comm {
 public:
  NcclComm(std::unique_ptr<Comm> bootstrap, const CudaGlue* glue) : boot_(std::move(bootstrap)), glue_(glue) {
    TORCH_CHECK(glue_ != nullptr, "NCCL comm: this LibTorch has no CUDA support");
    const int devices = device_count();
    TORCH_CHECK(devices > 0, "NCCL comm: no CUDA device is visible");
    int local = local_rank_from_env();
    if (local < 0) local = boot_->rank();
    device_ = local % devices;
    set_device(device_);  // one GPU per process: it stays the current device
    UniqueId id{};
    if (boot_->rank() == 0) id = unique_id();
    at::Tensor bytes = at::empty({static_cast<int64_t>(kUniqueIdBytes)}, at::kByte);
    std::memcpy(bytes.data_ptr(), id.data(), kUniqueIdBytes);
    boot_->broadcast(bytes, 0);
    std::memcpy(id.data(), bytes.data_ptr(), kUniqueIdBytes);
    comm_ = comm_init_rank(id, boot_->size(), boot_->rank());
    stream_ = stream_create();
  }
  ~NcclComm() override {
    try {
      DeviceGuard guard(device_);
      stream_synchronize(stream_);
      comm_destroy(comm_);
      stream_destroy(stream_);
    } catch (...) {
    }
  }

  int rank() const override { return boot_->rank(); }
  int size() const override { return boot_->size(); }
  std::string backend() const override { return "nccl"; }
  int device() const override { return device_; }

  void allreduce_sum(at::Tensor& t) override {
    if (t.is_cpu()) return boot_->allreduce_sum(t);
    allreduce_sum_async(t, false)->wait();
  }
  void allreduce_max(at::Tensor& t) override {
    if (t.is_cpu()) return boot_->allreduce_max(t);
    check_cuda(t);
    enqueue({t}, [&](void* s) {
      all_reduce(t.data_ptr(), t.data_ptr(), t.numel(), to_dtype(t.scalar_type()), Op::max, comm_, s);
    })->wait();
  }
  at::Tensor all_gather(const at::Tensor& t) override {
    if (t.is_cpu()) return boot_->all_gather(t);
    std::vector<int64_t> shape = t.sizes().vec();
    TORCH_CHECK(!shape.empty(), "all_gather needs at least one dimension");
    shape[0] *= size();
    at::Tensor out = at::empty(shape, t.options());
    all_gather_into_async(t, out)->wait();
    return out;
  }
  void broadcast(at::Tensor& t, int root) override {
    if (t.is_cpu()) return boot_->broadcast(t, root);
    check_cuda(t);
    enqueue({t}, [&](void* s) {
      nccl::broadcast(t.data_ptr(), t.data_ptr(), t.numel(), to_dtype(t.scalar_type()), root, comm_, s);
    })->wait();
  }
  void barrier() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      DeviceGuard guard(device_);
      stream_synchronize(stream_);
    }
    boot_->barrier();
  }

  void reduce_scatter_sum(const at::Tensor& in, at::Tensor& out) override {
    if (in.is_cpu()) return boot_->reduce_scatter_sum(in, out);
    reduce_scatter_sum_async(in, out, false)->wait();
  }
  void all_gather_into(const at::Tensor& in, at::Tensor& out) override {
    if (in.is_cpu()) return boot_->all_gather_into(in, out);
    all_gather_into_async(in, out)->wait();
  }

  WorkPtr allreduce_sum_async(at::Tensor t, bool average) override {
    if (t.is_cpu()) return boot_->allreduce_sum_async(t, average);
    check_cuda(t);
    return enqueue({t}, [&](void* s) {
      all_reduce(t.data_ptr(), t.data_ptr(), t.numel(), to_dtype(t.scalar_type()), average ? Op::avg : Op::sum,
                 comm_, s);
    });
  }

  WorkPtr reduce_scatter_sum_async(at::Tensor in, at::Tensor out, bool average) override {
    if (in.is_cpu()) return boot_->reduce_scatter_sum_async(in, out, average);
    check_cuda(in);
    check_cuda(out);
    TORCH_CHECK(in.scalar_type() == out.scalar_type(), "reduce_scatter: dtypes differ");
    TORCH_CHECK(in.numel() == out.numel() * size(), "reduce_scatter: in has ", in.numel(), " elements, expected ",
                size(), " x ", out.numel());
    return enqueue({in, out}, [&](void* s) {
      reduce_scatter(in.data_ptr(), out.data_ptr(), out.numel(), to_dtype(in.scalar_type()),
                     average ? Op::avg : Op::sum, comm_, s);
    });
  }

  WorkPtr reduce_scatter_v_sum_async(at::Tensor in, at::Tensor out, std::vector<int64_t> counts,
                                     bool average) override {
    if (in.is_cpu()) return boot_->reduce_scatter_v_sum_async(in, out, std::move(counts), average);
    check_cuda(in);
    check_cuda(out);
    TORCH_CHECK(static_cast<int>(counts.size()) == size(), "reduce_scatter_v: one count per rank");
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    TORCH_CHECK(in.numel() == total, "reduce_scatter_v: in has ", in.numel(), " elements, counts sum to ", total);
    TORCH_CHECK(out.numel() == counts[rank()], "reduce_scatter_v: out has the wrong size");
    // NCCL has no variable-count reduce-scatter: one ncclReduce per owning rank, grouped
    return enqueue({in, out}, [&](void* s) {
      const DType t = to_dtype(in.scalar_type());
      const int64_t elem = in.element_size();
      auto* base = static_cast<char*>(in.data_ptr());
      group_start();
      int64_t off = 0;
      for (int r = 0; r < size(); ++r) {
        if (counts[r] > 0) {
          void* send = base + off * elem;
          void* recv = r == rank() ? out.data_ptr() : send;  // ignored on non-root ranks
          reduce(send, recv, counts[r], t, average ? Op::avg : Op::sum, r, comm_, s);
        }
        off += counts[r];
      }
      group_end();
    });
  }

  WorkPtr all_gather_into_async(at::Tensor in, at::Tensor out) override {
    if (in.is_cpu()) return boot_->all_gather_into_async(in, out);
    check_cuda(in);
    check_cuda(out);
    TORCH_CHECK(in.scalar_type() == out.scalar_type(), "all_gather: dtypes differ");
    TORCH_CHECK(out.numel() == in.numel() * size(), "all_gather: out has ", out.numel(), " elements, expected ",
                size(), " x ", in.numel());
    // NCCL supports the in-place form (in == this rank's slice of out) directly
    return enqueue({in, out}, [&](void* s) {
      nccl::all_gather(in.data_ptr(), out.data_ptr(), in.numel(), to_dtype(in.scalar_type()), comm_, s);
    });
  }

 private:
  void check_cuda(const at::Tensor& t) const {
    TORCH_CHECK(t.defined() && t.is_cuda(), "NCCL comm: CUDA tensors only (CPU ones go over MPI)");
    TORCH_CHECK(t.device().index() == device_, "NCCL comm: tensor on cuda:", t.device().index(),
                ", communicator on cuda:", device_);
    TORCH_CHECK(t.is_contiguous(), "NCCL comm needs contiguous tensors");
  }

  template <class F>
  WorkPtr enqueue(std::vector<at::Tensor> tensors, F&& op) {
    std::lock_guard<std::mutex> lock(mu_);
    DeviceGuard guard(device_);
    void* current = glue_->current_stream(device_);
    void* ready = event_create();
    event_record(ready, current);
    stream_wait_event(stream_, ready);
    event_destroy(ready);  // CUDA releases it once the wait is resolved
    op(stream_);
    for (const auto& t : tensors) glue_->record_stream(t, stream_);
    void* done = event_create();
    event_record(done, stream_);
    return std::make_shared<NcclWork>(done, device_, glue_, std::move(tensors));
  }

  std::unique_ptr<Comm> boot_;
  const CudaGlue* glue_;
  int device_ = 0;
  void* comm_ = nullptr;
  void* stream_ = nullptr;
  std::mutex mu_;
};

}  // namespace

int local_rank_from_env() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
    if (const char* v = std::getenv(var)) return std::atoi(v);
  }
  return -1;
}

std::unique_ptr<Comm> create_comm(std::unique_ptr<Comm> bootstrap, const CudaGlue* glue) {
  return std::make_unique<NcclComm>(std::move(bootstrap), glue);
}

}  // namespace pc::nccl
