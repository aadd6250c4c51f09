// Checkpoint and resume through the real binary under mpirun (issue #5):
//  - elastic: 2 ranks -> 1 rank -> 2 ranks ends where the uninterrupted 2-rank run ends (1e-5),
//    every sample of each epoch seen exactly once, the same LR at every sample count;
//  - fault injection: 20 launches killed with SIGKILL at random moments (checkpoint writes
//    included), each leaving only valid checkpoints; the finished run's weights are bitwise
//    those of the uninterrupted run;
//  - a damaged newest checkpoint is rejected (named in the log) and the previous one is used.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model_weights.h"
#include "test_process.h"

namespace pc {
namespace {

namespace fs = std::filesystem;
using test::exit_code_of;
using test::slurp;

constexpr int kSteps = 100;  // 2 epochs of 400 samples at a global batch of 8

class Resume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("pc_resume_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string log = (dir_ / "synth.log").string();
    ASSERT_EQ(exit_code_of(std::string(PC_BINARY) + " data synth --out " + (dir_ / "data").string() +
                           " --train-samples 400 --shard-size 100 --heldout-per-class 1 --vocab-merges 300 > " + log +
                           " 2>&1"),
              0)
        << slurp(log);
    ASSERT_EQ(launch("reference", 2, ""), 0) << slurp(log_of("reference"));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string run_dir(const std::string& name) { return (dir_ / name).string(); }
  static std::string log_of(const std::string& name) { return (dir_ / (name + ".log")).string(); }

  static std::string command(const std::string& name, int ranks, const std::string& extra) {
    const std::string data = (dir_ / "data").string();
    return std::string(PC_MPIEXEC) + " -np " + std::to_string(ranks) + " --oversubscribe --bind-to none " +
           PC_BINARY + " train --config " PC_SOURCE_DIR "/configs/tiny.cfg --data.train-shards " + data +
           "/train --data.vocab " + data + "/bpe_vocab.txt.gz --train.run " + run_dir(name) +
           " --train.global-batch 8 --train.epochs 2 --train.warmup-samples 80 --train.threads 1 --data.streams 8"
           " --data.shuffle-block 16 --data.workers 1 --data.log-keys true " + extra + " >> " + log_of(name) + " 2>&1";
  }
  static int launch(const std::string& name, int ranks, const std::string& extra) {
    return exit_code_of(command(name, ranks, extra));
  }

  // step -> the step's keys over all ranks (sorted), from logs/keys-rank-*.txt
  static std::map<int64_t, std::vector<std::string>> keys_by_step(const std::string& name) {
    std::map<int64_t, std::vector<std::string>> out;
    for (const auto& e : fs::directory_iterator(fs::path(run_dir(name)) / "logs")) {
      if (e.path().filename().string().rfind("keys-rank-", 0) != 0) continue;
      std::ifstream in(e.path());
      for (std::string line; std::getline(in, line);) {
        std::istringstream ss(line);
        int64_t step = 0;
        ss >> step;
        for (std::string k; ss >> k;) out[step].push_back(k);
      }
    }
    for (auto& [step, keys] : out) std::sort(keys.begin(), keys.end());
    return out;
  }

  // samples_seen -> lr, and the number of rows, from metrics.jsonl
  static std::map<double, double> lr_by_samples(const std::string& name, size_t* rows) {
    std::map<double, double> out;
    std::ifstream in(fs::path(run_dir(name)) / "metrics.jsonl");
    *rows = 0;
    for (std::string line; std::getline(in, line); ++*rows) {
      const auto j = nlohmann::json::parse(line);
      out[j["samples_seen"].get<double>()] = j["lr"].get<double>();
    }
    return out;
  }

  static fs::path dir_;
};
fs::path Resume::dir_;

TEST_F(Resume, ElasticTwoOneTwoRanksMatchesTheUninterruptedRun) {
  EXPECT_EQ(launch("elastic", 2, "--stop-after 30"), 75) << slurp(log_of("elastic"));
  EXPECT_EQ(launch("elastic", 1, "--stop-after 30"), 75) << slurp(log_of("elastic"));
  EXPECT_EQ(launch("elastic", 2, ""), 0) << slurp(log_of("elastic"));
  const std::string log = slurp(log_of("elastic"));
  EXPECT_NE(log.find("written by 2 rank(s), now 1"), std::string::npos) << log;
  EXPECT_NE(log.find("written by 1 rank(s), now 2"), std::string::npos) << log;

  std::string worst_name, problem;
  const double worst = test::worst_relative_difference(
      test::read_weights(run_dir("elastic") + "/model.h5", true),
      test::read_weights(run_dir("reference") + "/model.h5", true), &worst_name, &problem);
  EXPECT_TRUE(problem.empty()) << problem;
  EXPECT_LT(worst, 1e-5) << worst_name;

  // the same global batches in the same order, and each epoch sees every sample exactly once
  const auto ref = keys_by_step("reference"), got = keys_by_step("elastic");
  ASSERT_EQ(got.size(), static_cast<size_t>(kSteps));
  EXPECT_TRUE(got == ref);
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<std::string> seen;
    for (int64_t s = epoch * 50 + 1; s <= (epoch + 1) * 50; ++s) seen.insert(got.at(s).begin(), got.at(s).end());
    EXPECT_EQ(seen.size(), 400u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 400u) << "a sample twice in epoch " << epoch;
  }

