// Checkpoint write (issue #5): what one rank's save costs, side by side in one run.
//
//   bench_ckpt_write [--dir DIR] [--model vit-b16] [--official 1] [--reps 5] [--threads 1] [--json FILE] [--keep]
//
// Everything happens in a fresh directory made under DIR (--dir, else $CKPT_BENCH_DIR, else /tmp),
// removed at the end (unless --keep). One process, 1-rank MPI (singleton init: run it directly).
// The model (PyramidClip, preset --model) and a stage-1 ZeroAdamW over its flat parameter vector
// (exp_avg / exp_avg_sq filled with random values) are built once; take_snapshot gives the
// checkpoint's content, exactly what the trainer saves. Then, per repetition, six measurements,
// interleaved (the order rotates from one repetition to the next):
//
//  ckpt   the files a 1-rank save writes, through the public file calls with their defaults:
//         write_optim_shard, save_tensors_h5 (model.h5), write_train_state (each fsyncs its file),
//         write_manifest (reads every file back for its XXH3 checksum, writes MANIFEST.json
//         atomically), publish_checkpoint (rename, fsync, `latest`). The snapshot is taken before
//         (not timed here). The sync Checkpointer save below is the same bytes through the
//         Checkpointer's own path (whatever it does inside), reported against raw as well.
//  raw    the baseline: the same number of files with the same sizes (one per file of the published
//         checkpoint directory), each a plain write() loop of 8 MiB chunks + fsync + close, then one
//         fsync of the directory. Same disk, same directory. The chunks come from 2.4 GB of tensors
//         in memory (a copy of the snapshot's bytes), as the checkpoint's do: the kernel's copy into
//         the page cache reads DRAM on both sides.
//  raw_hot the same, every chunk from one 8 MiB random buffer (stays in the CPU caches): a bound
//         on what the disk takes, slightly flattering to the baseline.
//  async  Checkpointer (async = true): stall = take_snapshot + save() returning. Then fence()
//         at once (where the library has it: a snapshot that references live CPU tensors makes the
//         trainer call it before its next optimizer step; called right away it blocks longest),
//         then poll(false) every 5 ms until it publishes (the publishing poll, which writes the
//         manifest on the calling thread, is timed separately).
//  sync   Checkpointer (async = false): take_snapshot + save() (returns once published).
//  copy   memory only: the snapshot's bytes copied into fresh tensors (as a copying take_snapshot),
//         into buffers allocated once (reused between saves), and XXH3 over them in memory (what
//         checksumming while writing would cost instead of reading the files back).
//
// Every side writes fresh files (deleted, then ::sync(), between measurements, untimed) and fsyncs
// them, so neither side is left with dirty page cache for the other. One untimed warm-up of ckpt
// and raw first. Medians over the repetitions; GB = 1e9 bytes.
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <time.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/ckpt/checkpoint_files.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/optim/flat_layout.h"
#include "pyramidclip/optim/zero_adamw.h"
#include "pyramidclip/run/checkpointer.h"
#include "pyramidclip/run/param_groups.h"
#include "pyramidclip/run/train_checkpoint.h"

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "bench_ckpt_write: %s\n", msg.c_str());
  std::exit(1);
}

// Removes a directory tree and flushes the file system (journal, discards), untimed, so that the
// next measurement starts from the same state.
void clean(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  ::sync();
}

struct Options {
  std::string dir, model = "vit-b16", json;
  bool official = true, keep = false;
  int reps = 5, threads = 1;
};

// Checkpointer::fence() (blocks until a save no longer reads live tensors) where the library has
// it; 0 where snapshots are always copies.
template <typename C, typename = void>
struct HasFence : std::false_type {};
template <typename C>
struct HasFence<C, std::void_t<decltype(std::declval<C&>().fence())>> : std::true_type {};
template <typename C>
double fence(C& ck) {
  if constexpr (HasFence<C>::value)
    return ck.fence();
  else
    return 0;
}

// One measurement's figures (name -> seconds or bytes).
using Figures = std::map<std::string, double>;

