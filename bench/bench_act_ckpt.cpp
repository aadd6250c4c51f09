// Activation checkpointing on an image tower (issue #4): peak activation memory and
// forward+backward step time, with and without checkpointing, side by side in one run.
//
//   bench_act_ckpt [--model vit-b16] [--official 1] [--batch 8] [--reps 5] [--steps 2] [--threads 1]
//                  [--json FILE]
//
// Every repetition of every configuration runs in a fresh child process (this binary with
// --child), the configurations interleaved (plain, ckpt, ckpt, plain, ...) so machine noise hits
// both alike. A child builds the tower (parameters' .grad preallocated, so gradient buffers are not
// counted as activations), runs one warm-up step, then `steps` measured steps (loss = <embedding, r>,
// forward + backward, no optimizer), and reports:
//  - tensor peak: a counting CPU allocator (c10::SetCPUAllocator; allocates as the default one)
//    counts the bytes of every live tensor (and oneDNN scratch) allocation; peak during the measured steps minus the
//    bytes live before them = the activations (saved tensors, temporaries, incoming gradients) of one step, exactly,
//    without malloc caching or fragmentation;
//  - RSS peak: VmHWM - VmRSS from /proc/self/status around the measured steps, with malloc_trim(0)
//    and a reset of the high-water mark (/proc/self/clear_refs "5") before them: what the OS saw;
//  - the median step time.
// The parent prints the medians over the repetitions and their ratios.
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pyramidclip/model/model_config.h"
#include "pyramidclip/model/vision.h"

namespace {

// ---------------------------------------------------------------- tracking allocator

// CPU allocator that counts live bytes. It allocates like LibTorch's default one (c10::alloc_cpu:
// 64-byte aligned) with a 64-byte header holding the size, so that data == context and raw
// allocations (oneDNN's, through raw_allocate) work too.
class TrackingAllocator final : public c10::Allocator {
 public:
  static constexpr size_t kHeader = 64;  // keeps the data 64-byte aligned
  c10::DataPtr allocate(size_t n) const override {
    auto* base = static_cast<char*>(c10::alloc_cpu(n + kHeader));
    *reinterpret_cast<size_t*>(base) = n;
    void* data = base + kHeader;
    add(static_cast<int64_t>(n));
    return {data, data, &TrackingAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &TrackingAllocator::release; }
  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(live_.load()); }

 private:
  static void release(void* data) {
    if (!data) return;
    char* base = static_cast<char*>(data) - kHeader;
    live_.fetch_sub(static_cast<int64_t>(*reinterpret_cast<size_t*>(base)));
    c10::free_cpu(base);
  }
  static void add(int64_t n) {
    const int64_t now = live_.fetch_add(n) + n;
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }
  static std::atomic<int64_t> live_, peak_;
};
std::atomic<int64_t> TrackingAllocator::live_{0};
std::atomic<int64_t> TrackingAllocator::peak_{0};

int64_t status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.compare(0, k.size(), k) == 0) return std::atoll(line.c_str() + k.size());
  return -1;
}

bool reset_hwm() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

double seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU time of the whole process (all threads): unlike wall time, it does not grow when other
// processes take the cores (with one thread: the step's work).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Options {
  std::string model = "vit-b16";
  bool official = true;
  int batch = 8, reps = 5, steps = 2, threads = 1;
  std::string json;
};

// ---------------------------------------------------------------- child: one configuration

