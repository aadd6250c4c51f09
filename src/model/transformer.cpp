// Residual attention blocks and the block stack (CLIP's Transformer; the official PyramidCLIP
// variant splits it into resblocks1 / resblocks2).
#include <torch/torch.h>

#include <cmath>

#include "pyramidclip/model/checkpoint.h"
#include "pyramidclip/model/layers.h"

namespace pc {

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width, int64_t heads, bool leff) {
  attn = register_module("attn", MultiheadAttention(width, heads));
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  if (leff)
    leff_mlp = register_module("mlp", LeFF(width));
  else
    mlp = register_module("mlp", Mlp(width));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
}

at::Tensor ResidualAttentionBlockImpl::forward(const at::Tensor& x, const at::Tensor& bias) {
  at::Tensor h = x + attn->forward(layer_norm(*ln_1, x), bias);
  at::Tensor y = layer_norm(*ln_2, h);
  return h + (mlp ? mlp->forward(y) : leff_mlp->forward(y));
}

at::Tensor ResidualAttentionBlockImpl::forward_rows(const at::Tensor& x, const at::Tensor& rows,
                                                     const at::Tensor& bias) {
  TORCH_CHECK(mlp, "forward_rows needs a standard block (LeFF mixes rows)");
  at::Tensor h = pooled_rows(x, rows) + attn->forward_rows(layer_norm(*ln_1, x), rows, bias);
  return h + mlp->forward(layer_norm(*ln_2, h));
}

TransformerImpl::TransformerImpl(int64_t width_, int64_t layers_, int64_t heads_, int64_t split, bool leff)
    : width(width_), layers(layers_), heads(heads_) {
  if (split <= 0) {
    auto list = register_module("resblocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers; ++i) {
      blocks.emplace_back(width, heads, false);
      list->push_back(blocks.back());
    }
    return;
  }
  auto list1 = register_module("resblocks1", torch::nn::ModuleList());
  auto list2 = register_module("resblocks2", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    const bool first = i < split;
    blocks.emplace_back(width, heads, first && leff);
    (first ? list1 : list2)->push_back(blocks.back());
  }
}

at::Tensor TransformerImpl::forward(at::Tensor x, const at::Tensor& bias, int64_t begin, int64_t end) {
  if (end < 0) end = layers;
  return run_blocks(std::move(x), bias, begin, end, /*last_of_stack=*/true);
}

at::Tensor TransformerImpl::run_blocks(at::Tensor x, const at::Tensor& bias, int64_t begin, int64_t end,
                                       bool last_of_stack) {
  const bool ckpt = checkpoint && torch::GradMode::is_enabled();
  for (int64_t i = begin; i < end; ++i) {
    // The last block of the stack is not checkpointed (as torch's checkpoint_sequential): the
    // backward pass starts with it, so recomputing it would only redo its forward while its
    // activations would be alive at the same moment anyway.
    if (ckpt && (i + 1 < end || !last_of_stack)) {
      std::shared_ptr<ResidualAttentionBlockImpl> block = blocks[i].ptr();  // kept alive (with bias) until backward
      x = pc::checkpoint([block, bias](const at::Tensor& in) { return block->forward(in, bias); }, x,
                         block->parameters());
    } else {
      x = blocks[i]->forward(x, bias);
    }
  }
  return x;
}

at::Tensor TransformerImpl::forward_pooled(at::Tensor x, const at::Tensor& bias, const at::Tensor& rows,
                                           const at::Tensor& rows_bias, int64_t begin, int64_t end) {
  if (end < 0) end = layers;
  if (end <= begin || !blocks[end - 1]->mlp) return pooled_rows(forward(x, bias, begin, end), rows);
  // blocks before the last are checkpointed as in forward; the last runs directly at the pooled rows
  return blocks[end - 1]->forward_rows(run_blocks(std::move(x), bias, begin, end - 1, /*last_of_stack=*/false), rows,
                                       rows_bias);
}

void TransformerImpl::init_clip_text() {
  torch::NoGradGuard no_grad;
  const double proj_std = std::pow(width, -0.5) * std::pow(2.0 * layers, -0.5);
  const double attn_std = std::pow(width, -0.5);
  const double fc_std = std::pow(2.0 * width, -0.5);
  for (auto& block : blocks) {
    block->attn->in_proj_weight.normal_(0, attn_std);
    block->attn->out_proj->weight.normal_(0, proj_std);
    if (block->mlp) {
      block->mlp->c_fc->weight.normal_(0, fc_std);
      block->mlp->c_proj->weight.normal_(0, proj_std);
    }
  }
}

}  // namespace pc
