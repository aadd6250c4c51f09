#include "pyramidclip/eval/zero_shot.h"

#include <torch/torch.h>

#include "pyramidclip/eval/templates.h"
#include "pyramidclip/text/tokenizer.h"

namespace pc {

at::Tensor class_embeddings(PyramidClipImpl& model, const Tokenizer& tok, const std::vector<std::string>& classes,
                            const std::vector<std::string>& templates, int batch) {
  torch::NoGradGuard no_grad;
  const int ctx = model.config().context_length;
  std::vector<at::Tensor> out;
  for (const auto& name : classes) {
    std::vector<at::Tensor> per_template;
    for (size_t i = 0; i < templates.size(); i += batch) {
      std::vector<int64_t> ids;
      size_t end = std::min(templates.size(), i + batch);
      for (size_t t = i; t < end; ++t)
        for (int32_t id : tok.tokenize(fill_template(templates[t], name), ctx)) ids.push_back(id);
      at::Tensor tokens = torch::tensor(ids, torch::kLong).view({static_cast<int64_t>(end - i), ctx});
      per_template.push_back(model.encode_text(tokens, /*normalize=*/true));
    }
    at::Tensor mean = torch::cat(per_template).mean(0);
    out.push_back(mean / mean.norm());
  }
  return torch::stack(out);
}

ZeroShotScorer::ZeroShotScorer(at::Tensor class_emb)
    : class_emb_(std::move(class_emb)),
      class_n_(class_emb_.size(0), 0),
      class_hit_(class_emb_.size(0), 0),
      class_hit5_(class_emb_.size(0), 0) {}

void ZeroShotScorer::add(const at::Tensor& image_emb, const at::Tensor& labels) {
  const at::Tensor lab = labels.to(at::kLong);
  const at::Tensor scores = image_emb.matmul(class_emb_.t());  // [B, C]
  // classes other than the true one scoring >= it (the true class itself always counts once)
  const at::Tensor rank = scores.ge(scores.gather(1, lab.unsqueeze(1))).sum(1) - 1;
  const at::Tensor r = rank.contiguous();
  auto l = lab.accessor<int64_t, 1>();
  auto rk = r.accessor<int64_t, 1>();
  for (int64_t i = 0; i < lab.size(0); ++i) {
    const bool h1 = rk[i] < 1, h5 = rk[i] < 5;
    ++n_;
    top1_ += h1;
    top5_ += h5;
    ++class_n_.at(l[i]);
    class_hit_.at(l[i]) += h1;
    class_hit5_.at(l[i]) += h5;
  }
}

ZeroShotResult ZeroShotScorer::result() const {
  ZeroShotResult r;
  r.images = n_;
  r.top1 = n_ ? static_cast<double>(top1_) / n_ : 0.0;
  r.top5 = n_ ? static_cast<double>(top5_) / n_ : 0.0;
  for (size_t c = 0; c < class_n_.size(); ++c) {
    const double n = static_cast<double>(class_n_[c]);
    r.per_class_top1.push_back(class_n_[c] ? class_hit_[c] / n : -1.0);
    r.per_class_top5.push_back(class_n_[c] ? class_hit5_[c] / n : -1.0);
    r.per_class_images.push_back(class_n_[c]);
  }
  return r;
}

}  // namespace pc
