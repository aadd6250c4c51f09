#pragma once
// Analytic size and cost of a PyramidClip (model_config.h) without building it: parameter count
// (equal to count_parameters() of the real model; tested), forward FLOPs per sample and the
// activations one sample keeps for the backward pass. FLOPs count matrix products and
// convolutions (2 per multiply-add); normalizations, activations and softmax are left out, as in
// the usual MFU accounting.
#include <cstdint>

#include "pyramidclip/model/model_config.h"

namespace pc::plan {

// ---- building blocks (per sample; tokens = sequence length) ----
double linear_flops(double tokens, double in, double out);                 // 2 * tokens * in * out
double attention_core_flops(double q_len, double k_len, double width);     // QK^T + AV: 4 q k w
// Pre-LN block: qkv 6sw^2 + out 2sw^2 + MLP 16sw^2 + core 4s^2w = 24 s w^2 + 4 s^2 w.
double transformer_block_flops(double tokens, double width);
// Official LeFF block: attention 8sw^2 + 4s^2w; the patch tokens (s - 1) through linear1/linear2
// (16 (s-1) w^2) and the 3x3 depthwise conv on 4w channels (72 (s-1) w).
double leff_block_flops(double tokens, double width);
double conv2d_flops(double in_ch, double out_ch, double kernel, double out_h, double out_w, double groups = 1);

// Activation elements one sample keeps per block for the backward pass (no dropout; Korthikanti
// et al. 2022 without the dropout masks): 16 s w + heads s^2; LeFF: 35 s w + heads s^2.
double transformer_block_activations(double tokens, double width, double heads);
double leff_block_activations(double tokens, double width, double heads);

// ---- parameters ----
struct ParamCount {
  int64_t total = 0;      // every parameter (frozen patch conv included), as count_parameters()
  int64_t trainable = 0;  // what gradients, the optimizer and the gradient sync see
  int64_t image = 0, text = 0;
};
ParamCount count_params(const ModelConfig& m);

// ---- what one training step runs per sample ----
struct StepWorkload {
  int image_views = 2;  // PyramidCLIP: global + local view through the shared tower; CLIP: 1
  int texts = 3;        // PyramidCLIP: T, T_S, T_OA; CLIP: 1
  int rois = 10;        // ROI regions through f2 (0: no ROI path)
  int text_len = 77;    // tokens through the text tower (max pooling runs all of context_length)
  int pairs = 6;        // contrastive pairs in the loss
  int embeddings = 6;   // distinct embeddings all-gathered for the loss
};
// The trainer's objective for the variant: official -> pyramid (2 views, 3 texts, ROIs if
// with_roi, 6 pairs), standard -> clip (1 view, 1 text, 1 pair).
StepWorkload default_workload(const ModelConfig& m, int roi_count = 10);

// FLOPs and activation elements of one tower call on one sample.
struct TowerCost {
  double forward = 0;      // FLOPs
  double recompute = 0;    // FLOPs re-run in backward under activation checkpointing
  double activations = 0;  // elements kept for backward, no checkpointing
  double activations_ckpt = 0;  // with checkpointing: unit inputs + the last unit + one recomputed unit
  int syncbn_layers = 0;   // BatchNorms that all-reduce statistics under SyncBN (forward; again in backward)
  int64_t syncbn_channels = 0;  // their channels summed
};
TowerCost image_cost(const ModelConfig& m);
TowerCost roi_cost(const ModelConfig& m, int rois);
TowerCost text_cost(const ModelConfig& m, int tokens);

struct SampleCost {
  double forward = 0;    // model FLOPs of one forward pass over one sample's inputs (loss excluded)
  double recompute = 0;  // extra forward FLOPs with activation checkpointing
  double activations = 0, activations_ckpt = 0;  // elements
  int syncbn_layers = 0;
  int64_t syncbn_channels = 0;
};
SampleCost sample_cost(const ModelConfig& m, const StepWorkload& w);

// Loss FLOPs per local sample (forward): every pair builds logits both ways against the global batch.
double loss_forward_flops(const StepWorkload& w, double global_batch, double embed_dim);

}  // namespace pc::plan
