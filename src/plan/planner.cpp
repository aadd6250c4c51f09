// The capacity planner's step, memory and run model (planner.h).
#include "pyramidclip/plan/planner.h"

#include <algorithm>
#include <cmath>

#include "pyramidclip/util/errors.h"

namespace pc::plan {
namespace {

void validate(const PlanInput& in) {
  require(in.gpus >= 1, "--gpus must be >= 1");
  require(in.gpus_per_node >= 1, "--gpus-per-node must be >= 1");
  require(in.batch_per_gpu >= 1, "--batch-per-gpu must be >= 1");
  require(in.zero_stage >= 0 && in.zero_stage <= 2, "--zero must be 0, 1 or 2");
  require(in.precision == "bf16" || in.precision == "fp32", "--precision must be bf16 or fp32, not '" + in.precision + "'");
  require(in.mfu > 0 && in.mfu <= 1, "--mfu must be in (0, 1], e.g. 0.12");
  require(in.overlap <= 1, "--overlap must be <= 1 (a fraction; < 0 derives it from --bucket-mb)");
  require(in.gpu.peak_bf16_flops > 0 && in.gpu.peak_fp32_flops > 0 && in.gpu.memory_bw > 0,
          "the GPU's peak FLOP/s and memory bandwidth must be > 0");
  require(in.intra.bandwidth > 0 && in.inter.bandwidth > 0, "interconnect bandwidths must be > 0");
  require(in.fs_bandwidth > 0, "--fs-bw must be > 0");
  require(in.pairs > 0 && in.epochs > 0, "--pairs and --epochs must be > 0");
}

}  // namespace

PlanResult make_plan(const PlanInput& in) {
  validate(in);
  PlanResult r;
  const ModelConfig& m = in.model;
  const StepWorkload& w = in.workload;
  const bool bf16 = in.precision == "bf16";
  const double b = in.batch_per_gpu, n = in.gpus, global_batch = b * n;
  r.params = count_params(m);
  const double psi = static_cast<double>(r.params.trainable), psi_total = static_cast<double>(r.params.total);

  // ---- FLOPs ----
  const SampleCost sc = sample_cost(m, w);
  const double loss = loss_forward_flops(w, global_batch, m.embed_dim);
  r.forward_flops = sc.forward + loss;
  r.model_flops = 3 * r.forward_flops;
  const double recompute = in.act_ckpt ? sc.recompute : 0;
  r.executed_flops = r.model_flops + recompute;
  const double rate = (bf16 ? in.gpu.peak_bf16_flops : in.gpu.peak_fp32_flops) * in.mfu;
  r.forward_s = r.forward_flops * b / rate;
  r.backward_s = 2 * r.forward_flops * b / rate;
  r.recompute_s = recompute * b / rate;
  r.compute_s = r.forward_s + r.backward_s + r.recompute_s;

  // ---- memory per GPU ----
  const StateAccounting acc = bf16 ? StateAccounting::kMixedPrecision : StateAccounting::kFp32;
  r.state = zero_state_bytes(psi_total, psi, in.gpus, in.zero_stage, acc);
  r.trainer_state = zero_state_bytes(psi_total, psi, in.gpus, in.zero_stage, StateAccounting::kTrainer).total();
  const double act_bytes = bf16 ? 2 : 4;
  r.activations = (in.act_ckpt ? sc.activations_ckpt : sc.activations) * act_bytes * b;
  // local-loss form: per pair and direction an fp32 [local, global] logit matrix and its softmax
  r.logits = 4.0 * b * global_batch * w.pairs * 2 * 2;
  r.reserve = in.reserve_bytes;
  r.total_memory = r.state.total() + r.activations + r.logits + r.reserve;
  r.fits = r.total_memory <= in.gpu.memory_bytes;

  // ---- communication ----
  Topology topo{in.gpus, in.gpus_per_node, in.intra, in.inter};
  const double grad_bytes = psi * in.grad_bytes;
  if (in.gpus > 1) {
    r.grad_sync_s = in.zero_stage == 2 ? hierarchical_reduce_scatter_seconds(grad_bytes, topo)
                                       : hierarchical_allreduce_seconds(grad_bytes, topo);
    if (in.zero_stage >= 1) r.param_gather_s = hierarchical_all_gather_seconds(psi * (bf16 ? 2 : 4), topo);
    const double emb = global_batch * m.embed_dim * 4.0;  // one gathered fp32 embedding matrix
    // forward all-gather, backward reduce-scatter of its gradient (src/dist/gather_with_grad.cpp)
    r.loss_gather_s = w.embeddings * (hierarchical_all_gather_seconds(emb, topo) + hierarchical_reduce_scatter_seconds(emb, topo));
    if (in.sync_batchnorm && sc.syncbn_layers > 0) {
      // one allreduce per BatchNorm in forward ([sum, sum of squares] per channel) and one in
      // backward (two per-channel sums); latency-bound, the channel counts are small
      const double avg_bytes = 2.0 * 4.0 * static_cast<double>(sc.syncbn_channels) / sc.syncbn_layers;
      r.syncbn_s = 2.0 * sc.syncbn_layers * hierarchical_allreduce_seconds(avg_bytes, topo);
    }
  }
  r.overlap = in.overlap >= 0 ? in.overlap : std::max(0.0, 1.0 - in.bucket_mb * 1048576.0 / std::max(1.0, grad_bytes));
  const double hidden_part = r.overlap * r.grad_sync_s;
  r.grad_exposed_s = (1 - r.overlap) * r.grad_sync_s + std::max(0.0, hidden_part - r.backward_s - r.recompute_s);
  const double shard = in.zero_stage == 0 ? psi : psi / n;
  r.optimizer_s = 28.0 * shard / in.gpu.memory_bw;
  r.comm_exposed_s = r.grad_exposed_s + r.param_gather_s + r.loss_gather_s + r.syncbn_s;
  r.step_s = r.compute_s + r.comm_exposed_s + r.optimizer_s;
  r.samples_per_s_per_gpu = b / r.step_s;
  r.samples_per_s = r.samples_per_s_per_gpu * n;
  r.achieved_mfu = r.model_flops * r.samples_per_s_per_gpu / (bf16 ? in.gpu.peak_bf16_flops : in.gpu.peak_fp32_flops);
  if (in.gpus > 1) {
    PlanInput one = in;
    one.gpus = 1;
    r.efficiency = r.samples_per_s_per_gpu / make_plan(one).samples_per_s_per_gpu;
  }

  // ---- checkpoints and the whole run ----
  r.checkpoint_bytes = checkpoint_bytes(psi_total, psi);
  r.checkpoint_write_s = r.checkpoint_bytes / in.fs_bandwidth;
  r.steps = std::ceil(in.pairs * in.epochs / global_batch);
  r.wall_s = r.steps * r.step_s;
  r.gpu_hours = r.wall_s / 3600.0 * n;
  return r;
}

double fit_mfu(PlanInput in, double target) {
  require(target > 0, "the target samples/s per GPU must be > 0");
  double lo = 1e-6, hi = 1.0;
  in.mfu = hi;
  require(make_plan(in).samples_per_s_per_gpu >= target,
          "no MFU <= 1 reaches " + std::to_string(target) + " samples/s per GPU with this configuration: check "
          "the GPU's peak FLOP/s and the batch");
  for (int i = 0; i < 100; ++i) {
    const double mid = std::sqrt(lo * hi);
    in.mfu = mid;
    (make_plan(in).samples_per_s_per_gpu < target ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace pc::plan
