#pragma once
// When to save and when to stop (DESIGN §4, issue #5): SIGUSR1/SIGTERM/SIGINT only set a flag
// (async-signal-safe); at each step boundary the trainer asks decide() and MAX-allreduces the
// answer, so all ranks save the same step and stop together. Other reasons: periodic saves
// (every N steps and/or N minutes), the job's end time (Slurm's, read with `scontrol show job`,
// or --deadline) approaching within the measured step + save time, and two switch files in the
// run directory: SAVE_NOW (save, go on) and STOP_NOW (save and stop, no requeue).
#include <cstdint>
#include <string>

namespace pc {

// Exit code of a run that stopped early with a checkpoint (sysexits EX_TEMPFAIL: retry later).
constexpr int kExitResumable = 75;

struct ResumeControllerOptions {
  std::string run_dir;
  int64_t every_steps = 0;     // periodic save every N steps (0: off)
  double every_minutes = 0;    // periodic save every N minutes of wall time (0: off)
  double deadline = 0;         // unix time by which the job must have stopped (0: none / from Slurm)
  double margin_seconds = 30;  // extra headroom before the deadline
};

// Parses --deadline: unix seconds, "+90m"/"+2h"/"+600s" from now, or local "YYYY-MM-DDTHH:MM[:SS]".
// UserError for anything else.
double parse_deadline(const std::string& text, double now_unix);

// The job's end time from Slurm (scontrol show job $SLURM_JOB_ID: EndTime=), 0 if unknown.
double slurm_end_time();

// kSignal: SIGTERM/SIGINT (scancel, Ctrl-C, Slurm's own preemption/requeue): save and stop; Slurm
// requeues a preempted job itself. kRequeueSignal: SIGUSR1 (the sbatch --signal before the time
// limit, or `scancel --signal=USR1`): save, stop and requeue the job.
enum class StopReason { kNone = 0, kSignal = 1, kDeadline = 2, kStopFile = 3, kStopAfter = 4, kRequeueSignal = 5 };

struct Decision {
  bool save = false;
  StopReason stop = StopReason::kNone;
};

class ResumeController {
 public:
  explicit ResumeController(ResumeControllerOptions options);  // installs the signal handlers
  ~ResumeController();  // leaves them installed (a requeue's SIGTERM must not kill a saved rank)

  // This rank's view at a step boundary; the trainer MAX-allreduces [save, stop] over ranks (a
  // stop reason's number is its priority). step_seconds / save_seconds: measured estimates.
  Decision decide(int64_t step, double step_seconds, double save_seconds);
  // After a save the switch file asked for: remove it (rank 0) so a restart does not repeat it.
  void clear_switches();
  void note_saved();  // restarts the periodic-minutes clock
  int last_signal() const;  // 0 when none arrived
  double deadline() const { return deadline_; }

 private:
  ResumeControllerOptions opt_;
  double deadline_ = 0;
  double last_save_time_ = 0;
};

const char* to_string(StopReason r);

// Under Slurm (SLURM_JOB_ID set): `scontrol requeue $SLURM_JOB_ID` unless SLURM_RESTART_COUNT
// has reached max_restarts. Logs what it did; returns true when the job was requeued.
bool requeue_slurm_job(int max_restarts);

}  // namespace pc
