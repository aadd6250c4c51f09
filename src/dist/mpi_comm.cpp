// MPI backend of Comm for CPU tensors (DESIGN §4). Tensors must be contiguous and on CPU.
//
// Every MPI call of every MpiComm in the process runs on one communication thread, in the
// order the calls were issued (a FIFO). Synchronous calls enqueue and wait. This gives
//  - overlap: an allreduce started from an autograd hook runs while backward continues;
//  - one global order of collectives per process, identical on every rank as long as the
//    ranks issue their calls in the same order (which collectives require anyway);
//  - a single MPI caller, so MPI_THREAD_SERIALIZED is enough.
// float/double sums (gradients) use a ring reduce-scatter of our own (plus MPI_Allgatherv for
// allreduce) with the averaging fused in; other dtypes and ops go straight to MPI.
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "pyramidclip/dist/comm.h"

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;

MPI_Datatype mpi_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kChar: return MPI_INT8_T;
    case at::kBool: return MPI_C_BOOL;
    default: TORCH_CHECK(false, "MPI comm: unsupported dtype ", t);
  }
}

void check_cpu_contiguous(const at::Tensor& t) {
  TORCH_CHECK(t.defined(), "MPI comm: undefined tensor");
  TORCH_CHECK(t.device().is_cpu(), "MPI comm needs CPU tensors (NCCL serves CUDA)");
  TORCH_CHECK(t.is_contiguous(), "MPI comm needs contiguous tensors");
}

void check(int rc, const char* what) {
  TORCH_CHECK(rc == MPI_SUCCESS, what, " failed with MPI error ", rc);
}

int as_count(int64_t n, const char* what) {
  TORCH_CHECK(n >= 0 && n <= INT_MAX, what, ": ", n, " elements per rank exceed MPI's int count");
  return static_cast<int>(n);
}

// In-place division by the world size, on the communication thread. A plain loop: ATen ops on
// this thread would start their own OpenMP team, sized differently from the trainer's.
void divide(at::Tensor& t, int n) {
  if (t.numel() == 0) return;
  if (t.scalar_type() == at::kFloat) {
    float* p = t.data_ptr<float>();
    const float d = static_cast<float>(n);
    for (int64_t i = 0, e = t.numel(); i < e; ++i) p[i] /= d;
  } else if (t.scalar_type() == at::kDouble) {
    double* p = t.data_ptr<double>();
    const double d = static_cast<double>(n);
    for (int64_t i = 0, e = t.numel(); i < e; ++i) p[i] /= d;
  } else {
    TORCH_CHECK(false, "MPI comm: average needs a floating-point tensor, got ", t.scalar_type());
  }
}

// Ring reduce-scatter of float/double sums with MPI_Sendrecv + a local add. Open MPI 4.1's own
// MPI_Reduce_scatter(_block) ran 3-5x slower than this on the 2-core VM (with every
// coll_tuned algorithm), slower even than a whole MPI_Allreduce (bench/RESULTS.md). Blocks: rank k owns counts[k]
// elements at displs[k] of `in`. N-1 steps: at step s rank r sends the partial sum of block
// (r-1-s) mod N to r+1 and receives block (r-2-s) mod N from r-1, adding its own contribution;
// the last block received is its own. Runs in chunks of kRingChunk elements per block so that
// the scratch stays small and counts fit MPI's int. With average the division is fused into the
// final add ((a + b) / N, the same rounding as a separate division).
constexpr int64_t kRingChunk = int64_t{1} << 22;

