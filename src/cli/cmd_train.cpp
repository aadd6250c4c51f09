// pyramidclip train: resolve options, start MPI, run the trainer.
#include <mpi.h>

#include <c10/util/Exception.h>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "options.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/run/resume_controller.h"
#include "pyramidclip/run/trainer.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/logging.h"

namespace pc::cli {
namespace {

void add_train_options(po::options_description& o) {
  add_model_options(o);
  TrainConfig d;
  o.add_options()
      ("resume", po::value<std::string>()->default_value(d.resume), "auto (newest valid checkpoint of the run, else fresh), latest, none, or a checkpoint directory")
      ("init", po::value<std::string>()->default_value(""), "start a new run from these weights (model.h5, e.g. from `ckpt import`); a checkpoint of the run takes precedence")
      ("max-restarts", po::value<int>()->default_value(d.max_restarts), "under Slurm: requeue a preempted job at most this many times (SLURM_RESTART_COUNT)")
      ("stop-after", po::value<int64_t>()->default_value(0), "stop with a checkpoint (exit 75) after N steps of this launch: fixed-size slots, tests (0: off)")
      ("deadline", po::value<std::string>()->default_value(""), "stop with a checkpoint before this time: unix seconds, +90m, +2h, or YYYY-MM-DDTHH:MM (default: the Slurm job's end time)")
      ("ckpt.every-steps", po::value<int64_t>()->default_value(d.ckpt_every_steps), "save a checkpoint every N steps (0: off)")
      ("ckpt.every-minutes", po::value<double>()->default_value(d.ckpt_every_minutes), "save a checkpoint every N minutes (0: off)")
      ("ckpt.keep-last", po::value<int>()->default_value(d.ckpt_keep_last), "keep the newest N checkpoints (>= 2)")
      ("ckpt.keep-every", po::value<int64_t>()->default_value(d.ckpt_keep_every), "also keep every checkpoint whose step is a multiple of N forever (0: none)")
      ("ckpt.async", po::value<bool>()->default_value(d.ckpt_async), "write checkpoints in the background while training goes on")
      ("data.train-shards", po::value<std::string>()->required(), "shards: brace pattern (dir/{00000..00019}.tar), list file or directory")
      ("data.vocab", po::value<std::string>()->required(), "BPE merges file (CLIP's bpe_simple_vocab_16e6.txt.gz or one `data synth` trained)")
      ("data.roi-count", po::value<int>()->default_value(d.roi_count), "ROI regions per sample (padded or cut, masked)")
      ("data.global-crop-min", po::value<double>()->default_value(d.global_crop_min), "global view: min crop area fraction")
      ("data.local-crop-min", po::value<double>()->default_value(d.local_crop_min), "local view: min crop area fraction")
      ("data.max-bad-fraction", po::value<double>()->default_value(d.max_bad_fraction), "stop when more samples than this are unreadable")
      ("data.streams", po::value<int>()->default_value(d.data_streams), "logical sample streams; fixed for a run, a multiple of every rank count it resumes on")
      ("data.shuffle-block", po::value<int>()->default_value(d.shuffle_block), "samples per shuffled block of a stream (memory per rank: streams/ranks blocks)")
      ("data.workers", po::value<int>()->default_value(d.data_workers), "decode/augment threads per rank (0: in the training thread)")
      ("data.log-keys", po::value<bool>()->default_value(d.log_keys), "append each step's sample keys to <run>/logs/keys-rank-N.txt (audit the data order)")
      ("data.prefetch", po::value<int>()->default_value(d.prefetch), "batches decoded ahead per rank")
      ("train.run", po::value<std::string>()->default_value(d.run_dir), "run directory (weights, metrics, logs, config)")
      ("train.global-batch", po::value<int>()->default_value(d.global_batch), "samples per step summed over ranks")
      ("train.epochs", po::value<double>()->default_value(d.epochs), "passes over the training set (fractions allowed)")
      ("train.lr", po::value<double>()->default_value(d.lr), "peak learning rate")
      ("train.warmup-samples", po::value<double>()->default_value(d.warmup_samples), "linear warmup length in samples, then cosine")
      ("train.weight-decay", po::value<double>()->default_value(d.weight_decay), "AdamW weight decay (not on norms, biases, logit scale)")
      ("train.beta1", po::value<double>()->default_value(d.beta1), "AdamW beta1")
      ("train.beta2", po::value<double>()->default_value(d.beta2), "AdamW beta2")
      ("train.eps", po::value<double>()->default_value(d.eps), "AdamW epsilon")
      ("train.seed", po::value<uint64_t>()->default_value(d.seed), "seed for weights, data order and augmentation")
      ("train.zero-stage", po::value<int>()->default_value(d.zero_stage), "0: replicated AdamW; 1: optimizer state sharded over ranks; 2: gradients too")
      ("train.bucket-mb", po::value<double>()->default_value(d.bucket_mb), "gradient bucket size in MB (reduced as soon as its gradients are final)")
      ("train.overlap", po::value<bool>()->default_value(d.overlap), "reduce gradient buckets during backward (false: after it)")
      ("train.micro-batches", po::value<int>()->default_value(d.micro_batches), "split each rank's batch into N gradient-cache pieces (same loss and gradients, less activation memory)")
      ("train.threads", po::value<int>()->default_value(d.threads), "intra-op threads per rank (0 = cores / ranks on the node)")
      ("train.fused-kernels", po::value<bool>()->default_value(d.fused_kernels), "fused CPU kernels for fp32 attention and QuickGELU (false: the ATen ops PyTorch runs)")
      ("train.precision", po::value<std::string>()->default_value(d.precision), "fp32, bf16 (autocast; fp32 master weights, norms and loss) or fp16 (CUDA only; dynamic loss scaling)")
      ("train.device", po::value<std::string>()->default_value(d.device), "cpu or cuda (one GPU per rank; needs a CUDA LibTorch and the NCCL backend)")
      ("train.comm", po::value<std::string>()->default_value(d.comm), "collective backend for model tensors: auto (NCCL on cuda, MPI on cpu), mpi or nccl")
      ("train.log-every", po::value<int>()->default_value(d.log_every), "progress line every N steps")
      ("train.profile-step", po::value<int64_t>()->default_value(d.profile_step), "record an operator trace from this step on to <run>/profile/rank-R.json (Chrome trace; bench/profile_summary.py tabulates it); 0: off")
      ("train.profile-steps", po::value<int64_t>()->default_value(d.profile_steps), "steps in the operator trace")
      ("loss.objective", po::value<std::string>()->default_value(d.loss.objective), "pyramid (six pairs) or clip (global view x caption, alpha 0)")
      ("loss.alpha", po::value<double>()->default_value(d.loss.alpha), "label softening of the InfoNCE targets")
      ("loss.lambda", po::value<double>()->default_value(d.loss.lambda), "weight of the cross-level global pairs")
      ("loss.mu", po::value<double>()->default_value(d.loss.mu), "weight of the cross-level local pairs");
}

TrainConfig train_config_from(const po::variables_map& vm) {
  TrainConfig c;
  c.model = model_config_from(vm);
  c.train_shards = get<std::string>(vm, "data.train-shards");
  c.vocab = get<std::string>(vm, "data.vocab");
  c.roi_count = get<int>(vm, "data.roi-count");
  c.global_crop_min = get<double>(vm, "data.global-crop-min");
  c.local_crop_min = get<double>(vm, "data.local-crop-min");
  c.max_bad_fraction = get<double>(vm, "data.max-bad-fraction");
  c.data_streams = get<int>(vm, "data.streams");
  c.shuffle_block = get<int>(vm, "data.shuffle-block");
  c.data_workers = get<int>(vm, "data.workers");
  c.prefetch = get<int>(vm, "data.prefetch");
  c.run_dir = get<std::string>(vm, "train.run");
  c.global_batch = get<int>(vm, "train.global-batch");
  c.epochs = get<double>(vm, "train.epochs");
  c.lr = get<double>(vm, "train.lr");
  c.warmup_samples = get<double>(vm, "train.warmup-samples");
  c.weight_decay = get<double>(vm, "train.weight-decay");
  c.beta1 = get<double>(vm, "train.beta1");
  c.beta2 = get<double>(vm, "train.beta2");
  c.eps = get<double>(vm, "train.eps");
  c.seed = get<uint64_t>(vm, "train.seed");
  c.threads = get<int>(vm, "train.threads");
  c.micro_batches = get<int>(vm, "train.micro-batches");
  c.zero_stage = get<int>(vm, "train.zero-stage");
  c.bucket_mb = get<double>(vm, "train.bucket-mb");
  c.overlap = get<bool>(vm, "train.overlap");
  c.log_every = get<int>(vm, "train.log-every");
  c.profile_step = get<int64_t>(vm, "train.profile-step");
  c.profile_steps = get<int64_t>(vm, "train.profile-steps");
  c.resume = get<std::string>(vm, "resume");
  c.init = get<std::string>(vm, "init");
  c.max_restarts = get<int>(vm, "max-restarts");
  c.deadline = get<std::string>(vm, "deadline");
  c.stop_after = get<int64_t>(vm, "stop-after");
  c.ckpt_every_steps = get<int64_t>(vm, "ckpt.every-steps");
  c.ckpt_every_minutes = get<double>(vm, "ckpt.every-minutes");
  c.ckpt_keep_last = get<int>(vm, "ckpt.keep-last");
  c.ckpt_keep_every = get<int64_t>(vm, "ckpt.keep-every");
  c.ckpt_async = get<bool>(vm, "ckpt.async");
  c.log_keys = get<bool>(vm, "data.log-keys");
  c.precision = get<std::string>(vm, "train.precision");
  c.fused_kernels = get<bool>(vm, "train.fused-kernels");
  c.device = get<std::string>(vm, "train.device");
  c.comm = get<std::string>(vm, "train.comm");
  c.loss.objective = get<std::string>(vm, "loss.objective");
  c.loss.alpha = get<double>(vm, "loss.alpha");
  c.loss.lambda = get<double>(vm, "loss.lambda");
  c.loss.mu = get<double>(vm, "loss.mu");

  require(c.loss.objective == "pyramid" || c.loss.objective == "clip",
          "loss.objective must be pyramid or clip, not '" + c.loss.objective + "'");
  require(c.loss.alpha >= 0 && c.loss.alpha < 1, "loss.alpha must be in [0, 1)");
  require(c.loss.lambda >= 0 && c.loss.mu >= 0 && c.loss.lambda + c.loss.mu <= 1,
          "loss.lambda and loss.mu must be >= 0 with lambda + mu <= 1");
  require(c.roi_count > 0, "data.roi-count must be positive");
  require(c.global_crop_min > 0 && c.global_crop_min <= 1 && c.local_crop_min > 0 && c.local_crop_min <= 1,
          "data.*-crop-min must be in (0, 1]");
  require(c.max_bad_fraction >= 0 && c.max_bad_fraction <= 1, "data.max-bad-fraction must be in [0, 1]");
  require(c.epochs > 0, "train.epochs must be positive");
  require(c.lr > 0, "train.lr must be positive");
  require(c.profile_step >= 0, "train.profile-step must be >= 0 (0: no operator trace)");
  require(c.profile_steps > 0, "train.profile-steps must be positive");
  require(c.warmup_samples >= 1, "train.warmup-samples must be >= 1");
  require(c.weight_decay >= 0, "train.weight-decay must be >= 0");
  require(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1, "train.beta1/beta2 must be in [0, 1)");
  require(c.eps > 0, "train.eps must be positive");
  require(c.threads >= 0, "train.threads must be >= 0");
  require(c.micro_batches >= 1, "train.micro-batches must be >= 1");
  require(c.zero_stage >= 0 && c.zero_stage <= 2, "train.zero-stage must be 0, 1 or 2 (stage 3 is not implemented)");
  require(c.bucket_mb > 0, "train.bucket-mb must be positive");
  require(c.log_every > 0, "train.log-every must be positive");
  require(c.precision == "fp32" || c.precision == "bf16" || c.precision == "fp16",
          "train.precision must be fp32, bf16 or fp16, not '" + c.precision + "'");
  require(c.device == "cpu" || c.device == "cuda", "train.device must be cpu or cuda, not '" + c.device + "'");
  require(c.comm == "auto" || c.comm == "mpi" || c.comm == "nccl",
          "train.comm must be auto, mpi or nccl, not '" + c.comm + "'");
  require(c.precision != "fp16" || c.device == "cuda",
          "train.precision fp16 needs train.device cuda (CPU autocast is bf16 only): use bf16 or fp32 on the CPU");
  require(c.ckpt_keep_last >= 2, "ckpt.keep-last must be >= 2 (a damaged newest checkpoint must leave one to resume from)");
  require(c.ckpt_every_steps >= 0 && c.ckpt_every_minutes >= 0 && c.ckpt_keep_every >= 0,
          "ckpt.every-steps, ckpt.every-minutes and ckpt.keep-every must be >= 0");
  require(c.stop_after >= 0, "--stop-after must be >= 0");
  require(c.max_restarts >= 0, "--max-restarts must be >= 0");
  if (!c.deadline.empty()) parse_deadline(c.deadline, 0);  // a bad format fails here, on every rank alike
  require(c.resume == "auto" || c.resume == "latest" || c.resume == "none" || std::filesystem::is_directory(c.resume),
          "--resume " + c.resume + ": not auto, latest, none or an existing checkpoint directory");
  require(c.init.empty() || std::filesystem::is_regular_file(c.init),
          "--init " + c.init + ": no such file: give a model.h5 (`pyramidclip ckpt import` converts PyTorch weights)");
  require(c.device == "cuda" || c.comm != "nccl", "train.comm nccl needs train.device cuda: use mpi or auto on the CPU");
  require(std::filesystem::exists(c.vocab), "vocabulary file " + c.vocab +
                                                " does not exist: run `pyramidclip data synth` or point data.vocab at "
                                                "CLIP's bpe_simple_vocab_16e6.txt.gz");
  c.config_text = resolved_config_text(vm);
  return c;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  po::options_description opts("Train options");
  add_train_options(opts);
  po::variables_map vm;
  if (!parse("train", "Trains PyramidCLIP data-parallel over MPI ranks (mpirun -np N pyramidclip train ...).", opts,
             argc, argv, vm))
    return 0;
  TrainConfig cfg = train_config_from(vm);  // identical on every rank: a bad value fails all alike

  MpiRuntime mpi(&argc, &argv);
  auto comm = make_mpi_comm();
  try {
    init_logging(comm->rank(), cfg.run_dir + "/logs");
    const TrainResult result = train(cfg, *comm);
    return result.finished ? 0 : kExitResumable;  // 75: stopped early with a checkpoint; run again to resume
  } catch (const SetupError& e) {
    if (comm->rank() == 0) std::fprintf(stderr, "pyramidclip: error: %s\n", e.what());
    return kExitUsage;
  } catch (const UserError& e) {
    // data or file problems can hit one rank alone: print it there and end every rank
    std::fprintf(stderr, "pyramidclip: error (rank %d): %s\n", comm->rank(), e.what());
    std::fflush(stderr);
    if (comm->size() > 1) MPI_Abort(MPI_COMM_WORLD, kExitUsage);
    return kExitUsage;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "pyramidclip: internal error (rank %d): %s\n", comm->rank(), e.what_without_backtrace());
    std::fflush(stderr);
    if (comm->size() > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}

}  // namespace pc::cli
