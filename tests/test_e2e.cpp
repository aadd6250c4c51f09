// End to end through the real binary: data synth -> mpirun -np 2 train -> eval, on a small
// synthetic set. Checks the run directory's contract (weights, metrics, logs, resolved config)
// and that training lowered the loss.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "test_process.h"

namespace {

namespace fs = std::filesystem;
using pc::test::slurp;
using pc::test::exit_code_of;

TEST(EndToEnd, SynthTrainTwoRanksEval) {
  const fs::path dir = fs::temp_directory_path() / ("pc_e2e_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string bin = PC_BINARY, data = (dir / "data").string(), run = (dir / "run").string();
  ASSERT_EQ(exit_code_of(bin + " data synth --out " + data + " --train-samples 600 --shard-size 100 --heldout-per-class 1 "
                     "--vocab-merges 500 > " + (dir / "synth.log").string() + " 2>&1"), 0)
      << slurp((dir / "synth.log").string());

  const std::string train = std::string(PC_MPIEXEC) + " -np 2 --oversubscribe --bind-to none " + bin +
                            " train --config " PC_SOURCE_DIR "/configs/tiny.cfg --data.train-shards " + data +
                            "/train --data.vocab " + data + "/bpe_vocab.txt.gz --train.run " + run +
                            " --train.global-batch 32 --train.epochs 1 --train.warmup-samples 64 --train.threads 1"
                            " --train.profile-step 3 --train.profile-steps 2 > " +
                            (dir / "train.log").string() + " 2>&1";
  ASSERT_EQ(exit_code_of(train), 0) << slurp((dir / "train.log").string());

  for (const char* f : {"model.h5", "config.cfg", "metrics.jsonl", "logs/rank-0.log", "logs/rank-1.log"})
    EXPECT_TRUE(fs::exists(fs::path(run) / f)) << f;

  std::vector<nlohmann::json> rows;
  std::ifstream metrics(fs::path(run) / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 600u / 32u);  // one row per step: 1 epoch of 600 samples at 32 per step
  for (const char* k : {"loss", "lr", "logit_scale", "samples_per_second", "samples_per_second_per_gpu",
                        "loss_peer_global", "loss_peer_local", "loss_cross_global_oa", "loss_cross_roi_s",
                        "loss_cross_local_oa", "loss_cross_roi_t"})
    EXPECT_TRUE(rows.back().contains(k)) << k;
  EXPECT_EQ(rows.back()["samples_seen"].get<double>(), 32.0 * rows.size());
  EXPECT_LT(rows.back()["loss"].get<double>(), rows.front()["loss"].get<double>());

  // operator traces of steps 3..4, one per rank: two of each phase scope, with the GEMMs inside
  for (const char* rank : {"0", "1"}) {
    const std::string trace = run + "/profile/rank-" + rank + ".json";
    ASSERT_TRUE(fs::exists(trace)) << trace;
    std::map<std::string, int> count;
    for (const auto& e : nlohmann::json::parse(slurp(trace))) count[e["name"].get<std::string>()]++;
    for (const char* scope : {"pc::data", "pc::forward", "pc::backward", "pc::optimizer"})
      EXPECT_EQ(count[scope], 2) << trace << " " << scope;
    EXPECT_GT(count["aten::mm"] + count["aten::addmm"], 0) << trace;
  }

  const std::string eval = bin + " eval --config " + run + "/config.cfg --weights " + run + "/model.h5 --images " +
                           data + "/heldout --templates " + data + "/templates.txt --output " + run +
                           "/zs.json > " + (dir / "eval.log").string() + " 2>&1";
  ASSERT_EQ(exit_code_of(eval), 0) << slurp((dir / "eval.log").string());
  auto zs = nlohmann::json::parse(slurp(run + "/zs.json"));
  EXPECT_EQ(zs["num_images"].get<int>(), 48);  // one held-out image per class
  EXPECT_GE(zs["top5"].get<double>(), zs["top1"].get<double>());
  fs::remove_all(dir);
}

// A setup error that every rank hits (here a config file passed as the vocabulary) ends all ranks
// with exit 2 and one line from us, not an MPI_Abort.
TEST(EndToEnd, SetupErrorUnderMpirunIsOneLineAndExitTwo) {
  const fs::path log = fs::temp_directory_path() / ("pc_e2e_missing_" + std::to_string(::getpid()) + ".log");
  const std::string cmd = std::string(PC_MPIEXEC) + " -np 2 --oversubscribe --bind-to none " + PC_BINARY +
                          " train --config " PC_SOURCE_DIR "/configs/tiny.cfg --data.vocab " PC_SOURCE_DIR
                          "/configs/tiny.cfg --data.train-shards '/nonexistent/{0..3}.tar' --train.run " +
                          (fs::temp_directory_path() / "pc_e2e_missing_run").string() + " > " + log.string() + " 2>&1";
  EXPECT_EQ(exit_code_of(cmd), 2);
  const std::string out = slurp(log.string());
  size_t ours = 0;
  for (size_t p = out.find("pyramidclip: error"); p != std::string::npos; p = out.find("pyramidclip: error", p + 1)) ++ours;
  EXPECT_EQ(ours, 1u) << out;
  EXPECT_NE(out.find("tiny.cfg"), std::string::npos) << out;
  EXPECT_EQ(out.find("MPI_ABORT"), std::string::npos) << out;
  fs::remove(log);
}

}  // namespace
