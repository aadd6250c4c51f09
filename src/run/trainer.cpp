// The data-parallel training loop (DESIGN §2). One step: next batch -> agree on which inputs
// every rank has -> forward (autocast) -> six-pair loss (global negatives, fp32) -> backward with
// bucketed gradient sync -> (fp16: unscale, skip on overflow) -> ZeRO AdamW with the sample-keyed
// LR -> metrics.
#include "pyramidclip/run/trainer.h"

#include <sched.h>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "pyramidclip/data/train_loader.h"
#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/grad_sync.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/dist/grad_buckets.h"
#include "pyramidclip/model/batch_norm.h"
#include "pyramidclip/model/layers.h"
#include "pyramidclip/model/mixed_precision.h"
#include "pyramidclip/optim/zero_adamw.h"
#include "pyramidclip/run/checkpointer.h"
#include "pyramidclip/run/grad_cache.h"
#include "pyramidclip/run/resume_controller.h"
#include "pyramidclip/run/train_checkpoint.h"
#include "pyramidclip/run/lr_schedule.h"
#include "pyramidclip/run/metrics.h"
#include "pyramidclip/run/param_groups.h"
#include "pyramidclip/run/step_profiler.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The cores this process may run on: mpirun binds each rank to one core by default, and more
// threads than that would take turns on it.
int allowed_cores() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) return std::max(1, CPU_COUNT(&allowed));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int default_threads(int world) {
  // ranks on this node share its cores; Open MPI and Slurm tell how many share them
  int local = world;
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(var)) {
      local = std::max(1, std::atoi(v));
      break;
    }
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, std::min(allowed_cores(), cores / local));
}

// Every rank must form the same pairs (the gathers are collective): a modality is used only when
// all ranks have it in this step's batch.
void agree_on_inputs(Batch& b, Comm& comm, const LossConfig& loss) {
  if (loss.objective == "clip") {  // one view, original text
    b.local_images = b.roi = b.roi_mask = b.summary = b.tags = at::Tensor();
    return;
  }
  at::Tensor have = torch::tensor({b.local_images.defined() ? 1 : 0, b.roi.defined() ? 1 : 0,
                                   b.summary.defined() ? 1 : 0, b.tags.defined() ? 1 : 0},
                                  torch::kInt);
  at::Tensor missing = 1 - have;
  comm.allreduce_max(missing);
  if (missing[0].item<int>()) b.local_images = at::Tensor();
  if (missing[1].item<int>()) b.roi = b.roi_mask = at::Tensor();
  if (missing[2].item<int>()) b.summary = at::Tensor();
  if (missing[3].item<int>()) b.tags = at::Tensor();
}

// SyncBN's reductions through the job's Comm (the model module does not know dist).
class CommBnSync final : public BnSync {
 public:
  explicit CommBnSync(Comm& comm) : comm_(comm) {}
  void allreduce_sum(at::Tensor& t) override { comm_.allreduce_sum(t); }
  int world_size() const override { return comm_.size(); }

 private:
  Comm& comm_;
};

// The device comm carries model tensors (gradients, embeddings, SyncBN, parameters); the host
// comm (MPI) the small CPU-side agreements. On the CPU they are the same object.
void check_device_setup(const TrainConfig& cfg) {
  if (cfg.device == "cpu") return;
  if (!torch::cuda::is_available())
    throw UserError("train.device cuda: no CUDA device is visible to this LibTorch (a CPU-only build, or no GPU "
                    "allocated): use train.device cpu or build against a CUDA LibTorch (README, GPU build)");
  if (cfg.comm == "mpi")
    throw UserError("train.comm mpi cannot reduce CUDA tensors: use train.comm nccl (or auto) with train.device cuda");
  if (!nccl_available())
    throw UserError("train.device cuda needs the NCCL backend, which this build lacks (nccl.h/libnccl not found at "
                    "configure time): see README, GPU build");
}

Batch to_device(Batch b, const torch::Device& device) {
  if (device.is_cpu()) return b;
  for (at::Tensor* t : {&b.global_images, &b.local_images, &b.roi, &b.roi_mask, &b.text, &b.summary, &b.tags})
    if (t->defined()) *t = t->to(device, /*non_blocking=*/true);
  return b;
}

