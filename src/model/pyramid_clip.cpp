// PyramidClip: the shared image tower (global and local views), the ROI path through the tower's
// tail, the shared text tower (T, T_S, T_OA) and the learnable logit scale.
#include "pyramidclip/model/pyramid_clip.h"

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "pyramidclip/model/batch_norm.h"
#include "pyramidclip/model/layers.h"
#include "pyramidclip/model/vision.h"
#include "pyramidclip/util/errors.h"

namespace pc {

namespace {

std::string shape_str(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

void validate(const ModelConfig& c) {
  auto positive = [](int v, const char* what) { require(v > 0, std::string("model: ") + what + " must be > 0"); };
  positive(c.image_size, "image_size");
  positive(c.embed_dim, "embed_dim");
  positive(c.context_length, "context_length");
  positive(c.vocab_size, "vocab_size");
  positive(c.text_width, "text_width");
  positive(c.text_heads, "text_heads");
  positive(c.text_layers, "text_layers");
  positive(c.roi_dim, "roi_dim");
  require(c.text_width % c.text_heads == 0, "model: text_width must be a multiple of text_heads");
  require(c.text_pool == "max" || c.text_pool == "eot", "model: text_pool must be max or eot, not '" + c.text_pool + "'");
  if (c.vision == "vit") {
    positive(c.patch_size, "patch_size");
    positive(c.vision_width, "vision_width");
    positive(c.vision_heads, "vision_heads");
    positive(c.vision_layers, "vision_layers");
    require(c.image_size % c.patch_size == 0, "model: image_size " + std::to_string(c.image_size) +
                                                  " must be a multiple of patch_size " + std::to_string(c.patch_size));
    require(c.vision_width % c.vision_heads == 0, "model: vision_width must be a multiple of vision_heads");
    if (c.official)
      require(c.leff_layers > 0 && c.leff_layers <= c.vision_layers,
              "model: leff_layers must be in [1, vision_layers] for the official ViT");
    if (c.with_roi) {
      require(c.roi_layers > 0 && c.roi_layers <= c.vision_layers, "model: roi_layers must be in [1, vision_layers]");
      if (c.official)
        require(c.roi_layers == c.vision_layers - c.leff_layers,
                "model: the official ROI path runs the standard blocks, so roi_layers must equal vision_layers - "
                "leff_layers (" + std::to_string(c.vision_layers - c.leff_layers) + ")");
    }
  } else if (c.vision == "rn50") {
    positive(c.rn_width, "rn_width");
    positive(c.vision_heads, "vision_heads");
    for (int l : c.rn_layers) positive(l, "rn_layers");
    require(c.image_size % 32 == 0, "model: image_size must be a multiple of 32 for rn50");
    require((32 * c.rn_width) % c.vision_heads == 0, "model: 32 * rn_width must be a multiple of vision_heads");
  } else {
    throw UserError("model: vision must be vit or rn50, not '" + c.vision + "'");
  }
}

at::Tensor l2_normalize(const at::Tensor& x) { return x / x.norm(2, -1, /*keepdim=*/true); }

// Tower outputs leave the model in fp32 (under autocast the final projection GEMM runs in bf16/fp16):
// the normalization and everything after it (logits, softened InfoNCE) stay in fp32.
at::Tensor to_fp32(const at::Tensor& x) { return x.scalar_type() == at::kFloat ? x : x.to(at::kFloat); }

}  // namespace

struct PyramidClipImpl::Parts {
  VisionTransformer vit{nullptr};
  ModifiedResNet rn{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};
  at::Tensor positional_embedding, text_projection, logit_scale;
};

PyramidClipImpl::PyramidClipImpl(const ModelConfig& cfg) : cfg_(cfg), parts_(std::make_shared<Parts>()) {
  validate(cfg_);
  Parts& p = *parts_;
  // registration order as the official MODEL: visual, transformer, token_embedding, ...
  if (cfg_.vision == "vit")
    p.vit = register_module("visual", VisionTransformer(cfg_));
  else
    p.rn = register_module("visual", ModifiedResNet(cfg_));
  // The official code builds the text tower from the same Transformer class as the image tower, so
  // its keys are split into resblocks1 (first 9) and resblocks2 too (without LeFF).
  const int64_t text_split = cfg_.official ? std::min(cfg_.leff_layers, cfg_.text_layers) : 0;
  p.transformer =
      register_module("transformer", Transformer(cfg_.text_width, cfg_.text_layers, cfg_.text_heads, text_split, false));
  p.token_embedding = register_module("token_embedding", torch::nn::Embedding(cfg_.vocab_size, cfg_.text_width));
  p.positional_embedding = register_parameter("positional_embedding", torch::empty({cfg_.context_length, cfg_.text_width}));
  p.ln_final = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg_.text_width})));
  p.text_projection = register_parameter("text_projection", torch::empty({cfg_.text_width, cfg_.embed_dim}));
  p.logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1.0 / 0.07)));

  // CLIP initialize_parameters (the image towers initialise their own parts in their constructors)
  torch::NoGradGuard no_grad;
  p.token_embedding->weight.normal_(0, 0.02);
  p.positional_embedding.normal_(0, 0.01);
  p.transformer->init_clip_text();
  p.text_projection.normal_(0, std::pow(cfg_.text_width, -0.5));
  set_activation_checkpointing(cfg_.checkpoint_image, cfg_.checkpoint_text);
}

