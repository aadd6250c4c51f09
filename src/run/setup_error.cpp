#include "pyramidclip/run/setup_error.h"

#include <torch/torch.h>

#include "pyramidclip/dist/comm.h"

namespace pc {

void raise_if_any_rank_failed(Comm& comm, const std::string& my_error, const std::string& elsewhere) {
  at::Tensor failed = torch::tensor({my_error.empty() ? 0 : 1}, torch::kInt);
  comm.allreduce_max(failed);
  if (failed.item<int>()) throw SetupError(my_error.empty() ? elsewhere : my_error);
}

void raise_if_rank0_failed(Comm& comm, const std::string& rank0_error, const std::string& elsewhere) {
  at::Tensor failed = torch::tensor({rank0_error.empty() ? 0 : 1}, torch::kInt);
  comm.broadcast(failed, 0);
  if (failed.item<int>()) throw SetupError(rank0_error.empty() ? elsewhere : rank0_error);
}

}  // namespace pc
