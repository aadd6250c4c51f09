// Forward+backward time of each tower of the tiny model at the demo's per-rank batch (64).
// Run: build/bench/bench_model --benchmark_repetitions=3 (1 intra-op thread, as 2 ranks on 2 cores use).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "pyramidclip/model/pyramid_clip.h"

namespace {

pc::ModelConfig tiny(bool official) {
  torch::set_num_threads(1);
  return pc::model_preset("tiny", official);
}

void BM_ImageTower(benchmark::State& s) {
  auto cfg = tiny(s.range(0));
  pc::PyramidClip m(cfg);
  auto x = torch::randn({64, 3, cfg.image_size, cfg.image_size});
  for (auto _ : s) {
    m->zero_grad();
    m->encode_image(x).sum().backward();
  }
}
BENCHMARK(BM_ImageTower)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_TextTower(benchmark::State& s) {
  auto cfg = tiny(true);
  pc::PyramidClip m(cfg);
  auto t = torch::randint(1, 700, {64, 77}, torch::kLong);
  for (auto _ : s) {
    m->zero_grad();
    m->encode_text(t).sum().backward();
  }
}
BENCHMARK(BM_TextTower)->Unit(benchmark::kMillisecond);

void BM_RoiPath(benchmark::State& s) {
  auto cfg = tiny(true);
  pc::PyramidClip m(cfg);
  auto r = torch::randn({64, 10, cfg.roi_dim});
  auto mask = torch::ones({64, 10}, torch::kBool);
  for (auto _ : s) {
    m->zero_grad();
    m->encode_roi(r, mask).sum().backward();
  }
}
BENCHMARK(BM_RoiPath)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
