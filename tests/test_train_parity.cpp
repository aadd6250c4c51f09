// The whole trainer, 1 rank vs 2 ranks with the same global batch: 50 steps of the tiny model
// (fp32, CPU) end with the same parameters to 1e-5 relative, with ZeRO off, stage 1 and stage 2,
// for the standard ViT and for the official one (LeFF BatchNorm, synchronized across ranks). The
// loader serves identical global batches for any rank count dividing data.streams, so any
// difference is the engine's: gradient buckets, sharded optimizer, SyncBN, gathered negatives.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "model_weights.h"
#include "test_process.h"

namespace pc {
namespace {

namespace fs = std::filesystem;
using pc::test::exit_code_of;
using pc::test::slurp;

class TrainParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("pc_parity_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // 400 samples = 8 streams x 50; a global batch of 8 gives 50 steps in one epoch
    const std::string log = (dir_ / "synth.log").string();
    ASSERT_EQ(exit_code_of(std::string(PC_BINARY) + " data synth --out " + (dir_ / "data").string() +
                           " --train-samples 400 --shard-size 100 --heldout-per-class 1 --vocab-merges 300 > " + log +
                           " 2>&1"),
              0)
        << slurp(log);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // Trains on `ranks` ranks; returns the run directory.
  static std::string train(const std::string& name, int ranks, const std::string& extra) {
    const fs::path run = dir_ / name;
    const std::string data = (dir_ / "data").string(), log = (dir_ / (name + ".log")).string();
    const std::string cmd = std::string(PC_MPIEXEC) + " -np " + std::to_string(ranks) +
                            " --oversubscribe --bind-to none " + PC_BINARY + " train --config " PC_SOURCE_DIR
                            "/configs/tiny.cfg --data.train-shards " + data + "/train --data.vocab " + data +
                            "/bpe_vocab.txt.gz --train.run " + run.string() +
                            " --train.global-batch 8 --train.epochs 1 --train.warmup-samples 80 --train.threads 1"
                            " --data.streams 8 --data.shuffle-block 16 --data.workers 1 " + extra + " > " + log +
                            " 2>&1";
    EXPECT_EQ(exit_code_of(cmd), 0) << slurp(log);
    return run.string();
  }

  // Largest relative difference over the comparable parameters: ||a - b|| / ||b|| per tensor.
  static double worst_difference(const std::string& a_run, const std::string& b_run) {
    std::string worst_name, problem;
    const double worst = test::worst_relative_difference(test::read_weights(a_run + "/model.h5", true),
                                                         test::read_weights(b_run + "/model.h5", true), &worst_name,
                                                         &problem);
    EXPECT_TRUE(problem.empty()) << problem;
    std::printf("  %s vs %s: worst relative difference %.2e (%s)\n", fs::path(a_run).filename().c_str(),
                fs::path(b_run).filename().c_str(), worst, worst_name.c_str());
    return worst;
  }

  static void check_variant(const std::string& variant) {
    const std::string v = " --model.variant " + variant;
    const std::string one = train(variant + "-1rank", 1, v + " --train.zero-stage 0");
    for (int stage : {0, 1, 2}) {
      const std::string two =
          train(variant + "-2ranks-zero" + std::to_string(stage), 2, v + " --train.zero-stage " + std::to_string(stage));
      EXPECT_LT(worst_difference(two, one), 1e-5) << "ZeRO stage " << stage;
    }
  }

  static fs::path dir_;
};
fs::path TrainParity::dir_;

TEST_F(TrainParity, OfficialVitWithSyncBatchNormOneRankEqualsTwoRanksForZeroStages012) {
  check_variant("official");
  // the control: per-rank BatchNorm statistics are a different model, and the comparison sees it
  const std::string local_bn = train("official-2ranks-local-bn", 2, "--model.variant official --model.sync-batchnorm false");
  EXPECT_GT(worst_difference(local_bn, (dir_ / "official-1rank").string()), 1e-3);
}

TEST_F(TrainParity, StandardVitOneRankEqualsTwoRanksForZeroStages012) { check_variant("standard"); }

// bf16 autocast trains the same model to nearly the same place (bf16 matmuls, fp32 master weights,
// norms and loss); fp16 without a GPU is refused in one line before anything starts.
TEST_F(TrainParity, Bf16TracksFp32AndFp16NeedsCuda) {
  const std::string fp32 = train("fp32", 2, "--train.zero-stage 1");
  const std::string bf16 = train("bf16", 2, "--train.zero-stage 1 --train.precision bf16");
  auto losses = [](const std::string& run) {
    std::vector<double> l;
    std::ifstream f(run + "/metrics.jsonl");
    for (std::string line; std::getline(f, line);) l.push_back(nlohmann::json::parse(line)["loss"].get<double>());
    return l;
  };
  auto a = losses(fp32), b = losses(bf16);
  ASSERT_EQ(a.size(), 50u);
  ASSERT_EQ(b.size(), 50u);
  EXPECT_NEAR(b.front(), a.front(), 0.02 * a.front());  // same weights, bf16 rounding only
  EXPECT_NEAR(b.back(), a.back(), 0.05 * a.front());
  EXPECT_LT(b.back(), b.front());

  const std::string log = (dir_ / "fp16.log").string();
  EXPECT_EQ(exit_code_of(std::string(PC_BINARY) + " train --config " PC_SOURCE_DIR "/configs/tiny.cfg --data.vocab " +
                         (dir_ / "data/bpe_vocab.txt.gz").string() + " --train.precision fp16 > " + log + " 2>&1"),
            2);
  EXPECT_NE(slurp(log).find("train.precision fp16 needs train.device cuda"), std::string::npos) << slurp(log);
}

}  // namespace
}  // namespace pc