template <class T>
void ring_reduce_scatter(const T* in, T* out, const std::vector<int64_t>& counts, MPI_Datatype type, MPI_Comm comm,
                         int rank, int size, bool average) {
  std::vector<int64_t> displs(size, 0);
  int64_t maxc = 0;
  for (int k = 0; k < size; ++k) {
    if (k > 0) displs[k] = displs[k - 1] + counts[k - 1];
    maxc = std::max(maxc, counts[k]);
  }
  const T div = static_cast<T>(size);
  if (size == 1) {
    for (int64_t i = 0; i < counts[0]; ++i) out[i] = average ? in[i] / div : in[i];
    return;
  }
  const int right = (rank + 1) % size, left = (rank - 1 + size) % size;
  const int64_t chunk = std::min(kRingChunk, maxc);
  // scratch kept per thread (the communication thread): a fresh, zeroed 2 x 16 MB per call cost
  // as much as the transfer of a 25 MB bucket here
  thread_local std::unique_ptr<char[]> scratch;
  thread_local int64_t scratch_bytes = 0;
  const int64_t need = 2 * chunk * static_cast<int64_t>(sizeof(T));
  if (scratch_bytes < need) {
    scratch.reset(new char[need]);
    scratch_bytes = need;
  }
  T* recv = reinterpret_cast<T*>(scratch.get());
  T* send = recv + chunk;
  auto len = [&](int block, int64_t off) { return std::max<int64_t>(0, std::min(chunk, counts[block] - off)); };
  for (int64_t off = 0; off < maxc; off += chunk) {
    for (int s = 0; s < size - 1; ++s) {
      const int sb = ((rank - 1 - s) % size + size) % size, rb = ((rank - 2 - s) % size + size) % size;
      const T* sp = s == 0 ? in + displs[sb] + off : send;
      const int64_t sn = len(sb, off), rn = len(rb, off);
      check(MPI_Sendrecv(sp, static_cast<int>(sn), type, right, 0, recv, static_cast<int>(rn), type, left, 0,
                         comm, MPI_STATUS_IGNORE),
            "MPI_Sendrecv (reduce-scatter)");
      const T* own = in + displs[rb] + off;
      if (s < size - 2) {
        for (int64_t i = 0; i < rn; ++i) send[i] = recv[i] + own[i];
      } else if (average) {
        for (int64_t i = 0; i < rn; ++i) out[off + i] = (recv[i] + own[i]) / div;
      } else {
        for (int64_t i = 0; i < rn; ++i) out[off + i] = recv[i] + own[i];
      }
    }
  }
}

// In-place float/double allreduce = ring reduce-scatter (division fused) + in-place
// MPI_Allgatherv: one pass fewer than MPI_Allreduce followed by a division, the same traffic.
// Blocks as equal as possible (the first numel % N ranks get one more element).
template <class T>
void ring_allreduce(T* data, int64_t numel, MPI_Datatype type, MPI_Comm comm, int rank, int size, bool average) {
  std::vector<int64_t> counts(size);
  for (int k = 0; k < size; ++k) counts[k] = numel / size + (k < numel % size ? 1 : 0);
  std::vector<int> icounts(size), idispls(size);
  int64_t d = 0;
  for (int k = 0; k < size; ++k) {
    icounts[k] = as_count(counts[k], "allreduce");
    idispls[k] = as_count(d, "allreduce");  // offsets beyond int: callers use MPI_Allreduce instead
    d += counts[k];
  }
  ring_reduce_scatter(data, data + idispls[rank], counts, type, comm, rank, size, average);
  check(MPI_Allgatherv(MPI_IN_PLACE, 0, type, data, icounts.data(), idispls.data(), type, comm), "MPI_Allgatherv");
}

// Sum reduce-scatter of contiguous CPU tensors: the ring for float/double, MPI otherwise.
void reduce_scatter(const at::Tensor& in, const at::Tensor& out, const std::vector<int64_t>& counts, MPI_Comm comm,
                    int rank, int size, bool average) {
  if (in.scalar_type() == at::kFloat) {
    ring_reduce_scatter(in.data_ptr<float>(), out.data_ptr<float>(), counts, MPI_FLOAT, comm, rank, size, average);
  } else if (in.scalar_type() == at::kDouble) {
    ring_reduce_scatter(in.data_ptr<double>(), out.data_ptr<double>(), counts, MPI_DOUBLE, comm, rank, size, average);
  } else {
    TORCH_CHECK(!average, "MPI comm: average needs a floating-point tensor");
    std::vector<int> icounts(counts.begin(), counts.end());
    check(MPI_Reduce_scatter(in.data_ptr(), out.data_ptr(), icounts.data(), mpi_type(in.scalar_type()), MPI_SUM, comm),
          "MPI_Reduce_scatter");
  }
}

class MpiWork final : public Work {
 public:
  explicit MpiWork(std::function<void()> fn) : fn_(std::move(fn)) {}

  void run() {
    const auto t0 = Clock::now();
    try {
      fn_();
    } catch (...) {
      error_ = std::current_exception();
    }
    fn_ = nullptr;  // drops the captured tensors on this thread
    std::lock_guard<std::mutex> lock(mu_);
    seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
    done_ = true;
    cv_.notify_all();
  }