struct Bench {
  Options o;
  pc::Comm& comm;
  pc::PyramidClip model;
  pc::ZeroAdamW& opt;
  pc::TrainState state;
  pc::CheckpointSnapshot snap;  // the content ckpt writes (taken once)
  fs::path root;
  std::vector<std::pair<std::string, int64_t>> files;  // the published directory: name, bytes
  std::vector<char> chunk;
  int64_t step = 1000;
  std::vector<at::Tensor> reuse_src, reuse_dst;  // "copy": the same bytes into buffers allocated once

  pc::CheckpointSnapshot take(int64_t s) {
    pc::CheckpointSnapshot x = pc::take_snapshot(s, 1.0e6, model, opt, comm, o.model);
    x.state = state;
    x.state.step = s;
    return x;
  }

  // ---------------------------------------------------------------- ckpt: the library calls
  Figures ckpt(const fs::path& dir) {
    fs::create_directories(dir);
    const int64_t s = ++step;
    const fs::path tmp = dir / (pc::step_dir_name(s) + ".tmp");
    fs::create_directories(tmp);
    Figures f;
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    auto t = t0;
    auto lap = [&](const char* key) {
      const auto now = Clock::now();
      f[key] = std::chrono::duration<double>(now - t).count();
      t = now;
    };
    pc::write_optim_shard((tmp / pc::optim_file_name(0, 1)).string(), snap.optim, snap.layout);
    lap("optim_s");
    pc::save_tensors_h5(snap.model, (tmp / "model.h5").string(), s, snap.arch);
    lap("model_s");
    pc::write_train_state((tmp / "state.h5").string(), snap.state);
    lap("state_s");
    pc::write_manifest(tmp.string(), s, 1, snap.samples_seen);
    lap("manifest_s");
    const std::string published = pc::publish_checkpoint(dir.string(), tmp.string(), s);
    lap("publish_s");
    f["total_s"] = since(t0);
    f["cpu_s"] = cpu_seconds() - c0;
    f["h5_s"] = f["optim_s"] + f["model_s"] + f["state_s"];
    files.clear();
    double bytes = 0;
    for (const auto& e : fs::directory_iterator(published)) {
      files.emplace_back(e.path().filename().string(), static_cast<int64_t>(e.file_size()));
      bytes += static_cast<double>(e.file_size());
    }
    std::sort(files.begin(), files.end());
    f["bytes"] = bytes;
    f["h5_bytes"] = bytes - static_cast<double>(fs::file_size(fs::path(published) / "MANIFEST.json"));
    f["files"] = static_cast<double>(files.size());
    return f;
  }

