#pragma once
// Operator trace of chosen training steps (train.profile-step / train.profile-steps): LibTorch's
// profiler records every operator, autograd node and record_function scope of steps
// [first, first + count) and writes one Chrome-trace JSON per rank (chrome://tracing, Perfetto;
// bench/profile_summary.py tabulates self time per operator).
#include <cstdint>
#include <memory>
#include <string>

namespace pc {

class StepProfiler {
 public:
  // first = 0: off. path: the trace file this rank writes when the last profiled step ends.
  StepProfiler(int64_t first, int64_t count, std::string path);
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  void step_begins(int64_t step);  // starts recording at `first`
  void step_ends(int64_t step);    // writes the trace after `first + count - 1`

 private:
  struct Recording;
  int64_t first_, count_;
  std::string path_;
  std::unique_ptr<Recording> recording_;
};

}  // namespace pc