  void wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    if (error_) std::rethrow_exception(error_);
  }
  bool completed() override {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  double seconds() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return seconds_;
  }

 private:
  std::function<void()> fn_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  double seconds_ = 0;
  std::exception_ptr error_;
};

// The process-wide communication thread, shared by all MpiComm objects (created with the first,
// joined with the last).
class MpiExecutor {
 public:
  static std::shared_ptr<MpiExecutor> acquire() {
    static std::mutex mu;
    static std::weak_ptr<MpiExecutor> current;
    std::lock_guard<std::mutex> lock(mu);
    auto e = current.lock();
    if (!e) {
      e = std::make_shared<MpiExecutor>();
      current = e;
    }
    return e;
  }

  MpiExecutor() {
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    threaded_ = level >= MPI_THREAD_SERIALIZED;
    if (threaded_) thread_ = std::thread([this] { loop(); });
  }
  ~MpiExecutor() {
    if (!threaded_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  MpiExecutor(const MpiExecutor&) = delete;
  MpiExecutor& operator=(const MpiExecutor&) = delete;

  bool threaded() const { return threaded_; }

  std::shared_ptr<MpiWork> submit(std::function<void()> fn) {
    auto w = std::make_shared<MpiWork>(std::move(fn));
    if (!threaded_ || std::this_thread::get_id() == thread_.get_id()) {
      w->run();
      return w;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(w);
    }
    cv_.notify_one();
    return w;
  }

  void run_sync(std::function<void()> fn) { submit(std::move(fn))->wait(); }

 private:
  void loop() {
    for (;;) {
      std::shared_ptr<MpiWork> w;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and drained
        w = std::move(queue_.front());
        queue_.pop_front();
      }
      w->run();
    }
  }

  bool threaded_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<MpiWork>> queue_;
  bool stop_ = false;
};

class MpiComm final : public Comm {
 public:
  MpiComm() : exec_(MpiExecutor::acquire()) {
    exec_->run_sync([this] {
      check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
      MPI_Comm_rank(comm_, &rank_);
      MPI_Comm_size(comm_, &size_);
    });
  }
  ~MpiComm() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) {
      try {
        exec_->run_sync([this] { MPI_Comm_free(&comm_); });
      } catch (...) {
      }
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void allreduce_sum(at::Tensor& t) override { allreduce_sum_async(t, false)->wait(); }
  void allreduce_max(at::Tensor& t) override {
    check_cpu_contiguous(t);
    exec_->run_sync([this, t] { allreduce(t, MPI_MAX); });
  }

  at::Tensor all_gather(const at::Tensor& t) override {
    check_cpu_contiguous(t);
    std::vector<int64_t> shape = t.sizes().vec();
    TORCH_CHECK(!shape.empty(), "all_gather needs at least one dimension");
    shape[0] *= size_;
    at::Tensor out = at::empty(shape, t.options());
    all_gather_into_async(t, out)->wait();
    return out;
  }

  void broadcast(at::Tensor& t, int root) override {
    check_cpu_contiguous(t);
    exec_->run_sync([this, t, root] {
      const int64_t elem = t.element_size();
      auto* base = static_cast<char*>(t.data_ptr());
      for (int64_t off = 0; off < t.numel(); off += kChunk) {
        int n = static_cast<int>(std::min(kChunk, t.numel() - off));
        check(MPI_Bcast(base + off * elem, n, mpi_type(t.scalar_type()), root, comm_), "MPI_Bcast");
      }
    });
  }

  void barrier() override {
    exec_->run_sync([this] { check(MPI_Barrier(comm_), "MPI_Barrier"); });
  }

  void reduce_scatter_sum(const at::Tensor& in, at::Tensor& out) override {
    reduce_scatter_sum_async(in, out, false)->wait();
  }
  void all_gather_into(const at::Tensor& in, at::Tensor& out) override { all_gather_into_async(in, out)->wait(); }

  WorkPtr allreduce_sum_async(at::Tensor t, bool average) override {
    check_cpu_contiguous(t);
    if (size_ == 1) return exec_->submit([] {});  // the sum (and average) of one rank is the tensor itself
    return exec_->submit([this, t, average]() mutable {
      // float/double below 2^31 elements: the ring (see ring_allreduce); else MPI_Allreduce
      if (t.numel() < INT_MAX && t.scalar_type() == at::kFloat) {
        ring_allreduce(t.data_ptr<float>(), t.numel(), MPI_FLOAT, comm_, rank_, size_, average);
      } else if (t.numel() < INT_MAX && t.scalar_type() == at::kDouble) {
        ring_allreduce(t.data_ptr<double>(), t.numel(), MPI_DOUBLE, comm_, rank_, size_, average);
      } else {
        allreduce(t, MPI_SUM);
        if (average) divide(t, size_);
      }
    });
  }

  WorkPtr reduce_scatter_sum_async(at::Tensor in, at::Tensor out, bool average) override {
    check_cpu_contiguous(in);
    check_cpu_contiguous(out);
    TORCH_CHECK(in.scalar_type() == out.scalar_type(), "reduce_scatter: dtypes differ");
    TORCH_CHECK(in.numel() == out.numel() * size_, "reduce_scatter: in has ", in.numel(), " elements, expected ",
                size_, " x ", out.numel());
    as_count(out.numel(), "reduce_scatter");
    return exec_->submit([this, in, out, average]() mutable {
      reduce_scatter(in, out, std::vector<int64_t>(size_, out.numel()), comm_, rank_, size_, average);
    });
  }

  WorkPtr reduce_scatter_v_sum_async(at::Tensor in, at::Tensor out, std::vector<int64_t> counts,
                                     bool average) override {
    check_cpu_contiguous(in);
    check_cpu_contiguous(out);
    TORCH_CHECK(in.scalar_type() == out.scalar_type(), "reduce_scatter_v: dtypes differ");
    TORCH_CHECK(static_cast<int>(counts.size()) == size_, "reduce_scatter_v: ", counts.size(), " counts for ", size_,
                " ranks");
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      TORCH_CHECK(counts[r] >= 0, "reduce_scatter_v: negative count");
      total += counts[r];
    }
    TORCH_CHECK(in.numel() == total, "reduce_scatter_v: in has ", in.numel(), " elements, counts sum to ", total);
    TORCH_CHECK(out.numel() == counts[rank_], "reduce_scatter_v: out has ", out.numel(), " elements, expected ",
                counts[rank_]);
    return exec_->submit([this, in, out, counts, average]() mutable {
      reduce_scatter(in, out, counts, comm_, rank_, size_, average);
    });
  }