void PyramidClipImpl::set_batchnorm_sync(std::shared_ptr<BnSync> sync) { pc::set_batchnorm_sync(*this, sync); }

bool PyramidClipImpl::has_batchnorm() const { return parts_->rn || (parts_->vit && cfg_.official); }

void PyramidClipImpl::set_activation_checkpointing(bool image, bool text) {
  cfg_.checkpoint_image = image;
  cfg_.checkpoint_text = text;
  if (parts_->vit) parts_->vit->transformer->checkpoint = image;
  if (parts_->rn) parts_->rn->checkpoint = image;
  parts_->transformer->checkpoint = text;
}

at::Tensor PyramidClipImpl::encode_image(const at::Tensor& images, bool normalize) {
  require(images.dim() == 4 && images.size(1) == 3 && images.size(2) == cfg_.image_size &&
              images.size(3) == cfg_.image_size,
          "model: images must be [B,3," + std::to_string(cfg_.image_size) + "," + std::to_string(cfg_.image_size) +
              "], got " + shape_str(images));
  require(images.is_floating_point(), "model: images must be floating point");
  at::Tensor x = to_fp32(parts_->vit ? parts_->vit->forward(images) : parts_->rn->forward(images));
  return normalize ? l2_normalize(x) : x;
}

at::Tensor PyramidClipImpl::encode_roi(const at::Tensor& roi, const at::Tensor& mask, bool normalize) {
  require(cfg_.with_roi, "model: this model has no ROI path (model.roi = false)");
  require(roi.dim() == 3 && roi.size(2) == cfg_.roi_dim && roi.size(1) > 0,
          "model: ROI features must be [B,M," + std::to_string(cfg_.roi_dim) + "] with M > 0, got " + shape_str(roi));
  require(roi.is_floating_point(), "model: ROI features must be floating point");
  at::Tensor keep;
  if (mask.defined()) {
    require(mask.dim() == 2 && mask.size(0) == roi.size(0) && mask.size(1) == roi.size(1),
            "model: ROI mask must be [B,M] = [" + std::to_string(roi.size(0)) + "," + std::to_string(roi.size(1)) +
                "], got " + shape_str(mask));
    keep = mask.to(at::kBool);
  }
  at::Tensor x = to_fp32(parts_->vit ? parts_->vit->forward_roi(roi, keep) : parts_->rn->forward_roi(roi, keep));
  return normalize ? l2_normalize(x) : x;
}

