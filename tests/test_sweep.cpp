// `pyramidclip sweep` through the real binary on a run directory of tiny checkpoints (random
// weights saved with save_model_h5 + a manifest, as the trainer publishes them): stop and
// restart evaluate each (checkpoint, task) exactly once, the CSV equals the JSONs, shards
// partition the checkpoints, a corrupt model.h5 is skipped by name, SIGTERM ends --watch cleanly,
// bad input is one line and exit 2.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/ckpt/checkpoint_files.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "test_data_util.h"
#include "test_process.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using pc::test::exit_code_of;
using pc::test::slurp;
using pc::test::write_file;

constexpr int64_t kBatch = 16;

class Sweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new pc::test::TempDir("sweep");
    const std::string log = dir_->str("synth.log");
    ASSERT_EQ(exit_code_of(std::string(PC_BINARY) + " data synth --out " + dir_->str("synth") +
                           " --train-samples 24 --shard-size 24 --heldout-per-class 1 --vocab-merges 200 > " + log +
                           " 2>&1"),
              0)
        << slurp(log);
    write_file(dir_->str("templates.txt"), "a {}.\na picture of a {}.\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // A run directory with checkpoints at `steps` of a run of `total_steps` steps.
  static std::string make_run(const std::string& name, const std::vector<int64_t>& steps, int64_t total_steps) {
    const fs::path run = dir_->path / name;
    const std::string root = (run / "checkpoints").string();
    fs::create_directories(root);
    write_file((run / "config.cfg").string(), "[model]\npreset = tiny\nvariant = official\n\n[data]\nvocab = " +
                                                  dir_->str("synth/bpe_vocab.txt.gz") + "\n\n[train]\nglobal-batch = 16\n");
    for (int64_t step : steps) {
      const std::string tmp = root + "/" + pc::step_dir_name(step) + ".tmp";
      fs::create_directories(tmp);
      torch::manual_seed(static_cast<uint64_t>(step));
      pc::PyramidClip model(pc::model_preset("tiny", /*official=*/true));
      pc::save_model_h5(*model, tmp + "/model.h5", step, "tiny");
      pc::TrainState st;
      st.step = step;
      st.samples_seen = static_cast<double>(step * kBatch);
      st.global_batch = kBatch;
      st.lr_total_samples = static_cast<double>(total_steps * kBatch);
      pc::write_train_state(tmp + "/state.h5", st);
      write_file(tmp + "/" + pc::optim_file_name(0, 1), "not read by the sweep");
      pc::write_manifest(tmp, step, 1, st.samples_seen);
      pc::publish_checkpoint(root, tmp, step);
    }
    return run.string();
  }

  static std::string tasks() {
    return " --zeroshot held=" + dir_->str("synth/heldout") + ",templates=" + dir_->str("templates.txt") +
           " --retrieval pairs=" + dir_->str("synth/train");
  }

  // Runs a sweep; returns its exit code, output in `out`.
  static int sweep(const std::string& run, const std::string& args, std::string& out, const std::string& tag) {
    const std::string log = run + "/sweep-" + tag + ".log";
    const int rc = exit_code_of(std::string(PC_BINARY) + " sweep " + run + "/checkpoints --threads 1 --batch-size 64 " +
                                args + " > " + log + " 2>&1");
    out = slurp(log);
    return rc;
  }

  // (step-dir, task) of every "sweep: evaluated" log line.
  static std::vector<std::string> evaluated(const std::string& log) {
    std::vector<std::string> v;
    static const std::regex re("sweep: evaluated (step-[0-9]+) task ([a-z]+)");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
      v.push_back((*it)[1].str() + "/" + (*it)[2].str());
    return v;
  }

  static std::map<std::string, std::string> result_files(const std::string& eval_dir) {
    std::map<std::string, std::string> m;
    if (!fs::is_directory(eval_dir)) return m;
    for (const auto& d : fs::directory_iterator(eval_dir))
      if (d.is_directory())
        for (const auto& f : fs::directory_iterator(d.path()))
          m[d.path().filename().string() + "/" + f.path().stem().string()] = slurp(f.path().string());
    return m;
  }

  static size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
  }

  static pc::test::TempDir* dir_;
};
pc::test::TempDir* Sweep::dir_ = nullptr;

