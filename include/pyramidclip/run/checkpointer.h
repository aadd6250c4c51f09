#pragma once
// Saving checkpoints from the training loop (DESIGN §3), in the background while training goes
// on; at most one save is in flight. A snapshot either holds copies (GPU state: one device-to-
// host copy) or, for CPU training, references the live weights and optimizer slices: forward
// and backward do not change them, so the trainer only calls fence() before the next optimizer
// step, which waits until the writer has read them (usually long done: no stall at all).
// The writer then fsyncs and checksums its files (a small digest sidecar per rank). Completion
// is agreed collectively at later step boundaries (poll), after which rank 0 writes the manifest
// from the sidecars, publishes the directory, moves `latest` and applies retention. The
// background thread makes no MPI calls: every collective stays on the training thread, so the
// job's collective order never depends on I/O timing.
#include <cstdint>
#include <memory>
#include <string>

#include "pyramidclip/ckpt/checkpoint_files.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/optim/flat_layout.h"

namespace pc {

class Comm;

struct CheckpointOptions {
  std::string root;     // <run>/checkpoints
  int keep_last = 3;    // >= 2: a damaged newest checkpoint still leaves one to resume from
  int64_t keep_every = 0;  // also keep every step divisible by this forever (0: none)
  bool async = true;    // false: save() returns after the checkpoint is published
};

// What one save writes, captured on the training thread.
struct CheckpointSnapshot {
  int64_t step = 0;
  double samples_seen = 0;
  std::string arch;
  NamedTensors model;  // rank 0 only (every rank holds the same weights)
  OptimShard optim;    // every rank: its canonical slice
  FlatLayout layout;
  TrainState state;    // rank 0 only
  bool live = false;   // model/optim reference live tensors: fence() before changing them
};

class Checkpointer {
 public:
  Checkpointer(CheckpointOptions options, Comm& comm);
  ~Checkpointer();  // waits for a write in flight (never publishes: that needs all ranks)
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Collective. Finishes the save in flight (if any), then starts this one.
  void save(CheckpointSnapshot snapshot);
  // Collective, at a step boundary: when every rank's write has finished (or `wait`), rank 0
  // publishes it. Returns the published step, or -1. A failed write on any rank throws
  // SetupError on every rank, naming the step (and, on the failing rank, the reason); its
  // .tmp directory is left for the next start to remove, never published.
  int64_t poll(bool wait = false);
  bool in_flight() const;
  // Blocks until the writer no longer reads live tensors (no-op without a live save in
  // flight); returns the seconds waited (training stall).
  double fence();

  double last_write_seconds() const;  // background time of the last finished save
  const CheckpointOptions& options() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace pc
