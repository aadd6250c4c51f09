#pragma once
// Everything `pyramidclip train` needs, resolved from configs/*.cfg plus command-line overrides.
#include <string>

#include "pyramidclip/loss/pyramid_loss.h"
#include "pyramidclip/model/model_config.h"

namespace pc {

struct TrainConfig {
  ModelConfig model;
  LossConfig loss;
  // data
  std::string train_shards;     // brace pattern, list file or directory
  std::string vocab;            // BPE merges file (gz); the demo trains one during `data synth`
  int roi_count = 10;           // ROI regions per sample (padded / cut, with a mask)
  double global_crop_min = 0.9, global_crop_max = 1.0;
  double local_crop_min = 0.5, local_crop_max = 1.0;
  double max_bad_fraction = 0.01;
  int data_streams = 64;        // logical sample streams (a multiple of every rank count used)
  int shuffle_block = 128;      // samples per shuffled block of a stream
  int data_workers = 2;         // decode threads per rank
  int prefetch = 2;             // batches decoded ahead
  bool log_keys = false;        // append "step key..." per batch to <run>/logs/keys-rank-R.txt
  // optimisation (open_clip / PyramidCLIP recipe)
  int global_batch = 128;       // summed over ranks; must divide by the number of ranks
  double epochs = 1.0;
  double lr = 5e-4;
  double warmup_samples = 2000;  // linear warmup, then cosine to zero; keyed to samples seen
  double weight_decay = 0.1;     // not on norms, biases, logit_scale (open_clip's rule)
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-8;
  uint64_t seed = 0;
  int zero_stage = 1;           // 0 replicated AdamW, 1 sharded optimizer state, 2 + sharded gradients
  double bucket_mb = 25;        // gradient bucket size
  bool overlap = true;          // reduce buckets during backward
  int micro_batches = 1;        // gradient-cache pieces per rank batch (1: one forward/backward)
  int threads = 0;              // intra-op threads per rank; 0 = cores / local ranks
  std::string precision = "fp32";  // fp32 | bf16 (autocast, fp32 master weights) | fp16 (CUDA, loss scaling)
  std::string device = "cpu";      // cpu | cuda (one GPU per rank: local rank mod visible GPUs)
  std::string comm = "auto";       // collectives on the device: auto | mpi | nccl (cuda needs nccl)
  bool fused_kernels = true;       // fused CPU fp32 attention and QuickGELU kernels (false: the ATen ops, as PyTorch)
  // checkpoints and resume (issue #5)
  std::string resume = "auto";  // auto | latest | none | a checkpoint directory
  std::string init;             // model.h5 whose weights a new run starts from (not optimizer state); "" = seeded init
  int max_restarts = 100;
  int64_t stop_after = 0;       // stop with a checkpoint after this many steps of this launch (0: never)
  std::string deadline;         // --deadline (empty: Slurm's end time when under Slurm)
  int64_t ckpt_every_steps = 0;
  double ckpt_every_minutes = 30;
  int ckpt_keep_last = 3;
  int64_t ckpt_keep_every = 0;
  bool ckpt_async = true;
  // output
  std::string run_dir = "checkpoints/run";
  int log_every = 10;
  int64_t profile_step = 0;     // first step of an operator trace to <run>/profile/ (0: none)
  int64_t profile_steps = 1;    // steps in that trace
  std::string config_text;      // resolved config, saved with the run
};

}  // namespace pc
