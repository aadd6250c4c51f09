#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/grad_sync.h"

namespace pc {

void average_gradients(const std::vector<at::Tensor>& params, Comm& comm) {
  if (comm.size() == 1) return;
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  int64_t total = 0;
  for (const auto& p : params) {
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
    total += p.numel();
  }
  at::Tensor flat = at::empty({total}, params.front().options());  // one dtype: the fp32 master params
  int64_t off = 0;
  for (const auto& g : grads) {
    flat.narrow(0, off, g.numel()).copy_(g.reshape(-1));
    off += g.numel();
  }
  comm.allreduce_sum(flat);
  flat.div_(comm.size());
  off = 0;
  for (auto& g : grads) {
    g.copy_(flat.narrow(0, off, g.numel()).view_as(g));
    off += g.numel();
  }
}

void broadcast_parameters(const std::vector<at::Tensor>& tensors, Comm& comm) {
  if (comm.size() == 1) return;
  at::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    at::Tensor buf = t.detach().contiguous().clone();
    comm.broadcast(buf, 0);
    t.detach().copy_(buf);
  }
}

}  // namespace pc
