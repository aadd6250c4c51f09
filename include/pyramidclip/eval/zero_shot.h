#pragma once
// Zero-shot classification (CLIP protocol, DESIGN §1): class embedding = mean of the normalized
// template embeddings, re-normalized; images scored by cosine similarity.
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "pyramidclip/model/pyramid_clip.h"

namespace pc {

class Tokenizer;

struct ZeroShotResult {
  double top1 = 0, top5 = 0;            // fractions in [0,1]
  int64_t images = 0;
  std::vector<double> per_class_top1;   // NaN-free: classes without images get -1
  std::vector<double> per_class_top5;
  std::vector<int64_t> per_class_images;
};

// [C, D] normalized class embeddings.
at::Tensor class_embeddings(PyramidClipImpl& model, const Tokenizer& tok, const std::vector<std::string>& classes,
                            const std::vector<std::string>& templates, int batch = 256);

// Accumulates top-k accuracy from image embeddings [B,D] (normalized) and labels [B]. An image is
// a top-k hit when fewer than k OTHER classes score >= its true class (ties count against the
// model, as in retrieval.h, so the result does not depend on topk's order among equal scores).
class ZeroShotScorer {
 public:
  explicit ZeroShotScorer(at::Tensor class_emb);
  void add(const at::Tensor& image_emb, const at::Tensor& labels);
  ZeroShotResult result() const;

 private:
  at::Tensor class_emb_;
  int64_t n_ = 0, top1_ = 0, top5_ = 0;
  std::vector<int64_t> class_n_, class_hit_, class_hit5_;
};

}  // namespace pc
