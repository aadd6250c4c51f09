// All-gather whose backward returns each rank the sum over ranks of the gradient of its own
// slice: the local-loss form (local rows x global columns) then gives exactly the gradient
// of the global-batch contrastive loss after the usual gradient averaging.
#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"

namespace pc {
namespace {

struct AllGatherFn : torch::autograd::Function<AllGatherFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, Comm* comm) {
    ctx->saved_data["rows"] = x.size(0);
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    return comm->all_gather(x.contiguous());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* comm = reinterpret_cast<Comm*>(ctx->saved_data["comm"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    at::Tensor g = grads[0].contiguous().clone();
    comm->allreduce_sum(g);  // a reduce-scatter would move less data; N x rows x D is small here
    return {g.narrow(0, rows * comm->rank(), rows).contiguous(), at::Tensor()};
  }
};

}  // namespace

at::Tensor all_gather_with_grad(const at::Tensor& x, Comm* comm) {
  if (comm == nullptr || comm->size() == 1) return x;
  return AllGatherFn::apply(x, comm);
}

}  // namespace pc
