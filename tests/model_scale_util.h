#pragma once
// Helpers shared by the scale-out model tests (activation checkpointing, SyncBN, mixed precision).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <string>

#include "pyramidclip/model/pyramid_clip.h"

namespace pc::testing {

// The tiny preset with a small vocabulary and context (fast), official (LeFF + BatchNorm) or not.
inline ModelConfig tiny_config(bool official = true) {
  ModelConfig c = model_preset("tiny", official);
  c.vocab_size = 1000;
  c.context_length = 16;
  c.roi_dim = 40;
  return c;
}

// A small ModifiedResNet (the RN50 architecture at 1 bottleneck per stage and width 8).
inline ModelConfig small_resnet_config() {
  ModelConfig c = model_preset("rn50", true);
  c.image_size = 64;
  c.rn_width = 8;
  for (int& l : c.rn_layers) l = 1;
  c.vision_heads = 4;  // 32 * rn_width = 256 channels in the attention pool
  c.embed_dim = 32;
  c.vocab_size = 1000;
  c.context_length = 16;
  c.text_width = 32;
  c.text_heads = 4;
  c.text_layers = 2;
  c.leff_layers = 1;
  c.roi_dim = 40;
  return c;
}

inline at::Tensor random_tokens(const ModelConfig& c, int64_t b) {
  at::Tensor t = torch::zeros({b, c.context_length}, torch::kLong);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t len = 3 + i % (c.context_length - 4);
    t.index_put_({i, 0}, c.vocab_size - 2);
    t.index_put_({i, torch::indexing::Slice(1, len)}, torch::randint(1, c.vocab_size - 2, {len - 1}));
    t.index_put_({i, len}, c.vocab_size - 1);
  }
  return t;
}

inline Batch random_batch(const ModelConfig& c, int64_t b, int64_t m = 5) {
  Batch batch;
  batch.global_images = torch::randn({b, 3, c.image_size, c.image_size});
  batch.local_images = torch::randn({b, 3, c.image_size, c.image_size});
  batch.roi = torch::randn({b, m, c.roi_dim});
  batch.roi_mask = torch::ones({b, m}, torch::kBool);
  for (int64_t i = 0; i < b; ++i) batch.roi_mask.index_put_({i, torch::indexing::Slice(m - i % m, m)}, false);
  batch.text = random_tokens(c, b);
  batch.summary = random_tokens(c, b);
  batch.tags = random_tokens(c, b);
  return batch;
}

// A CLIP-style loss over the pairs the embeddings have (symmetric cross-entropy of scaled cosines),
// enough to send gradients through every tower and the logit scale.
inline at::Tensor toy_loss(const Embeddings& e) {
  auto pair = [&](const at::Tensor& a, const at::Tensor& b) {
    at::Tensor logits = e.logit_scale * a.mm(b.t());
    at::Tensor labels = torch::arange(a.size(0), torch::kLong);
    return (torch::nn::functional::cross_entropy(logits, labels) +
            torch::nn::functional::cross_entropy(logits.t(), labels)) / 2;
  };
  at::Tensor loss = pair(e.image_global, e.summary) + pair(e.image_local, e.text);
  if (e.tags.defined()) loss = loss + pair(e.image_global, e.tags) + pair(e.image_local, e.tags);
  if (e.roi.defined()) loss = loss + pair(e.roi, e.summary) + pair(e.roi, e.text);
  return loss;
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Largest |difference| over all parameter gradients (a missing gradient on one side fails).
inline double max_grad_diff(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  double worst = 0;
  for (const auto& item : pa) {
    const at::Tensor& ga = item.value().grad();
    const at::Tensor& gb = pb[item.key()].grad();
    EXPECT_EQ(ga.defined(), gb.defined()) << item.key();
    if (ga.defined() && gb.defined()) worst = std::max(worst, max_abs_diff(ga, gb));
  }
  return worst;
}

// Every buffer (BatchNorm running statistics, num_batches_tracked) equal within tol.
inline void expect_buffers_equal(torch::nn::Module& a, torch::nn::Module& b, double tol) {
  auto ba = a.named_buffers(), bb = b.named_buffers();
  ASSERT_EQ(ba.size(), bb.size());
  for (const auto& item : ba) EXPECT_LE(max_abs_diff(item.value(), bb[item.key()]), tol) << item.key();
}

inline int64_t count_batchnorm_buffers(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& item : m.named_buffers())
    if (item.key().find("running_mean") != std::string::npos) ++n;
  return n;
}

}  // namespace pc::testing