std::string pairs_text(const std::map<std::string, double>& pairs) {
  std::string s;
  for (const auto& [name, v] : pairs) s += (s.empty() ? "" : " ") + name;
  return s;
}

}  // namespace

TrainResult train(const TrainConfig& cfg, Comm& comm) {
  const int rank = comm.rank(), world = comm.size();
  const at::ScalarType precision = parse_precision(cfg.precision);
  require(cfg.global_batch > 0 && cfg.global_batch % world == 0,
          "train.global-batch (" + std::to_string(cfg.global_batch) + ") must be a positive multiple of the " +
              std::to_string(world) + " ranks");
  const int local_batch = cfg.global_batch / world;
  require(local_batch % cfg.micro_batches == 0,
          "train.micro-batches (" + std::to_string(cfg.micro_batches) + ") must divide the per-rank batch of " +
              std::to_string(local_batch) + " (train.global-batch / " + std::to_string(world) + " ranks)");
  const int threads = cfg.threads > 0 ? cfg.threads : default_threads(world);
  torch::set_num_threads(threads);
  set_fused_kernels(cfg.fused_kernels);
  if (threads > allowed_cores())
    spdlog::warn("train.threads {} but this rank may run on {} core(s): its threads will take turns; launch with "
                 "`mpirun --map-by slot:PE={}` (or --bind-to none) or `srun --cpus-per-task={}`",
                 threads, allowed_cores(), threads, threads);
  std::filesystem::create_directories(cfg.run_dir);

  // Setup (vocabulary, shards) fails alike on every rank most of the time: agree on the outcome so
  // that all ranks stop with one message instead of an MPI_Abort.
  std::unique_ptr<Tokenizer> tokenizer_ptr;
  std::unique_ptr<TrainLoader> loader_ptr;
  int64_t dataset_size = 0;
  std::string setup_error;
  try {
    check_device_setup(cfg);
    tokenizer_ptr = std::make_unique<Tokenizer>(Tokenizer::from_file(cfg.vocab));
    const Tokenizer* tokenizer = tokenizer_ptr.get();
    require(tokenizer->vocab_size() <= cfg.model.vocab_size,
            "vocabulary " + cfg.vocab + " has " + std::to_string(tokenizer->vocab_size()) +
                " tokens but model.vocab-size is " + std::to_string(cfg.model.vocab_size) +
                ": raise model.vocab-size or use a smaller vocabulary");
    const int context = cfg.model.context_length;
    auto tokenize = [tokenizer, context](const std::string& s) { return tokenizer->tokenize(s, context); };
    TrainLoaderOptions lo;
    lo.shards = cfg.train_shards;
    lo.image_size = cfg.model.image_size;
    lo.batch_size = local_batch;
    lo.rank = rank;
    lo.world_size = world;
    lo.seed = cfg.seed;
    lo.roi_count = cfg.roi_count;
    lo.global_crop = {cfg.global_crop_min, cfg.global_crop_max};
    lo.local_crop = {cfg.local_crop_min, cfg.local_crop_max};
    lo.max_bad_fraction = cfg.max_bad_fraction;
    lo.streams = cfg.data_streams;
    lo.shuffle_block = cfg.shuffle_block;
    lo.workers = cfg.data_workers;
    lo.prefetch = cfg.prefetch;
    loader_ptr = std::make_unique<TrainLoader>(lo, tokenize);
    dataset_size = loader_ptr->epoch_samples();  // streams x floor(samples / streams): the loader's epoch
    require(dataset_size >= cfg.global_batch, "the dataset " + cfg.train_shards + " has " +
                                                  std::to_string(dataset_size) +
                                                  " samples, fewer than train.global-batch");
  } catch (const UserError& e) {
    setup_error = e.what();
  }
  raise_if_any_rank_failed(comm, setup_error, "another rank failed to set up (see its log)");
  TrainLoader& loader = *loader_ptr;
  std::unique_ptr<Comm> device_comm_ptr = cfg.device == "cuda" ? make_comm("nccl") : nullptr;
  Comm& dcomm = device_comm_ptr ? *device_comm_ptr : comm;
  const torch::Device device = device_comm_ptr ? torch::Device(torch::kCUDA, static_cast<int8_t>(dcomm.device()))
                                               : torch::Device(torch::kCPU);
  // LR schedule keyed to samples seen; a resumed run keeps the one it started with
  double total_samples = cfg.epochs * static_cast<double>(dataset_size);
  double lr_peak = cfg.lr, warmup_samples = cfg.warmup_samples;

  // Same seed on every rank gives the same initial weights; the broadcast makes it a guarantee.
  torch::manual_seed(cfg.seed);
  PyramidClip model(cfg.model);
  // A resumable checkpoint of the run takes precedence over --init: a requeued or restarted run
  // continues; --init only starts new runs. Every rank reads the same file.
  const ResumePoint resume_point = choose_checkpoint(cfg, comm);
  if (!cfg.init.empty() && resume_point.dir.empty()) {
    const ModelH5Info init = load_model_h5(*model, cfg.init);
    if (rank == 0) spdlog::info("init: new run from the weights of {} (arch {}, step {})", cfg.init, init.arch, init.step);
  } else if (!cfg.init.empty() && rank == 0) {
    spdlog::info("init: {} not used: resuming from the run's checkpoint {}", cfg.init, resume_point.dir);
  }
  model->to(device);
  model->train();
  std::vector<at::Tensor> all_tensors;
  for (auto& p : model->parameters()) all_tensors.push_back(p);
  for (auto& b : model->buffers()) all_tensors.push_back(b);
  broadcast_parameters(all_tensors, dcomm);
  torch::manual_seed(cfg.seed + 1000003ULL * (rank + 1));  // per-rank stream for augmentation/dropout
  if (world > 1 && cfg.model.sync_batchnorm && model->has_batchnorm())
    model->set_batchnorm_sync(std::make_shared<CommBnSync>(dcomm));

  at::Tensor logit_scale = model->named_parameters(/*recurse=*/false)["logit_scale"];
  // The flat parameter vector (named_parameters order of the trainable ones): ZeRO shards it,
  // GradBuckets lays the gradients out the same way and fills buckets in its reverse order.
  const TrainableParams flat = trainable_params(*model);
  const std::vector<at::Tensor>& trainable = flat.tensors;
  ZeroAdamWOptions zo;
  zo.beta1 = cfg.beta1;
  zo.beta2 = cfg.beta2;
  zo.eps = cfg.eps;
  zo.weight_decay = cfg.weight_decay;
  zo.stage = cfg.zero_stage;
  ZeroAdamW optimizer(make_flat_layout(flat.names, trainable, flat.decay, world), trainable, dcomm, zo);
  GradBucketsOptions bo;
  bo.bucket_bytes = static_cast<int64_t>(cfg.bucket_mb * (1 << 20));
  bo.overlap = cfg.overlap;
  bo.reduce_scatter = cfg.zero_stage == 2;
  GradBuckets buckets(trainable, dcomm, bo);
  GradScalerOptions so;
  so.enabled = precision == at::kHalf;  // bf16 has fp32's range: no scaling needed
  GradScaler scaler(so);

  // Resume: weights, optimizer slices (any world size), data position, LR schedule, scaler.
  int64_t start_step = 0, skipped_steps = 0, restarts = 0;
  double samples_seen = 0;
  if (!resume_point.dir.empty()) {
    TrainState st = load_checkpoint(resume_point, model, optimizer, dcomm, cfg.seed);
    require(st.global_batch == cfg.global_batch,
            resume_point.dir + " was trained with train.global-batch " + std::to_string(st.global_batch) +
                ": resume with --train.global-batch " + std::to_string(st.global_batch) +
                " (the per-rank batch adapts to the rank count) or start a new run");
    loader.restore(LoaderState::decode(st.loader_state));
    if (st.lr_peak != lr_peak || st.lr_warmup_samples != warmup_samples || st.lr_total_samples != total_samples)
      if (rank == 0)
        spdlog::warn("resume: keeping the run's LR schedule (peak {}, warmup {}, {} samples); this configuration "
                     "asks for ({}, {}, {})", st.lr_peak, st.lr_warmup_samples, st.lr_total_samples, lr_peak,
                     warmup_samples, total_samples);
    lr_peak = st.lr_peak;
    warmup_samples = st.lr_warmup_samples;
    total_samples = st.lr_total_samples;
    if (scaler.enabled()) scaler.load(st.loss_scale, st.loss_scale_tracker);
    start_step = st.step;
    samples_seen = st.samples_seen;
    skipped_steps = st.skipped_steps;
    restarts = st.restarts + 1;
    if (rank == 0)
      spdlog::info("resume: {} (step {}, {} samples seen, written by {} rank(s), now {})", resume_point.dir,
                   start_step, samples_seen, resume_point.world_size, world);
  }
  const int64_t total_steps = std::max<int64_t>(1, static_cast<int64_t>(total_samples / cfg.global_batch));

  CheckpointOptions co;
  co.root = cfg.run_dir + "/checkpoints";
  co.keep_last = cfg.ckpt_keep_last;
  co.keep_every = cfg.ckpt_keep_every;
  co.async = cfg.ckpt_async;
  Checkpointer checkpointer(co, comm);
  ResumeControllerOptions rco;
  rco.run_dir = cfg.run_dir;
  rco.every_steps = cfg.ckpt_every_steps;
  rco.every_minutes = cfg.ckpt_every_minutes;
  rco.deadline = cfg.deadline.empty() ? 0 : parse_deadline(cfg.deadline, std::chrono::duration<double>(
                                                                             std::chrono::system_clock::now().time_since_epoch()).count());
  ResumeController controller(rco);
  auto snapshot = [&](int64_t step) {
    CheckpointSnapshot snap = take_snapshot(step, samples_seen, model, optimizer, dcomm, cfg.model.name);
    // the loader's position: every rank holds its streams' cursors
    const std::vector<int64_t> mine = loader.state().encode();
    at::Tensor all = comm.all_gather(torch::tensor(mine, torch::kLong));
    std::vector<LoaderState> parts;
    for (int r = 0; r < world; ++r) {
      at::Tensor row = all.narrow(0, r * static_cast<int64_t>(mine.size()), static_cast<int64_t>(mine.size()));
      parts.push_back(LoaderState::decode(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel())));
    }
    TrainState& st = snap.state;
    st.step = step;
    st.samples_seen = samples_seen;
    st.epoch = samples_seen / dataset_size;
    st.world_size = world;
    st.global_batch = cfg.global_batch;
    st.seed = static_cast<int64_t>(cfg.seed);
    st.lr_peak = lr_peak;
    st.lr_warmup_samples = warmup_samples;
    st.lr_total_samples = total_samples;
    st.loss_scale = scaler.scale();
    st.loss_scale_tracker = scaler.growth_tracker();
    st.skipped_steps = skipped_steps;
    st.restarts = restarts;
    st.config = cfg.config_text;
    st.version = PYRAMIDCLIP_VERSION;
    st.arch = cfg.model.name;
    st.loader_state = LoaderState::merge(parts).encode();
    return snap;
  };

  if (rank == 0) {
    std::ofstream(cfg.run_dir + "/config.cfg") << cfg.config_text;
    spdlog::info("train: {} parameters ({} trainable tensors), {} ranks x {} samples, {} threads/rank, {} steps "
                 "over {:.2f} epochs of {} samples",
                 count_parameters(*model), trainable.size(), world, local_batch, threads, total_steps, cfg.epochs,
                 dataset_size);
    spdlog::info("train: {} on {} ({} collectives), precision {}", world > 1 ? "data parallel" : "one rank",
                 device.str(), dcomm.backend(), cfg.precision);
    spdlog::info("train: ZeRO stage {}: optimizer state {:.1f} MB per rank; {} gradient buckets of <= {} MB{}",
                 cfg.zero_stage, optimizer.state_bytes() / 1e6, buckets.num_buckets(), cfg.bucket_mb,
                 cfg.overlap ? ", overlapped with backward" : "");
  }
  std::unique_ptr<MetricsWriter> metrics;
  if (rank == 0) metrics = std::make_unique<MetricsWriter>(cfg.run_dir + "/metrics.jsonl");

  const auto start = Clock::now();
  double window_samples = 0, window_time = 0, window_wait = 0, mean_step_time = 0, save_estimate = 0;
  std::string last_pairs;
  double last_stall = 0;
  TrainResult result;
  result.step = start_step;
  std::unique_ptr<std::ofstream> keys_log;
  if (cfg.log_keys)
    keys_log = std::make_unique<std::ofstream>(cfg.run_dir + "/logs/keys-rank-" + std::to_string(rank) + ".txt",
                                               std::ios::app);
  StepProfiler profiler(cfg.profile_step, cfg.profile_steps,
                        cfg.run_dir + "/profile/rank-" + std::to_string(rank) + ".json");
  for (int64_t step = start_step + 1; step <= total_steps; ++step) {
    profiler.step_begins(step);
    const auto t0 = Clock::now();
    Batch batch = [&] {
      RECORD_USER_SCOPE("pc::data");
      return loader.next();
    }();
    const double data_wait = seconds_since(t0);
    if (keys_log) {
      *keys_log << step;
      for (const auto& k : batch.keys) *keys_log << ' ' << k;
      *keys_log << '\n' << std::flush;
    }
    agree_on_inputs(batch, comm, cfg.loss);
    batch = to_device(std::move(batch), device);

    const double lr = lr_at(samples_seen, lr_peak, warmup_samples, total_samples);

    buckets.zero_grad();
    PassTimes passes;
    const double loss_scale = scaler.scale();
    LossOutput loss = grad_cache_step(model, batch, cfg.micro_batches, cfg.loss, &dcomm, &passes, &buckets,
                                      {precision, loss_scale});
    buckets.finalize();
    const double comm_time = buckets.last_stats().exposed_s;
    const auto t_opt = Clock::now();
    double ckpt_wait = 0;
    bool take_step = true;
    if (scaler.enabled()) {
      // ZeRO-2 ranks hold different slices: the overflow verdict must be the job's, not the rank's
      at::Tensor found_inf = scaler.unscale_({buckets.reduce_scatter() ? buckets.shard_grad() : buckets.flat_grad()});
      dcomm.allreduce_max(found_inf);
      take_step = scaler.update(found_inf.item<float>() > 0);
      if (!take_step) ++skipped_steps;
    }
    if (take_step) {
      RECORD_USER_SCOPE("pc::optimizer");
      ckpt_wait += checkpointer.fence();  // a background save may still read the weights
      optimizer.step(lr, buckets);
      {
        // CLIP clamps the learnable temperature so logits never exceed 100 (on every rank alike)
        torch::NoGradGuard no_grad;
        logit_scale.clamp_(0, std::log(100.0));
      }
      optimizer.reload_master_from_params();
    }
    const double optimizer_time = seconds_since(t_opt) - ckpt_wait;
    samples_seen += cfg.global_batch;

    // Report global means (each rank holds its local rows' share); pairs are the same on all ranks.
    std::vector<double> values = {loss.total.item<double>(), data_wait};
    for (const auto& [name, v] : loss.pairs) values.push_back(v);
    values.push_back(static_cast<double>(loader.stats().bad()));  // summed below, not averaged
    at::Tensor stats = torch::tensor(values, torch::kDouble);
    comm.allreduce_sum(stats);
    stats /= world;
    const double mean_loss = stats[0].item<double>();
    const double step_time = seconds_since(t0);
    window_samples += cfg.global_batch;
    window_time += step_time;
    window_wait += stats[1].item<double>();

    if (rank == 0) {
      const double logit_scale_now = std::min(100.0, std::exp(logit_scale.item<double>()));
      const double sps = cfg.global_batch / step_time;
      nlohmann::json rec = {{"step", step},
                            {"samples_seen", samples_seen},
                            {"epoch", samples_seen / dataset_size},
                            {"loss", mean_loss},
                            {"lr", lr},
                            {"logit_scale", logit_scale_now},
                            {"samples_per_second", sps},
                            {"samples_per_second_per_gpu", sps / world},
                            {"data_wait_s", data_wait},
                            {"forward_s", passes.forward},
                            {"backward_s", passes.backward},
                            {"comm_exposed_s", comm_time},
                            {"optimizer_s", optimizer_time},
                            {"checkpoint_stall_s", last_stall + ckpt_wait},
                            {"data_bad_samples", std::llround(stats[stats.size(0) - 1].item<double>() * world)},
                            {"step_time_s", step_time}};
      if (scaler.enabled()) {
        rec["loss_scale"] = loss_scale;
        rec["skipped_steps"] = skipped_steps;  // overflowed fp16 steps so far (no update; LR schedule goes on)
      }
      int64_t i = 2;
      for (const auto& item : loss.pairs) rec["loss_" + item.first] = stats[i++].item<double>();
      metrics->write(rec);
      std::string pairs = pairs_text(loss.pairs);
      if (pairs != last_pairs) {
        spdlog::info("training pairs: {}", pairs);
        last_pairs = pairs;
      }
      if (step % cfg.log_every == 0 || step == total_steps || step == 1) {
        const double rate = window_samples / window_time;
        const double eta = (total_steps - step) * cfg.global_batch / rate;
        spdlog::info("step {:>6}/{} | loss {:.4f} | lr {:.2e} | scale {:.2f} | {:.1f} samples/s ({:.1f}/rank) | "
                     "data wait {:.0f}% | ETA {:.0f}s",
                     step, total_steps, mean_loss, lr, logit_scale_now, rate, rate / world,
                     100.0 * window_wait / window_time, eta);
        window_samples = window_time = window_wait = 0;
      }
    }
    result.step = step;
    mean_step_time = mean_step_time == 0 ? step_time : 0.9 * mean_step_time + 0.1 * step_time;

    profiler.step_ends(step);
    // Step boundary: finish a background save, then agree on saving / stopping (MAX over ranks).
    const auto t_ckpt = Clock::now();
    checkpointer.poll();
    Decision d = controller.decide(step, mean_step_time, save_estimate);
    if (cfg.stop_after > 0 && step - start_step >= cfg.stop_after && d.stop == StopReason::kNone) {
      d.stop = StopReason::kStopAfter;
      d.save = true;
    }
    at::Tensor dv = torch::tensor({d.save ? 1 : 0, static_cast<int>(d.stop)}, torch::kInt);
    comm.allreduce_max(dv);
    d.save = dv[0].item<int>() != 0 || step == total_steps;
    d.stop = static_cast<StopReason>(dv[1].item<int>());
    if (d.save) {
      checkpointer.save(snapshot(step));
      controller.note_saved();
      if (rank == 0) controller.clear_switches();
    }
    if (d.stop != StopReason::kNone || step == total_steps) checkpointer.poll(/*wait=*/true);
    last_stall = seconds_since(t_ckpt);
    if (checkpointer.last_write_seconds() > 0) save_estimate = std::max(save_estimate, checkpointer.last_write_seconds());
    if (d.stop != StopReason::kNone && step < total_steps) {
      result.stop_reason = to_string(d.stop);
      if (rank == 0)
        spdlog::info("train: stopping at step {} ({}); checkpoint saved, resume with the same command", step,
                     result.stop_reason);
      // every rank's files are published; requeue last (Slurm then signals the whole job)
      comm.barrier();
      // USR1 (time limit ahead, or asked) and the deadline mean "continue later": requeue. TERM/INT
      // mean cancel, or a preemption that Slurm requeues by itself.
      if ((d.stop == StopReason::kRequeueSignal || d.stop == StopReason::kDeadline) && rank == 0)
        requeue_slurm_job(cfg.max_restarts);
      return result;
    }
  }
  checkpointer.poll(/*wait=*/true);
  result.finished = true;
  if (rank == 0) {
    save_model_h5(*model, cfg.run_dir + "/model.h5", total_steps, cfg.model.name);
    spdlog::info("train: done, {} steps ({} in this launch) in {:.1f}s; weights in {}/model.h5", total_steps,
                 total_steps - start_step, seconds_since(start), cfg.run_dir);
  }
  comm.barrier();
  return result;
}

}  // namespace pc
