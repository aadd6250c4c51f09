#pragma once
// The HDF5 files inside a checkpoint directory (DESIGN §3), readable with h5py:
//  - optim-RRRRR-of-NNNNN.h5: rank R's canonical ZeRO slice [begin, end) of the flat vector
//    (the same slice for every stage; stage 0 ranks store their part of the replicated state):
//    /master /exp_avg /exp_avg_sq (float32, 1-D), /rng (this rank's CPU generator state, uint8),
//    /layout (the flat-layout table as UTF-8 bytes: name, offset, numel, shape, weight decay);
//    attributes rank, world_size, begin, end, numel, padded_numel, adam_step, stage.
//  - state.h5: attributes step, samples_seen, epoch, world_size, global_batch, seed,
//    lr_peak, lr_warmup_samples, lr_total_samples, loss_scale, loss_scale_tracker,
//    skipped_steps, restarts, config (text), version, arch; /loader_state (int64, the merged
//    LoaderState::encode()).
//  - model.h5: written by save_tensors_h5 (model/model_h5.h).
// A reader rebuilds any rank's slice for any world size from the set of optim files.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pyramidclip/optim/flat_layout.h"

namespace pc {

struct OptimShard {
  int rank = 0, world_size = 1, stage = 1;
  int64_t begin = 0, end = 0;  // canonical slice of the padded flat vector
  int64_t adam_step = 0;
  at::Tensor master, exp_avg, exp_avg_sq;  // [end - begin] each, float32 (CPU)
  at::Tensor rng;                          // uint8 generator state
};
// durable false: no fsync (the caller syncs the whole checkpoint directory).
void write_optim_shard(const std::string& path, const OptimShard& shard, const FlatLayout& layout,
                       bool durable = true);

// All optimizer shards of one checkpoint directory, read lazily by range.
class OptimShardSet {
 public:
  // Opens <dir>/optim-*-of-<world_size>.h5 and checks every file's layout against `expected`
  // (names, offsets, sizes, shapes: the model must be the same; the world size may differ).
  OptimShardSet(const std::string& dir, int world_size, const FlatLayout& expected);
  int world_size() const { return world_; }
  int64_t adam_step() const { return adam_step_; }
  // Elements [begin, end) of "master", "exp_avg" or "exp_avg_sq" over the flat vector; positions
  // at or past numel (padding) read as zero.
  at::Tensor read(const std::string& which, int64_t begin, int64_t end) const;
  at::Tensor rng(int rank) const;  // the generator state rank `rank` saved

 private:
  std::string dir_;
  int world_ = 0;
  int64_t numel_ = 0, old_shard_ = 0, adam_step_ = 0;
};

struct TrainState {
  int64_t step = 0;
  double samples_seen = 0, epoch = 0;
  int world_size = 1, global_batch = 0;
  int64_t seed = 0;
  double lr_peak = 0, lr_warmup_samples = 0, lr_total_samples = 0;
  double loss_scale = 1;
  int64_t loss_scale_tracker = 0, skipped_steps = 0, restarts = 0;
  std::string config, version, arch;
  std::vector<int64_t> loader_state;
};
void write_train_state(const std::string& path, const TrainState& s, bool durable = true);
TrainState read_train_state(const std::string& path);  // UserError naming the file and field

}  // namespace pc