  // ---------------------------------------------------------------- raw: write() loop + fsync
  Figures raw(const fs::path& dir, bool hot) {
    size_t src = 0, src_off = 0;  // cursor in reuse_dst (cyclic)
    fs::create_directories(dir);
    Figures f;
    double bytes = 0;
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    for (const auto& [name, size] : files) {
      const std::string path = (dir / ("raw-" + name)).string();
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) die("cannot create " + path + ": " + std::strerror(errno));
      for (int64_t left = size; left > 0;) {
        size_t n = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(chunk.size())));
        const char* from = chunk.data();
        if (!hot) {
          const at::Tensor& t = reuse_dst[src];
          n = std::min(n, t.nbytes() - src_off);
          from = static_cast<const char*>(t.data_ptr()) + src_off;
        }
        const ssize_t w = ::write(fd, from, n);
        if (!hot && w > 0 && (src_off += static_cast<size_t>(w)) == reuse_dst[src].nbytes()) {
          src_off = 0;
          src = (src + 1) % reuse_dst.size();
        }
        if (w <= 0) die("write to " + path + " failed: " + std::strerror(errno));
        left -= w;
      }
      if (::fsync(fd) != 0) die("fsync " + path + ": " + std::strerror(errno));
      ::close(fd);
      bytes += static_cast<double>(size);
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    f["total_s"] = since(t0);
    f["cpu_s"] = cpu_seconds() - c0;
    f["bytes"] = bytes;
    return f;
  }

  // ---------------------------------------------------------------- copy: where the snapshot time goes
  // Not a library path: (a) snapshot_state alone (the weights into fresh tensors, as take_snapshot
  // does), (b) the same bytes as take_snapshot (weights + master, exp_avg, exp_avg_sq) copied into
  // buffers allocated and touched once at startup, i.e. what a take_snapshot that reuses its
  // host buffers between saves would cost.
  double bytes() const {
    double n = 0;
    for (const auto& fl : files) n += static_cast<double>(fl.second);
    return n;
  }

  Figures copy() {
    Figures f;
    auto t0 = Clock::now();
    {
      pc::NamedTensors m = pc::snapshot_state(*model);  // copy_parameters defaults to true: copies
      f["model_fresh_s"] = since(t0);
    }
    t0 = Clock::now();
    {
      // as take_snapshot's flat_slice copies (a zeroed tensor, then the slice copied in)
      std::vector<at::Tensor> o;
      for (const at::Tensor* t : {&opt.master(), &opt.exp_avg(), &opt.exp_avg_sq()})
        o.push_back(at::zeros({t->numel()}, at::kFloat).copy_(*t));
      f["optim_fresh_s"] = since(t0);
    }
    f["fresh_s"] = f["model_fresh_s"] + f["optim_fresh_s"];
    t0 = Clock::now();
    for (size_t i = 0; i < reuse_src.size(); ++i) reuse_dst[i].copy_(reuse_src[i]);
    f["reused_s"] = since(t0);
    // XXH3 of the same bytes in memory: the cost of checksumming while writing (no read-back)
    t0 = Clock::now();
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (const auto& t : reuse_src) XXH3_64bits_update(st, t.data_ptr(), t.nbytes());
    f["hash_digest"] = static_cast<double>(XXH3_64bits_digest(st) >> 40);  // keeps the work
    XXH3_freeState(st);
    f["hash_mem_s"] = since(t0);
    return f;
  }

  // ---------------------------------------------------------------- async / sync Checkpointer
  Figures checkpointer(const fs::path& dir, bool async) {
    fs::create_directories(dir);
    pc::CheckpointOptions co;
    co.root = dir.string();
    co.keep_last = 2;
    co.async = async;
    pc::Checkpointer ck(co, comm);
    Figures f;
    const int64_t s = ++step;
    const auto t0 = Clock::now();
    pc::CheckpointSnapshot x = take(s);
    f["snapshot_s"] = since(t0);
    const auto t1 = Clock::now();
    ck.save(std::move(x));
    f["save_s"] = since(t1);
    f["stall_s"] = since(t0);
    if (async) {
      // the trainer fences before its next optimizer step; called at once, this is the longest
      // that fence can block (0 with a library whose snapshots are always copies)
      f["fence_s"] = fence(ck);
      int polls = 0;
      double poll_waiting = 0;
      for (; ck.in_flight();) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const auto p0 = Clock::now();
        const int64_t got = ck.poll(false);
        const double dt = since(p0);
        ++polls;
        if (got >= 0) {
          f["publish_poll_s"] = dt;  // the manifest (checksums) + publish, on the calling thread
          break;
        }
        poll_waiting += dt;
      }
      f["polls"] = polls;
      f["poll_waiting_s"] = poll_waiting;
    }
    f["write_s"] = ck.last_write_seconds();  // the HDF5 files (the worker's part), async or not
    f["total_s"] = since(t0);
    if (pc::read_latest(dir.string()) != pc::step_dir_name(s)) die("the checkpoint was not published");
    return f;
  }
};

