// The CLI contract: --help everywhere, and bad input is ONE clear line on stderr with exit 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_process.h"

namespace {

using pc::test::exit_code_of;
using pc::test::slurp;

struct Result {
  int code;
  std::string out, err;
};

Result run(const std::string& args, const std::string& stdin_text = "") {
  const auto dir = std::filesystem::temp_directory_path() / ("pc_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = (dir / "in").string(), out = (dir / "out").string(), err = (dir / "err").string();
  std::ofstream(in) << stdin_text;
  const int code = exit_code_of(std::string(PC_BINARY) + " " + args + " <" + in + " >" + out + " 2>" + err);
  Result r{code, slurp(out), slurp(err)};
  std::filesystem::remove_all(dir);
  return r;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

void expect_usage_error(const std::string& args, const std::string& must_mention) {
  Result r = run(args);
  EXPECT_EQ(r.code, 2) << args << "\nstderr: " << r.err;
  EXPECT_EQ(lines(r.err), 1) << args << "\nstderr: " << r.err;
  EXPECT_NE(r.err.find(must_mention), std::string::npos) << args << "\nstderr: " << r.err;
  EXPECT_EQ(r.err.find("frame #"), std::string::npos) << "stack trace leaked: " << r.err;
}

TEST(Cli, HelpOnEveryCommand) {
  for (const char* cmd : {"--help", "train --help", "eval --help", "data synth --help", "model info --help",
                          "tokenize --help", "data --help"}) {
    Result r = run(cmd);
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find("usage: pyramidclip"), std::string::npos) << cmd;
  }
}

TEST(Cli, BadInputIsOneLineAndExitTwo) {
  expect_usage_error("frobnicate", "unknown command 'frobnicate'");
  expect_usage_error("data", "needs a subcommand: synth");
  expect_usage_error("model --verbose", "needs a subcommand: info");
  expect_usage_error("train --no-such-option 1", "no-such-option");
  expect_usage_error("train --config /nonexistent/x.cfg", "/nonexistent/x.cfg");
  expect_usage_error("model info --model.preset vit-b64", "vit-b64");
  expect_usage_error("model info --model.variant fancy", "model.variant");
  expect_usage_error("model info --model.image-size abc", "model.image-size");
  expect_usage_error("tokenize --vocab /nonexistent/vocab.txt.gz", "/nonexistent/vocab.txt.gz");
  expect_usage_error("train --data.train-shards /nonexistent --data.vocab /nonexistent/v.gz", "/nonexistent/v.gz");
  expect_usage_error("train --config " PC_SOURCE_DIR "/configs/tiny.cfg --loss.alpha 1.5", "loss.alpha");
  expect_usage_error("train --config " PC_SOURCE_DIR "/configs/tiny.cfg --train.lr -1", "train.lr");
  expect_usage_error("eval --weights /nonexistent/model.h5 --images /tmp --classes /tmp/x --data.vocab /nonexistent/v",
                     "/nonexistent");
  expect_usage_error("data synth --out /tmp/x --train-samples 0", "train-samples");
}

// The exact OpenAI CLIP parameter counts (text tower included) from the shipped configs.
TEST(Cli, ModelInfoPrintsOpenAIParameterCounts) {
  const std::pair<const char*, const char*> expected[] = {
      {"clip-vit-b32.cfg", "parameters: 151277313"},
      {"clip-vit-b16.cfg", "parameters: 149620737"},
      {"clip-rn50.cfg", "parameters: 102007137"},
  };
  for (const auto& [cfg, line] : expected) {
    Result r = run(std::string("model info --config " PC_SOURCE_DIR "/configs/") + cfg);
    EXPECT_EQ(r.code, 0) << cfg << ": " << r.err;
    EXPECT_NE(r.out.find(line), std::string::npos) << cfg << ":\n" << r.out;
  }
}

TEST(Cli, TokenizePrintsContextLengthIds) {
  const std::string vocab = PC_SHARED_DIR "/data/bpe_simple_vocab_16e6.txt.gz";
  if (!std::filesystem::exists(vocab)) GTEST_SKIP() << "CLIP vocabulary not found at " << vocab << " (../shared absent)";
  Result r = run("tokenize --vocab " + vocab, "a photo of a cat\n\n");
  ASSERT_EQ(r.code, 0) << r.err;
  std::string expected = "49406 320 1125 539 320 2368 49407";
  for (int i = 7; i < 77; ++i) expected += " 0";
  std::string empty = "49406 49407";
  for (int i = 2; i < 77; ++i) empty += " 0";
  EXPECT_EQ(r.out, expected + "\n" + empty + "\n");
}

}  // namespace
