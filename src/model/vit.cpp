// CLIP VisionTransformer (standard and official PyramidCLIP) with the PyramidCLIP ROI path.
#include <torch/torch.h>

#include <cmath>

#include "pyramidclip/model/vision.h"
#include "pyramidclip/util/errors.h"

namespace pc {

VisionTransformerImpl::VisionTransformerImpl(const ModelConfig& cfg)
    : patch(cfg.patch_size),
      grid(cfg.image_size / cfg.patch_size),
      width(cfg.vision_width),
      heads(cfg.vision_heads),
      roi_begin(cfg.vision_layers - cfg.roi_layers) {
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, width, patch).stride(patch).bias(false)));
  if (cfg.official) conv1->weight.set_requires_grad(false);  // official: freeze_conv1
  const double scale = std::pow(static_cast<double>(width), -0.5);
  if (cfg.with_roi) proj_pre = register_parameter("proj_pre", torch::randn({cfg.roi_dim, width}) * scale);
  class_embedding = register_parameter("class_embedding", torch::randn({width}) * scale);
  positional_embedding = register_parameter("positional_embedding", torch::randn({grid * grid + 1, width}) * scale);
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  transformer = register_module(
      "transformer", Transformer(width, cfg.vision_layers, heads, cfg.official ? cfg.leff_layers : 0, cfg.official));
  ln_post = register_module("ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  proj = register_parameter("proj", torch::randn({width, cfg.embed_dim}) * scale);
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& images) {
  const int64_t b = images.size(0);
  // conv1 (kernel = stride = patch, no bias) is one GEMM over the non-overlapping patches,
  // in conv1's (c, kh, kw) weight order and row-major grid order.
  at::Tensor patches = images.reshape({b, 3, grid, patch, grid, patch})
                           .permute({0, 2, 4, 1, 3, 5})
                           .reshape({b, grid * grid, 3 * patch * patch});
  at::Tensor x = at::linear(patches, conv1->weight.view({width, 3 * patch * patch}));
  x = at::cat({class_embedding.view({1, 1, width}).expand({b, 1, width}), x}, 1) + positional_embedding;
  x = transformer->forward_pooled(layer_norm(*ln_pre, x), {}, {}, {});  // class token (row 0) only
  return layer_norm(*ln_post, x).mm(proj);
}

at::Tensor VisionTransformerImpl::forward_roi(const at::Tensor& roi, const at::Tensor& keep) {
  const int64_t b = roi.size(0);
  // official: x @ proj_pre, the shared class token in front, ln_pre, no positional embedding
  at::Tensor x = at::matmul(roi, proj_pre);
  x = layer_norm(*ln_pre, at::cat({class_embedding.view({1, 1, width}).expand({b, 1, width}), x}, 1));
  at::Tensor bias;
  if (keep.defined()) {
    at::Tensor keep_all = at::cat({at::ones({b, 1}, keep.options()), keep}, 1);  // the class token is always kept
    bias = expand_bias_to_heads(key_padding_bias(keep_all), heads);
  }
  x = transformer->forward_pooled(x, bias, {}, bias, roi_begin, transformer->layers);  // class token only
  return layer_norm(*ln_post, x).mm(proj);
}

}  // namespace pc
