#pragma once
#include <cstdint>
#include <string>

#include "pyramidclip/run/setup_error.h"
#include "pyramidclip/run/train_config.h"

namespace pc {

class Comm;

struct TrainResult {
  int64_t step = 0;         // the last step taken (of the whole run, across restarts)
  bool finished = false;    // false: stopped early with a checkpoint (signal, deadline, STOP_NOW)
  std::string stop_reason;  // why it stopped early
};

// Data-parallel training over `comm` (DESIGN §2): every rank builds the same model, resumes from
// a checkpoint (cfg.resume), reads its part of the shards, computes the local-loss form of the
// pyramid objective, syncs gradients in buckets and steps ZeRO AdamW; saves checkpoints as the
// resume controller decides. Rank 0 writes <run>/metrics.jsonl (appended across restarts),
// <run>/config.cfg, <run>/checkpoints/ and, when finished, <run>/model.h5.
TrainResult train(const TrainConfig& cfg, Comm& comm);

}  // namespace pc
