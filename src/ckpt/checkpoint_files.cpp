// optim-*.h5 and state.h5 (see checkpoint_files.h).
#include "pyramidclip/ckpt/checkpoint_files.h"

#include <cstring>
#include <filesystem>
#include <sstream>

#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/model/h5_io.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace pc {
namespace fs = std::filesystem;

void write_optim_shard(const std::string& path, const OptimShard& s, const FlatLayout& layout, bool durable) {
  h5::Quiet quiet;
  {
    h5::Id f = h5::create(path);
    const std::string table = layout_table(layout);
    at::Tensor bytes = at::empty({static_cast<int64_t>(table.size())}, at::kByte);
    std::memcpy(bytes.data_ptr(), table.data(), table.size());
    h5::write_tensor(f.get(), "layout", bytes, path);
    h5::write_tensor(f.get(), "master", s.master.to(at::kFloat), path);  // no copy when fp32 already
    h5::write_tensor(f.get(), "exp_avg", s.exp_avg.to(at::kFloat), path);
    h5::write_tensor(f.get(), "exp_avg_sq", s.exp_avg_sq.to(at::kFloat), path);
    h5::write_tensor(f.get(), "rng", s.rng.defined() ? s.rng : at::empty({0}, at::kByte), path);
    h5::write_attr(f.get(), "rank", static_cast<int64_t>(s.rank), path);
    h5::write_attr(f.get(), "world_size", static_cast<int64_t>(s.world_size), path);
    h5::write_attr(f.get(), "stage", static_cast<int64_t>(s.stage), path);
    h5::write_attr(f.get(), "begin", s.begin, path);
    h5::write_attr(f.get(), "end", s.end, path);
    h5::write_attr(f.get(), "numel", layout.numel, path);
    h5::write_attr(f.get(), "padded_numel", layout.padded_numel, path);
    h5::write_attr(f.get(), "adam_step", s.adam_step, path);
    require(f.close(), "cannot finish writing " + path + " (disk full?)");
  }
  if (durable) fsync_file(path);
}

namespace {

// Same parameters at the same offsets: only then can slices be exchanged between world sizes.
void check_layout(const FlatLayout& saved, const FlatLayout& expected, const std::string& where) {
  require(saved.params.size() == expected.params.size() && saved.numel == expected.numel,
          where + " holds optimizer state for " + std::to_string(saved.params.size()) + " tensors (" +
              std::to_string(saved.numel) + " values), this model has " + std::to_string(expected.params.size()) +
              " (" + std::to_string(expected.numel) + "): resume with the model configuration the run was started with");
  for (size_t i = 0; i < saved.params.size(); ++i) {
    const FlatParam &a = saved.params[i], &b = expected.params[i];
    require(a.name == b.name && a.offset == b.offset && a.shape == b.shape,
            where + ": parameter " + std::to_string(i) + " is " + a.name + " there but " + b.name +
                " (or another shape) in this model: resume with the run's model configuration");
  }
}

}  // namespace

OptimShardSet::OptimShardSet(const std::string& dir, int world_size, const FlatLayout& expected)
    : dir_(dir), world_(world_size) {
  h5::Quiet quiet;
  for (int r = 0; r < world_size; ++r) {
    const std::string path = (fs::path(dir) / optim_file_name(r, world_size)).string();
    h5::Id f = h5::open_read(path);
    at::Tensor bytes = h5::read_tensor(f.get(), "layout", path);
    std::istringstream table(std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel())));
    FlatLayout saved;
    try {
      saved = read_layout_table(table);
    } catch (const c10::Error&) {
      throw UserError(path + ": its /layout table is damaged");
    }
    check_layout(saved, expected, path);
    const int64_t begin = h5::read_attr_i64(f.get(), "begin", path), end = h5::read_attr_i64(f.get(), "end", path);
    const int64_t padded = h5::read_attr_i64(f.get(), "padded_numel", path);
    require(padded % world_size == 0 && begin == padded / world_size * r && end == begin + padded / world_size,
            path + ": its slice [" + std::to_string(begin) + ", " + std::to_string(end) + ") is not rank " +
                std::to_string(r) + "'s of " + std::to_string(world_size));
    const int64_t step = h5::read_attr_i64(f.get(), "adam_step", path);
    if (r == 0) {
      numel_ = saved.numel;
      old_shard_ = padded / world_size;
      adam_step_ = step;
    }
    require(step == adam_step_, path + " is at optimizer step " + std::to_string(step) + ", rank 0's file at " +
                                    std::to_string(adam_step_) + ": files of different saves were mixed");
  }
}

