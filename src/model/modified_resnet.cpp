// CLIP ModifiedResNet (3-conv stem, anti-aliased strided Bottlenecks, attention pooling) with the
// official PyramidCLIP ROI path in the attention pool.
#include <torch/torch.h>

#include <cmath>

#include "pyramidclip/model/checkpoint.h"
#include "pyramidclip/model/vision.h"

namespace pc {

namespace {
torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}
}  // namespace

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride_) : stride(stride_) {
  conv1 = register_module("conv1", conv(inplanes, planes, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv(planes, 4 * planes, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(4 * planes));
  if (stride > 1 || inplanes != 4 * planes) {
    downsample_conv = conv(inplanes, 4 * planes, 1);
    downsample_bn = torch::nn::BatchNorm2d(4 * planes);
    downsample = register_module("downsample", torch::nn::Sequential(downsample_conv, downsample_bn));
  }
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x) {
  at::Tensor out = at::relu(batch_norm(*bn1, conv1->forward(x), bn_sync));
  out = at::relu(batch_norm(*bn2, conv2->forward(out), bn_sync));
  if (stride > 1) out = at::avg_pool2d(out, stride);
  out = batch_norm(*bn3, conv3->forward(out), bn_sync);
  at::Tensor identity = x;
  if (downsample)
    identity = batch_norm(*downsample_bn, downsample_conv->forward(stride > 1 ? at::avg_pool2d(x, stride) : x), bn_sync);
  return at::relu(out + identity);
}

AttentionPool2dImpl::AttentionPool2dImpl(int64_t spacial_dim, int64_t embed_dim, int64_t heads_, int64_t output_dim,
                                         bool with_roi, int64_t roi_dim)
    : heads(heads_) {
  const double scale = std::pow(static_cast<double>(embed_dim), -0.5);
  if (with_roi) {
    proj_pre = register_parameter("proj_pre", torch::randn({roi_dim, embed_dim}) * scale);
    ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim})));
  }
  positional_embedding =
      register_parameter("positional_embedding", torch::randn({spacial_dim * spacial_dim + 1, embed_dim}) * scale);
  k_proj = register_module("k_proj", torch::nn::Linear(embed_dim, embed_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(embed_dim, embed_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(embed_dim, embed_dim));
  c_proj = register_module("c_proj", torch::nn::Linear(embed_dim, output_dim));
  // CLIP initialize_parameters: std = c_proj.in_features ** -0.5 for the four projection weights
  torch::NoGradGuard no_grad;
  for (auto* l : {&k_proj, &q_proj, &v_proj, &c_proj}) (*l)->weight.normal_(0, scale);
}

at::Tensor AttentionPool2dImpl::pool(const at::Tensor& tokens, const at::Tensor& bias) {
  // Only the first (mean) token's output is used, so it is the only query.
  at::Tensor q = q_proj->forward(tokens.narrow(1, 0, 1));
  at::Tensor out = scaled_dot_attention(q, k_proj->forward(tokens), v_proj->forward(tokens), heads, bias);
  return c_proj->forward(out.squeeze(1));
}

at::Tensor AttentionPool2dImpl::forward(const at::Tensor& x) {
  at::Tensor tokens = x.flatten(2).transpose(1, 2);  // [B, HW, C]
  tokens = at::cat({tokens.mean(1, /*keepdim=*/true), tokens}, 1) + positional_embedding;
  return pool(tokens, {});
}

at::Tensor AttentionPool2dImpl::forward_roi(const at::Tensor& roi, const at::Tensor& keep) {
  at::Tensor x = at::matmul(roi, proj_pre);  // [B, M, C]
  at::Tensor mean, bias;
  if (keep.defined()) {
    // mean over the real regions only (official: over all M, which have no padding there)
    at::Tensor w = keep.to(x.scalar_type()).unsqueeze(-1);
    mean = (x * w).sum(1, /*keepdim=*/true) / w.sum(1, /*keepdim=*/true).clamp_min(1);
    at::Tensor keep_all = at::cat({at::ones({keep.size(0), 1}, keep.options()), keep}, 1);
    bias = expand_bias_to_heads(key_padding_bias(keep_all), heads);
  } else {
    mean = x.mean(1, /*keepdim=*/true);
  }
  return pool(layer_norm(*ln_pre, at::cat({mean, x}, 1)), bias);
}

ModifiedResNetImpl::ModifiedResNetImpl(const ModelConfig& cfg) {
  const int64_t w = cfg.rn_width;
  conv1 = register_module("conv1", conv(3, w / 2, 3, 2));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(w / 2));
  conv2 = register_module("conv2", conv(w / 2, w / 2, 3));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(w / 2));
  conv3 = register_module("conv3", conv(w / 2, w, 3));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(w));
  int64_t inplanes = w;
  auto make_layer = [&](const char* name, int64_t planes, int64_t blocks, int64_t stride) {
    torch::nn::Sequential seq;
    seq->push_back(Bottleneck(inplanes, planes, stride));
    inplanes = 4 * planes;
    for (int64_t i = 1; i < blocks; ++i) seq->push_back(Bottleneck(inplanes, planes, 1));
    return register_module(name, seq);
  };
  layer1 = make_layer("layer1", w, cfg.rn_layers[0], 1);
  layer2 = make_layer("layer2", 2 * w, cfg.rn_layers[1], 2);
  layer3 = make_layer("layer3", 4 * w, cfg.rn_layers[2], 2);
  layer4 = make_layer("layer4", 8 * w, cfg.rn_layers[3], 2);
  attnpool = register_module("attnpool", AttentionPool2d(cfg.image_size / 32, 32 * w, cfg.vision_heads, cfg.embed_dim,
                                                         cfg.with_roi, cfg.roi_dim));
  // CLIP initialize_parameters: zero the last BN of every residual branch
  torch::NoGradGuard no_grad;
  for (auto* layer : {&layer1, &layer2, &layer3, &layer4})
    for (auto& item : (*layer)->named_parameters())
      if (item.key().size() >= 10 && item.key().compare(item.key().size() - 10, 10, "bn3.weight") == 0)
        item.value().zero_();
}

