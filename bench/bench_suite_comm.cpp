// Collectives through pc::Comm (the MPI backend: the trainer's path) at several sizes, with
// algorithm and bus bandwidth as nccl-tests define them (size = the full buffer: allreduce input,
// all-gather output, reduce-scatter input; GB = 1e9 bytes):
//   algbw = size / t;  busbw = algbw * 2(n-1)/n (allreduce), (n-1)/n (all-gather,
//   reduce-scatter), 1 (broadcast).
// Plus a raw in-place MPI_Allreduce for reference, and the ZeRO AdamW step across ranks (update
// of this rank's slice + all-gather of the parameters). Run under mpirun -np >= 2 (run_suite.sh
// does); alone they skip. Every iteration reports the slowest rank's time (time_on_all_ranks).
#include <mpi.h>
#include <torch/torch.h>

#include "bench_suite.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/optim/zero_adamw.h"
#include "pyramidclip/run/param_groups.h"

namespace {

using pc::bench::world;

enum class Coll { kAllreduce, kAllGather, kReduceScatter, kBroadcast, kMpiAllreduce };

double bus_factor(Coll c, int n) {
  switch (c) {
    case Coll::kAllreduce:
    case Coll::kMpiAllreduce: return 2.0 * (n - 1) / n;
    case Coll::kAllGather:
    case Coll::kReduceScatter: return 1.0 * (n - 1) / n;
    case Coll::kBroadcast: return 1.0;
  }
  return 1.0;
}

bool needs_ranks(benchmark::State& state) {
  if (world().size() >= 2) return true;
  state.SkipWithError("needs >= 2 ranks: mpirun -np 2 bench_suite --benchmark_filter=Coll (bench/run_suite.sh)");
  return false;
}

// Arg: the size in bytes (fp32 elements = bytes / 4, rounded to a multiple of the rank count).
void collective(benchmark::State& state, Coll c) {
  if (!needs_ranks(state)) return;
  torch::set_num_threads(1);
  pc::Comm& comm = world();
  const int n = comm.size();
  const int64_t numel = state.range(0) / 4 / n * n, bytes = numel * 4;
  at::Tensor full = torch::ones({numel}), part = torch::ones({numel / n});
  double total = pc::bench::time_on_all_ranks(state, [&] {
    switch (c) {
      case Coll::kAllreduce: comm.allreduce_sum(full); break;
      case Coll::kAllGather: comm.all_gather_into(part, full); break;
      case Coll::kReduceScatter: comm.reduce_scatter_sum(full, part); break;
      case Coll::kBroadcast: comm.broadcast(full, 0); break;
      case Coll::kMpiAllreduce:
        MPI_Allreduce(MPI_IN_PLACE, full.data_ptr(), static_cast<int>(numel), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        break;
    }
  });
  if (c == Coll::kAllreduce || c == Coll::kMpiAllreduce) full.fill_(1);  // keep sums bounded (not timed)
  const double algbw = static_cast<double>(bytes) * state.iterations();
  state.counters["algbw_GBps"] = pc::bench::giga_per_second(algbw, total);
  state.counters["busbw_GBps"] = pc::bench::giga_per_second(algbw * bus_factor(c, n), total);
  state.counters["ranks"] = n;
  state.counters["bytes"] = static_cast<double>(bytes);
}

void BM_Coll_Allreduce(benchmark::State& s) { collective(s, Coll::kAllreduce); }
void BM_Coll_AllGather(benchmark::State& s) { collective(s, Coll::kAllGather); }
void BM_Coll_ReduceScatter(benchmark::State& s) { collective(s, Coll::kReduceScatter); }
void BM_Coll_Broadcast(benchmark::State& s) { collective(s, Coll::kBroadcast); }
void BM_Coll_MpiAllreduceRaw(benchmark::State& s) { collective(s, Coll::kMpiAllreduce); }

// 1 MB .. 256 MB: a small bucket, the default 25 MB bucket's order, a ViT-B/32 text tower's gradient.
#define PC_COLL_SIZES ->ArgName("bytes")->RangeMultiplier(8)->Range(1 << 20, 1 << 26)->Arg(256 << 20)
BENCHMARK(BM_Coll_Allreduce) PC_COLL_SIZES->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Coll_AllGather) PC_COLL_SIZES->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Coll_ReduceScatter) PC_COLL_SIZES->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Coll_Broadcast) PC_COLL_SIZES->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Coll_MpiAllreduceRaw) PC_COLL_SIZES->UseManualTime()->Unit(benchmark::kMillisecond);
#undef PC_COLL_SIZES

// ZeRO AdamW step across ranks on ViT-B/32 CLIP's trainable parameters (151 M): stage 1 from the
// full averaged gradient, stage 2 from this rank's slice; both all-gather the updated parameters.
void BM_Coll_ZeroAdamWStep(benchmark::State& state) {
  if (!needs_ranks(state)) return;
  torch::set_num_threads(1);
  pc::Comm& comm = world();
  pc::ModelConfig cfg = pc::model_preset("vit-b32", false);
  cfg.with_roi = false;
  torch::manual_seed(0);
  pc::PyramidClip model(cfg);
  const pc::TrainableParams flat = pc::trainable_params(*model);  // as the trainer lays them out
  const std::vector<at::Tensor>& params = flat.tensors;
  pc::ZeroAdamWOptions o;
  o.stage = static_cast<int>(state.range(0));
  pc::ZeroAdamW opt(pc::make_flat_layout(flat.names, params, flat.decay, comm.size()), params, comm, o);
  const int64_t grad_numel = o.stage == 2 ? opt.layout().shard_numel() : opt.layout().padded_numel;
  at::Tensor grad = torch::randn({grad_numel}) * 1e-3;
  const double total = pc::bench::time_on_all_ranks(state, [&] { opt.step(1e-4, grad); });
  const double elements = static_cast<double>(opt.layout().numel) * state.iterations();
  state.counters["params_G_per_s"] = pc::bench::giga_per_second(elements, total);
  state.counters["ranks"] = comm.size();
}
BENCHMARK(BM_Coll_ZeroAdamWStep)->ArgName("stage")->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
