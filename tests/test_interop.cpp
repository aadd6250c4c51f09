// PyTorch interop (issue #6) against files Python wrote: tests/python/make_interop_fixtures.py builds
// the tiny standard model (python/pyramidclip_torch.py) and saves it as a plain state dict, a DDP
// training checkpoint, a TorchScript archive and in fp16, with its embeddings of fixed inputs. Here:
// each imports and gives Python's embeddings (1e-5); import -> export -> import is bitwise and
// Python's torch.load reads the export as the original; every bad file is one line and exit 2;
// `train --init` starts from exactly the imported weights, and a checkpoint of the run wins over it.
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "pyramidclip/interop/checkpoint_import.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "test_process.h"

namespace pc {
namespace {

namespace fs = std::filesystem;
using test::exit_code_of;
using test::slurp;

constexpr int kVocab = 1000;  // model.vocab-size of the fixtures: small files (the tiny text tower is mostly embedding)
const std::string kConfig = PC_SOURCE_DIR "/configs/tiny-clip.cfg";
const std::string kPython = "/usr/bin/python3";  // Debian's, with python3-torch (not a pyenv one)

ModelConfig tiny_clip() {  // what kConfig + --model.vocab-size builds
  ModelConfig c = model_preset("tiny", /*official=*/false);
  c.with_roi = false;
  c.vocab_size = kVocab;
  return c;
}

class Interop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (exit_code_of(kPython + " -c 'import torch' > /dev/null 2>&1") != 0) {
      skip_ = kPython + " cannot import torch: install python3-torch (scripts/setup.sh does)";
      return;
    }
    dir_ = fs::temp_directory_path() / ("pc_interop_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string log = file("fixtures.log");
    if (exit_code_of(kPython + " " PC_SOURCE_DIR "/tests/python/make_interop_fixtures.py " + kConfig + " " +
                     std::to_string(kVocab) + " " + dir_.string() + " > " + log + " 2>&1") != 0)
      setup_error_ = "make_interop_fixtures.py failed: " + slurp(log);
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  static std::string file(const std::string& name) { return (dir_ / name).string(); }

  // Runs the binary; returns its exit code and its stdout + stderr in *output.
  static int cli(const std::string& args, std::string* output) {
    const std::string log = file("cli.log");
    const int rc = exit_code_of(std::string(PC_BINARY) + " " + args + " > " + log + " 2>&1");
    *output = slurp(log);
    return rc;
  }
  static std::string import_args(const std::string& src, const std::string& out, const std::string& extra = "") {
    return "ckpt import " + src + " --config " + kConfig + " --model.vocab-size " + std::to_string(kVocab) +
           " --output " + out + extra;
  }

  // expected.pt (written by torch.save in Python, read by LibTorch's unpickler)
  static at::Tensor expected(const std::string& key) {
    std::ifstream in(file("expected.pt"), std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return torch::jit::pickle_load(bytes).toGenericDict().at(key).toTensor();
  }

  static PyramidClip load(const std::string& h5) {
    PyramidClip model(tiny_clip());
    load_model_h5(*model, h5);
    model->eval();
    return model;
  }

  // The C++ model with these weights embeds Python's inputs as Python did.
  static void expect_python_embeddings(const std::string& h5, const std::string& suffix = "") {
    PyramidClip model = load(h5);
    torch::NoGradGuard no_grad;
    const at::Tensor image = model->encode_image(expected("images"));
    const at::Tensor text = model->encode_text(expected("tokens"));
    const at::Tensor want_image = expected("image_emb" + suffix), want_text = expected("text_emb" + suffix);
    ASSERT_EQ(image.sizes(), want_image.sizes());
    ASSERT_EQ(text.sizes(), want_text.sizes());
    EXPECT_LT((image - want_image).abs().max().item<double>(), 1e-5) << h5;
    EXPECT_LT((text - want_text).abs().max().item<double>(), 1e-5) << h5;
    EXPECT_NEAR(model->logit_scale_exp().item<double>(), expected("logit_scale" + suffix).item<double>(), 1e-5);
    // not trivially equal: the three captions embed differently
    EXPECT_GT((text[0] - text[1]).abs().max().item<double>(), 1e-2);
  }

  static inline std::string skip_, setup_error_;
  static inline fs::path dir_;
};

TEST_F(Interop, PlainStateDictThroughTheCliGivesPythonsEmbeddings) {
  std::string out;
  ASSERT_EQ(cli(import_args(file("plain.pt"), file("plain.h5")), &out), 0) << out;
  EXPECT_NE(out.find("imported 134 tensors"), std::string::npos) << out;
  expect_python_embeddings(file("plain.h5"));
}

TEST_F(Interop, TrainingCheckpointWithModulePrefixesIsUnwrapped) {
  const ImportReport r = import_torch_checkpoint(file("wrapped.pt"), tiny_clip(), file("wrapped.h5"), true);
  EXPECT_EQ(r.format, "torch.save archive");
  EXPECT_EQ(r.unwrapped, "state_dict");
  EXPECT_EQ(r.loaded, 134u);
  EXPECT_TRUE(r.unexpected.empty());
  expect_python_embeddings(file("wrapped.h5"));
}

TEST_F(Interop, TorchScriptArchiveGivesPythonsEmbeddings) {
  const ImportReport r = import_torch_checkpoint(file("traced.pt"), tiny_clip(), file("traced.h5"), true);
  EXPECT_EQ(r.format, "TorchScript archive");
  EXPECT_EQ(r.loaded, 134u);
  expect_python_embeddings(file("traced.h5"));
}

TEST_F(Interop, HalfPrecisionWeightsBecomeFp32) {
  const ImportReport r = import_torch_checkpoint(file("half.pt"), tiny_clip(), file("half.h5"), true);
  EXPECT_EQ(r.loaded, 134u);
  expect_python_embeddings(file("half.h5"), "_half");
}

TEST_F(Interop, ImportExportImportIsBitwiseAndPythonReadsTheExport) {
  std::string out;
  ASSERT_EQ(cli(import_args(file("plain.pt"), file("rt1.h5")), &out), 0) << out;
  ASSERT_EQ(cli("ckpt export " + file("rt1.h5") + " --output " + file("exported.pt"), &out), 0) << out;
  EXPECT_NE(out.find("exported 134 tensors"), std::string::npos) << out;
  ASSERT_EQ(cli(import_args(file("exported.pt"), file("rt2.h5"), " --strict"), &out), 0) << out;

  PyramidClip a = load(file("rt1.h5")), b = load(file("rt2.h5"));
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), 134u);
  for (const auto& item : pa) {
    const at::Tensor& x = item.value();
    const at::Tensor& y = pb[item.key()];
    ASSERT_EQ(x.sizes(), y.sizes()) << item.key();
    EXPECT_EQ(std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()), 0) << item.key();
  }
  // Python: torch.load(exported) is the original state dict, bit for bit
  const std::string log = file("check_export.log");
  EXPECT_EQ(exit_code_of(kPython + " " PC_SOURCE_DIR "/tests/python/check_export.py " + file("plain.pt") + " " +
                         file("exported.pt") + " > " + log + " 2>&1"),
            0)
      << slurp(log);
  EXPECT_NE(slurp(log).find("OK: 134 tensors equal bitwise"), std::string::npos) << slurp(log);
}