double gb(double bytes) { return bytes / 1e9; }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const char* e = std::getenv("CKPT_BENCH_DIR"); e && *e) o.dir = e;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--dir")
      o.dir = next();
    else if (a == "--model")
      o.model = next();
    else if (a == "--official")
      o.official = std::atoi(next().c_str()) != 0;
    else if (a == "--reps")
      o.reps = std::atoi(next().c_str());
    else if (a == "--threads")
      o.threads = std::atoi(next().c_str());
    else if (a == "--json")
      o.json = next();
    else if (a == "--keep")
      o.keep = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_ckpt_write [--dir DIR (default $CKPT_BENCH_DIR or /tmp)] [--model vit-b16] "
                   "[--official 0|1] [--reps N] [--threads N] [--json FILE] [--keep]\n");
      return 2;
    }
  }
  if (o.reps <= 0 || o.threads <= 0) die("reps and threads must be > 0");
  if (o.dir.empty()) o.dir = "/tmp";

  pc::MpiRuntime mpi(&argc, &argv);
  spdlog::set_level(spdlog::level::warn);  // no "checkpoint: saved" line per save
  auto comm = pc::make_mpi_comm();
  if (comm->size() != 1) die("run it as one process (no mpirun)");
  torch::set_num_threads(o.threads);

  std::string tmpl = (fs::path(o.dir) / "ckpt_bench.XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) die("cannot make a directory under " + o.dir + ": " + std::strerror(errno));
  const fs::path root = tmpl;

  // ---- the model, its flat layout and a stage-1 ZeroAdamW (as the trainer builds them)
  const auto tb = Clock::now();
  torch::manual_seed(1);
  pc::PyramidClip model(pc::model_preset(o.model, o.official));
  const pc::TrainableParams flat = pc::trainable_params(*model);
  const std::vector<at::Tensor>& trainable = flat.tensors;
  pc::ZeroAdamWOptions zo;
  zo.stage = 1;
  pc::ZeroAdamW opt(pc::make_flat_layout(flat.names, trainable, flat.decay, 1), trainable, *comm, zo);
  opt.exp_avg().normal_(0, 1e-3);
  opt.exp_avg_sq().uniform_(0, 1e-6);
  opt.set_step_count(1000);
  const int64_t params = pc::count_parameters(*model);
  const double build_s = since(tb);

  Bench b{o, *comm, model, opt, {}, {}, root, {}, std::vector<char>(8 << 20), 1000, {}, {}};
  {
    std::mt19937_64 rng(7);
    for (size_t i = 0; i + 8 <= b.chunk.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(b.chunk.data() + i, &v, 8);
    }
  }
  b.state.world_size = 1;
  b.state.global_batch = 256;
  b.state.seed = 1;
  b.state.samples_seen = 1.0e6;
  b.state.lr_peak = 5e-4;
  b.state.config = "model = " + o.model + "\n# bench_ckpt_write\n";
  b.state.version = PYRAMIDCLIP_VERSION;
  b.state.arch = o.model;
  b.state.loader_state = std::vector<int64_t>(64, 12345);
  b.snap = b.take(b.step);
  for (const auto& [k, t] : b.snap.model) b.reuse_src.push_back(t);  // snapshot_state's copies: the weights' bytes
  b.reuse_src.push_back(opt.master());
  b.reuse_src.push_back(opt.exp_avg());
  b.reuse_src.push_back(opt.exp_avg_sq());
  for (const auto& t : b.reuse_src) b.reuse_dst.push_back(t.clone());  // allocated and touched once

  unsigned h5maj = 0, h5min = 0, h5rel = 0;
  H5get_libversion(&h5maj, &h5min, &h5rel);
  std::printf(
      "bench_ckpt_write: %s (%s), %lld parameters (%lld in the flat vector), %d threads, HDF5 %u.%u.%u, dir %s\n"
      "  built in %.1f s; load average %s\n",
      o.model.c_str(), o.official ? "official" : "standard", static_cast<long long>(params),
      static_cast<long long>(opt.layout().numel), o.threads, h5maj, h5min, h5rel, root.c_str(), build_s,
      loadavg().c_str());
  std::fflush(stdout);
  const std::string load0 = loadavg();

  // ---- warm-up (untimed): HDF5, the file sizes for raw, first-touch of the buffers
  {
    b.ckpt(root / "warm-ckpt");
    b.raw(root / "warm-raw", false);
    b.raw(root / "warm-raw-hot", true);
    clean(root / "warm-raw-hot");
    clean(root / "warm-ckpt");
    clean(root / "warm-raw");
  }
  std::printf("  checkpoint files:");
  for (const auto& [n, s] : b.files) std::printf(" %s %.1f MB;", n.c_str(), s / 1e6);
  std::printf("\n");

  const char* kinds[6] = {"ckpt", "raw", "async", "raw_hot", "sync", "copy"};
  std::map<std::string, std::vector<Figures>> runs;
  for (int rep = 0; rep < o.reps; ++rep) {
    for (int k = 0; k < 6; ++k) {
      const std::string kind = kinds[(k + rep) % 6];
      if (kind == "copy") {  // memory only: no files
        Figures f = b.copy();
        std::printf("  rep %d copy  into fresh tensors %.3f s (weights %.3f + optimizer %.3f); into reused buffers %.3f s; "
                    "XXH3 in memory %.3f s\n",
                    rep, f["fresh_s"], f["model_fresh_s"], f["optim_fresh_s"], f["reused_s"], f["hash_mem_s"]);
        runs[kind].push_back(std::move(f));
        continue;
      }
      const fs::path dir = root / (kind + "-" + std::to_string(rep));
      Figures f = kind == "ckpt"    ? b.ckpt(dir)
                  : kind == "raw"   ? b.raw(dir, false)
                  : kind == "raw_hot" ? b.raw(dir, true)
                  : kind == "async" ? b.checkpointer(dir, true)
                                    : b.checkpointer(dir, false);
      clean(dir);
      if (kind == "ckpt")
        std::printf("  rep %d ckpt  %.3f s = HDF5 %.3f (optim %.3f, model %.3f, state %.3f) + manifest %.3f + publish %.3f; %.2f GB/s\n",
                    rep, f["total_s"], f["h5_s"], f["optim_s"], f["model_s"], f["state_s"], f["manifest_s"],
                    f["publish_s"], gb(f["bytes"]) / f["total_s"]);
      else if (kind == "raw" || kind == "raw_hot")
        std::printf("  rep %d %-7s %.3f s; %.2f GB/s\n", rep, kind.c_str(), f["total_s"], gb(f["bytes"]) / f["total_s"]);
      else if (kind == "async")
        std::printf("  rep %d async stall %.3f s (snapshot %.3f + save %.3f); fence at once %.3f s; background write %.3f s; "
                    "publishing poll %.3f s; total %.3f s\n",
                    rep, f["stall_s"], f["snapshot_s"], f["save_s"], f["fence_s"], f["write_s"], f["publish_poll_s"],
                    f["total_s"]);
      else
        std::printf("  rep %d sync  %.3f s (snapshot %.3f + save %.3f, of which the writer %.3f); %.2f GB/s in save()\n", rep,
                    f["total_s"], f["snapshot_s"], f["save_s"], f["write_s"], gb(b.bytes()) / f["save_s"]);
      std::fflush(stdout);
      runs[kind].push_back(std::move(f));
    }
  }
  const std::string load1 = loadavg();
  if (!o.keep) {
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  auto med = [&](const std::string& kind, const std::string& key) {
    std::vector<double> v;
    for (auto& f : runs[kind]) v.push_back(f[key]);
    return median(v);
  };
  auto paired = [&](const std::string& ka, const std::string& a, const std::string& kb, const std::string& bk) {
    std::vector<double> v;
    for (int r = 0; r < o.reps; ++r) v.push_back(runs[ka][r][a] / runs[kb][r][bk]);
    return median(v);
  };
  const double bytes = med("ckpt", "bytes");
  const double ck_s = med("ckpt", "total_s"), raw_s = med("raw", "total_s"), hot_s = med("raw_hot", "total_s");
  const double save_s = med("sync", "save_s");  // the Checkpointer's own path, snapshot excluded
  const double ck_bw = gb(bytes) / ck_s, raw_bw = gb(bytes) / raw_s, hot_bw = gb(bytes) / hot_s;
  const double save_bw = gb(bytes) / save_s;
  const double ratio = ck_bw / raw_bw, ratio_paired = paired("raw", "total_s", "ckpt", "total_s");
  const double ratio_hot = ck_bw / hot_bw, ratio_hot_paired = paired("raw_hot", "total_s", "ckpt", "total_s");
  const double save_ratio = save_bw / raw_bw, save_ratio_paired = paired("raw", "total_s", "sync", "save_s");
  const double h5_s = med("ckpt", "h5_s"), man_s = med("ckpt", "manifest_s"), pub_s = med("ckpt", "publish_s");
  const double h5_bw = gb(med("ckpt", "h5_bytes")) / h5_s;
  const double h5_only_ratio = raw_s / h5_s;
  const double stall = med("async", "stall_s"), fence_s = med("async", "fence_s"), sync = med("sync", "total_s");
  const double poll_s = med("async", "publish_poll_s");
  const double stall_ratio = stall / sync, stall_paired = paired("async", "stall_s", "sync", "total_s");
  double snap_bytes = 0, optim_bytes = 0;
  for (const auto& t : b.reuse_src) snap_bytes += static_cast<double>(t.nbytes());
  for (size_t i = b.reuse_src.size() - 3; i < b.reuse_src.size(); ++i)
    optim_bytes += static_cast<double>(b.reuse_src[i].nbytes());

  std::printf("\nWrite throughput (%d files, %.3f GB; medians of %d interleaved repetitions; GB = 1e9 bytes):\n\n",
              static_cast<int>(b.files.size()), gb(bytes), o.reps);
  std::printf("| write | time | throughput | vs raw | CPU time |\n|---|---|---|---|---|\n");
  std::printf("| checkpoint: write_optim_shard + save_tensors_h5 + write_train_state + write_manifest + publish_checkpoint "
              "| %.3f s | %.3f GB/s | **%.2fx** (paired %.2fx) | %.3f s |\n",
              ck_s, ck_bw, ratio, ratio_paired, med("ckpt", "cpu_s"));
  std::printf("| Checkpointer::save, async = false (snapshot excluded) | %.3f s | %.3f GB/s | **%.2fx** (paired %.2fx) | |\n",
              save_s, save_bw, save_ratio, save_ratio_paired);
  std::printf("| raw write() 8 MiB + fsync, same files, chunks from the snapshot's bytes | %.3f s | %.3f GB/s | 1 | %.3f s |\n",
              raw_s, raw_bw, med("raw", "cpu_s"));
  std::printf("| raw write() 8 MiB + fsync, same files, one hot 8 MiB buffer | %.3f s | %.3f GB/s | checkpoint / this: %.2fx "
              "(paired %.2fx) | %.3f s |\n\n",
              hot_s, hot_bw, ratio_hot, ratio_hot_paired, med("raw_hot", "cpu_s"));
  std::printf("(target: checkpoint / raw >= 0.8x)\n\n");
  std::printf("| checkpoint split | time | share |\n|---|---|---|\n");
  std::printf("| HDF5 writes + fsync (optim %.3f, model %.3f, state %.3f s) | %.3f s (%.3f GB/s; raw / this %.2fx) | %.0f %% |\n",
              med("ckpt", "optim_s"), med("ckpt", "model_s"), med("ckpt", "state_s"), h5_s, h5_bw, h5_only_ratio,
              100 * h5_s / ck_s);
  std::printf("| write_manifest (XXH3 read-back of every file + MANIFEST.json) | %.3f s | %.0f %% |\n", man_s,
              100 * man_s / ck_s);
  std::printf("| publish_checkpoint (rename, fsync, latest) | %.3f s | %.0f %% |\n\n", pub_s, 100 * pub_s / ck_s);

  std::printf("Training stall, async vs sync save (Checkpointer, 1 rank%s):\n\n",
              HasFence<pc::Checkpointer>::value ? ", library with fence()" : "");
  std::printf("| save | take_snapshot | save() | stall | other |\n|---|---|---|---|---|\n");
  std::printf("| async | %.3f s | %.3f s | **%.3f s** | fence() right after save(): %.3f s; writer %.3f s; publishing poll %.3f s; "
              "published after %.3f s |\n",
              med("async", "snapshot_s"), med("async", "save_s"), stall, fence_s, med("async", "write_s"), poll_s,
              med("async", "total_s"));
  std::printf("| sync | %.3f s | %.3f s | %.3f s (total) | writer %.3f s, then manifest + publish |\n",
              med("sync", "snapshot_s"), save_s, sync, med("sync", "write_s"));
  std::printf("| stall / sync | | | **%.1f %%** (paired %.1f %%; target <= 10 %%) | + publishing poll: %.1f %%; "
              "+ fence at once (worst case): %.1f %% |\n\n",
              100 * stall_ratio, 100 * stall_paired, 100 * (stall + poll_s) / sync, 100 * (stall + fence_s) / sync);

  std::printf("Host copies of the snapshot's bytes (%.2f GB: weights %.2f GB + optimizer slice %.2f GB), memory only:\n\n",
              gb(snap_bytes), gb(snap_bytes - optim_bytes), gb(optim_bytes));
  std::printf("| copy | time |\n|---|---|\n");
  std::printf("| into fresh tensors (snapshot_state with copies + zeroed slices, as a copying take_snapshot) | %.3f s "
              "(weights %.3f + optimizer %.3f) |\n",
              med("copy", "fresh_s"), med("copy", "model_fresh_s"), med("copy", "optim_fresh_s"));
  std::printf("| into buffers allocated once and reused | %.3f s |\n", med("copy", "reused_s"));
  std::printf("| XXH3 over them in memory (vs write_manifest's read-back %.3f s) | %.3f s |\n", man_s,
              med("copy", "hash_mem_s"));
  std::printf("(load average %s at the start, %s at the end)\n", load0.c_str(), load1.c_str());

  if (!o.json.empty()) {
    std::ofstream j(o.json);
    if (!j) die("cannot write " + o.json);
    j << std::setprecision(12);
    j << "{\n  \"model\": \"" << o.model << "\", \"official\": " << (o.official ? "true" : "false")
      << ", \"parameters\": " << params << ", \"flat_numel\": " << opt.layout().numel << ", \"threads\": " << o.threads
      << ", \"reps\": " << o.reps << ", \"hdf5\": \"" << h5maj << "." << h5min << "." << h5rel << "\", \"dir\": \""
      << o.dir << "\", \"library_has_fence\": " << (HasFence<pc::Checkpointer>::value ? "true" : "false")
      << ",\n  \"load_start\": \"" << load0 << "\", \"load_end\": \"" << load1 << "\",\n  \"files\": {";
    for (size_t i = 0; i < b.files.size(); ++i)
      j << (i ? ", " : "") << "\"" << b.files[i].first << "\": " << b.files[i].second;
    j << "},\n  \"median\": {\"bytes\": " << bytes << ", \"ckpt_s\": " << ck_s << ", \"ckpt_gbps\": " << ck_bw
      << ", \"raw_s\": " << raw_s << ", \"raw_gbps\": " << raw_bw << ", \"raw_hot_s\": " << hot_s
      << ", \"raw_hot_gbps\": " << hot_bw << ", \"sync_save_s\": " << save_s << ", \"sync_save_gbps\": " << save_bw
      << ",\n    \"ratio\": " << ratio << ", \"ratio_paired\": " << ratio_paired << ", \"ratio_hot\": " << ratio_hot
      << ", \"ratio_hot_paired\": " << ratio_hot_paired << ", \"sync_save_ratio\": " << save_ratio
      << ", \"sync_save_ratio_paired\": " << save_ratio_paired << ", \"raw_over_h5\": " << h5_only_ratio
      << ",\n    \"h5_s\": " << h5_s << ", \"optim_s\": " << med("ckpt", "optim_s") << ", \"model_s\": "
      << med("ckpt", "model_s") << ", \"state_s\": " << med("ckpt", "state_s") << ", \"manifest_s\": " << man_s
      << ", \"publish_s\": " << pub_s << ",\n    \"async_snapshot_s\": " << med("async", "snapshot_s")
      << ", \"async_save_s\": " << med("async", "save_s") << ", \"async_stall_s\": " << stall
      << ", \"async_fence_at_once_s\": " << fence_s << ", \"async_writer_s\": " << med("async", "write_s")
      << ", \"async_publish_poll_s\": " << poll_s << ", \"async_total_s\": " << med("async", "total_s")
      << ", \"sync_snapshot_s\": " << med("sync", "snapshot_s") << ", \"sync_writer_s\": " << med("sync", "write_s")
      << ", \"sync_total_s\": " << sync << ", \"stall_ratio\": " << stall_ratio
      << ", \"stall_ratio_paired\": " << stall_paired << ",\n    \"copy_fresh_s\": " << med("copy", "fresh_s")
      << ", \"copy_fresh_weights_s\": " << med("copy", "model_fresh_s") << ", \"copy_fresh_optim_s\": "
      << med("copy", "optim_fresh_s") << ", \"copy_reused_s\": " << med("copy", "reused_s")
      << ", \"xxh3_in_memory_s\": " << med("copy", "hash_mem_s") << ", \"snapshot_bytes\": " << snap_bytes
      << "},\n  \"runs\": [";
    bool first = true;
    for (int rep = 0; rep < o.reps; ++rep)
      for (const char* kind : kinds) {
        j << (first ? "\n" : ",\n") << "    {\"rep\": " << rep << ", \"kind\": \"" << kind << "\"";
        for (const auto& [k, v] : runs[kind][rep]) j << ", \"" << k << "\": " << v;
        j << "}";
        first = false;
      }
    j << "\n  ]\n}\n";
  }
  return 0;
}
