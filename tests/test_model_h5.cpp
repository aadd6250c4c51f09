// model.h5: bitwise round trip, attributes, atomic write, clear errors for mismatched files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("pc_model_h5_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string load_error(torch::nn::Module& m, const std::string& path) {
  try {
    load_model_h5(m, path);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(ModelH5, RoundTripIsBitwise) {
  TempDir dir;
  const std::string path = (dir.path / "model.h5").string();
  torch::manual_seed(20);
  const ModelConfig c = model_preset("tiny", true);
  PyramidClip a(c);
  a->train();
  {
    // move the BN running statistics and counters away from their initial values
    torch::NoGradGuard no_grad;
    const int64_t px = a->config().image_size;
    a->encode_image(torch::randn({2, 3, px, px}));
  }
  save_model_h5(*a, path, 12000, "tiny");
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  torch::manual_seed(21);
  PyramidClip b(c);
  ModelH5Info info = load_model_h5(*b, path);
  EXPECT_EQ(info.step, 12000);
  EXPECT_EQ(info.arch, "tiny");
  auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
    EXPECT_EQ(p.value().requires_grad(), pb[p.key()].requires_grad()) << p.key();
  }
  auto bb = b->named_buffers();
  int64_t tracked = 0;
  for (const auto& x : a->named_buffers()) {
    EXPECT_TRUE(torch::equal(x.value(), bb[x.key()])) << x.key();
    EXPECT_EQ(x.value().scalar_type(), bb[x.key()].scalar_type()) << x.key();
    if (x.key().find("num_batches_tracked") != std::string::npos) tracked += bb[x.key()].item<int64_t>();
  }
  EXPECT_GT(tracked, 0);
  ModelH5Info only = read_model_h5_info(path);
  EXPECT_EQ(only.step, 12000);
  EXPECT_EQ(only.arch, "tiny");

  // overwriting an existing file works (rename replaces it)
  save_model_h5(*b, path, 12001, "tiny");
  EXPECT_EQ(read_model_h5_info(path).step, 12001);
}

TEST(ModelH5, MismatchesNameTheKeyAndFile) {
  TempDir dir;
  const std::string path = (dir.path / "model.h5").string();
  ModelConfig c = model_preset("tiny", true);
  c.vocab_size = 1000;
  PyramidClip small_vocab(c);
  save_model_h5(*small_vocab, path, 1, "tiny");

  c.vocab_size = 2000;
  PyramidClip big_vocab(c);
  at::Tensor before = big_vocab->named_parameters()["text_projection"].clone();
  std::string err = load_error(*big_vocab, path);
  EXPECT_NE(err.find("token_embedding.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("[1000," + std::to_string(model_preset("tiny", true).text_width) + "]"), std::string::npos) << err;
  EXPECT_NE(err.find(path), std::string::npos) << err;
  // nothing was loaded
  EXPECT_TRUE(torch::equal(before, big_vocab->named_parameters()["text_projection"]));

  c.vocab_size = 1000;
  c.with_roi = false;
  PyramidClip no_roi(c);
  err = load_error(*no_roi, path);
  EXPECT_NE(err.find("unexpected key 'visual.proj_pre'"), std::string::npos) << err;

  save_model_h5(*no_roi, path, 2, "tiny");
  err = load_error(*small_vocab, path);
  EXPECT_NE(err.find("missing key 'visual.proj_pre'"), std::string::npos) << err;

  PyramidClip standard(model_preset("tiny", false));
  err = load_error(*standard, path);
  EXPECT_NE(err.find("problems"), std::string::npos) << err;

  err = load_error(*standard, (dir.path / "absent.h5").string());
  EXPECT_NE(err.find("absent.h5"), std::string::npos) << err;
  EXPECT_THROW(save_model_h5(*standard, (dir.path / "no/such/dir/model.h5").string(), 0, "tiny"), UserError);
}

}  // namespace
}  // namespace pc
