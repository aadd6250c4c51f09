#pragma once
// `pyramidclip sweep`: evaluate every published checkpoint of a run once per task.
//
//   <run>/checkpoints/step-N/model.h5     read (verified against MANIFEST.json: size + XXH3 of
//                                        model.h5 only; optimizer files are never opened)
//   <run>/eval/step-N/<task>.json        one result per checkpoint and task, written atomically:
//                                        step, samples_seen, checkpoint, model_h5 {bytes, xxh3},
//                                        task (spec), metrics, seconds, evaluated_at, version
//   <run>/eval/results.csv               every cached result, one row per checkpoint x task
//   <run>/eval/plot-<metric>.svg         each headline metric vs samples seen, a line per task
//
// A result is current when its model_h5 digest and task spec equal the checkpoint's and the
// task's; a sweep evaluates only what is not current, so it can be stopped and restarted, and a
// re-published step is evaluated again. --shard i/n takes the steps whose stable hash is i mod n.
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "pyramidclip/eval/eval_task.h"
#include "pyramidclip/model/model_config.h"

namespace pc {

struct SweepOptions {
  std::string checkpoints;  // <run>/checkpoints
  std::string out_dir;      // results; default <run>/eval
  std::vector<EvalTaskSpec> tasks;
  ModelConfig model;
  std::string vocab;
  EvalRunOptions run;
  int shard_index = 0, shard_count = 1;
  bool watch = false;          // keep polling for new checkpoints until the run's last step is done
  double poll_seconds = 60;
  int64_t limit = -1;          // stop after evaluating this many checkpoints (-1: no limit)
};

struct SweepReport {
  int64_t checkpoints_evaluated = 0;  // checkpoints with at least one task evaluated now
  int64_t results_written = 0;        // (checkpoint, task) results written now
  int64_t checkpoints_cached = 0;     // every task already had a current result
  int64_t checkpoints_invalid = 0;    // skipped with a warning (damaged manifest or model.h5)
  int64_t checkpoints_vanished = 0;   // deleted (retention) before or while being read
  bool stopped = false;               // by `stop` or the limit
};

// The shard (0..count-1) a step belongs to: a hash of the step, so the assignment does not move
// when checkpoints appear or retention deletes some.
int sweep_shard_of(int64_t step, int count);
// "i/n" -> {i, n}; UserError unless 0 <= i < n.
std::pair<int, int> parse_shard(const std::string& text);

// Runs the sweep; `stop` (set from a signal handler) ends it after the current task's result.
// UserError for bad options or a model.h5 that does not fit the model configuration.
SweepReport run_sweep(const SweepOptions& opt, const std::atomic<bool>& stop);

// All cached results under out_dir (step-*/<task>.json), sorted by step then task. Unreadable
// files are skipped with a warning.
std::vector<nlohmann::json> read_sweep_results(const std::string& out_dir);
// results.csv text: step, samples_seen, task, kind, then every scalar metric (headline metrics
// first); numbers exactly as in the JSON.
std::string sweep_results_csv(const std::vector<nlohmann::json>& results);
// Writes results.csv and plot-<metric>.svg under out_dir (atomically); returns the paths.
std::vector<std::string> write_sweep_summary(const std::string& out_dir);

}  // namespace pc
