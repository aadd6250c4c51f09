// MPI backend of Comm for CPU tensors (DESIGN §4). Tensors must be contiguous and on CPU.
#include <mpi.h>
#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"

namespace pc {
namespace {

MPI_Datatype mpi_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kBool: return MPI_C_BOOL;
    default: TORCH_CHECK(false, "MPI comm: unsupported dtype ", t);
  }
}

void check_cpu_contiguous(const at::Tensor& t) {
  TORCH_CHECK(t.device().is_cpu(), "MPI comm needs CPU tensors (NCCL serves CUDA)");
  TORCH_CHECK(t.is_contiguous(), "MPI comm needs contiguous tensors");
}

void check(int rc, const char* what) {
  TORCH_CHECK(rc == MPI_SUCCESS, what, " failed with MPI error ", rc);
}

class MpiComm final : public Comm {
 public:
  MpiComm() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(at::Tensor& t) override { allreduce(t, MPI_SUM); }
  void allreduce_max(at::Tensor& t) override { allreduce(t, MPI_MAX); }

  at::Tensor all_gather(const at::Tensor& t) override {
    check_cpu_contiguous(t);
    std::vector<int64_t> shape = t.sizes().vec();
    TORCH_CHECK(!shape.empty(), "all_gather needs at least one dimension");
    shape[0] *= size_;
    at::Tensor out = at::empty(shape, t.options());
    check(MPI_Allgather(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type()), out.data_ptr(),
                        static_cast<int>(t.numel()), mpi_type(t.scalar_type()), MPI_COMM_WORLD),
          "MPI_Allgather");
    return out;
  }

  void broadcast(at::Tensor& t, int root) override {
    check_cpu_contiguous(t);
    check(MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type()), root, MPI_COMM_WORLD),
          "MPI_Bcast");
  }

  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

 private:
  void allreduce(at::Tensor& t, MPI_Op op) {
    check_cpu_contiguous(t);
    // MPI counts are int: reduce very large buffers in chunks
    constexpr int64_t kChunk = int64_t{1} << 30;
    const int64_t elem = t.element_size();
    auto* base = static_cast<char*>(t.data_ptr());
    for (int64_t off = 0; off < t.numel(); off += kChunk) {
      int n = static_cast<int>(std::min(kChunk, t.numel() - off));
      check(MPI_Allreduce(MPI_IN_PLACE, base + off * elem, n, mpi_type(t.scalar_type()), op, MPI_COMM_WORLD),
            "MPI_Allreduce");
    }
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm() { return std::make_unique<MpiComm>(); }

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    MPI_Init(argc, argv);
    owns_ = true;
  }
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

}  // namespace pc
