#pragma once
// The PyramidCLIP model (DESIGN §1): one shared image tower for the global and local views,
// the ROI path through the tower's tail (f2), one shared text tower for T, T_S and T_OA.
// Parameter names equal the official PyramidCLIP / OpenAI CLIP state-dict keys.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "pyramidclip/data/batch.h"
#include "pyramidclip/model/model_config.h"

namespace pc {

class BnSync;

// L2-normalized embeddings [B, embed_dim]; undefined where the batch lacks the input. Always fp32,
// also under autocast (mixed_precision.h): the towers' outputs are cast to float before normalizing.
struct Embeddings {
  at::Tensor image_global, image_local, roi;
  at::Tensor text, summary, tags;
  at::Tensor logit_scale;  // scalar, exp(clamped log scale)
};

class PyramidClipImpl : public torch::nn::Module {
 public:
  explicit PyramidClipImpl(const ModelConfig& cfg);

  Embeddings forward(const Batch& batch);

  at::Tensor encode_image(const at::Tensor& images, bool normalize = true);        // [B,3,H,W] -> [B,D]
  at::Tensor encode_roi(const at::Tensor& roi, const at::Tensor& mask, bool normalize = true);  // [B,M,2052] -> [B,D]
  at::Tensor encode_text(const at::Tensor& tokens, bool normalize = true);         // [B,L] int64 -> [B,D]
  at::Tensor logit_scale_exp();  // exp(logit_scale) clamped to 100, as CLIP

  // SyncBN for every BatchNorm of the model (LeFF blocks, RN50); nullptr = per-rank statistics.
  // A sync with world_size() == 1 behaves as nullptr. Set it before the first forward.
  void set_batchnorm_sync(std::shared_ptr<BnSync> sync);
  bool has_batchnorm() const;  // official ViT (LeFF) or RN50
  // Activation checkpointing per image-tower block / RN50 stage and per text-tower block (also
  // set from ModelConfig::checkpoint_image / checkpoint_text at construction).
  void set_activation_checkpointing(bool image, bool text);

  const ModelConfig& config() const { return cfg_; }

 private:
  ModelConfig cfg_;
  struct Parts;
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(PyramidClip);

// Number of parameters (all tensors from parameters(), frozen ones included), as
// sum(p.numel() for p in model.parameters()) in PyTorch.
int64_t count_parameters(torch::nn::Module& m);

}  // namespace pc