TEST_F(Interop, BadFilesAreOneLineAndExitTwo) {
  struct Case {
    std::string file, extra;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {"missing.pt", "", {"missing.pt", "1 missing key: 'visual.ln_post.bias' [96]"}},
      {"unexpected.pt", " --strict", {"unexpected.pt", "1 unexpected key: 'visual.extra_head.weight' [4]"}},
      {"wrong_shape.pt", "", {"'text_projection' [64,128] in the file, [64,64] in the model"}},
      {"garbage.pt", "", {"garbage.pt is not a PyTorch file"}},
      {"legacy.pt", "", {"legacy.pt is in the legacy (pre-1.6, non-zip) torch.save format", "torch.save("}},
      {"pyobject.pt", "", {"pyobject.pt holds a Python object (argparse.Namespace)", "['state_dict']"}},
      {"no-such-file.pt", "", {"no-such-file.pt: no such file"}},
      {"plain.pt", " --model.variant official", {"missing keys", "set model.variant"}},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(cli(import_args(file(c.file), file("bad.h5"), c.extra), &out), 2) << c.file << ": " << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << c.file << ": " << out;
    for (const auto& s : c.says) EXPECT_NE(out.find(s), std::string::npos) << c.file << " should say " << s << ": " << out;
  }
  EXPECT_FALSE(fs::exists(file("bad.h5")));
  // without --strict an unexpected key is left out with a warning naming it
  std::string out;
  ASSERT_EQ(cli(import_args(file("unexpected.pt"), file("lenient.h5")), &out), 0) << out;
  EXPECT_NE(out.find("warning: left out 1 keys the model does not have: 'visual.extra_head.weight'"), std::string::npos)
      << out;
  expect_python_embeddings(file("lenient.h5"));
}

