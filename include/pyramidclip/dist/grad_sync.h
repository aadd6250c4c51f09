#pragma once
// Gradient averaging over ranks through ONE flat buffer: ~70 separate allreduces cost
// 30-60 ms per step here, a single packed one ~8 ms (DESIGN §6).
#include <ATen/ATen.h>

#include <vector>

namespace pc {

class Comm;

// Averages the .grad() of `params` over all ranks in place. Parameters without a gradient
// on this step get zeros (every rank must contribute the same layout).
void average_gradients(const std::vector<at::Tensor>& params, Comm& comm);

// Makes every rank hold rank 0's values (initial weights).
void broadcast_parameters(const std::vector<at::Tensor>& tensors, Comm& comm);

}  // namespace pc
