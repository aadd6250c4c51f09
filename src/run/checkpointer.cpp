// Asynchronous checkpoint saving with a collective publish (see checkpointer.h).
#include "pyramidclip/run/checkpointer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/run/setup_error.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace pc {
namespace fs = std::filesystem;

struct Checkpointer::State {
  CheckpointOptions opts;
  Comm& comm;
  std::thread worker;
  bool in_flight = false;
  int64_t step = -1;
  double samples_seen = 0;
  std::string tmp_dir;
  std::atomic<bool> done{false};
  std::string error;  // written by the worker before done = true
  double write_seconds = 0, last_write_seconds = 0;
  // the writer has finished reading the snapshot's tensors (live ones may change again)
  std::mutex mu;
  std::condition_variable cv;
  bool released = true;

  State(CheckpointOptions o, Comm& c) : opts(std::move(o)), comm(c) {}

  void release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      released = true;
    }
    cv.notify_all();
  }

  void write(std::shared_ptr<CheckpointSnapshot> snap) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      const int rank = comm.rank(), world = comm.size();
      std::vector<std::string> mine = {optim_file_name(rank, world)};
      write_optim_shard((fs::path(tmp_dir) / mine[0]).string(), snap->optim, snap->layout, /*durable=*/false);
      if (rank == 0) {
        save_tensors_h5(snap->model, (fs::path(tmp_dir) / "model.h5").string(), snap->step, snap->arch, false);
        write_train_state((fs::path(tmp_dir) / "state.h5").string(), snap->state, false);
        mine.push_back("model.h5");
        mine.push_back("state.h5");
      }
      snap.reset();  // the tensors are in the files (or the page cache): drop the references
      release();
      for (const auto& name : mine) fsync_file((fs::path(tmp_dir) / name).string());
      write_digest_sidecar(tmp_dir, rank, mine);  // reads the files back from the page cache
    } catch (const std::exception& e) {
      error = e.what();
    }
    release();
    write_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    done = true;
  }
};

Checkpointer::Checkpointer(CheckpointOptions options, Comm& comm)
    : s_(std::make_unique<State>(std::move(options), comm)) {}

Checkpointer::~Checkpointer() {
  if (s_->worker.joinable()) s_->worker.join();
}

bool Checkpointer::in_flight() const { return s_->in_flight; }
double Checkpointer::last_write_seconds() const { return s_->last_write_seconds; }
const CheckpointOptions& Checkpointer::options() const { return s_->opts; }

void Checkpointer::save(CheckpointSnapshot snapshot) {
  if (s_->in_flight) poll(/*wait=*/true);
  State& s = *s_;
  s.step = snapshot.step;
  s.samples_seen = snapshot.samples_seen;
  s.tmp_dir = (fs::path(s.opts.root) / (step_dir_name(snapshot.step) + ".tmp")).string();
  // rank 0 makes the directory; the others wait for it (one barrier per save)
  std::string err;
  if (s.comm.rank() == 0) {
    std::error_code ec;
    fs::remove_all(s.tmp_dir, ec);  // a leftover of a killed save of this same step
    fs::create_directories(s.tmp_dir, ec);
    if (ec) err = "cannot create " + s.tmp_dir + ": " + ec.message();
  }
  raise_if_rank0_failed(s.comm, err, "rank 0 could not create the checkpoint directory under " + s.opts.root);
  s.done = false;
  s.error.clear();
  s.in_flight = true;
  s.released = false;
  auto snap = std::make_shared<CheckpointSnapshot>(std::move(snapshot));
  if (s.opts.async) {
    s.worker = std::thread([this, snap]() mutable { s_->write(std::move(snap)); });
  } else {
    s.write(std::move(snap));
    poll(/*wait=*/true);
  }
}

double Checkpointer::fence() {
  State& s = *s_;
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait(lock, [&] { return s.released; });
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t Checkpointer::poll(bool wait) {
  State& s = *s_;
  if (!s.in_flight) return -1;
  if (wait && s.worker.joinable()) s.worker.join();
  at::Tensor flags = torch::tensor({s.done ? 0 : 1, s.error.empty() ? 0 : 1}, torch::kInt);
  s.comm.allreduce_max(flags);
  if (flags[0].item<int>()) return -1;  // some rank is still writing
  if (s.worker.joinable()) s.worker.join();
  s.in_flight = false;
  s.last_write_seconds = s.write_seconds;
  if (!s.error.empty()) spdlog::error("checkpoint step {}: {}", s.step, s.error);
  if (flags[1].item<int>())
    throw SetupError("checkpoint step " + std::to_string(s.step) + " was not saved: " +
                     (s.error.empty() ? "another rank failed to write its files (see its log)" : s.error));
  // every rank's files are complete and fsynced: rank 0 seals and publishes
  std::string err;
  if (s.comm.rank() == 0) {
    try {
      std::vector<ManifestFile> files;
      for (int r = 0; r < s.comm.size(); ++r)
        for (auto& f : read_digest_sidecar(s.tmp_dir, r)) files.push_back(std::move(f));
      for (int r = 0; r < s.comm.size(); ++r) fs::remove(fs::path(s.tmp_dir) / digest_sidecar_name(r));
      write_manifest(s.tmp_dir, s.step, s.comm.size(), s.samples_seen, std::move(files));
      const std::string dir = publish_checkpoint(s.opts.root, s.tmp_dir, s.step);
      for (const auto& gone : apply_retention(s.opts.root, s.opts.keep_last, s.opts.keep_every))
        spdlog::debug("checkpoint: removed {} (retention)", gone);
      spdlog::info("checkpoint: saved {} ({:.2f}s writing in the background)", dir, s.write_seconds);
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  const std::string what = "checkpoint step " + std::to_string(s.step) + " could not be published: ";
  raise_if_rank0_failed(s.comm, err.empty() ? err : what + err, what + "see rank 0's log");
  return s.step;
}

}  // namespace pc
