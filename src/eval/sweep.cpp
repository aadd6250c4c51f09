// The sweep loop: which checkpoints still need which tasks, verification of model.h5 against the
// manifest, one model loaded per run and re-filled per checkpoint, atomic result files.
#include "pyramidclip/eval/sweep.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/model/h5_io.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace fs = std::filesystem;

namespace pc {
namespace {

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string result_path(const std::string& out_dir, int64_t step, const std::string& task) {
  return (fs::path(out_dir) / step_dir_name(step) / (task + ".json")).string();
}

// True when path holds a result for exactly this model.h5 and task spec.
bool result_is_current(const std::string& path, const ManifestFile& model, const EvalTaskSpec& task) {
  std::ifstream in(path);
  if (!in.good()) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    const auto j = nlohmann::json::parse(ss.str());
    return j.at("model_h5").at("xxh3").get<std::string>() == model.xxh3 &&
           j.at("model_h5").at("bytes").get<int64_t>() == model.bytes && j.at("task") == task_spec_json(task) &&
           j.at("metrics").is_object();
  } catch (const nlohmann::json::exception&) {
    return false;  // damaged or foreign: evaluate again (the atomic write replaces it)
  }
}

// The run's last step from a checkpoint's state.h5 (as the trainer computes it); -1 if unknown.
int64_t total_steps_of(const std::string& ckpt_dir) {
  try {
    h5::Quiet quiet;
    const std::string path = ckpt_dir + "/state.h5";
    const h5::Id f = h5::open_read(path);
    const double total = h5::read_attr_f64(f.get(), "lr_total_samples", path);
    const int64_t batch = h5::read_attr_i64(f.get(), "global_batch", path);
    return batch > 0 ? std::max<int64_t>(1, static_cast<int64_t>(total / static_cast<double>(batch))) : -1;
  } catch (const UserError&) {
    return -1;
  }
}

class Sweeper {
 public:
  Sweeper(const SweepOptions& opt, const std::atomic<bool>& stop)
      : opt_(opt), stop_(stop), tok_(Tokenizer::from_file(opt.vocab)), model_(opt.model) {
    model_->eval();
  }

  // One pass over the checkpoints; returns how many of this shard's still lack a result.
  int64_t pass(const std::vector<CheckpointEntry>& checkpoints, SweepReport& rep) {
    int64_t pending = 0;
    for (const CheckpointEntry& c : checkpoints) {
      if (sweep_shard_of(c.step, opt_.shard_count) != opt_.shard_index || given_up_.count(c.step)) continue;
      if (stopping(rep)) {
        ++pending;
        continue;
      }
      evaluate(c, rep);
    }
    return pending;
  }

  bool stopping(SweepReport& rep) const {
    if (stop_.load() || (opt_.limit >= 0 && rep.checkpoints_evaluated >= opt_.limit)) rep.stopped = true;
    return rep.stopped;
  }

 private:
  void give_up(int64_t step, SweepReport& rep, bool vanished, const std::string& why) {
    given_up_.insert(step);
    ++(vanished ? rep.checkpoints_vanished : rep.checkpoints_invalid);
    spdlog::warn("sweep: {}: skipped", why);
  }

