// Feed-forward parts of a transformer block: CLIP's MLP and the official PyramidCLIP LeFF.
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include <cmath>

#include "pyramidclip/model/layers.h"

namespace pc {

at::Tensor quick_gelu(const at::Tensor& x) { return x * at::sigmoid(kQuickGeluAlpha * x); }

at::Tensor layer_norm(torch::nn::LayerNormImpl& ln, const at::Tensor& x) {
  const bool reduced = x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf;
  return ln.forward(reduced ? x.to(at::kFloat) : x);
}

MlpImpl::MlpImpl(int64_t width) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, 4 * width));
  c_proj = register_module("c_proj", torch::nn::Linear(4 * width, width));
}

// c_proj(QuickGELU(c_fc x)). On the CPU in fp32 the fused kernel; elsewhere QuickGELU(h) =
// silu(a h) / a with the factor a moved into the weights, so the wide [tokens, 4D] activation sees
// one silu pass instead of three elementwise ops (and one silu_backward instead of four) — at
// the price of scaled weight copies, which cost more than they save at small batches.
at::Tensor MlpImpl::forward(const at::Tensor& x) {
  // (under CPU autocast the linear layers run in bf16, so the input's dtype does not decide)
  if (fused_quick_gelu_applies(x) && !at::autocast::is_cpu_enabled())
    return c_proj->forward(fused_quick_gelu(c_fc->forward(x)));
  const double a = kQuickGeluAlpha;
  at::Tensor h = at::silu(at::linear(x, c_fc->weight * a, c_fc->bias * a));
  return at::linear(h, c_proj->weight * (1.0 / a), c_proj->bias);
}

DepConvImpl::DepConvImpl(int64_t channels) {
  depconv = register_module(
      "depconv",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).stride(1).padding(1).groups(channels).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(channels));
}

LeFFImpl::LeFFImpl(int64_t width) {
  const int64_t hidden = 4 * width;
  linear1 = register_module("linear1", torch::nn::Linear(width, hidden));
  ac1 = register_module("ac1", std::make_shared<BnHolderImpl<torch::nn::BatchNorm1d>>(hidden));
  depConv = register_module("depConv", DepConv(hidden));
  linear2 = register_module("linear2", torch::nn::Linear(hidden, width));
  ac2 = register_module("ac2", std::make_shared<BnHolderImpl<torch::nn::BatchNorm1d>>(width));
}

at::Tensor LeFFImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1) - 1, d = x.size(2);
  const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  TORCH_CHECK(g * g == n, "LeFF needs a square patch grid, got ", n, " patch tokens");
  // Patch tokens as rows [B*N, C] (row-major over the grid, as conv1's flatten(2)): every
  // BatchNorm runs on rows (per-channel statistics as BN1d on [B, C, L] and BN2d on [B, C, H, W]), the depthwise conv on the same memory viewed as channels-last NCHW.
  // Each BN + QuickGELU is silu(a * BN(x)) / a: a scales the BN's affine parameters, 1/a the next
  // linear op's weights (as in Mlp), so the wide activations see one fused silu pass each.
  const double a = kQuickGeluAlpha;
  at::Tensor h = at::linear(x.narrow(1, 1, n), linear1->weight, linear1->bias);
  const int64_t c = h.size(2);
  h = at::silu(batch_norm(*ac1->bn, h.view({b * n, c}), bn_sync, a));
  h = at::conv2d(h.view({b, g, g, c}).permute({0, 3, 1, 2}), depConv->depconv->weight * (1.0 / a), /*bias=*/{},
                 /*stride=*/1, /*padding=*/1, /*dilation=*/1, /*groups=*/c);
  h = at::silu(batch_norm(*depConv->bn, h.permute({0, 2, 3, 1}).reshape({b * n, c}), bn_sync, a));
  h = at::silu(batch_norm(*ac2->bn, at::linear(h, linear2->weight * (1.0 / a), linear2->bias), bn_sync, a));
  // the class token bypasses LeFF: official forward returns cat([clsToken, x]) with clsToken = its input
  return at::cat({x.narrow(1, 0, 1), h.view({b, n, d}) * (1.0 / a)}, 1);
}

}  // namespace pc
