#pragma once
// Activation checkpointing (issue #4): trade one extra forward of a block for not keeping its
// intermediate activations between the forward and the backward pass.
#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace pc {

using CheckpointedFn = std::function<at::Tensor(const at::Tensor&)>;

// Returns fn(x), computed without recording the graph inside fn: only x is saved. The backward
// pass recomputes fn(x) with gradients and backpropagates through it, so the gradients of x and
// of `params` equal those of a plain fn(x). The recompute runs with the state of the first pass:
//  - the CPU RNG (and, for CUDA inputs, that device's RNG) as it was when fn first ran; the
//    caller's RNG state is restored afterwards;
//  - the autocast state (enabled devices, dtypes) of the first pass, although the backward
//    usually runs outside the autocast region; the autocast weight-cast cache is off in both
//    passes, so the first pass's casts made without grad are never reused by the recompute;
//  - BatchNorm (batch_norm.h): the recompute leaves running statistics and num_batches_tracked
//    alone (they were updated once, by the first pass), and SyncBN reuses the global statistics
//    of the first pass instead of communicating again.
// params: every tensor fn uses that may need a gradient (a module's parameters()); those that do
// not require grad are ignored. fn must be deterministic given the RNG state and keep any other
// tensors it captures (masks, modules) alive: the closure lives until the backward pass.
// Without grad mode, or when neither x nor any param requires grad, it simply returns fn(x).
at::Tensor checkpoint(CheckpointedFn fn, const at::Tensor& x, const std::vector<at::Tensor>& params);

}  // namespace pc
