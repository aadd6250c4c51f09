// Per-sample data work of the trainer, one thread: JPEG decode + the two augmented training views
// (exactly TrainLoader's path: reduced-DCT decode to min side ceil(224/sqrt(0.5)) = 317,
// sample_resized_crop, resized_crop_normalized to 224 px) on a photo-like JPEG, and the BPE
// tokenizer on captions. bench_decode_augment compares the decode + augment with PIL/torchvision;
// bench_data.cpp (also in this binary) has the decode and crop alone and the loader end to end.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "bench_suite.h"
#include "pyramidclip/data/augment.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/text/tokenizer.h"

namespace {

// Smooth shading + soft discs + grain: compresses like a photo (~1.5 bits/pixel at quality 90),
// unlike flat synthetic patterns.
std::string photo_like_jpeg(int width, int height, uint64_t seed) {
  pc::Rng rng(seed);
  pc::Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(static_cast<size_t>(width) * height * 3);
  struct Disc {
    double x, y, r, c[3];
  };
  std::vector<Disc> discs;
  for (int i = 0; i < 6; ++i)
    discs.push_back({rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, height / 2.0),
                     {rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)}});
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      double v[3] = {60 + 120.0 * x / width, 80 + 100.0 * y / height, 140 - 60.0 * x / width};
      for (const Disc& d : discs) {
        const double dist = std::hypot(x - d.x, y - d.y);
        const double w = std::clamp((d.r - dist) / 6.0, 0.0, 1.0);  // soft edge
        for (int c = 0; c < 3; ++c) v[c] = (1 - w) * v[c] + w * d.c[c] * (0.8 + 0.2 * y / height);
      }
      uint8_t* p = img.pixel(x, y);
      for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::clamp(v[c] + 6.0 * rng.normal_approx(), 0.0, 255.0));
    }
  return pc::encode_jpeg(img, 90);
}

void BM_DecodeAugment(benchmark::State& state) {
  torch::set_num_threads(1);
  const int side = static_cast<int>(state.range(0)), size = 224;
  const std::string jpg = photo_like_jpeg(side * 4 / 3, side, 7);
  const int min_side = static_cast<int>(std::ceil(size / std::sqrt(0.5)));
  std::vector<float> global_view(3 * size * size), local_view(3 * size * size);
  pc::Rng rng(1);
  for (auto _ : state) {
    const pc::Image img = pc::decode_image(jpg.data(), jpg.size(), "jpg", min_side);
    pc::resized_crop_normalized(img, pc::sample_resized_crop(img.height, img.width, {0.9, 1.0}, rng), size,
                                global_view.data());
    pc::resized_crop_normalized(img, pc::sample_resized_crop(img.height, img.width, {0.5, 1.0}, rng), size,
                                local_view.data());
    benchmark::DoNotOptimize(local_view.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::to_string(side * 4 / 3) + "x" + std::to_string(side) + " JPEG, " +
                 std::to_string(jpg.size() / 1000) + " KB");
}
BENCHMARK(BM_DecodeAugment)->ArgName("height")->Arg(256)->Arg(480)->Unit(benchmark::kMicrosecond);

std::vector<std::string> captions(int n) {
  static const char* colors[] = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"};
  static const char* things[] = {"circle", "square", "triangle", "dog", "car", "house", "tree", "boat", "chair"};
  static const char* places[] = {"on a table", "in the park", "near the river", "under a bridge", "at night"};
  pc::Rng rng(3);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back(std::string("A photo of a ") + colors[rng.below(8)] + " " + things[rng.below(9)] + " and two " +
                  colors[rng.below(8)] + " " + things[rng.below(9)] + "s " + places[rng.below(5)] + ", #" +
                  std::to_string(rng.below(1000)) + " &amp; friends' “best” picture!");
  return out;
}

// CLIP's full tokenize (clean-up, HTML unescape, pre-tokenization regex, BPE, SOT/EOT, pad to 77)
// with a vocabulary of 2,000 merges trained on such captions.
void BM_Tokenize(benchmark::State& state) {
  const std::vector<std::string> texts = captions(2000);
  static const pc::Tokenizer tokenizer = pc::Tokenizer::train(texts, 2000);
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    const std::string& t = texts[i++ % texts.size()];
    benchmark::DoNotOptimize(tokenizer.tokenize(t, 77));
    bytes += static_cast<int64_t>(t.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Tokenize)->Unit(benchmark::kMicrosecond);

}  // namespace
