// The resume controller's local decisions: signals, switch files, periodic saves, deadlines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "pyramidclip/run/resume_controller.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

namespace fs = std::filesystem;

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct RunDir {
  fs::path path = fs::temp_directory_path() / ("pc_rc_" + std::to_string(::getpid()));
  RunDir() { fs::create_directories(path); }
  ~RunDir() { fs::remove_all(path); }
};

TEST(ResumeController, QuietStepNeitherSavesNorStops) {
  RunDir d;
  ResumeController c({d.path.string(), 0, 0, 0, 30});
  const Decision x = c.decide(7, 0.5, 2.0);
  EXPECT_FALSE(x.save);
  EXPECT_EQ(x.stop, StopReason::kNone);
}

TEST(ResumeController, PeriodicEveryNSteps) {
  RunDir d;
  ResumeController c({d.path.string(), 5, 0, 0, 30});
  EXPECT_FALSE(c.decide(4, 0.1, 0.1).save);
  EXPECT_TRUE(c.decide(5, 0.1, 0.1).save);
  EXPECT_TRUE(c.decide(10, 0.1, 0.1).save);
  EXPECT_EQ(c.decide(10, 0.1, 0.1).stop, StopReason::kNone);
}

TEST(ResumeController, SignalsStopWithASave) {
  RunDir d;
  ResumeController c({d.path.string(), 0, 0, 0, 30});
  for (int sig : {SIGUSR1, SIGTERM}) {
    ResumeController fresh({d.path.string(), 0, 0, 0, 30});  // resets the flag
    ASSERT_EQ(std::raise(sig), 0);                            // the handler only sets a flag
    const Decision x = fresh.decide(3, 0.1, 0.1);
    EXPECT_TRUE(x.save);
    EXPECT_EQ(x.stop, sig == SIGUSR1 ? StopReason::kRequeueSignal : StopReason::kSignal);
    EXPECT_EQ(fresh.last_signal(), sig);
  }
}

TEST(ResumeController, SwitchFiles) {
  RunDir d;
  ResumeController c({d.path.string(), 0, 0, 0, 30});
  std::ofstream(d.path / "SAVE_NOW").put('\n');
  Decision x = c.decide(1, 0.1, 0.1);
  EXPECT_TRUE(x.save);
  EXPECT_EQ(x.stop, StopReason::kNone);
  c.clear_switches();
  EXPECT_FALSE(fs::exists(d.path / "SAVE_NOW"));
  EXPECT_FALSE(c.decide(2, 0.1, 0.1).save);
  std::ofstream(d.path / "STOP_NOW").put('\n');
  x = c.decide(3, 0.1, 0.1);
  EXPECT_TRUE(x.save);
  EXPECT_EQ(x.stop, StopReason::kStopFile);
}

// Stop while 2 steps + 1.5 saves + the margin still fit before the deadline.
TEST(ResumeController, DeadlineLeavesRoomForAStepAndASave) {
  RunDir d;
  ResumeController far({d.path.string(), 0, 0, now() + 1000, 30});
  EXPECT_EQ(far.decide(1, 10, 20).stop, StopReason::kNone);  // 20 + 30 + 30 = 80 s < 1000 s
  EXPECT_EQ(far.decide(1, 300, 300).stop, StopReason::kDeadline);  // 600 + 450 + 30 > 1000 s
  ResumeController near({d.path.string(), 0, 0, now() + 30, 30});
  EXPECT_EQ(near.decide(1, 1, 1).stop, StopReason::kDeadline);  // 2 + 1.5 + 30 > 30 s left
}

TEST(ResumeController, ParseDeadline) {
  EXPECT_DOUBLE_EQ(parse_deadline("+90m", 1000), 1000 + 5400);
  EXPECT_DOUBLE_EQ(parse_deadline("+2h", 0), 7200);
  EXPECT_DOUBLE_EQ(parse_deadline("+600s", 10), 610);
  EXPECT_DOUBLE_EQ(parse_deadline("+45", 10), 55);
  EXPECT_DOUBLE_EQ(parse_deadline("1767225600", 0), 1767225600);
  const double t = parse_deadline("2026-12-01T08:30", 0), t2 = parse_deadline("2026-12-01T08:30:15", 0);
  EXPECT_DOUBLE_EQ(t2 - t, 15);
  EXPECT_GT(t, 1.76e9);
  EXPECT_THROW(parse_deadline("tomorrow", 0), UserError);
  EXPECT_THROW(parse_deadline("+5d", 0), UserError);
}

}  // namespace
}  // namespace pc