int run_child(const Options& o, bool ckpt) {
  static TrackingAllocator tracker;
  c10::SetCPUAllocator(&tracker, /*priority=*/100);
  torch::set_num_threads(o.threads);
  pc::ModelConfig cfg = pc::model_preset(o.model, o.official);
  cfg.with_roi = false;
  torch::manual_seed(1);
  std::shared_ptr<torch::nn::Module> tower;
  std::function<at::Tensor(const at::Tensor&)> forward;
  if (cfg.vision == "vit") {
    auto vit = std::make_shared<pc::VisionTransformerImpl>(cfg);
    vit->transformer->checkpoint = ckpt;
    forward = [vit](const at::Tensor& x) { return vit->forward(x); };
    tower = vit;
  } else {
    auto rn = std::make_shared<pc::ModifiedResNetImpl>(cfg);
    rn->checkpoint = ckpt;
    forward = [rn](const at::Tensor& x) { return rn->forward(x); };
    tower = rn;
  }
  tower->train();
  for (auto& p : tower->parameters())
    if (p.requires_grad()) p.mutable_grad() = torch::zeros_like(p);
  at::Tensor images = torch::randn({o.batch, 3, cfg.image_size, cfg.image_size});
  at::Tensor r = torch::randn({o.batch, cfg.embed_dim});
  auto step = [&] { (forward(images) * r).sum().backward(); };

  step();  // warm-up: BLAS buffers, first-touch page faults
  malloc_trim(0);
  const bool hwm_ok = reset_hwm();
  const int64_t rss0 = status_kb("VmRSS");
  const int64_t live0 = tracker.live();
  tracker.reset_peak();
  std::vector<double> times, cpu_times;
  struct rusage ru0 {};
  getrusage(RUSAGE_SELF, &ru0);
  for (int i = 0; i < o.steps; ++i) {
    const double c0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(seconds(t0, std::chrono::steady_clock::now()));
    cpu_times.push_back(cpu_seconds() - c0);
  }
  struct rusage ru1 {};
  getrusage(RUSAGE_SELF, &ru1);
  const int64_t hwm = status_kb("VmHWM");
  int64_t params = 0;
  for (const auto& p : tower->parameters()) params += p.numel();
  std::printf(
      "RESULT ckpt=%d step_s=%.6f cpu_s=%.6f minflt=%lld tensor_peak_bytes=%lld rss_peak_bytes=%lld "
      "baseline_tensor_bytes=%lld "
      "params=%lld hwm_reset=%d\n",
      ckpt ? 1 : 0, median(times), median(cpu_times), static_cast<long long>((ru1.ru_minflt - ru0.ru_minflt) / o.steps),
      static_cast<long long>(tracker.peak() - live0), static_cast<long long>((hwm - rss0) * 1024),
      static_cast<long long>(live0), static_cast<long long>(params), hwm_ok ? 1 : 0);
  return 0;
}

// ---------------------------------------------------------------- parent

std::map<std::string, double> parse_result(const std::string& out) {
  std::map<std::string, double> kv;
  const auto pos = out.find("RESULT ");
  if (pos == std::string::npos) return kv;
  std::istringstream in(out.substr(pos + 7));
  std::string tok;
  while (in >> tok) {
    const auto eq = tok.find('=');
    if (eq != std::string::npos) kv[tok.substr(0, eq)] = std::atof(tok.c_str() + eq + 1);
  }
  return kv;
}