at::Tensor ModifiedResNetImpl::stem(const at::Tensor& images) {
  at::Tensor x = at::relu(batch_norm(*bn1, conv1->forward(images), bn_sync));
  x = at::relu(batch_norm(*bn2, conv2->forward(x), bn_sync));
  x = at::relu(batch_norm(*bn3, conv3->forward(x), bn_sync));
  return at::avg_pool2d(x, 2);
}

at::Tensor ModifiedResNetImpl::forward(const at::Tensor& images) {
  torch::nn::Sequential layers[] = {layer1, layer2, layer3, layer4};
  if (!checkpoint || !torch::GradMode::is_enabled()) {
    at::Tensor x = stem(images);
    for (auto& layer : layers) x = layer->forward(x);
    return attnpool->forward(x);
  }
  // Checkpoint units: the stem and layer1..layer3; layer4 runs plainly (the backward pass starts
  // there: recomputing it would save nothing at the peak, as torch's checkpoint_sequential). The
  // closures keep their modules alive until the backward pass (the stem's needs this module to be
  // owned by a shared_ptr, as TORCH_MODULE's holder does).
  auto self = std::static_pointer_cast<ModifiedResNetImpl>(shared_from_this());
  std::vector<at::Tensor> stem_params;
  for (torch::nn::Module* m : std::initializer_list<torch::nn::Module*>{conv1.get(), bn1.get(), conv2.get(), bn2.get(),
                                                                         conv3.get(), bn3.get()})
    for (const auto& p : m->parameters()) stem_params.push_back(p);
  at::Tensor x = pc::checkpoint([self](const at::Tensor& in) { return self->stem(in); }, images, stem_params);
  for (auto* layer : {&layer1, &layer2, &layer3}) {
    std::shared_ptr<torch::nn::SequentialImpl> stage = layer->ptr();
    x = pc::checkpoint([stage](const at::Tensor& in) { return stage->forward(in); }, x, stage->parameters());
  }
  x = layer4->forward(x);
  return attnpool->forward(x);
}

}  // namespace pc
