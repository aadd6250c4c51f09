#pragma once
// The train loader's position, small and serializable (checkpoints store it; DESIGN §3 state.h5).
// A rank's state holds the cursors of its own streams; merging every rank's state gives the
// job's, which any world size dividing `streams` can resume from.
#include <cstdint>
#include <string>
#include <vector>

#include "pyramidclip/data/sample_stream.h"

namespace pc {

struct LoaderState {
  static constexpr int64_t kVersion = 1;
  uint64_t seed = 0;
  int64_t streams = 0, block = 0;
  int64_t num_shards = 0;
  uint64_t shards_hash = 0;        // of the shard names: a resumed job must read the same data
  int64_t epoch_samples = 0;       // samples per epoch (all streams): the same counts too
  int64_t position = 0;            // samples served job-wide (global position of the next sample)
  std::vector<StreamCursor> cursors;  // one per stream
  std::vector<uint8_t> held;          // 1 where `cursors` is known (a rank knows its own streams)

  bool complete() const;

  // A flat int64 vector (version first): what checkpoints store and ranks all-gather.
  std::vector<int64_t> encode() const;
  // UserError naming the problem when `v` is not an encoded state of a known version.
  static LoaderState decode(const std::vector<int64_t>& v);
  // The union of the ranks' states; UserError when they disagree or a stream is held twice.
  static LoaderState merge(const std::vector<LoaderState>& parts);
};

// A stable hash of the shard list (names only, not contents).
uint64_t shard_list_hash(const std::vector<std::string>& shards);

}  // namespace pc