  void evaluate(const CheckpointEntry& c, SweepReport& rep) {
    std::error_code ec;
    Manifest m;
    try {
      m = read_manifest(c.path);
    } catch (const UserError& e) {
      give_up(c.step, rep, !fs::exists(c.path, ec), fs::exists(c.path, ec) ? e.what() : c.path + " was deleted (retention)");
      return;
    }
    const ManifestFile* model = nullptr;
    for (const auto& f : m.files)
      if (f.name == "model.h5") model = &f;
    if (!model) return give_up(c.step, rep, false, c.path + "/MANIFEST.json does not list model.h5");
    std::vector<const EvalTaskSpec*> todo;
    for (const auto& t : opt_.tasks)
      if (!result_is_current(result_path(opt_.out_dir, c.step, t.name), *model, t)) todo.push_back(&t);
    if (todo.empty()) {
      ++rep.checkpoints_cached;
      return;
    }
    // Only model.h5 is checked and read: the optimizer files may be large and are not needed.
    const std::string weights = c.path + "/model.h5";
    FileDigest d;
    try {
      d = file_digest(weights);
    } catch (const UserError& e) {
      const bool gone = !fs::exists(c.path, ec);
      return give_up(c.step, rep, gone, gone ? c.path + " was deleted (retention)" : std::string(e.what()));
    }
    if (d.bytes != model->bytes || d.xxh3 != model->xxh3)
      return give_up(c.step, rep, false,
                     weights + " does not match MANIFEST.json (" + std::to_string(d.bytes) + " bytes, XXH3 " + d.xxh3 +
                         "; the manifest says " + std::to_string(model->bytes) + " bytes, XXH3 " + model->xxh3 +
                         "): corrupt or replaced");
    try {
      load_model_h5(*model_, weights);
    } catch (const UserError&) {
      if (!fs::exists(c.path, ec)) return give_up(c.step, rep, true, c.path + " was deleted (retention) while loading");
      throw;  // wrong keys or shapes: the model configuration does not fit this run (exit 2)
    }
    model_->eval();
    bool any = false;
    for (const EvalTaskSpec* t : todo) {
      if (any && stop_.load()) break;  // finish what was started; the rest on the next run
      const auto start = std::chrono::steady_clock::now();
      std::string line;
      nlohmann::json metrics = run_eval_task(*model_, tok_, *t, opt_.run, &line);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const nlohmann::json result = {{"step", c.step},
                                     {"samples_seen", m.samples_seen},
                                     {"checkpoint", c.path},
                                     {"model_h5", {{"bytes", model->bytes}, {"xxh3", model->xxh3}}},
                                     {"task", task_spec_json(*t)},
                                     {"metrics", std::move(metrics)},
                                     {"seconds", seconds},
                                     {"evaluated_at", now_utc()},
                                     {"version", PYRAMIDCLIP_VERSION}};
      const std::string path = result_path(opt_.out_dir, c.step, t->name);
      fs::create_directories(fs::path(path).parent_path(), ec);
      require(!ec, "cannot create " + fs::path(path).parent_path().string() + ": " + ec.message());
      write_file_atomic(path, result.dump(1) + "\n");
      spdlog::info("sweep: evaluated {} task {} ({:.1f}s): {}", step_dir_name(c.step), t->name, seconds, line);
      ++rep.results_written;
      any = true;
    }
    ++rep.checkpoints_evaluated;
  }

  const SweepOptions& opt_;
  const std::atomic<bool>& stop_;
  Tokenizer tok_;
  PyramidClip model_;
  std::set<int64_t> given_up_;  // damaged or vanished: not retried by --watch
};

void sleep_unless_stopped(double seconds, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!stop.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

}  // namespace

int sweep_shard_of(int64_t step, int count) {
  uint64_t z = static_cast<uint64_t>(step) + 0x9E3779B97F4A7C15ULL;  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<int>(z % static_cast<uint64_t>(std::max(1, count)));
}

std::pair<int, int> parse_shard(const std::string& text) {
  int i = -1, n = 0;
  char extra = 0;
  const bool ok = std::sscanf(text.c_str(), "%d/%d%c", &i, &n, &extra) == 2 && n > 0 && i >= 0 && i < n;
  require(ok, "bad --shard '" + text + "': write i/n with 0 <= i < n (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)");
  return {i, n};
}

SweepReport run_sweep(const SweepOptions& opt, const std::atomic<bool>& stop) {
  require(!opt.tasks.empty(), "sweep: no evaluation task: pass --zeroshot NAME=SRC, --retrieval NAME=SRC or --tasks FILE");
  check_unique_task_names(opt.tasks);
  for (const auto& t : opt.tasks) check_eval_task(t);
  std::error_code ec;
  require(fs::is_directory(opt.checkpoints, ec),
          "sweep: " + opt.checkpoints + " is not a directory: pass <run>/checkpoints");
  require(opt.shard_count > 0 && opt.shard_index >= 0 && opt.shard_index < opt.shard_count, "sweep: bad shard");
  torch::NoGradGuard no_grad;
  Sweeper sweeper(opt, stop);
  SweepReport rep;
  int64_t total_steps = -1;
  for (bool first = true;; first = false) {
    // one listing per pass: "last step published" below must mean "seen by this pass"
    const auto all = list_checkpoints(opt.checkpoints);
    if (opt.watch && total_steps < 0 && !all.empty()) {
      total_steps = total_steps_of(all.back().path);
      if (total_steps > 0) spdlog::info("sweep: watching until step {} (the run's last step)", total_steps);
    }
    const int64_t written_before = rep.results_written;
    const int64_t pending = sweeper.pass(all, rep);
    if (first || rep.results_written > written_before) {
      const auto paths = write_sweep_summary(opt.out_dir);
      if (!paths.empty()) spdlog::info("sweep: {} results in {}", read_sweep_results(opt.out_dir).size(), paths.front());
    }
    if (!opt.watch || sweeper.stopping(rep)) break;
    if (pending == 0 && total_steps > 0 && !all.empty() && all.back().step >= total_steps) {
      spdlog::info("sweep: the run's last step {} is published and this shard's checkpoints are evaluated", total_steps);
      break;
    }
    sleep_unless_stopped(opt.poll_seconds, stop);
    if (stop.load()) {
      rep.stopped = true;
      break;
    }
  }
  return rep;
}

}  // namespace pc
