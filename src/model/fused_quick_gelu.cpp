// Autograd wrapper of the QuickGELU kernel (quick_gelu_kernel.cpp): saves only the input and
// recomputes the sigmoid in the backward pass, chunks spread over the intra-op threads.
#include <torch/torch.h>

#include "pyramidclip/model/layers.h"
#include "pyramidclip/model/quick_gelu_kernel.h"

namespace pc {
namespace {

constexpr int64_t kGrain = int64_t{1} << 15;  // elements per parallel task

class FusedQuickGelu : public torch::autograd::Function<FusedQuickGelu> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in) {
    const at::Tensor x = x_in.contiguous();
    at::Tensor y = at::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t lo, int64_t hi) { kernel::quick_gelu_forward(xp + lo, yp + lo, hi - lo); });
    ctx->save_for_backward({x});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dx = at::empty_like(x);
    const float* xp = x.data_ptr<float>();
    const float* dyp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGrain,
                     [&](int64_t lo, int64_t hi) { kernel::quick_gelu_backward(xp + lo, dyp + lo, dxp + lo, hi - lo); });
    return {dx};
  }
};

}  // namespace

bool fused_quick_gelu_applies(const at::Tensor& x) {
  return fused_kernels_enabled() && x.device().is_cpu() && x.scalar_type() == at::kFloat;
}

at::Tensor fused_quick_gelu(const at::Tensor& x) {
  TORCH_CHECK(fused_quick_gelu_applies(x), "fused_quick_gelu: needs a CPU float tensor");
  return FusedQuickGelu::apply(x);
}

}  // namespace pc
