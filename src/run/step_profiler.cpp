#include "pyramidclip/run/step_profiler.h"

#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <filesystem>

namespace pc {

// RecordProfile (the legacy CPU profiler, also Python's use_kineto=False) needs no Kineto build and
// writes the trace when destroyed; its file is opened up front, so a bad path fails at step `first`.
struct StepProfiler::Recording {
  explicit Recording(const std::string& path) : guard(path) {}
  torch::autograd::profiler::RecordProfile guard;
};

StepProfiler::StepProfiler(int64_t first, int64_t count, std::string path)
    : first_(first), count_(count), path_(std::move(path)) {}

StepProfiler::~StepProfiler() = default;

void StepProfiler::step_begins(int64_t step) {
  if (first_ <= 0 || step != first_ || recording_) return;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  recording_ = std::make_unique<Recording>(path_);
}

void StepProfiler::step_ends(int64_t step) {
  if (!recording_ || step < first_ + count_ - 1) return;
  recording_.reset();  // writes the file
  spdlog::info("train: operator trace of steps {}..{} written to {}", first_, first_ + count_ - 1, path_);
}

}  // namespace pc
