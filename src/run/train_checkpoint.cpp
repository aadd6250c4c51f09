// Snapshots for saving, choosing and loading checkpoints (see train_checkpoint.h).
#include "pyramidclip/run/train_checkpoint.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <mutex>

#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/optim/zero_adamw.h"
#include "pyramidclip/run/setup_error.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace fs = std::filesystem;

namespace {

// Elements [begin, end) of the flat vector from a tensor that holds [t_begin, t_begin + numel):
// zeros outside it (padding). A view when it lies inside a CPU fp32 tensor and `live`.
at::Tensor flat_slice(const at::Tensor& t, int64_t t_begin, int64_t begin, int64_t end, bool live) {
  if (live && t.device().is_cpu() && t.scalar_type() == at::kFloat && begin >= t_begin &&
      end <= t_begin + t.numel())
    return t.detach().narrow(0, begin - t_begin, end - begin);
  at::Tensor out = at::zeros({end - begin}, at::TensorOptions().dtype(at::kFloat));
  const int64_t lo = std::max(begin, t_begin), hi = std::min(end, t_begin + t.numel());
  if (hi > lo) out.narrow(0, lo - begin, hi - lo).copy_(t.narrow(0, lo - t_begin, hi - lo).to(at::kCPU));
  return out;
}

}  // namespace

CheckpointSnapshot take_snapshot(int64_t step, double samples_seen, PyramidClip& model, const ZeroAdamW& optimizer,
                                 Comm& comm, const std::string& arch) {
  CheckpointSnapshot s;
  s.step = step;
  s.samples_seen = samples_seen;
  s.arch = arch;
  const FlatLayout& layout = optimizer.layout();
  s.layout = layout;
  const int rank = comm.rank();
  const int64_t begin = layout.shard_begin(rank), end = layout.shard_end(rank);
  auto& opt = const_cast<ZeroAdamW&>(optimizer);  // read-only use of the state accessors
  OptimShard& o = s.optim;
  o.rank = rank;
  o.world_size = comm.size();
  o.stage = optimizer.stage();
  o.begin = begin;
  o.end = end;
  o.adam_step = optimizer.step_count();
  s.live = opt.master().device().is_cpu();
  o.master = flat_slice(opt.master(), optimizer.state_begin(), begin, end, s.live);
  o.exp_avg = flat_slice(opt.exp_avg(), optimizer.state_begin(), begin, end, s.live);
  o.exp_avg_sq = flat_slice(opt.exp_avg_sq(), optimizer.state_begin(), begin, end, s.live);
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    o.rng = gen.get_state();
  }
  if (rank == 0) s.model = snapshot_state(*model, /*copy_parameters=*/!s.live);
  return s;
}

ResumePoint choose_checkpoint(const TrainConfig& cfg, Comm& comm) {
  ResumePoint p;
  if (cfg.resume == "none") return p;
  const std::string root = cfg.run_dir + "/checkpoints";
  std::string err;
  int64_t step = -1, world = 0;
  if (comm.rank() == 0) {
    try {
      for (const auto& gone : remove_unfinished(root))
        spdlog::warn("checkpoint: removed {} (a save that never finished)", gone);
      std::string dir;
      if (cfg.resume == "auto") {
        std::vector<std::string> rejected;
        auto found = newest_valid_checkpoint(root, &rejected);
        for (const auto& why : rejected) spdlog::warn("checkpoint: skipping invalid checkpoint: {}", why);
        if (found) dir = found->path;
      } else {
        if (cfg.resume == "latest") {
          const std::string name = read_latest(root);
          require(!name.empty(), "--resume latest: " + root + "/latest does not exist: use --resume auto or none");
          dir = root + "/" + name;
        } else {
          dir = cfg.resume;
        }
        const std::string why = verify_checkpoint(dir);
        require(why.empty(), "--resume " + cfg.resume + ": " + why +
                                 " (use --resume auto to take the newest valid checkpoint instead)");
      }
      if (!dir.empty()) {
        const Manifest m = read_manifest(dir);
        step = m.step;
        world = m.world_size;
        p.dir = dir;
      }
    } catch (const UserError& e) {
      err = e.what();
    }
  }
  raise_if_rank0_failed(comm, err, "rank 0 could not resume (see its log)");
  at::Tensor info = torch::tensor({step, world}, torch::kLong);
  comm.broadcast(info, 0);
  p.step = info[0].item<int64_t>();
  p.world_size = static_cast<int>(info[1].item<int64_t>());
  if (p.step < 0) return ResumePoint{};
  if (comm.rank() != 0)
    p.dir = (cfg.resume == "auto" || cfg.resume == "latest") ? root + "/" + step_dir_name(p.step) : cfg.resume;
  return p;
}

TrainState load_checkpoint(const ResumePoint& point, PyramidClip& model, ZeroAdamW& optimizer, Comm& comm,
                           uint64_t seed) {
  TrainState st;
  std::string err;
  try {
    st = read_train_state(point.dir + "/state.h5");
    load_model_h5(*model, point.dir + "/model.h5");
    OptimShardSet shards(point.dir, point.world_size, optimizer.layout());
    torch::NoGradGuard no_grad;
    const int64_t b = optimizer.state_begin(), e = optimizer.state_end();
    optimizer.master().copy_(shards.read("master", b, e));
    optimizer.exp_avg().copy_(shards.read("exp_avg", b, e));
    optimizer.exp_avg_sq().copy_(shards.read("exp_avg_sq", b, e));
    optimizer.set_step_count(shards.adam_step());
    if (point.world_size == comm.size()) {
      at::Generator gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(shards.rng(comm.rank()));
    } else {  // other ranks, other streams: a fresh per-rank stream keyed to the step
      torch::manual_seed(seed + 1000003ULL * (comm.rank() + 1) + 7919ULL * static_cast<uint64_t>(point.step));
    }
  } catch (const UserError& e) {
    err = e.what();
  }
  // Every rank read the same files; a failure anywhere stops all ranks alike.
  raise_if_any_rank_failed(comm, err.empty() ? err : "cannot resume from " + point.dir + ": " + err,
                           "another rank could not load " + point.dir + " (see its log)");
  at::Tensor steps = torch::tensor({st.step, -st.step}, torch::kLong);
  comm.allreduce_max(steps);
  require(steps[0].item<int64_t>() == -steps[1].item<int64_t>(),
          "ranks loaded different steps from " + point.dir + ": is the run directory on a shared file system?");
  return st;
}

}  // namespace pc