// A new run from imported weights starts from exactly them: with a learning rate of 1e-30 the first
// step leaves every weight as it was (|w| >> 1e-30), so the step-1 checkpoint equals the import.
TEST_F(Interop, TrainInitStartsFromTheImportedWeights) {
  std::string out;
  ASSERT_EQ(cli(import_args(file("plain.pt"), file("init.h5")), &out), 0) << out;
  ASSERT_EQ(cli("data synth --out " + file("data") + " --train-samples 32 --shard-size 32 --heldout-per-class 1"
                " --vocab-merges 300 --image-size 48",
                &out),
            0)
      << out;
  const std::string train = "train --config " + kConfig + " --model.vocab-size " + std::to_string(kVocab) +
                            " --data.train-shards " + file("data/train") + " --data.vocab " +
                            file("data/bpe_vocab.txt.gz") + " --train.run " + file("run") +
                            " --train.global-batch 8 --train.lr 1e-30 --train.warmup-samples 8 --train.threads 1"
                            " --data.streams 1 --data.workers 0 --train.log-every 1 --stop-after 1";
  EXPECT_EQ(cli("train --init " + file("nothing.h5") + " " + train.substr(6), &out), 2) << out;
  EXPECT_NE(out.find("--init " + file("nothing.h5") + ": no such file"), std::string::npos) << out;

  ASSERT_EQ(cli(train + " --init " + file("init.h5"), &out), 75) << out;  // stopped with a checkpoint
  EXPECT_NE(out.find("init: new run from the weights of " + file("init.h5")), std::string::npos) << out;
  std::vector<fs::path> steps;
  for (const auto& e : fs::directory_iterator(file("run/checkpoints")))
    if (e.path().filename().string().rfind("step-", 0) == 0) steps.push_back(e.path());
  ASSERT_EQ(steps.size(), 1u);
  PyramidClip imported = load(file("init.h5")), trained = load((steps[0] / "model.h5").string());
  auto after = trained->named_parameters();
  double worst = 0;
  for (const auto& item : imported->named_parameters())
    worst = std::max(worst, (item.value() - after[item.key()]).abs().max().item<double>());
  EXPECT_LT(worst, 1e-20);

  // the run's checkpoint takes precedence: a second launch resumes and says why --init was not used
  ASSERT_EQ(cli(train + " --init " + file("init.h5"), &out), 75) << out;
  EXPECT_NE(out.find("init: " + file("init.h5") + " not used: resuming from the run's checkpoint"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace pc
