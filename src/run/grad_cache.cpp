// Gradient-cache accumulation: embed without grad, loss on the cached embeddings, replay.
#include "pyramidclip/run/grad_cache.h"

#include <torch/torch.h>

#include <array>
#include <chrono>
#include <optional>

#include "pyramidclip/dist/grad_buckets.h"
#include "pyramidclip/model/mixed_precision.h"
#include "pyramidclip/util/errors.h"

namespace pc {

using Clock = std::chrono::steady_clock;

Batch slice_batch(const Batch& b, int64_t begin, int64_t n) {
  Batch s;
  for (auto [dst, src] : {std::pair{&s.global_images, &b.global_images}, {&s.local_images, &b.local_images},
                          {&s.roi, &b.roi}, {&s.roi_mask, &b.roi_mask}, {&s.text, &b.text},
                          {&s.summary, &b.summary}, {&s.tags, &b.tags}})
    if (src->defined()) *dst = src->narrow(0, begin, n);
  for (int64_t i = begin; i < begin + n; ++i) {
    if (i < static_cast<int64_t>(b.keys.size())) s.keys.push_back(b.keys[static_cast<size_t>(i)]);
    if (i < static_cast<int64_t>(b.epochs.size())) s.epochs.push_back(b.epochs[static_cast<size_t>(i)]);
  }
  return s;
}

namespace {

// The six embedding fields of Embeddings, for loops.
std::array<at::Tensor*, 6> fields(Embeddings& e) {
  return {&e.image_global, &e.image_local, &e.roi, &e.text, &e.summary, &e.tags};
}

}  // namespace

LossOutput grad_cache_step(PyramidClip& model, const Batch& batch, int micro_batches, const LossConfig& cfg,
                           Comm* comm, PassTimes* times, GradBuckets* buckets, StepPrecision precision) {
  PassTimes local;
  PassTimes& t = times ? *times : local;
  t = {};
  auto lap = [last = Clock::now()](double& into) mutable {
    const auto now = Clock::now();
    into += std::chrono::duration<double>(now - last).count();
    last = now;
  };
  // the towers cast their outputs to fp32, so the loss below runs in fp32 outside autocast
  auto forward = [&](const Batch& b) {
    AutocastGuard autocast(precision.autocast);
    return model->forward(b);
  };
  auto scaled = [&](const at::Tensor& loss) {
    return precision.loss_scale == 1.0 ? loss : loss * precision.loss_scale;
  };
  const int64_t n = batch.size();
  if (micro_batches <= 1) {
    LossOutput loss;
    {
      RECORD_USER_SCOPE("pc::forward");  // named scopes for train.profile-step traces
      loss = pyramid_loss(forward(batch), cfg, comm);
    }
    lap(t.forward);
    RECORD_USER_SCOPE("pc::backward");
    scaled(loss.total).backward();
    lap(t.backward);
    return loss;
  }
  require(n % micro_batches == 0, "train.micro-batches = " + std::to_string(micro_batches) +
                                      " does not divide the per-rank batch of " + std::to_string(n) +
                                      ": choose a divisor of train.global-batch / ranks");
  const int64_t m = n / micro_batches;

  // 1. Embeddings of every micro-batch without autograd. The replay in 3 updates BatchNorm's
  // running statistics; this pass must not, so the buffers are restored afterwards.
  std::vector<at::Tensor> saved_buffers;
  for (const at::Tensor& b : model->buffers()) saved_buffers.push_back(b.clone());
  std::vector<Embeddings> cached;
  {
    RECORD_USER_SCOPE("pc::forward");
    torch::NoGradGuard no_grad;
    for (int i = 0; i < micro_batches; ++i) cached.push_back(forward(slice_batch(batch, i * m, m)));
  }
  {
    torch::NoGradGuard no_grad;
    size_t k = 0;
    for (at::Tensor& b : model->buffers()) b.copy_(saved_buffers[k++]);
  }

  // 2. The loss over the whole batch, backpropagated to the embeddings (leaves) and logit_scale.
  Embeddings all;
  for (size_t f = 0; f < 6; ++f) {
    if (!fields(cached[0])[f]->defined()) continue;
    std::vector<at::Tensor> parts;
    for (Embeddings& e : cached) parts.push_back(*fields(e)[f]);
    *fields(all)[f] = at::cat(parts).requires_grad_(true);
  }
  all.logit_scale = model->logit_scale_exp();
  LossOutput loss;
  {
    RECORD_USER_SCOPE("pc::forward");
    loss = pyramid_loss(all, cfg, comm);
  }
  lap(t.forward);
  {
    RECORD_USER_SCOPE("pc::backward");
    std::optional<NoSyncGuard> local_only;
    if (buckets) local_only.emplace(*buckets);  // logit_scale's gradient joins the last replay's sync
    scaled(loss.total).backward();  // the cached embedding gradients carry the scale into the replays
  }
  lap(t.backward);

  // 3. Replay each micro-batch with autograd and feed it its slice of the embedding gradients.
  for (int i = 0; i < micro_batches; ++i) {
    Embeddings e;
    {
      RECORD_USER_SCOPE("pc::forward");
      e = forward(slice_batch(batch, i * m, m));
    }
    lap(t.forward);
    RECORD_USER_SCOPE("pc::backward");
    std::vector<at::Tensor> outputs, grads;
    for (size_t f = 0; f < 6; ++f) {
      at::Tensor* out = fields(e)[f];
      at::Tensor* leaf = fields(all)[f];
      if (!out->defined() || !leaf->grad().defined()) continue;
      outputs.push_back(*out);
      grads.push_back(leaf->grad().narrow(0, i * m, m));
    }
    std::optional<NoSyncGuard> local_only;
    if (buckets && i + 1 < micro_batches) local_only.emplace(*buckets);
    // The last replay does not reach logit_scale (its gradient came from the loss backward):
    // say so, or its bucket and all later ones would wait for finalize() instead of overlapping.
    if (buckets && i + 1 == micro_batches && !outputs.empty()) buckets->expect_graph(outputs);
    if (!outputs.empty()) torch::autograd::backward(outputs, grads);
    lap(t.backward);
  }
  return loss;
}

}  // namespace pc
