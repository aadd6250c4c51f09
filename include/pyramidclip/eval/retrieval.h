#pragma once
// Image-text retrieval recall@K (COCO/Flickr protocol) over normalized embeddings, with any
// number of captions per image:
//   image->text: an image is a hit at K when one of ITS captions is among the K best captions;
//   text->image: a caption is a hit at K when its image is among the K best images.
// Ties count against the model: a wrong candidate scoring EQUAL to the best correct one ranks
// above it, so a collapsed model (all embeddings equal) scores 0, not 100%.
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace pc {

struct RetrievalResult {
  double i2t_r1 = 0, i2t_r5 = 0, i2t_r10 = 0;  // fractions in [0,1]
  double t2i_r1 = 0, t2i_r5 = 0, t2i_r10 = 0;
  double mean_recall = 0;  // mean of the six recalls
  int64_t images = 0, captions = 0;
};

// 0-based rank of each query's best correct candidate (number of wrong candidates scoring >= it).
// image_emb [N,D], text_emb [M,D] (normalized), caption_image [M] (int64, the image of each
// caption, every image needs at least one caption). Returns {i2t ranks [N], t2i ranks [M]}.
// Scores are computed in row chunks, so N x M never needs to fit in memory at once.
std::pair<at::Tensor, at::Tensor> retrieval_ranks(const at::Tensor& image_emb, const at::Tensor& text_emb,
                                                  const at::Tensor& caption_image, int64_t chunk = 1024);

// Recall@1/5/10 both ways. UserError when an image has no caption or a caption names no image.
RetrievalResult score_retrieval(const at::Tensor& image_emb, const at::Tensor& text_emb,
                                const std::vector<int64_t>& caption_image);

}  // namespace pc
