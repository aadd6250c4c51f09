// Real images through the zero-shot pipeline (issue #6): Fashion-MNIST from Debian's
// dataset-fashion-mnist, exported by scripts/fashion_mnist_imagefolder.py as an ImageFolder tree
// with readable class names, evaluated by the binary. Checks the pipeline, not accuracy: every
// exported PNG holds exactly the dataset's pixels, every image is read, labels follow the sorted
// folder names, and the per-class results carry the readable names.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pyramidclip/data/image.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "test_process.h"

namespace fs = std::filesystem;
using pc::test::exit_code_of;
using pc::test::slurp;

namespace {

const std::string kSource = "/usr/share/datasets/fashion-mnist";
const std::string kPython = "/usr/bin/python3";
// Sorted readable names = label order of an ImageFolder tree.
const std::vector<std::string> kSortedNames = {"ankle boot", "bag",     "coat",    "dress", "pullover",
                                               "sandal",     "shirt",   "sneaker", "t-shirt", "trouser"};
// Fashion-MNIST's own label index -> readable name (as the script maps them).
const std::vector<std::string> kDatasetNames = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};

std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {};
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, n);
  gzclose(f);
  return out;
}

class FashionMnist : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kSource + "/t10k-images-idx3-ubyte.gz"))
      GTEST_SKIP() << kSource << " is missing: apt-get install dataset-fashion-mnist (scripts/setup.sh does)";
    if (!fs::exists(kPython)) GTEST_SKIP() << kPython << " is missing: apt-get install python3";
    dir_ = fs::temp_directory_path() / ("pc_fmnist_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(FashionMnist, ExportedTreeHoldsTheDatasetPixelsAndEvaluatesWithReadableNames) {
  const int per_class = 4;
  const fs::path tree = dir_ / "fmnist";
  const std::string log = (dir_ / "export.log").string();
  ASSERT_EQ(exit_code_of(kPython + " " PC_SOURCE_DIR "/scripts/fashion_mnist_imagefolder.py --out " + tree.string() +
                         " --per-class " + std::to_string(per_class) + " > " + log + " 2>&1"),
            0)
      << slurp(log);

  // Every PNG decodes to the idx file's bytes (gray -> R = G = B), in the folder of its label.
  const std::string images = gunzip(kSource + "/t10k-images-idx3-ubyte.gz");
  const std::string labels = gunzip(kSource + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_GT(images.size(), 16u);
  ASSERT_GT(labels.size(), 8u);
  int files = 0;
  for (const auto& name : kSortedNames) {
    ASSERT_TRUE(fs::is_directory(tree / name)) << name;
    for (const auto& e : fs::directory_iterator(tree / name)) {
      const int index = std::stoi(e.path().stem().string());
      EXPECT_EQ(kDatasetNames.at(static_cast<uint8_t>(labels.at(8 + index))), name) << e.path();
      const std::string png = slurp(e.path().string());
      pc::Image img = pc::decode_png(png.data(), png.size());
      ASSERT_EQ(img.width, 28);
      ASSERT_EQ(img.height, 28);
      for (int p = 0; p < 28 * 28; ++p) {
        const uint8_t want = static_cast<uint8_t>(images.at(16 + static_cast<size_t>(index) * 784 + p));
        ASSERT_EQ(img.rgb[3 * p], want) << e.path() << " pixel " << p;
        ASSERT_EQ(img.rgb[3 * p + 2], want) << e.path() << " pixel " << p;
      }
      ++files;
    }
  }
  EXPECT_EQ(files, per_class * 10);

  // A vocabulary (synthetic, trained by `data synth`) and untrained tiny weights: the pipeline, not accuracy.
  const std::string data = (dir_ / "synth").string();
  ASSERT_EQ(exit_code_of(std::string(PC_BINARY) + " data synth --out " + data + " --train-samples 40 --shard-size 40 "
                         "--heldout-per-class 1 --vocab-merges 200 > " + log + " 2>&1"),
            0)
      << slurp(log);
  torch::manual_seed(0);
  pc::PyramidClip model(pc::model_preset("tiny", /*official=*/true));
  const std::string weights = (dir_ / "model.h5").string();
  pc::save_model_h5(*model, weights, 0, "tiny");

  const std::string out = (dir_ / "zero_shot.json").string();
  ASSERT_EQ(exit_code_of(std::string(PC_BINARY) + " eval --config " PC_SOURCE_DIR "/configs/tiny.cfg --weights " +
                         weights + " --data.vocab " + data + "/bpe_vocab.txt.gz --images " + tree.string() +
                         " --classes " + (tree / "classes.txt").string() + " --threads 1 --output " + out + " > " +
                         log + " 2>&1"),
            0)
      << slurp(log);
  const auto j = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(j["num_images"].get<int>(), per_class * 10);
  EXPECT_EQ(j["num_classes"].get<int>(), 10);
  EXPECT_EQ(j["num_templates"].get<int>(), 80);
  std::vector<std::string> names;
  double mean = 0;
  for (const auto& [name, acc] : j["per_class_top1"].items()) {
    names.push_back(name);
    const double hits = acc.get<double>() * per_class;  // a whole number of the class's images
    EXPECT_NEAR(hits, std::round(hits), 1e-9) << name;
    mean += acc.get<double>() / 10;
  }
  EXPECT_EQ(names, kSortedNames);
  // Equal class sizes: top-1 is the mean of the per-class accuracies.
  EXPECT_NEAR(j["top1"].get<double>(), mean, 1e-12);
  EXPECT_GE(j["top5"].get<double>(), j["top1"].get<double>());
}

}  // namespace
