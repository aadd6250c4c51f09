// Activation checkpointing as a custom autograd function (see checkpoint.h).
//
// The function's autograd inputs are x and the parameters that need gradients; its backward
// recomputes the block on a detached copy of x and asks the engine (torch::autograd::grad) for
// the gradients of x and the parameters, which it returns as its own input gradients. The
// parameters' gradients therefore reach their AccumulateGrad nodes through the outer graph, as
// without checkpointing (their hooks fire as usual), and .grad is never written by the inner call.
#include "pyramidclip/model/checkpoint.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <mutex>
#include <utility>

#include "pyramidclip/model/batch_norm.h"

namespace pc {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct AutocastState {
  bool cpu = false, cuda = false, cache = true;
  at::ScalarType cpu_dtype = at::kBFloat16, cuda_dtype = at::kHalf;

  static AutocastState current() {
    AutocastState s;
    s.cpu = at::autocast::is_cpu_enabled();
    s.cuda = at::autocast::is_enabled();
    s.cache = at::autocast::is_autocast_cache_enabled();
    s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
    s.cuda_dtype = at::autocast::get_autocast_gpu_dtype();
    return s;
  }
  void apply() const {
    at::autocast::set_cpu_enabled(cpu);
    at::autocast::set_enabled(cuda);
    at::autocast::set_autocast_cache_enabled(cache);
    at::autocast::set_autocast_cpu_dtype(cpu_dtype);
    at::autocast::set_autocast_gpu_dtype(cuda_dtype);
  }
};

// Sets an autocast state (with the cast cache off) and restores the previous one on exit.
class AutocastScope {
 public:
  explicit AutocastScope(AutocastState s) : prev_(AutocastState::current()) {
    s.cache = false;
    s.apply();
  }
  ~AutocastScope() { prev_.apply(); }

 private:
  AutocastState prev_;
};

at::Tensor get_rng_state(const at::Device& device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const at::Device& device, const at::Tensor& state) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

struct RngStates {
  std::vector<std::pair<at::Device, at::Tensor>> states;  // CPU always, plus x's accelerator

  static RngStates capture(const at::Tensor& x) {
    RngStates r;
    r.states.emplace_back(at::Device(at::kCPU), get_rng_state(at::Device(at::kCPU)));
    if (x.is_cuda()) r.states.emplace_back(x.device(), get_rng_state(x.device()));
    return r;
  }
  void restore() const {
    for (const auto& [device, state] : states) set_rng_state(device, state);
  }
};

// Everything the backward pass needs besides the saved input (an IValue capsule in the context).
struct CheckpointState : torch::CustomClassHolder {
  CheckpointedFn fn;
  std::vector<at::Tensor> params;  // the autograd inputs after x, in order
  RngStates rng;
  AutocastState autocast;
  detail::BnTape bn_tape;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const c10::intrusive_ptr<CheckpointState>& state, const at::Tensor& x,
                            at::TensorList /*params: autograd inputs only*/) {
    state->rng = RngStates::capture(x);
    state->autocast = AutocastState::current();
    at::Tensor out;
    {
      AutocastScope autocast(state->autocast);  // same state, cast cache off: no grad-less cached casts
      detail::BnTapeScope tape(&state->bn_tape);
      out = state->fn(x);  // grad mode is off here (custom function forward)
    }
    ctx->save_for_backward({x});
    ctx->saved_data["state"] = at::IValue::make_capsule(state);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto state = c10::static_intrusive_pointer_cast<CheckpointState>(ctx->saved_data["state"].toCapsule());
    const at::Tensor x = ctx->get_saved_variables()[0];
    const size_t n_params = state->params.size();
    variable_list result(2 + n_params);  // [state (not a tensor), x, params...]
    if (!grad_outputs[0].defined()) return result;

    const bool need_x = ctx->needs_input_grad(0) && x.is_floating_point();
    at::Tensor xd = x.detach();
    xd.requires_grad_(need_x);
    at::Tensor out;
    {
      const RngStates now = RngStates::capture(x);
      state->rng.restore();
      AutocastScope autocast(state->autocast);
      state->bn_tape.replay = true;
      state->bn_tape.cursor = 0;  // from the start: a retained graph may be backpropagated again
      detail::BnTapeScope tape(&state->bn_tape);
      torch::AutoGradMode grad(true);
      try {
        out = state->fn(xd);
      } catch (...) {
        now.restore();
        throw;
      }
      now.restore();
    }
    TORCH_CHECK(state->bn_tape.cursor == state->bn_tape.stats.size(),
                "checkpoint: the recompute used fewer SyncBN statistics than recorded");

    std::vector<at::Tensor> inputs;
    std::vector<size_t> where;  // result slot of each entry of inputs
    if (need_x) {
      inputs.push_back(xd);
      where.push_back(1);
    }
    for (size_t i = 0; i < n_params; ++i)
      if (ctx->needs_input_grad(1 + i)) {
        inputs.push_back(state->params[i]);
        where.push_back(2 + i);
      }
    if (inputs.empty() || !out.requires_grad()) return result;
    auto grads = torch::autograd::grad({out}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t j = 0; j < grads.size(); ++j) result[where[j]] = grads[j];
    return result;
  }
};

}  // namespace

at::Tensor checkpoint(CheckpointedFn fn, const at::Tensor& x, const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> trainable;
  for (const auto& p : params)
    if (p.defined() && p.requires_grad()) trainable.push_back(p);
  if (!torch::GradMode::is_enabled() || (!x.requires_grad() && trainable.empty())) return fn(x);
  auto state = c10::make_intrusive<CheckpointState>();
  state->fn = std::move(fn);
  state->params = trainable;
  return CheckpointFunction::apply(state, x, at::TensorList(trainable));
}

}  // namespace pc
