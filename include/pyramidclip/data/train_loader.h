#pragma once
// The training data stream: logical streams (sample_stream.h) read by one reader thread,
// decoded and augmented by a pool of worker threads into a bounded prefetch queue, served in the
// job's global sample order (rank r of N takes positions r, r+N, ...; N must divide `streams`).
// The order, the crops and every batch's content across the job are the same for any N; state()
// and restore() move that position between runs of different sizes (DESIGN §4).
//
// Per sample: the image gives two random resized crops (global: area in global_crop, local:
// area in local_crop) resized to image_size; the caption (K.txt), summary (K.summary.txt) and
// tags (K.tags.txt) are tokenized by the callback; K.roi.npy [m, roi_dim] is cut or zero-padded
// to roi_count rows with a mask. Crop randomness is seeded by (seed, epoch, key).
//
// Missing parts (the batch always stays well formed):
//   - no image, an undecodable image, no caption or an undecodable caption: the sample is
//     skipped and counted, and its stream's next sample takes its place;
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
#include "pyramidclip/data/loader_state.h"
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
  int streams = 64;               // logical streams: fixed for a run, a multiple of every world size
  int shuffle_block = 128;        // samples per shuffled block of a stream (memory: streams/N blocks)
  int workers = 2;                // decode threads per rank (0: decode in the calling thread)
  int prefetch = 2;               // batches decoded ahead of the one being served
};

// Returns the token ids of one text (77 for CLIP); all texts must give the same length.
using TokenizeFn = std::function<std::vector<int32_t>(const std::string&)>;

class TrainLoader {
 public:
  // Resolves the shard list (UserError naming a missing shard) and validates the options
  // (UserError when world_size does not divide streams).
  TrainLoader(TrainLoaderOptions opt, TokenizeFn tokenize);
  ~TrainLoader();
  TrainLoader(const TrainLoader&) = delete;
  TrainLoader& operator=(const TrainLoader&) = delete;

  // Continues from a saved state (a merged, complete one; any world size dividing its streams).
  // Only before the first next(). UserError when it belongs to other data or settings.
  void restore(const LoaderState& state);

  // Exactly batch_size samples. Throws UserError when the bad-sample fraction exceeds
  // max_bad_fraction, or when a stream finds nothing readable in two consecutive epochs.
  Batch next();

  // This rank's part of the position after the last batch returned (merge the ranks' parts).
  LoaderState state() const;

  int64_t epoch() const;         // epoch of the last sample returned (0-based)
  int64_t epoch_samples() const; // samples in one epoch of the job: streams x floor(total / streams)
  int64_t samples_seen() const;  // samples returned by this rank
  DataStats stats() const;
  const std::vector<std::string>& shards() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pc
