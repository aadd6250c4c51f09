#pragma once
// Labelled images for zero-shot evaluation, eval-transformed (resize shorter side bicubic,
// center crop, CLIP normalization). Two sources:
//   - WebDataset shards (a shard spec, see list_shards) whose samples have an image and a `.cls`
//     member (class index as decimal text); class names from classes.txt in the shards'
//     directory or the one above (one name per line), if present;
//   - an ImageFolder tree: DIR/<class>/**/<image>.{jpg,jpeg,png}; classes are the sorted
//     subdirectory names, labels their indices (torchvision's ImageFolder).
// A directory holding .tar files is read as shards. Corrupt images are skipped, counted, logged.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyramidclip/data/data_stats.h"

namespace pc {

struct EvalLoaderOptions {
  std::string source;       // shard spec or ImageFolder root
  int image_size = 224;
  int batch_size = 64;
  bool fast_decode = false; // JPEG DCT downscaling when much larger (slightly changes pixels)
};

struct EvalBatch {
  at::Tensor images;              // [B,3,S,S] float32, normalized
  at::Tensor labels;              // [B] int64
  std::vector<std::string> keys;  // sample keys or file paths
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

class EvalLoader {
 public:
  explicit EvalLoader(EvalLoaderOptions opt);  // UserError when the source does not exist
  ~EvalLoader();
  EvalLoader(const EvalLoader&) = delete;
  EvalLoader& operator=(const EvalLoader&) = delete;

  // Up to batch_size images in a fixed order; false once the pass is over (the last batch may
  // be smaller). reset() starts another pass.
  bool next(EvalBatch& batch);
  void reset();

  // Empty when shards come without a classes.txt.
  const std::vector<std::string>& class_names() const;
  bool is_image_folder() const;
  DataStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct EvalSet {
  at::Tensor images;  // [N,3,S,S]
  at::Tensor labels;  // [N]
  std::vector<std::string> class_names;
  std::vector<std::string> keys;
  DataStats stats;
};

// A whole (small) evaluation set in memory.
EvalSet read_eval_images(const std::string& source, int image_size);

}  // namespace pc
