// The ZeRO AdamW step in one process (stage 1 with one rank: the update of the whole flat vector,
// no communication) on the trainable parameters of the tiny and the ViT-B/32 CLIP models. The
// multi-rank step (update of a slice + all-gather) is BM_Coll_ZeroAdamWStep.
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

}  // namespace
