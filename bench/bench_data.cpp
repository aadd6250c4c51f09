// Data pipeline costs, one thread: synthetic generation, JPEG decode, random-resized crop, and
// the train loader end to end at the demo's and the B-models' resolutions.
// Run: build/bench/bench_data --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include "pyramidclip/data/augment.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/data/train_loader.h"

namespace {

namespace fs = std::filesystem;

// A 4000-sample synthetic set shared by the loader benchmarks, removed at exit.
struct SynthSet {
  fs::path dir = fs::temp_directory_path() / ("pc_bench_data_" + std::to_string(::getpid()));
  SynthSet() {
    pc::SynthOptions o;
    o.out_dir = dir.string();
    o.train_samples = 4000;
    pc::synth_dataset(o);
  }
  ~SynthSet() { fs::remove_all(dir); }
};
const SynthSet& synth_set() {
  static SynthSet s;
  return s;
}

std::vector<int32_t> toy_tokenize(const std::string& s) {
  std::vector<int32_t> ids(77, 0);
  for (size_t i = 0; i < s.size() && i < 77; ++i) ids[i] = static_cast<unsigned char>(s[i]);
  return ids;
}

void BM_Synth(benchmark::State& state) {
  const auto dir = fs::temp_directory_path() / ("pc_bench_synth_" + std::to_string(::getpid()));
  for (auto _ : state) {
    pc::SynthOptions o;
    o.out_dir = dir.string();
    o.train_samples = 2000;
    pc::synth_dataset(o);
  }
  fs::remove_all(dir);
  state.SetItemsProcessed(state.iterations() * 2000);
}
BENCHMARK(BM_Synth)->Unit(benchmark::kMillisecond);

pc::Image test_image(int side) {
  pc::Image img;
  img.width = img.height = side;
  img.rgb.resize(static_cast<size_t>(side) * side * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(i * 7 + i / 997);
  return img;
}

void BM_DecodeJpeg(benchmark::State& state) {
  const std::string jpg = pc::encode_jpeg(test_image(static_cast<int>(state.range(0))), 90);
  for (auto _ : state) benchmark::DoNotOptimize(pc::decode_image(jpg.data(), jpg.size(), "jpg", 0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeJpeg)->Arg(96)->Arg(256)->Arg(640)->Unit(benchmark::kMicrosecond);

void BM_RandomResizedCrop(benchmark::State& state) {
  torch::set_num_threads(1);
  const pc::Image img = test_image(256);
  pc::Rng rng(1);
  const int size = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(pc::random_resized_crop(img, size, pc::CropRange{0.5, 1.0}, rng));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RandomResizedCrop)->Arg(48)->Arg(224)->Unit(benchmark::kMicrosecond);

void BM_TrainLoader(benchmark::State& state) {
  torch::set_num_threads(1);
  pc::TrainLoaderOptions lo;
  lo.shards = (synth_set().dir / "train").string();
  lo.image_size = static_cast<int>(state.range(0));
  lo.batch_size = 64;
  pc::TrainLoader loader(lo, toy_tokenize);
  for (auto _ : state) benchmark::DoNotOptimize(loader.next());
  state.SetItemsProcessed(state.iterations() * lo.batch_size);
}
BENCHMARK(BM_TrainLoader)->Arg(48)->Arg(224)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
