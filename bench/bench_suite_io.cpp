// HDF5 weights: save_tensors_h5 (what a checkpoint writes for model.h5, without the fsync: the
// disk's share is measured with fsync by bench_ckpt_write) and load_model_h5, for the tiny and the
// ViT-B/32 CLIP models, into a temporary directory on the machine's disk (TMPDIR or /tmp).
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include "bench_suite.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"

namespace {

namespace fs = std::filesystem;

struct H5File {
  fs::path dir = fs::temp_directory_path() / ("pc_bench_suite_h5_" + std::to_string(::getpid()));
  H5File() { fs::create_directories(dir); }
  ~H5File() { fs::remove_all(dir); }
  std::string path() const { return (dir / "model.h5").string(); }
};

pc::PyramidClip make_model(int64_t which) {
  pc::ModelConfig cfg = pc::model_preset(which == 0 ? "tiny" : "vit-b32", false);
  cfg.with_roi = false;
  torch::manual_seed(0);
  return pc::PyramidClip(cfg);
}

void BM_H5Write(benchmark::State& state) {
  torch::set_num_threads(1);
  pc::PyramidClip model = make_model(state.range(0));
  const pc::NamedTensors entries = pc::snapshot_state(*model, /*copy_parameters=*/false);
  H5File file;
  for (auto _ : state) pc::save_tensors_h5(entries, file.path(), 0, model->config().name, /*durable=*/false);
  const auto bytes = static_cast<double>(fs::file_size(file.path()));
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["file_MB"] = bytes / 1e6;
  state.SetLabel(model->config().name);
}

void BM_H5Read(benchmark::State& state) {
  torch::set_num_threads(1);
  pc::PyramidClip model = make_model(state.range(0));
  H5File file;
  pc::save_model_h5(*model, file.path(), 0, model->config().name);
  for (auto _ : state) pc::load_model_h5(*model, file.path());
  const auto bytes = static_cast<double>(fs::file_size(file.path()));
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["file_MB"] = bytes / 1e6;
  state.SetLabel(model->config().name);
}
BENCHMARK(BM_H5Write)->ArgName("preset")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_H5Read)->ArgName("preset")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