std::string run_process(const std::vector<std::string>& args) {
  int fd[2];
  if (pipe(fd) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], STDOUT_FILENO);
    close(fd[0]);
    close(fd[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return out;
}

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

int run_parent(const Options& o, const char* argv0) {
  std::printf(
      "bench_act_ckpt: %s (%s) image tower, batch %d, %d threads, %d reps x %d measured steps (+1 warm-up), "
      "each configuration and repetition in a fresh process\n",
      o.model.c_str(), o.official ? "official" : "standard", o.batch, o.threads, o.reps, o.steps);
  std::fflush(stdout);
  std::map<int, std::vector<std::map<std::string, double>>> results;
  for (int rep = 0; rep < o.reps; ++rep)
    for (int k = 0; k < 2; ++k) {
      const int ckpt = (rep % 2 == 0) ? k : 1 - k;  // alternate the order
      std::vector<std::string> args = {argv0,        "--child",
                                       "--ckpt",     std::to_string(ckpt),
                                       "--model",    o.model,
                                       "--official", o.official ? "1" : "0",
                                       "--batch",    std::to_string(o.batch),
                                       "--steps",    std::to_string(o.steps),
                                       "--threads",  std::to_string(o.threads)};
      auto kv = parse_result(run_process(args));
      if (kv.empty()) {
        std::fprintf(stderr, "bench_act_ckpt: child (ckpt=%d) failed\n", ckpt);
        return 1;
      }
      std::printf(
          "  rep %d %-5s step %.3f s (CPU %.3f s, %.0f minor faults), tensor peak %.1f MiB, RSS peak %.1f MiB\n", rep,
          ckpt ? "ckpt" : "plain", kv["step_s"], kv["cpu_s"], kv["minflt"], mib(kv["tensor_peak_bytes"]),
          mib(kv["rss_peak_bytes"]));
      std::fflush(stdout);
      results[ckpt].push_back(kv);
    }
  auto med = [&](int ckpt, const char* key) {
    std::vector<double> v;
    for (auto& kv : results[ckpt]) v.push_back(kv[key]);
    return median(v);
  };
  const double t0 = med(0, "step_s"), t1 = med(1, "step_s");
  const double c0 = med(0, "cpu_s"), c1 = med(1, "cpu_s");
  const double m0 = med(0, "tensor_peak_bytes"), m1 = med(1, "tensor_peak_bytes");
  const double r0 = med(0, "rss_peak_bytes"), r1 = med(1, "rss_peak_bytes");
  // the two runs of a repetition are adjacent in time: their ratio is less exposed to slow drifts
  std::vector<double> paired;
  for (int rep = 0; rep < o.reps; ++rep) paired.push_back(results[1][rep]["step_s"] / results[0][rep]["step_s"]);
  const double tp = median(paired);
  std::printf(
      "\n| configuration | step time (fwd+bwd) | CPU time | peak activation memory, tensors | "
      "peak activation memory, RSS |\n");
  std::printf("|---|---|---|---|---|\n");
  std::printf("| no checkpointing | %.2f s | %.2f s | %.0f MiB | %.0f MiB |\n", t0, c0, mib(m0), mib(r0));
  std::printf("| checkpointing per block | %.2f s | %.2f s | %.0f MiB | %.0f MiB |\n", t1, c1, mib(m1), mib(r1));
  std::printf("| ratio | %.2fx (paired per repetition: %.2fx) | %.2fx | %.2fx less | %.2fx less |\n", t1 / t0, tp,
              c1 / c0, m0 / m1, r0 / r1);
  std::printf("(medians of %d fresh processes each; parameters %.1f M, tensor bytes live before a step %.0f MiB)\n",
              o.reps, results[0][0]["params"] / 1e6, mib(results[0][0]["baseline_tensor_bytes"]));
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << "{\n  \"model\": \"" << o.model << "\", \"official\": " << (o.official ? "true" : "false")
      << ", \"batch\": " << o.batch << ", \"threads\": " << o.threads << ", \"reps\": " << o.reps
      << ", \"steps\": " << o.steps << ",\n  \"median\": {\"plain\": {\"step_s\": " << t0 << ", \"cpu_s\": " << c0
      << ", \"tensor_peak_mib\": " << mib(m0) << ", \"rss_peak_mib\": " << mib(r0) << "}, \"ckpt\": {\"step_s\": " << t1
      << ", \"cpu_s\": " << c1 << ", \"tensor_peak_mib\": " << mib(m1) << ", \"rss_peak_mib\": " << mib(r1)
      << "}},\n  \"time_ratio\": " << t1 / t0 << ", \"time_ratio_paired\": " << tp
      << ", \"cpu_time_ratio\": " << c1 / c0 << ", \"tensor_memory_reduction\": " << m0 / m1
      << ", \"rss_memory_reduction\": " << r0 / r1 << ",\n  \"runs\": [";
    bool first = true;
    for (int ckpt = 0; ckpt < 2; ++ckpt)
      for (auto& kv : results[ckpt]) {
        f << (first ? "\n" : ",\n") << "    {\"ckpt\": " << ckpt << ", \"step_s\": " << kv["step_s"]
          << ", \"cpu_s\": " << kv["cpu_s"] << ", \"tensor_peak_mib\": " << mib(kv["tensor_peak_bytes"])
          << ", \"rss_peak_mib\": " << mib(kv["rss_peak_bytes"]) << "}";
        first = false;
      }
    f << "\n  ]\n}\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool child = false;
  int ckpt = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_act_ckpt: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--child")
      child = true;
    else if (a == "--ckpt")
      ckpt = std::atoi(next().c_str());
    else if (a == "--model")
      o.model = next();
    else if (a == "--official")
      o.official = std::atoi(next().c_str()) != 0;
    else if (a == "--batch")
      o.batch = std::atoi(next().c_str());
    else if (a == "--reps")
      o.reps = std::atoi(next().c_str());
    else if (a == "--steps")
      o.steps = std::atoi(next().c_str());
    else if (a == "--threads")
      o.threads = std::atoi(next().c_str());
    else if (a == "--json")
      o.json = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_act_ckpt [--model vit-b16|vit-b32|rn50|tiny] [--official 0|1] [--batch N] "
                   "[--reps N] [--steps N] [--threads N] [--json FILE]\n");
      return 2;
    }
  }
  if (o.batch <= 0 || o.reps <= 0 || o.steps <= 0 || o.threads <= 0) {
    std::fprintf(stderr, "bench_act_ckpt: batch, reps, steps and threads must be > 0\n");
    return 2;
  }
  return child ? run_child(o, ckpt != 0) : run_parent(o, argv[0]);
}
