// Signals, switch files, deadlines and periodic saves (see resume_controller.h).
#include "pyramidclip/run/resume_controller.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <regex>

#include "pyramidclip/util/errors.h"

namespace pc {
namespace fs = std::filesystem;

namespace {

std::atomic<int> g_signal{0};
constexpr int kSignals[3] = {SIGUSR1, SIGTERM, SIGINT};

extern "C" void on_signal(int sig) {
  // a second Ctrl-C means "now": the default action
  if (sig == SIGINT && g_signal.load() == SIGINT) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_signal.store(sig);
}

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double local_time(int y, int mo, int d, int h, int mi, int s) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  tm.tm_isdst = -1;
  return static_cast<double>(std::mktime(&tm));
}

}  // namespace

const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::kSignal: return "SIGTERM/SIGINT";
    case StopReason::kRequeueSignal: return "SIGUSR1";
    case StopReason::kDeadline: return "deadline";
    case StopReason::kStopFile: return "STOP_NOW file";
    case StopReason::kStopAfter: return "--stop-after";
    default: return "none";
  }
}

double parse_deadline(const std::string& text, double now) {
  std::smatch m;
  if (std::regex_match(text, m, std::regex(R"(\+(\d+(?:\.\d+)?)([smh]?))"))) {
    const double v = std::stod(m[1]);
    const std::string unit = m[2];
    return now + v * (unit == "h" ? 3600 : unit == "m" ? 60 : 1);
  }
  if (std::regex_match(text, m, std::regex(R"(\d+(?:\.\d+)?)"))) return std::stod(text);
  if (std::regex_match(text, m, std::regex(R"((\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?)")))
    return local_time(std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4]), std::stoi(m[5]),
                      m[6].matched ? std::stoi(m[6]) : 0);
  throw UserError("--deadline '" + text + "' is not a time: use unix seconds, +90m / +2h / +600s, or "
                  "YYYY-MM-DDTHH:MM[:SS] (local time)");
}

double slurm_end_time() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) return 0;
  const std::string cmd = std::string("scontrol show job ") + job + " 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), &::pclose);
  if (!p) return 0;
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p.get())) > 0;) out.append(buf, n);
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(EndTime=(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2}))"))) return 0;
  return local_time(std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4]), std::stoi(m[5]),
                    std::stoi(m[6]));
}

ResumeController::ResumeController(ResumeControllerOptions options) : opt_(std::move(options)) {
  g_signal = 0;
  for (int i = 0; i < 3; ++i) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // reads and waits go on; the flag is looked at between steps
    sigaction(kSignals[i], &sa, nullptr);
  }
  deadline_ = opt_.deadline > 0 ? opt_.deadline : slurm_end_time();
  last_save_time_ = now_unix();
}

// The handlers stay installed until the process exits: after a stop, `scontrol requeue` sends
// SIGTERM to every process of the job, and a rank that already saved must still exit with 75.
ResumeController::~ResumeController() = default;

int ResumeController::last_signal() const { return g_signal.load(); }

Decision ResumeController::decide(int64_t step, double step_seconds, double save_seconds) {
  Decision d;
  const double now = now_unix();
  if (const int sig = g_signal.load(); sig != 0) d.stop = sig == SIGUSR1 ? StopReason::kRequeueSignal : StopReason::kSignal;
  std::error_code ec;
  if (d.stop == StopReason::kNone && fs::exists(fs::path(opt_.run_dir) / "STOP_NOW", ec)) d.stop = StopReason::kStopFile;
  // stop while one more step and a save still fit before the end of the job
  if (d.stop == StopReason::kNone && deadline_ > 0 &&
      now + 2 * step_seconds + 1.5 * save_seconds + opt_.margin_seconds >= deadline_)
    d.stop = StopReason::kDeadline;
  d.save = d.stop != StopReason::kNone || fs::exists(fs::path(opt_.run_dir) / "SAVE_NOW", ec) ||
           (opt_.every_steps > 0 && step % opt_.every_steps == 0) ||
           (opt_.every_minutes > 0 && now - last_save_time_ >= 60 * opt_.every_minutes);
  return d;
}

void ResumeController::clear_switches() {
  std::error_code ec;
  fs::remove(fs::path(opt_.run_dir) / "SAVE_NOW", ec);
  fs::remove(fs::path(opt_.run_dir) / "STOP_NOW", ec);
}

bool requeue_slurm_job(int max_restarts) {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) return false;
  const char* count = std::getenv("SLURM_RESTART_COUNT");
  const int restarts = count ? std::atoi(count) : 0;
  if (restarts >= max_restarts) {
    spdlog::warn("slurm: job {} not requeued: it has restarted {} times (--max-restarts {})", job, restarts, max_restarts);
    return false;
  }
  const std::string cmd = std::string("scontrol requeue ") + job + " 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    spdlog::error("slurm: `{}` failed (status {}): resubmit the job by hand to continue", cmd, rc);
    return false;
  }
  spdlog::info("slurm: requeued job {} (restart {})", job, restarts + 1);
  return true;
}

void ResumeController::note_saved() { last_save_time_ = now_unix(); }

}  // namespace pc
