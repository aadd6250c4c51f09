// Manual measurements, disabled by default:
//   test_data --gtest_also_run_disabled_tests --gtest_filter='*DataBench*'
// PC_DATA_BENCH_SAMPLES (default 20000) sets the synth size.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>

#include "pyramidclip/data/augment.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/data/train_loader.h"
#include "test_data_util.h"

namespace pc {
namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(DataBench, DISABLED_Synth) {
  test::TempDir dir("bench_synth");
  SynthOptions o;
  o.out_dir = dir.str();
  if (const char* n = std::getenv("PC_DATA_BENCH_SAMPLES")) o.train_samples = std::atoll(n);
  const auto t = std::chrono::steady_clock::now();
  const SynthResult r = synth_dataset(o);
  std::printf("synth: %lld train samples + %lld held-out in %.2f s (%.0f samples/s, 1 thread)\n",
              static_cast<long long>(r.train_samples), static_cast<long long>(r.heldout_samples), since(t),
              r.train_samples / since(t));
}

TEST(DataBench, DISABLED_LoaderThroughput) {
  torch::set_num_threads(1);
  test::TempDir dir("bench_loader");
  SynthOptions o;
  o.out_dir = dir.str();
  o.train_samples = 4000;
  synth_dataset(o);
  for (int size : {96, 224}) {
    TrainLoaderOptions lo;
    lo.shards = dir.str("train");
    lo.image_size = size;
    lo.batch_size = 64;
    TrainLoader loader(lo, test::toy_tokenize);
    loader.next();  // warm-up
    const auto t = std::chrono::steady_clock::now();
    const int batches = size == 96 ? 60 : 30;
    for (int i = 0; i < batches; ++i) loader.next();
    std::printf("loader: image_size %d, batch 64, 1 thread: %.0f samples/s\n", size, batches * 64 / since(t));
  }
}

}  // namespace
}  // namespace pc

namespace pc {
namespace {

TEST(DataBench, DISABLED_PerStageCost) {
  torch::set_num_threads(1);
  Image img;
  img.width = img.height = 96;
  img.rgb.resize(96 * 96 * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(i * 7);
  const std::string jpg = encode_jpeg(img, 90);
  const int n = 2000;
  auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) decode_image(jpg.data(), jpg.size(), "jpg", 100);
  std::printf("decode 96px jpeg: %.1f us\n", since(t) / n * 1e6);
  Rng rng(1);
  for (int size : {96, 224}) {
    t = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) random_resized_crop(img, size, CropRange{0.5, 1.0}, rng);
    std::printf("random_resized_crop -> %d: %.1f us\n", size, since(t) / n * 1e6);
  }
  at::Tensor batch = torch::rand({64, 3, 224, 224});
  t = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) clip_normalize_(batch);
  std::printf("normalize [64,3,224,224]: %.1f us/sample\n", since(t) / 20 / 64 * 1e6);
}

}  // namespace
}  // namespace pc
