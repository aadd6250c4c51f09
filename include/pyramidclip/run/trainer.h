#pragma once
#include "pyramidclip/run/train_config.h"
#include "pyramidclip/util/errors.h"

namespace pc {

class Comm;

// A bad-input error every rank knows about (they agreed on it collectively): each rank can return
// normally, and only rank 0 needs to print it.
struct SetupError : UserError {
  using UserError::UserError;
};

// Data-parallel training over `comm` (DESIGN §2): every rank builds the same model, reads its
// part of the shards, computes the local-loss form of the pyramid objective, averages gradients
// with one flat allreduce and steps AdamW. Rank 0 writes <run>/metrics.jsonl, <run>/config.cfg and
// the final <run>/model.h5. Returns the number of optimizer steps taken.
int64_t train(const TrainConfig& cfg, Comm& comm);

}  // namespace pc
