#pragma once
// The training data stream (first version: one thread, sequential shard reading).
//
// Shard assignment: every epoch e the shard list is shuffled with (seed, e), the same on every
// rank; rank r reads shards r, r+N, r+2N, ... of that order. With fewer shards than ranks it
// switches to sample striding: every rank reads every shard and keeps samples r, r+N, ... of
// each, so no rank starves. Samples pass through a small shuffle buffer (drained at the end of
// an epoch, so an epoch is exactly the samples of its shards). Epochs repeat forever.
//
// Per sample: the image gives two random resized crops (global: area in global_crop, local:
// area in local_crop) resized to image_size; the caption (K.txt), summary (K.summary.txt) and
// tags (K.tags.txt) are tokenized by the callback; K.roi.npy [m, roi_dim] is cut or zero-padded
// to roi_count rows with a mask. Crop randomness is seeded by (seed, epoch, key), so a sample's
// views do not depend on the rank count.
//
// Missing parts (the batch always stays well formed):
//   - no image, an undecodable image or no caption: the sample is skipped and counted;
//   - summary / tags: the batch tensor is undefined only when NO sample of the batch has one;
//     otherwise a sample without one uses its caption in that row;
//   - roi: undefined (with roi_mask) only when no sample of the batch has one; otherwise a
//     sample without ROIs (or with a corrupt .npy, counted) gets zero rows and an all-false mask.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pyramidclip/data/augment.h"
#include "pyramidclip/data/batch.h"
#include "pyramidclip/data/data_stats.h"
#include "pyramidclip/data/sample_count.h"

namespace pc {

struct TrainLoaderOptions {
  std::string shards;             // brace pattern, list file or directory (see list_shards)
  int image_size = 224;
  int batch_size = 32;            // per rank
  int rank = 0, world_size = 1;
  uint64_t seed = 0;
  int roi_count = 10;             // M: ROI rows per sample after pad/cut
  int roi_dim = 2052;             // 2048 appearance + 4 box
  CropRange global_crop{0.9, 1.0};
  CropRange local_crop{0.5, 1.0};
  double max_bad_fraction = 0.01; // stop with a UserError past this fraction of bad samples
  int shuffle_buffer = 256;       // samples held for shuffling (0 or 1: shard order)
};

// Returns the token ids of one text (77 for CLIP); all texts must give the same length.
using TokenizeFn = std::function<std::vector<int32_t>(const std::string&)>;

class TrainLoader {
 public:
  // Resolves the shard list (UserError naming a missing shard) and validates the options.
  TrainLoader(TrainLoaderOptions opt, TokenizeFn tokenize);
  ~TrainLoader();
  TrainLoader(const TrainLoader&) = delete;
  TrainLoader& operator=(const TrainLoader&) = delete;

  // Exactly batch_size samples. Throws UserError when the bad-sample fraction exceeds
  // max_bad_fraction, or when a whole epoch of this rank yields no usable sample.
  Batch next();

  int64_t epoch() const;         // epoch of the last sample returned (0-based)
  int64_t samples_seen() const;  // samples returned by this rank
  DataStats stats() const;
  const std::vector<std::string>& shards() const;
  bool sample_striding() const;  // true when shards < world_size

  // The shard order of an epoch, identical on every rank (indices into shards()).
  static std::vector<size_t> epoch_shard_order(size_t num_shards, uint64_t seed, int64_t epoch);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pc
