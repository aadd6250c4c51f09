#pragma once
// The capacity planner: memory per GPU, step time, scaling efficiency, checkpoint cost and the
// wall time of a whole run for data-parallel PyramidCLIP / CLIP training (`pyramidclip plan`).
//
// Step model (one GPU's view; data loading assumed hidden behind compute):
//   compute  = (3 x forward + recompute + loss) FLOPs x batch / (peak x mfu)
//   grads    = allreduce (ZeRO 0/1) or reduce-scatter (ZeRO 2) of Ψ x grad_bytes, hierarchical;
//              a fraction `overlap` runs under backward (the trainer reduces ~25 MB buckets as
//              backward finishes them; only the last bucket, the first layers' gradients, cannot
//              overlap: default overlap = 1 - bucket / gradient bytes)
//   params   = all-gather of the updated weights after the optimizer (ZeRO 1/2), exposed
//   loss     = all-gather of each embedding (forward) and a reduce-scatter of its gradient (backward)
//   syncbn   = two small allreduces per BatchNorm per forward and backward (official ViT's LeFF, RN50)
//   optimizer= 28 bytes of memory traffic per parameter of this GPU's slice / memory bandwidth
// "mfu" is the fraction of peak the executed FLOPs run at (for runs without checkpointing it is
// the model FLOP utilization); kDefaultMfu is fitted to the published OpenCLIP A100 throughputs.
#include <cstdint>
#include <string>

#include "pyramidclip/model/model_config.h"
#include "pyramidclip/plan/collectives.h"
#include "pyramidclip/plan/hardware.h"
#include "pyramidclip/plan/memory.h"
#include "pyramidclip/plan/model_cost.h"

namespace pc::plan {

// MFU that reproduces OpenCLIP's published A100 throughputs of the standard CLIP ViTs (batch 256
// per GPU, AMP bf16): ViT-B/32 780 samples/s -> 0.111, ViT-B/16 335 -> 0.132 (model FLOPs =
// 3 x forward). One value explains both to about +-9 %: bench/RESULTS.md, "Capacity planner".
constexpr double kDefaultMfu = 0.12;

struct PlanInput {
  ModelConfig model;
  StepWorkload workload;
  GpuSpec gpu;
  LinkSpec intra, inter;
  int gpus = 1;
  int gpus_per_node = 8;
  int batch_per_gpu = 256;
  int zero_stage = 1;
  bool act_ckpt = false;
  std::string precision = "bf16";  // bf16 (mixed precision) | fp32
  double mfu = kDefaultMfu;
  double overlap = -1;             // fraction of the gradient sync that can hide under backward; < 0: from bucket_mb
  double bucket_mb = 25;
  double grad_bytes = 4;           // bytes per gradient element on the wire (fp32: the trainer, torch AMP)
  bool sync_batchnorm = true;
  double reserve_bytes = 2e9;      // CUDA context, NCCL/cuBLAS workspaces, allocator slack
  double fs_bandwidth = 2e9;       // aggregate file-system write bandwidth, bytes/s
  double pairs = 143e6;            // dataset size (image-text pairs)
  double epochs = 32;
};

struct PlanResult {
  ParamCount params;
  // FLOPs per sample
  double forward_flops = 0;   // model forward (towers) + loss
  double executed_flops = 0;  // forward + backward (2x) + recompute
  double model_flops = 0;     // 3 x forward: what MFU counts
  // memory per GPU, bytes
  StateBytes state;
  double activations = 0, logits = 0, reserve = 0, total_memory = 0;
  double trainer_state = 0;  // this trainer's model state as implemented (memory.h), for comparison
  bool fits = true;
  // time per step, seconds
  double forward_s = 0, backward_s = 0, recompute_s = 0, compute_s = 0;
  double grad_sync_s = 0, grad_exposed_s = 0, param_gather_s = 0, loss_gather_s = 0, syncbn_s = 0, optimizer_s = 0;
  double overlap = 0;
  double comm_exposed_s = 0, step_s = 0;
  double samples_per_s_per_gpu = 0, samples_per_s = 0;
  double efficiency = 1;  // samples/s/GPU relative to the same plan on one GPU
  double achieved_mfu = 0;
  // checkpoints and the whole run
  double checkpoint_bytes = 0, checkpoint_write_s = 0;
  double steps = 0, wall_s = 0, gpu_hours = 0;
};

// Throws UserError on inconsistent input (gpus < 1, batch < 1, mfu outside (0, 1], ...).
PlanResult make_plan(const PlanInput& in);

// The MFU at which make_plan(in) reaches `samples_per_s_per_gpu` (bisection; throws UserError
// when no MFU in (0, 1] does).
double fit_mfu(PlanInput in, double samples_per_s_per_gpu);

}  // namespace pc::plan
