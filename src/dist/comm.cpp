// Backend-independent parts of Comm: default (synchronous) forms of the newer calls in terms of
// the basic ones, and the backend factory.
#include "pyramidclip/dist/comm.h"

#include <torch/torch.h>

#include "pyramidclip/dist/nccl_comm.h"

namespace pc {
namespace {

class DoneWork final : public Work {
 public:
  void wait() override {}
  bool completed() override { return true; }
};

at::Tensor flat(const at::Tensor& t) {
  TORCH_CHECK(t.is_contiguous(), "comm: contiguous tensors only");
  return t.view({-1});
}

}  // namespace

void Comm::reduce_scatter_sum(const at::Tensor& in, at::Tensor& out) {
  TORCH_CHECK(in.numel() == out.numel() * size(), "reduce_scatter: in has ", in.numel(), " elements, expected ",
              size(), " x ", out.numel());
  at::Tensor sum = flat(in).clone();
  allreduce_sum(sum);
  flat(out).copy_(sum.narrow(0, out.numel() * rank(), out.numel()));
}

void Comm::all_gather_into(const at::Tensor& in, at::Tensor& out) {
  TORCH_CHECK(out.numel() == in.numel() * size(), "all_gather: out has ", out.numel(), " elements, expected ",
              size(), " x ", in.numel());
  flat(out).copy_(all_gather(flat(in).clone()));
}

WorkPtr Comm::allreduce_sum_async(at::Tensor t, bool average) {
  allreduce_sum(t);
  if (average) t.div_(size());
  return std::make_shared<DoneWork>();
}

WorkPtr Comm::reduce_scatter_sum_async(at::Tensor in, at::Tensor out, bool average) {
  reduce_scatter_sum(in, out);
  if (average) out.div_(size());
  return std::make_shared<DoneWork>();
}

WorkPtr Comm::reduce_scatter_v_sum_async(at::Tensor in, at::Tensor out, std::vector<int64_t> counts,
                                         bool average) {
  TORCH_CHECK(static_cast<int>(counts.size()) == size(), "reduce_scatter_v: one count per rank");
  at::Tensor sum = flat(in).clone();
  allreduce_sum(sum);
  int64_t off = 0;
  for (int r = 0; r < rank(); ++r) off += counts[r];
  TORCH_CHECK(out.numel() == counts[rank()], "reduce_scatter_v: out has the wrong size");
  flat(out).copy_(sum.narrow(0, off, counts[rank()]));
  if (average) out.div_(size());
  return std::make_shared<DoneWork>();
}

WorkPtr Comm::all_gather_into_async(at::Tensor in, at::Tensor out) {
  all_gather_into(in, out);
  return std::make_shared<DoneWork>();
}

std::unique_ptr<Comm> make_comm(const std::string& backend) {
  if (backend == "mpi") return make_mpi_comm();
  if (backend == "nccl") {
    TORCH_CHECK(nccl_available(), "comm backend 'nccl': this build has no NCCL backend (it needs nccl.h, libnccl and "
                                  "a CUDA LibTorch at configure time); use 'mpi'");
    return make_nccl_comm();
  }
  if (backend == "auto") return nccl_available() && nccl_device_count() > 0 ? make_nccl_comm() : make_mpi_comm();
  TORCH_CHECK(false, "unknown comm backend '", backend, "' (expected mpi, nccl or auto)");
}

}  // namespace pc
