// The ZeRO AdamW step in one process (stage 1 with one rank: the update of the whole flat vector,
// no communication) on the trainable parameters of the tiny and the ViT-B/32 CLIP models. The
// multi-rank step (update of a slice + all-gather) is BM_Coll_ZeroAdamWStep. BM_TorchAdamWStep is
// the same update by torch::optim::AdamW, for the ratio.
#include <torch/torch.h>

#include "bench_suite.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/optim/zero_adamw.h"
#include "pyramidclip/run/param_groups.h"

namespace {

void BM_ZeroAdamWStep(benchmark::State& state) {
  torch::set_num_threads(1);
  if (pc::bench::world().size() != 1) {  // under mpirun every rank would update the whole vector
    state.SkipWithError("one-process benchmark: run it without mpirun (BM_Coll_ZeroAdamWStep is the multi-rank one)");
    return;
  }
  pc::ModelConfig cfg = pc::model_preset(state.range(0) == 0 ? "tiny" : "vit-b32", false);
  cfg.with_roi = false;
  torch::manual_seed(0);
  pc::PyramidClip model(cfg);
  const pc::TrainableParams flat = pc::trainable_params(*model);  // as the trainer lays them out
  const std::vector<at::Tensor>& params = flat.tensors;
  pc::ZeroAdamW opt(pc::make_flat_layout(flat.names, params, flat.decay, 1), params, pc::bench::world(), {});
  at::Tensor grad = torch::randn({opt.layout().padded_numel}) * 1e-3;
  for (auto _ : state) opt.step(1e-4, grad);
  state.SetItemsProcessed(state.iterations() * opt.layout().numel);  // parameters updated per second
  state.SetLabel(cfg.name + ", " + std::to_string(opt.layout().numel) + " parameters");
}
BENCHMARK(BM_ZeroAdamWStep)->ArgName("preset")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// Reference side by side: torch::optim::AdamW (LibTorch 1.13's per-tensor ATen ops, what a
// Python loop runs) on the same parameters, decay groups and gradients.
void BM_TorchAdamWStep(benchmark::State& state) {
  torch::set_num_threads(1);
  pc::ModelConfig cfg = pc::model_preset(state.range(0) == 0 ? "tiny" : "vit-b32", false);
  cfg.with_roi = false;
  torch::manual_seed(0);
  pc::PyramidClip model(cfg);
  const pc::TrainableParams flat = pc::trainable_params(*model);
  std::vector<at::Tensor> decay, no_decay;
  int64_t numel = 0;
  for (size_t i = 0; i < flat.tensors.size(); ++i) {
    at::Tensor p = flat.tensors[i];
    p.mutable_grad() = torch::randn_like(p) * 1e-3;
    (flat.decay[i] ? decay : no_decay).push_back(p);
    numel += p.numel();
  }
  auto opts = [](double wd) { return torch::optim::AdamWOptions(1e-4).weight_decay(wd); };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts(0.1)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(opts(0.0)));
  torch::optim::AdamW opt(std::move(groups), opts(0.1));
  for (auto _ : state) opt.step();
  state.SetItemsProcessed(state.iterations() * numel);
  state.SetLabel(cfg.name + ", torch::optim::AdamW (reference)");
}
BENCHMARK(BM_TorchAdamWStep)->ArgName("preset")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
