#pragma once
// The trainer's side of checkpoints: what a save captures, which checkpoint a start resumes
// from (--resume auto | latest | none | <dir>), and loading it into a model and a ZeRO optimizer
// of ANY world size (the optimizer slices are re-cut from the saved flat layout).
#include <cstdint>
#include <string>

#include "pyramidclip/ckpt/checkpoint_files.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/run/checkpointer.h"
#include "pyramidclip/run/train_config.h"

namespace pc {

class Comm;
class ZeroAdamW;

// The optimizer's canonical slice for this rank (whatever the ZeRO stage) and its CPU generator
// state; rank 0 also gets the weights. `state` is filled by the caller. With CPU training the
// weights and optimizer slices are referenced, not copied (snapshot.live: the caller fences the
// Checkpointer before the next optimizer step); CUDA state is copied to host memory.
CheckpointSnapshot take_snapshot(int64_t step, double samples_seen, PyramidClip& model, const ZeroAdamW& optimizer,
                                 Comm& comm, const std::string& arch);

struct ResumePoint {
  std::string dir;  // empty: start fresh
  int64_t step = -1;
  int world_size = 0;  // of the run that wrote it
};
// Collective: rank 0 chooses (and verifies, with checksums), every rank gets the same answer.
// auto: the newest valid checkpoint under <run>/checkpoints, logging each rejected one; latest:
// the one `latest` names (an error if it is damaged); none; or a directory. Bad choices throw
// SetupError on every rank. Also removes unfinished step-*.tmp directories.
ResumePoint choose_checkpoint(const TrainConfig& cfg, Comm& comm);

// Loads weights, optimizer state (resharded to this world size) and, on the same world size,
// this rank's generator state; returns state.h5. All ranks check they loaded the same step.
TrainState load_checkpoint(const ResumePoint& point, PyramidClip& model, ZeroAdamW& optimizer, Comm& comm,
                           uint64_t seed);

}  // namespace pc
