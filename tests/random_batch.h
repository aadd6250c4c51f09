#pragma once
// A random but well-formed training batch for model/loss tests: images, ROI features with a mask
// (first region always present), and three token sequences of `text_len` tokens between the
// start and end markers. The seed makes it identical on every rank.
#include <torch/torch.h>

#include "pyramidclip/data/batch.h"
#include "pyramidclip/model/model_config.h"

namespace pc::test {

inline Batch random_batch(const ModelConfig& m, int64_t n, uint64_t seed, at::ScalarType dtype = at::kFloat,
                          int64_t text_len = 10) {
  torch::manual_seed(seed);
  Batch b;
  b.global_images = torch::randn({n, 3, m.image_size, m.image_size}, dtype);
  b.local_images = torch::randn({n, 3, m.image_size, m.image_size}, dtype);
  b.roi = torch::randn({n, 4, m.roi_dim}, dtype);
  b.roi_mask = torch::rand({n, 4}) > 0.3;
  b.roi_mask.select(1, 0).fill_(true);
  auto tokens = [&] {
    auto t = torch::randint(1, 400, {n, m.context_length}, torch::kLong);
    t.narrow(1, text_len, m.context_length - text_len).zero_();
    t.select(1, 0).fill_(m.vocab_size - 2);
    t.select(1, text_len - 1).fill_(m.vocab_size - 1);
    return t;
  };
  b.text = tokens();
  b.summary = tokens();
  b.tags = tokens();
  return b;
}

}  // namespace pc::test
