#pragma once
// Image-caption pairs for retrieval evaluation, eval-transformed like EvalLoader (resize the
// shorter side bicubic, center crop, CLIP normalization). Sources:
//   - a caption table: .csv (RFC 4180, header row), .tsv (header row) or .jsonl (one object a
//     line) with `image` and `caption` columns/keys; image paths relative to the table's
//     directory. Rows naming the same image are several captions of ONE image (COCO style);
//   - WebDataset shards (a shard spec, see list_shards): samples with an image and a .txt
//     caption. Samples whose image bytes are identical (a table packed by `data pack` writes one
//     sample per caption) are one image with several captions.
// Unreadable images, missing files and empty captions are skipped, counted and logged (with
// their captions); a missing or header-less table is a UserError.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyramidclip/data/data_stats.h"

namespace pc {

struct PairLoaderOptions {
  std::string source;  // table file or shard spec
  int image_size = 224;
  int batch_size = 64;
};

struct PairBatch {
  at::Tensor images;                // [B,3,S,S] float32, normalized
  std::vector<int64_t> image_index; // index of each image (0, 1, ... in pass order)
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

class PairLoader {
 public:
  explicit PairLoader(PairLoaderOptions opt);  // UserError when the source does not exist / is malformed
  ~PairLoader();
  PairLoader(const PairLoader&) = delete;
  PairLoader& operator=(const PairLoader&) = delete;

  // Up to batch_size distinct images, each once; false once the pass is over. One pass only.
  bool next(PairBatch& batch);

  // Complete after the pass: every caption kept, and the image (index from next()) it belongs to.
  const std::vector<std::string>& captions() const;
  const std::vector<int64_t>& caption_image() const;
  int64_t num_images() const;
  DataStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pc