  // one metrics row per step across the three launches, and the LR keyed to samples seen
  size_t rows = 0, ref_rows = 0;
  const auto lr = lr_by_samples("elastic", &rows), ref_lr = lr_by_samples("reference", &ref_rows);
  EXPECT_EQ(rows, static_cast<size_t>(kSteps));
  EXPECT_TRUE(lr == ref_lr);
}

// The optimizer files hold canonical slices whatever the stage: a run can change ZeRO stage and
// world size at each resume (2 ranks stage 2 -> 1 rank stage 0 -> 2 ranks stage 2).
TEST_F(Resume, ZeroStageAndWorldSizeChangeAcrossResumes) {
  EXPECT_EQ(launch("stages", 2, "--train.zero-stage 2 --stop-after 40"), 75) << slurp(log_of("stages"));
  EXPECT_EQ(launch("stages", 1, "--train.zero-stage 0 --stop-after 30"), 75) << slurp(log_of("stages"));
  EXPECT_EQ(launch("stages", 2, "--train.zero-stage 2"), 0) << slurp(log_of("stages"));
  std::string worst_name, problem;
  const double worst = test::worst_relative_difference(
      test::read_weights(run_dir("stages") + "/model.h5", true),
      test::read_weights(run_dir("reference") + "/model.h5", true), &worst_name, &problem);
  EXPECT_TRUE(problem.empty()) << problem;
  EXPECT_LT(worst, 1e-5) << worst_name;
}

TEST_F(Resume, TwentySigkillsAtRandomMomentsResumeToBitwiseTheSameWeights) {
  const std::string name = "killed", run = run_dir(name);
  std::mt19937 rng(20261129);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::uniform_int_distribution<int> steps_before_kill(1, 10);
  int kills_after_a_checkpoint = 0;
  for (int i = 0; i < 20; ++i) {
    // The moment is random in training progress, not in wall time (this machine's speed varies):
    // mostly after 1..10 more logged steps plus a fraction of a step (saves every 3 steps are in
    // flight about half the time), sometimes during start-up.
    const auto log_size = fs::exists(log_of(name)) ? fs::file_size(log_of(name)) : 0;
    ASSERT_EQ(exit_code_of(command(name, 2, "--ckpt.every-steps 3 --train.log-every 1") + " &"), 0);
    if (uniform(rng) < 0.15) {
      std::this_thread::sleep_for(std::chrono::duration<double>(1.5 * uniform(rng)));
    } else {
      const int target = steps_before_kill(rng);
      for (int t = 0; t < 1200; ++t) {  // at most 2 minutes
        const std::string fresh = slurp(log_of(name)).substr(log_size);
        int logged = 0;
        for (size_t p = fresh.find("] step "); p != std::string::npos; p = fresh.find("] step ", p + 1)) ++logged;
        if (logged >= target || fresh.find("train: done") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(0.3 * uniform(rng)));
    }
    // every process whose command line names this run: mpirun and both ranks, as a node failure
    // ("[.]" keeps the pattern from matching the shell that runs pkill/pgrep itself)
    const std::string pattern = "'--train[.]run " + run + " '";
    exit_code_of("pkill -KILL -f -- " + pattern);
    for (int t = 0; t < 300 && exit_code_of("pgrep -f -- " + pattern + " > /dev/null") == 0; ++t)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // whatever the moment, every published checkpoint verifies (2: none published yet)
    const int verify = exit_code_of(std::string(PC_BINARY) + " ckpt verify " + run + "/checkpoints > " +
                                    (dir_ / "verify.log").string() + " 2>&1");
    EXPECT_NE(verify, 1) << "after kill " << i << ": " << slurp((dir_ / "verify.log").string());
    kills_after_a_checkpoint += verify == 0;
  }
  std::printf("  %d of 20 kills came after the first published checkpoint\n", kills_after_a_checkpoint);
  EXPECT_GT(kills_after_a_checkpoint, 5);
  ASSERT_EQ(launch(name, 2, "--ckpt.every-steps 3"), 0) << slurp(log_of(name));

  const test::Weights got = test::read_weights(run + "/model.h5", false),
                      ref = test::read_weights(run_dir("reference") + "/model.h5", false);
  ASSERT_EQ(got.size(), ref.size());
  for (const auto& [key, v] : ref) EXPECT_TRUE(got.at(key) == v) << key << " differs";
}

TEST_F(Resume, DamagedNewestCheckpointIsRejectedAndThePreviousOneUsed) {
  const std::string name = "damaged", run = run_dir(name);
  ASSERT_EQ(launch(name, 2, "--ckpt.every-steps 10 --stop-after 20"), 75) << slurp(log_of(name));
  const fs::path newest = fs::path(run) / "checkpoints" / "step-000000020";
  const fs::path victim = newest / "optim-00001-of-00002.h5";
  ASSERT_TRUE(fs::exists(victim));
  {  // flip one byte in the middle
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(victim) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(fs::file_size(victim) / 2));
    c = static_cast<char>(c ^ 0x40);
    f.write(&c, 1);
  }
  const std::string verify_log = (dir_ / "verify-damaged.log").string();
  EXPECT_EQ(exit_code_of(std::string(PC_BINARY) + " ckpt verify " + run + " > " + verify_log + " 2>&1"), 1);
  EXPECT_NE(slurp(verify_log).find("optim-00001-of-00002.h5 has checksum"), std::string::npos) << slurp(verify_log);

  // --resume latest insists on the damaged one: one line, exit 2
  const std::string latest_log = (dir_ / "latest.log").string();
  fs::remove(latest_log);
  std::string latest_cmd = command(name, 2, "--resume latest");
  latest_cmd = latest_cmd.substr(0, latest_cmd.find(" >> ")) + " > " + latest_log + " 2>&1";
  EXPECT_EQ(exit_code_of(latest_cmd), 2);
  EXPECT_NE(slurp(latest_log).find("--resume latest:"), std::string::npos) << slurp(latest_log);

  // auto skips it, names why, and resumes from step 10
  ASSERT_EQ(launch(name, 2, "--stop-after 5"), 75) << slurp(log_of(name));
  const std::string log = slurp(log_of(name));
  EXPECT_NE(log.find("skipping invalid checkpoint"), std::string::npos) << log;
  EXPECT_NE(log.find("resume: " + run + "/checkpoints/step-000000010 (step 10"), std::string::npos) << log;

  // a truncated file is caught too: cut the step-15 save's state.h5 by one byte
  const fs::path state15 = fs::path(run) / "checkpoints" / "step-000000015" / "state.h5";
  ASSERT_TRUE(fs::exists(state15));
  fs::resize_file(state15, fs::file_size(state15) - 1);
  EXPECT_EQ(exit_code_of(std::string(PC_BINARY) + " ckpt verify " + (fs::path(run) / "checkpoints" / "step-000000015").string() +
                         " > " + verify_log + " 2>&1"),
            1);
  EXPECT_NE(slurp(verify_log).find("truncated"), std::string::npos) << slurp(verify_log);
}

}  // namespace
}  // namespace pc