TEST_F(Sweep, StoppedAndRestartedEvaluatesEachCheckpointOnceAndCsvMatchesJson) {
  const std::string run = make_run("run", {3, 6, 9, 12}, 12);
  std::string out1, out2, out3;
  ASSERT_EQ(sweep(run, tasks() + " --limit 2", out1, "1"), 0) << out1;
  const auto first = result_files(run + "/eval");
  EXPECT_EQ(first.size(), 4u) << out1;  // 2 checkpoints x 2 tasks
  EXPECT_NE(out1.find("stopped early"), std::string::npos) << out1;
  ASSERT_EQ(sweep(run, tasks(), out2, "2"), 0) << out2;
  // --watch ends by itself: the run's last step (12, from state.h5) is published and evaluated
  ASSERT_EQ(sweep(run, tasks() + " --watch --poll 0.1", out3, "3"), 0) << out3;
  EXPECT_NE(out3.find("0 checkpoints evaluated (0 results), 4 already done"), std::string::npos) << out3;

  std::vector<std::string> all = evaluated(out1), second = evaluated(out2);
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(second.size(), 4u);
  all.insert(all.end(), second.begin(), second.end());
  EXPECT_TRUE(evaluated(out3).empty()) << out3;
  const std::set<std::string> unique(all.begin(), all.end());
  EXPECT_EQ(unique.size(), all.size()) << "a (checkpoint, task) was evaluated twice";
  std::set<std::string> want;
  for (const char* s : {"step-000000003", "step-000000006", "step-000000009", "step-000000012"})
    for (const char* t : {"held", "pairs"}) want.insert(std::string(s) + "/" + t);
  EXPECT_EQ(unique, want);
  const auto files = result_files(run + "/eval");
  for (const auto& [k, v] : first) EXPECT_EQ(files.at(k), v) << k << " was rewritten by the restart";

  // results.csv: one row per JSON, the same numbers
  std::istringstream csv(slurp(run + "/eval/results.csv"));
  std::string line;
  std::getline(csv, line);
  std::vector<std::string> header;
  for (std::stringstream h(line); std::getline(h, line, ',');) header.push_back(line);
  EXPECT_EQ(std::vector<std::string>(header.begin(), header.begin() + 5),
            (std::vector<std::string>{"step", "samples_seen", "task", "kind", "top1"}));
  size_t rows = 0;
  while (std::getline(csv, line)) {
    std::vector<std::string> cell;
    std::stringstream r(line);
    for (std::string c; std::getline(r, c, ',');) cell.push_back(c);
    cell.resize(header.size());
    const std::string key = pc::step_dir_name(std::stoll(cell[0])) + "/" + cell[2];
    ASSERT_TRUE(files.count(key)) << key;
    const auto j = nlohmann::json::parse(files.at(key));
    EXPECT_EQ(cell[1], j["samples_seen"].dump());
    EXPECT_EQ(j["samples_seen"].get<double>(), 16.0 * std::stoll(cell[0]));  // from MANIFEST.json
    EXPECT_EQ(cell[3], j["task"]["kind"].get<std::string>());
    for (size_t c = 4; c < header.size(); ++c) {
      const auto& m = j["metrics"];
      EXPECT_EQ(cell[c], m.contains(header[c]) ? m[header[c]].dump() : "") << key << " " << header[c];
    }
    EXPECT_EQ(j["model_h5"]["xxh3"].get<std::string>().size(), 16u);
    ++rows;
  }
  EXPECT_EQ(rows, 8u);
  const auto held = nlohmann::json::parse(files.at("step-000000012/held"));
  EXPECT_EQ(held["metrics"]["num_images"].get<int>(), 48);
  EXPECT_EQ(held["metrics"]["num_templates"].get<int>(), 2);
  EXPECT_EQ(held["metrics"]["per_class_top5"].size(), 48u);
  const auto pairs = nlohmann::json::parse(files.at("step-000000012/pairs"));
  EXPECT_EQ(pairs["metrics"]["num_captions"].get<int>(), 24);
  EXPECT_GE(pairs["metrics"]["i2t_r10"].get<double>(), pairs["metrics"]["i2t_r1"].get<double>());

  // one polyline per task in each plot
  const std::string top1 = slurp(run + "/eval/plot-top1.svg"), recall = slurp(run + "/eval/plot-mean_recall.svg");
  EXPECT_EQ(count(top1, "<polyline"), 1u);
  EXPECT_EQ(count(top1, "<circle"), 4u);
  EXPECT_EQ(count(recall, "<polyline"), 1u);
  EXPECT_EQ(top1.rfind("<?xml", 0), 0u);
  EXPECT_EQ(count(top1, "<svg"), count(top1, "</svg>"));
  EXPECT_EQ(count(top1, "<g "), count(top1, "</g>"));
}