at::Tensor PyramidClipImpl::encode_text(const at::Tensor& tokens_in, bool normalize) {
  require(tokens_in.dim() == 2 && tokens_in.size(1) > 0 && tokens_in.size(1) <= cfg_.context_length,
          "model: text tokens must be [B,L] with 0 < L <= " + std::to_string(cfg_.context_length) + ", got " +
              shape_str(tokens_in));
  require(!tokens_in.is_floating_point() && tokens_in.scalar_type() != at::kBool, "model: text tokens must be integers");
  at::Tensor tokens = tokens_in.to(at::kLong);
  if (tokens.numel() > 0) {
    const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
    require(lo >= 0 && hi < cfg_.vocab_size, "model: token id " + std::to_string(lo < 0 ? lo : hi) +
                                                 " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) +
                                                 "): raise model.vocab-size or check the tokenizer");
  }
  Parts& p = *parts_;
  const bool eot_pool = cfg_.text_pool == "eot";
  at::Tensor eot;
  if (eot_pool) {
    // The EOT token has the largest id (CLIP). With the causal mask, positions after the last EOT
    // of the batch cannot reach any EOT output: drop them (exact, and most of 77 is padding).
    eot = tokens.argmax(-1);
    tokens = tokens.narrow(1, 0, eot.max().item<int64_t>() + 1);
  }
  const int64_t len = tokens.size(1);
  at::Tensor x = p.token_embedding->forward(tokens) + p.positional_embedding.narrow(0, 0, len);
  const at::Tensor causal = causal_mask(len, x.options());
  if (eot_pool) {
    // only the EOT rows reach the embedding: the last block computes just those (with their mask rows)
    const at::Tensor eot_bias = expand_bias_to_heads(causal.index_select(0, eot).unsqueeze(1), p.transformer->heads);
    x = layer_norm(*p.ln_final, p.transformer->forward_pooled(x, causal, eot, eot_bias));
  } else {
    x = p.transformer->forward(x, causal);
    x = std::get<0>(layer_norm(*p.ln_final, x).max(1));  // official: max over all positions after ln_final
  }
  x = to_fp32(x.mm(p.text_projection));
  return normalize ? l2_normalize(x) : x;
}

at::Tensor PyramidClipImpl::logit_scale_exp() { return parts_->logit_scale.exp().clamp_max(100.0); }

Embeddings PyramidClipImpl::forward(const Batch& batch) {
  Embeddings e;
  // The two views go through the tower separately: the official model does so, and BatchNorm
  // (LeFF, ResNet) then normalises each view with its own batch statistics.
  if (batch.global_images.defined()) e.image_global = encode_image(batch.global_images);
  if (batch.local_images.defined()) e.image_local = encode_image(batch.local_images);
  if (batch.roi.defined() && cfg_.with_roi) e.roi = encode_roi(batch.roi, batch.roi_mask);

  // The text tower has no batch statistics: with max pooling T, T_S and T_OA run as one batch
  // (bigger GEMMs); with EOT pooling each runs on its own, cut after its longest text.
  std::vector<const at::Tensor*> in = {&batch.text, &batch.summary, &batch.tags};
  std::vector<at::Tensor*> out = {&e.text, &e.summary, &e.tags};
  std::vector<at::Tensor> parts;
  std::vector<size_t> which;
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i]->defined()) {
      parts.push_back(*in[i]);
      which.push_back(i);
    }
  bool same_len = true;
  for (const auto& t : parts) same_len = same_len && t.dim() == 2 && t.size(1) == parts[0].size(1);
  if (parts.size() > 1 && same_len && cfg_.text_pool == "max") {
    at::Tensor all = encode_text(at::cat(parts, 0));
    int64_t offset = 0;
    for (size_t j = 0; j < parts.size(); ++j) {
      *out[which[j]] = all.narrow(0, offset, parts[j].size(0));
      offset += parts[j].size(0);
    }
  } else {
    for (size_t j = 0; j < parts.size(); ++j) *out[which[j]] = encode_text(parts[j]);
  }
  e.logit_scale = logit_scale_exp();
  return e;
}

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

}  // namespace pc