at::Tensor OptimShardSet::read(const std::string& which, int64_t begin, int64_t end) const {
  h5::Quiet quiet;
  at::Tensor out = at::zeros({end - begin}, at::kFloat);
  const int64_t stop = std::min(end, numel_);
  for (int64_t pos = begin; pos < stop;) {
    const int r = static_cast<int>(pos / old_shard_);
    const int64_t file_begin = old_shard_ * r, n = std::min(stop, file_begin + old_shard_) - pos;
    const std::string path = (fs::path(dir_) / optim_file_name(r, world_)).string();
    h5::Id f = h5::open_read(path);
    out.narrow(0, pos - begin, n).copy_(h5::read_range(f.get(), which, pos - file_begin, n, at::kFloat, path));
    pos += n;
  }
  return out;
}

at::Tensor OptimShardSet::rng(int rank) const {
  h5::Quiet quiet;
  const std::string path = (fs::path(dir_) / optim_file_name(rank, world_)).string();
  h5::Id f = h5::open_read(path);
  return h5::read_tensor(f.get(), "rng", path);
}

void write_train_state(const std::string& path, const TrainState& s, bool durable) {
  h5::Quiet quiet;
  {
    h5::Id f = h5::create(path);
    auto i64 = [&](const char* n, int64_t v) { h5::write_attr(f.get(), n, v, path); };
    auto f64 = [&](const char* n, double v) { h5::write_attr(f.get(), n, v, path); };
    auto str = [&](const char* n, const std::string& v) { h5::write_attr(f.get(), n, v, path); };
    i64("format", kCheckpointFormat);
    i64("step", s.step);
    f64("samples_seen", s.samples_seen);
    f64("epoch", s.epoch);
    i64("world_size", s.world_size);
    i64("global_batch", s.global_batch);
    i64("seed", s.seed);
    f64("lr_peak", s.lr_peak);
    f64("lr_warmup_samples", s.lr_warmup_samples);
    f64("lr_total_samples", s.lr_total_samples);
    f64("loss_scale", s.loss_scale);
    i64("loss_scale_tracker", s.loss_scale_tracker);
    i64("skipped_steps", s.skipped_steps);
    i64("restarts", s.restarts);
    str("config", s.config);
    str("version", s.version);
    str("arch", s.arch);
    h5::write_tensor(f.get(), "loader_state",
                     at::tensor(at::ArrayRef<int64_t>(s.loader_state), at::kLong), path);
    require(f.close(), "cannot finish writing " + path + " (disk full?)");
  }
  if (durable) fsync_file(path);
}

TrainState read_train_state(const std::string& path) {
  h5::Quiet quiet;
  h5::Id f = h5::open_read(path);
  TrainState s;
  auto i64 = [&](const char* n) { return h5::read_attr_i64(f.get(), n, path); };
  auto f64 = [&](const char* n) { return h5::read_attr_f64(f.get(), n, path); };
  const int64_t format = i64("format");
  require(format == kCheckpointFormat, path + " has format " + std::to_string(format) + ", this pyramidclip reads " +
                                           std::to_string(kCheckpointFormat));
  s.step = i64("step");
  s.samples_seen = f64("samples_seen");
  s.epoch = f64("epoch");
  s.world_size = static_cast<int>(i64("world_size"));
  s.global_batch = static_cast<int>(i64("global_batch"));
  s.seed = i64("seed");
  s.lr_peak = f64("lr_peak");
  s.lr_warmup_samples = f64("lr_warmup_samples");
  s.lr_total_samples = f64("lr_total_samples");
  s.loss_scale = f64("loss_scale");
  s.loss_scale_tracker = i64("loss_scale_tracker");
  s.skipped_steps = i64("skipped_steps");
  s.restarts = i64("restarts");
  s.config = h5::read_attr_str(f.get(), "config", path);
  s.version = h5::read_attr_str(f.get(), "version", path);
  s.arch = h5::read_attr_str(f.get(), "arch", path);
  at::Tensor ls = h5::read_tensor(f.get(), "loader_state", path);
  s.loader_state.assign(ls.data_ptr<int64_t>(), ls.data_ptr<int64_t>() + ls.numel());
  return s;
}

}  // namespace pc