TEST_F(Sweep, TwoShardsCoverEveryCheckpointOnce) {
  const std::string run = make_run("sharded", {2, 4, 6, 8, 10}, 10);
  const std::string task = " --zeroshot held=" + dir_->str("synth/heldout") + ",templates=" + dir_->str("templates.txt");
  std::string a, b;
  ASSERT_EQ(sweep(run, task + " --shard 0/2", a, "a"), 0) << a;
  ASSERT_EQ(sweep(run, task + " --shard 1/2", b, "b"), 0) << b;
  const auto ea = evaluated(a), eb = evaluated(b);
  std::set<std::string> all(ea.begin(), ea.end());
  all.insert(eb.begin(), eb.end());
  EXPECT_EQ(all.size(), ea.size() + eb.size()) << "a checkpoint was evaluated by both shards";
  EXPECT_EQ(all.size(), 5u);
  EXPECT_EQ(result_files(run + "/eval").size(), 5u);
  EXPECT_EQ(count(slurp(run + "/eval/results.csv"), "\n"), 6u);  // header + 5 rows after the second shard
}

TEST_F(Sweep, CorruptModelIsSkippedWithAWarningNamingIt) {
  const std::string run = make_run("corrupt", {5, 10}, 10);
  const std::string bad = run + "/checkpoints/" + pc::step_dir_name(5) + "/model.h5";
  std::string bytes = slurp(bad);
  bytes[bytes.size() / 2] ^= 0x5A;  // same size, other checksum
  write_file(bad, bytes);
  std::string out;
  ASSERT_EQ(sweep(run, " --zeroshot held=" + dir_->str("synth/heldout") + ",templates=" + dir_->str("templates.txt"), out,
                  "c"),
            0)
      << out;
  EXPECT_NE(out.find(bad + " does not match MANIFEST.json"), std::string::npos) << out;
  EXPECT_EQ(evaluated(out), (std::vector<std::string>{"step-000000010/held"}));
  EXPECT_NE(out.find("1 skipped as damaged"), std::string::npos) << out;
}

// --watch on a run that is still training: SIGTERM after the first result ends it with exit 0
// and complete JSON files.
TEST_F(Sweep, SigtermEndsWatchCleanly) {
  const std::string run = make_run("watch", {4}, 1000);
  const std::string log = run + "/watch.log";
  const std::string cmd = std::string("exec ") + PC_BINARY + " sweep " + run + "/checkpoints --threads 1 --watch --poll 0.2" +
                          " --zeroshot held=" + dir_->str("synth/heldout") + ",templates=" + dir_->str("templates.txt") +
                          " > " + log + " 2>&1";
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  const std::string result = run + "/eval/" + pc::step_dir_name(4) + "/held.json";
  for (int i = 0; i < 1200 && !fs::exists(run + "/eval/results.csv"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(result)) << slurp(log);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << slurp(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(log);
  EXPECT_EQ(nlohmann::json::parse(slurp(result))["step"].get<int>(), 4);
  EXPECT_NE(slurp(log).find("stopped early"), std::string::npos) << slurp(log);
}

TEST_F(Sweep, BadInputIsOneLineAndExitTwo) {
  const std::string run = make_run("bad", {1}, 1);
  const std::string held = dir_->str("synth/heldout");
  const std::pair<std::string, std::string> cases[] = {
      {" --zeroshot held=" + held + ",colour=red", "colour=red"},
      {" --retrieval 'a b=" + held + "'", "bad task name"},
      {" --zeroshot held=" + held + " --zeroshot held=" + held, "two tasks are named 'held'"},
      {" --zeroshot held=" + held + " --shard 2/2", "--shard"},
      {"", "no evaluation task"},
      {" --zeroshot held=/nonexistent/shards", "/nonexistent/shards"},
      // weights that do not fit the configured model: the error names model.h5 and the keys
      {" --zeroshot held=" + held + " --model.variant standard", "model.h5"},
  };
  for (const auto& [args, want] : cases) {
    std::string out;
    const std::string log = run + "/err.log";
    EXPECT_EQ(exit_code_of(std::string(PC_BINARY) + " sweep " + run + "/checkpoints --threads 1" + args + " 2> " + log +
                           " > /dev/null"),
              2)
        << args;
    const std::string err = slurp(log);
    EXPECT_EQ(count(err, "\n"), 1u) << args << ": " << err;
    EXPECT_NE(err.find(want), std::string::npos) << args << ": " << err;
  }
  std::string out;
  EXPECT_EQ(exit_code_of(std::string(PC_BINARY) + " sweep " + dir_->str("nowhere/checkpoints") +
                         " --zeroshot a=b 2>&1 | grep -q 'config.cfg'"),
            0);
}

}  // namespace