  WorkPtr all_gather_into_async(at::Tensor in, at::Tensor out) override {
    check_cpu_contiguous(in);
    check_cpu_contiguous(out);
    TORCH_CHECK(in.scalar_type() == out.scalar_type(), "all_gather: dtypes differ");
    TORCH_CHECK(out.numel() == in.numel() * size_, "all_gather: out has ", out.numel(), " elements, expected ",
                size_, " x ", in.numel());
    const int n = as_count(in.numel(), "all_gather");
    // in == this rank's slice of out: MPI_IN_PLACE (MPI forbids aliased send/receive buffers)
    const bool in_place = in.numel() > 0 && static_cast<char*>(in.data_ptr()) ==
                                                static_cast<char*>(out.data_ptr()) + rank_ * n * in.element_size();
    return exec_->submit([this, in, out, n, in_place]() mutable {
      check(MPI_Allgather(in_place ? MPI_IN_PLACE : in.data_ptr(), n, mpi_type(in.scalar_type()), out.data_ptr(), n,
                          mpi_type(out.scalar_type()), comm_),
            "MPI_Allgather");
    });
  }

 private:
  static constexpr int64_t kChunk = int64_t{1} << 30;  // MPI counts are int

  void allreduce(const at::Tensor& t, MPI_Op op) {
    const int64_t elem = t.element_size();
    auto* base = static_cast<char*>(t.data_ptr());
    for (int64_t off = 0; off < t.numel(); off += kChunk) {
      int n = static_cast<int>(std::min(kChunk, t.numel() - off));
      check(MPI_Allreduce(MPI_IN_PLACE, base + off * elem, n, mpi_type(t.scalar_type()), op, comm_),
            "MPI_Allreduce");
    }
  }

  std::shared_ptr<MpiExecutor> exec_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm() { return std::make_unique<MpiComm>(); }

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &thread_level_);
    owns_ = true;
  } else {
    MPI_Query_thread(&thread_level_);
  }
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

}  // namespace pc
