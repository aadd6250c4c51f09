#pragma once
// Image towers: the CLIP VisionTransformer (standard or official PyramidCLIP with LeFF blocks)
// and the ModifiedResNet-50, each with the ROI path of PyramidCLIP (encode_roi).
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "pyramidclip/model/batch_norm.h"
#include "pyramidclip/model/layers.h"
#include "pyramidclip/model/model_config.h"

namespace pc {

// Keys (under "visual."): conv1.weight, class_embedding, positional_embedding, ln_pre, transformer.*,
// ln_post, proj; official adds proj_pre [roi_dim, width] (a bare matrix, x @ proj_pre, as official).
class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& images);                     // [B,3,H,W] -> [B, embed_dim]
  at::Tensor forward_roi(const at::Tensor& roi, const at::Tensor& keep);  // [B,M,roi_dim], [B,M] bool

  torch::nn::Conv2d conv1{nullptr};
  at::Tensor class_embedding, positional_embedding, proj, proj_pre;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  Transformer transformer{nullptr};
  int64_t patch, grid, width, heads, roi_begin;
};
TORCH_MODULE(VisionTransformer);

// CLIP Bottleneck: 1x1, 3x3, (avgpool if stride > 1), 1x1 x4; downsample = avgpool, 1x1 conv, BN
// (keys downsample.0.*, downsample.1.*; the avgpool "-1" has no tensors). Its BatchNorms are
// synchronized across ranks when bn_sync is set (batch_norm.h).
class BottleneckImpl : public torch::nn::Module, public BatchNormSyncable {
 public:
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};  // "0": Conv2d, "1": BatchNorm2d (avgpool applied in forward)
  torch::nn::Conv2d downsample_conv{nullptr};    // downsample[0]
  torch::nn::BatchNorm2d downsample_bn{nullptr};  // downsample[1]
  int64_t stride;
};
TORCH_MODULE(Bottleneck);

// CLIP AttentionPool2d: mean token + positional embedding, one multi-head attention with the mean
// token as the only query. Official PyramidCLIP adds proj_pre [roi_dim, embed] and ln_pre for ROIs.
class AttentionPool2dImpl : public torch::nn::Module {
 public:
  AttentionPool2dImpl(int64_t spacial_dim, int64_t embed_dim, int64_t heads, int64_t output_dim, bool with_roi,
                      int64_t roi_dim);
  at::Tensor forward(const at::Tensor& x);                                // [B,C,H,W] -> [B, output_dim]
  at::Tensor forward_roi(const at::Tensor& roi, const at::Tensor& keep);  // [B,M,roi_dim] -> [B, output_dim]

  at::Tensor proj_pre, positional_embedding;
  torch::nn::LayerNorm ln_pre{nullptr};
  torch::nn::Linear k_proj{nullptr}, q_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};
  int64_t heads;

 private:
  at::Tensor pool(const at::Tensor& tokens, const at::Tensor& bias);  // tokens [B, 1+L, C], query = token 0
};
TORCH_MODULE(AttentionPool2d);

// Keys (under "visual."): conv1-3, bn1-3 (stem), layer1..layer4.N.*, attnpool.*.
// bn_sync (set_batchnorm_sync) synchronizes the stem's BatchNorms; with checkpoint set, the stem
// and layer1..layer3 run under activation checkpointing when gradients are recorded (layer4, where
// the backward pass starts, runs plainly).
class ModifiedResNetImpl : public torch::nn::Module, public BatchNormSyncable {
 public:
  explicit ModifiedResNetImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& images);
  at::Tensor forward_roi(const at::Tensor& roi, const at::Tensor& keep) { return attnpool->forward_roi(roi, keep); }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  AttentionPool2d attnpool{nullptr};
  bool checkpoint = false;

 private:
  at::Tensor stem(const at::Tensor& images);
};
TORCH_MODULE(ModifiedResNet);

}  // namespace pc
