// Retrieval recall@K from embedding ranks (see retrieval.h for the tie rule).
#include "pyramidclip/eval/retrieval.h"

#include <torch/torch.h>

#include <limits>
#include <string>

#include "pyramidclip/util/errors.h"

namespace pc {

std::pair<at::Tensor, at::Tensor> retrieval_ranks(const at::Tensor& image_emb, const at::Tensor& text_emb,
                                                  const at::Tensor& caption_image, int64_t chunk) {
  torch::NoGradGuard no_grad;
  const int64_t n = image_emb.size(0), m = text_emb.size(0);
  const at::Tensor owner = caption_image.to(at::kLong);
  std::vector<at::Tensor> i2t, t2i;
  for (int64_t a = 0; a < n; a += chunk) {
    const int64_t b = std::min(n, a + chunk);
    const at::Tensor sim = image_emb.slice(0, a, b).matmul(text_emb.t());                   // [n', M]
    const at::Tensor own = owner.unsqueeze(0).eq(torch::arange(a, b, torch::kLong).unsqueeze(1));  // its captions
    const at::Tensor best = sim.masked_fill(own.logical_not(), -std::numeric_limits<float>::infinity()).amax(1);
    i2t.push_back(sim.ge(best.unsqueeze(1)).logical_and(own.logical_not()).sum(1));
  }
  const at::Tensor images = torch::arange(n, torch::kLong).unsqueeze(0);
  for (int64_t a = 0; a < m; a += chunk) {
    const int64_t b = std::min(m, a + chunk);
    const at::Tensor sim = text_emb.slice(0, a, b).matmul(image_emb.t());  // [m', N]
    const at::Tensor mine = owner.slice(0, a, b).unsqueeze(1);
    const at::Tensor correct = sim.gather(1, mine);
    t2i.push_back(sim.ge(correct).logical_and(images.ne(mine)).sum(1));
  }
  auto cat = [](std::vector<at::Tensor>& v) { return v.empty() ? torch::zeros({0}, torch::kLong) : torch::cat(v); };
  return {cat(i2t), cat(t2i)};
}

RetrievalResult score_retrieval(const at::Tensor& image_emb, const at::Tensor& text_emb,
                                const std::vector<int64_t>& caption_image) {
  const int64_t n = image_emb.size(0), m = text_emb.size(0);
  require(static_cast<int64_t>(caption_image.size()) == m,
          "retrieval: " + std::to_string(m) + " caption embeddings but " + std::to_string(caption_image.size()) +
              " caption->image links");
  require(n > 0 && m > 0, "retrieval: no image-caption pairs to score: check the pairs source");
  std::vector<int64_t> captions_of(static_cast<size_t>(n), 0);
  for (int64_t i : caption_image) {
    require(i >= 0 && i < n, "retrieval: a caption refers to image " + std::to_string(i) + " of " + std::to_string(n));
    ++captions_of[static_cast<size_t>(i)];
  }
  for (int64_t i = 0; i < n; ++i)
    require(captions_of[static_cast<size_t>(i)] > 0, "retrieval: image " + std::to_string(i) + " has no caption");
  const auto [i2t, t2i] = retrieval_ranks(image_emb, text_emb, torch::tensor(caption_image, torch::kLong));
  auto recall = [](const at::Tensor& ranks, int k) { return ranks.lt(k).to(at::kDouble).mean().item<double>(); };
  RetrievalResult r;
  r.images = n;
  r.captions = m;
  r.i2t_r1 = recall(i2t, 1);
  r.i2t_r5 = recall(i2t, 5);
  r.i2t_r10 = recall(i2t, 10);
  r.t2i_r1 = recall(t2i, 1);
  r.t2i_r5 = recall(t2i, 5);
  r.t2i_r10 = recall(t2i, 10);
  r.mean_recall = (r.i2t_r1 + r.i2t_r5 + r.i2t_r10 + r.t2i_r1 + r.t2i_r5 + r.t2i_r10) / 6;
  return r;
}

}  // namespace pc
