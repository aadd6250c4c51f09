// pyramidclip plan: the capacity planner (src/plan, planner.h). No model is built: sizes, FLOPs,
// memory and times come from the analytic model, one table row per GPU count.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "options.h"
#include "pyramidclip/plan/planner.h"
#include "pyramidclip/util/errors.h"

namespace pc::cli {
namespace {

std::vector<int> parse_gpu_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    require(used == item.size() && v >= 1,
            "--gpus: '" + item + "' is not a GPU count: give a positive integer or a list such as 64,256,512");
    out.push_back(v);
  }
  require(!out.empty(), "--gpus is empty: give a count or a list such as 64,256,512");
  return out;
}

nlohmann::json row_json(const plan::PlanResult& r, int gpus, int batch) {
  return {{"gpus", gpus},
          {"global_batch", static_cast<double>(gpus) * batch},
          {"memory_gb",
           {{"weights", r.state.weights / 1e9},
            {"gradients", r.state.gradients / 1e9},
            {"optimizer", r.state.optimizer / 1e9},
            {"activations", r.activations / 1e9},
            {"logits", r.logits / 1e9},
            {"reserve", r.reserve / 1e9},
            {"total", r.total_memory / 1e9},
            {"trainer_state_as_implemented", r.trainer_state / 1e9},
            {"fits", r.fits}}},
          {"time_s",
           {{"forward", r.forward_s},
            {"backward", r.backward_s},
            {"recompute", r.recompute_s},
            {"compute", r.compute_s},
            {"grad_sync", r.grad_sync_s},
            {"grad_sync_exposed", r.grad_exposed_s},
            {"overlap", r.overlap},
            {"param_gather", r.param_gather_s},
            {"loss_gather", r.loss_gather_s},
            {"syncbn", r.syncbn_s},
            {"optimizer", r.optimizer_s},
            {"comm_exposed", r.comm_exposed_s},
            {"step", r.step_s}}},
          {"samples_per_s_per_gpu", r.samples_per_s_per_gpu},
          {"samples_per_s", r.samples_per_s},
          {"efficiency", r.efficiency},
          {"achieved_mfu", r.achieved_mfu},
          {"checkpoint_gb", r.checkpoint_bytes / 1e9},
          {"checkpoint_write_s", r.checkpoint_write_s},
          {"steps", r.steps},
          {"wall_hours", r.wall_s / 3600},
          {"gpu_hours", r.gpu_hours}};
}

}  // namespace

int cmd_plan(int argc, char** argv) {
  po::options_description opts("Plan options");
  // clang-format off
  opts.add_options()
      ("model", po::value<std::string>()->default_value("vit-b32"), "rn50 | vit-b32 | vit-b16 | tiny")
      ("variant", po::value<std::string>()->default_value("official"),
       "official (PyramidCLIP: 2 views, 3 texts, ROIs, 6 pairs) | standard (CLIP: 1 view, 1 text)")
      ("roi-count", po::value<int>()->default_value(10), "ROI regions per sample (official variant)")
      ("text-len", po::value<int>()->default_value(77), "tokens per text through the text tower")
      ("gpus", po::value<std::string>()->default_value("64,256,512"), "GPU count, or a list (one row each)")
      ("gpu", po::value<std::string>()->default_value("a100-80gb"), "a100-40gb | a100-80gb | h100-80gb | h200")
      ("peak-tflops", po::value<double>(), "override the GPU's peak TFLOP/s for --precision")
      ("gpu-mem-gb", po::value<double>(), "override the GPU's memory, GB")
      ("mem-bw-gbs", po::value<double>(), "override the GPU's memory bandwidth, GB/s")
      ("gpus-per-node", po::value<int>()->default_value(8), "GPUs sharing the node-local link")
      ("intra", po::value<std::string>(), "node-local link: nvlink3 | nvlink4 | ... (default: the GPU's NVLink)")
      ("inter", po::value<std::string>()->default_value("ib-hdr"), "inter-node link: ib-hdr | ib-ndr | eth-100g | ...")
      ("intra-bw", po::value<double>(), "override the node-local bandwidth, GB/s per GPU")
      ("inter-bw", po::value<double>(), "override the inter-node bandwidth, GB/s per GPU")
      ("intra-latency", po::value<double>(), "override the node-local latency per step, microseconds")
      ("latency", po::value<double>(), "override the inter-node latency per step, microseconds")
      ("batch-per-gpu", po::value<int>()->default_value(256), "samples per GPU per step")
      ("zero", po::value<int>()->default_value(1), "ZeRO stage 0 | 1 | 2")
      ("act-ckpt", po::bool_switch(), "activation checkpointing of both towers")
      ("precision", po::value<std::string>()->default_value("bf16"), "bf16 (mixed precision) | fp32")
      ("mfu", po::value<double>()->default_value(plan::kDefaultMfu),
       "fraction of peak FLOP/s the step's FLOPs run at (default fitted to OpenCLIP's A100 throughput)")
      ("fit-samples-per-gpu", po::value<double>(),
       "calibrate: find the MFU that gives this many samples/s per GPU at the first --gpus count, then plan with it")
      ("overlap", po::value<double>()->default_value(-1),
       "fraction of the gradient sync hidden under backward (< 0: from --bucket-mb, as the trainer's buckets)")
      ("bucket-mb", po::value<double>()->default_value(25), "gradient bucket size, MB")
      ("grad-bytes", po::value<double>()->default_value(4), "bytes per gradient element on the wire (4: fp32)")
      ("sync-bn", po::value<bool>()->default_value(true), "synchronized BatchNorm (official ViT's LeFF, RN50)")
      ("reserve-gb", po::value<double>()->default_value(2), "memory per GPU beyond the model (context, workspaces)")
      ("fs-bw", po::value<double>()->default_value(2), "file-system write bandwidth for checkpoints, GB/s")
      ("pairs", po::value<double>()->default_value(143e6), "image-text pairs in the dataset")
      ("epochs", po::value<double>()->default_value(32), "epochs")
      ("json", po::value<std::string>(), "also write the plan as JSON to this file");
  // clang-format on
  po::variables_map vm;
  if (!parse("plan", "Estimates memory per GPU, step time, scaling efficiency, checkpoint cost and the wall time of a "
                     "data-parallel run (no GPU needed).",
             opts, argc, argv, vm))
    return 0;

  const std::string variant = get<std::string>(vm, "variant");
  require(variant == "official" || variant == "standard",
          "--variant must be official or standard, not '" + variant + "'");
  plan::PlanInput in;
  in.model = model_preset(get<std::string>(vm, "model"), variant == "official");
  in.model.with_roi = variant == "official";  // as configs/*.cfg: the CLIP baselines have no ROI path
  const int roi_count = get<int>(vm, "roi-count"), text_len = get<int>(vm, "text-len");
  require(roi_count >= 0, "--roi-count must be >= 0");
  require(text_len >= 1 && text_len <= in.model.context_length,
          "--text-len must be in [1, " + std::to_string(in.model.context_length) + "]");
  in.workload = plan::default_workload(in.model, roi_count);
  in.workload.text_len = text_len;

  in.gpu = plan::gpu_preset(get<std::string>(vm, "gpu"));
  in.precision = get<std::string>(vm, "precision");
  require(in.precision == "bf16" || in.precision == "fp32",
          "--precision must be bf16 or fp32, not '" + in.precision + "'");
  if (vm.count("peak-tflops")) {
    const double v = get<double>(vm, "peak-tflops");
    require(v > 0, "--peak-tflops must be > 0");
    (in.precision == "bf16" ? in.gpu.peak_bf16_flops : in.gpu.peak_fp32_flops) = v * 1e12;
  }
  if (vm.count("gpu-mem-gb")) in.gpu.memory_bytes = get<double>(vm, "gpu-mem-gb") * 1e9;
  if (vm.count("mem-bw-gbs")) in.gpu.memory_bw = get<double>(vm, "mem-bw-gbs") * 1e9;
  in.intra = plan::link_preset(vm.count("intra") ? get<std::string>(vm, "intra") : plan::default_intra_link(in.gpu.name));
  in.inter = plan::link_preset(get<std::string>(vm, "inter"));
  if (vm.count("intra-bw")) in.intra.bandwidth = get<double>(vm, "intra-bw") * 1e9;
  if (vm.count("inter-bw")) in.inter.bandwidth = get<double>(vm, "inter-bw") * 1e9;
  if (vm.count("intra-latency")) in.intra.latency = get<double>(vm, "intra-latency") * 1e-6;
  if (vm.count("latency")) in.inter.latency = get<double>(vm, "latency") * 1e-6;
  require(in.intra.latency >= 0 && in.inter.latency >= 0, "latencies must be >= 0");
  in.gpus_per_node = get<int>(vm, "gpus-per-node");
  in.batch_per_gpu = get<int>(vm, "batch-per-gpu");
  in.zero_stage = get<int>(vm, "zero");
  in.act_ckpt = get<bool>(vm, "act-ckpt");
  in.mfu = get<double>(vm, "mfu");
  in.overlap = get<double>(vm, "overlap");
  in.bucket_mb = get<double>(vm, "bucket-mb");
  in.grad_bytes = get<double>(vm, "grad-bytes");
  require(in.bucket_mb > 0 && in.grad_bytes > 0, "--bucket-mb and --grad-bytes must be > 0");
  in.sync_batchnorm = get<bool>(vm, "sync-bn");
  in.reserve_bytes = get<double>(vm, "reserve-gb") * 1e9;
  require(in.reserve_bytes >= 0, "--reserve-gb must be >= 0");
  in.fs_bandwidth = get<double>(vm, "fs-bw") * 1e9;
  in.pairs = get<double>(vm, "pairs");
  in.epochs = get<double>(vm, "epochs");
  const std::vector<int> counts = parse_gpu_list(get<std::string>(vm, "gpus"));

  nlohmann::json out;
  if (vm.count("fit-samples-per-gpu")) {
    const double target = get<double>(vm, "fit-samples-per-gpu");
    plan::PlanInput fit = in;
    fit.gpus = counts.front();
    in.mfu = plan::fit_mfu(fit, target);
    std::printf("fitted MFU: %.4f (%.1f samples/s per GPU at %d GPUs)\n", in.mfu, target, fit.gpus);
    out["fitted_mfu"] = in.mfu;
    out["fit_target_samples_per_s_per_gpu"] = target;
  }

  std::vector<plan::PlanResult> rows;
  for (int g : counts) {
    in.gpus = g;
    rows.push_back(plan::make_plan(in));
  }
  const plan::PlanResult& r0 = rows.front();
  const double peak = in.precision == "bf16" ? in.gpu.peak_bf16_flops : in.gpu.peak_fp32_flops;
  std::printf("plan: %s %s (%s), %.2fM parameters (%.2fM trainable)\n", in.model.name.c_str(), variant.c_str(),
              in.model.official ? "PyramidCLIP: 2 views, 3 texts, ROIs" : "CLIP: 1 view, 1 text",
              r0.params.total / 1e6, r0.params.trainable / 1e6);
  std::printf("      %s: %.0f TFLOP/s %s, %.0f GB, %.0f GB/s; %d GPUs/node; intra %s %.0f GB/s %.1f us; inter %s "
              "%.1f GB/s %.1f us\n",
              in.gpu.name.c_str(), peak / 1e12, in.precision.c_str(), in.gpu.memory_bytes / 1e9, in.gpu.memory_bw / 1e9,
              in.gpus_per_node, in.intra.name.c_str(), in.intra.bandwidth / 1e9, in.intra.latency * 1e6,
              in.inter.name.c_str(), in.inter.bandwidth / 1e9, in.inter.latency * 1e6);
  std::printf("      per sample: forward %.2f GFLOP, step %.2f GFLOP executed%s; MFU %.3f; ZeRO %d; batch %d/GPU\n\n",
              r0.forward_flops / 1e9, r0.executed_flops / 1e9, in.act_ckpt ? " (with recompute)" : "", in.mfu,
              in.zero_stage, in.batch_per_gpu);

  std::printf("memory per GPU, GB\n%7s %8s %8s %8s %8s %8s %8s %8s %10s\n", "GPUs", "weights", "grads", "optim",
              "activ", "logits", "reserve", "total", "(trainer)");
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    std::printf("%7d %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %10.2f\n", counts[i], r.state.weights / 1e9,
                r.state.gradients / 1e9, r.state.optimizer / 1e9, r.activations / 1e9, r.logits / 1e9, r.reserve / 1e9,
                r.total_memory / 1e9, (r.trainer_state + r.activations + r.logits + r.reserve) / 1e9);
  }
  std::printf("\ntime per step, ms\n%7s %9s %9s %9s %10s %9s %9s %9s %9s %9s\n", "GPUs", "compute", "grad-sync",
              "exposed", "param-ag", "loss-ag", "syncbn", "optim", "step", "comm-exp");
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    std::printf("%7d %9.1f %9.1f %9.1f %10.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", counts[i], r.compute_s * 1e3,
                r.grad_sync_s * 1e3, r.grad_exposed_s * 1e3, r.param_gather_s * 1e3, r.loss_gather_s * 1e3,
                r.syncbn_s * 1e3, r.optimizer_s * 1e3, r.step_s * 1e3, r.comm_exposed_s * 1e3);
  }
  std::printf("\nthroughput and run (%.3g pairs x %g epochs; checkpoints at %.1f GB/s)\n%7s %12s %11s %7s %7s %9s %10s "
              "%11s %8s %8s\n",
              in.pairs, in.epochs, in.fs_bandwidth / 1e9, "GPUs", "samples/s", "per GPU", "eff", "MFU", "steps",
              "wall h", "GPU-hours", "ckpt GB", "write s");
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    std::printf("%7d %12.0f %11.1f %6.1f%% %7.3f %9.0f %10.1f %11.0f %8.2f %8.1f\n", counts[i], r.samples_per_s,
                r.samples_per_s_per_gpu, 100 * r.efficiency, r.achieved_mfu, r.steps, r.wall_s / 3600, r.gpu_hours,
                r.checkpoint_bytes / 1e9, r.checkpoint_write_s);
  }
  for (size_t i = 0; i < rows.size(); ++i)
    if (!rows[i].fits)
      std::fprintf(stderr,
                   "warning: %d GPUs: %.1f GB per GPU exceeds the %s's %.0f GB: use --act-ckpt, --zero 2 or a smaller "
                   "--batch-per-gpu\n",
                   counts[i], rows[i].total_memory / 1e9, in.gpu.name.c_str(), in.gpu.memory_bytes / 1e9);

  if (vm.count("json")) {
    out["input"] = {{"model", in.model.name},
                    {"variant", variant},
                    {"gpu", in.gpu.name},
                    {"peak_tflops", peak / 1e12},
                    {"gpu_memory_gb", in.gpu.memory_bytes / 1e9},
                    {"gpus_per_node", in.gpus_per_node},
                    {"intra", {{"name", in.intra.name}, {"gbs", in.intra.bandwidth / 1e9}, {"latency_us", in.intra.latency * 1e6}}},
                    {"inter", {{"name", in.inter.name}, {"gbs", in.inter.bandwidth / 1e9}, {"latency_us", in.inter.latency * 1e6}}},
                    {"batch_per_gpu", in.batch_per_gpu},
                    {"zero", in.zero_stage},
                    {"act_ckpt", in.act_ckpt},
                    {"precision", in.precision},
                    {"mfu", in.mfu},
                    {"pairs", in.pairs},
                    {"epochs", in.epochs},
                    {"fs_bw_gbs", in.fs_bandwidth / 1e9}};
    out["params"] = {{"total", r0.params.total}, {"trainable", r0.params.trainable}};
    out["flops_per_sample"] = {{"forward", r0.forward_flops}, {"executed", r0.executed_flops}, {"model", r0.model_flops}};
    out["rows"] = nlohmann::json::array();
    for (size_t i = 0; i < rows.size(); ++i) out["rows"].push_back(row_json(rows[i], counts[i], in.batch_per_gpu));
    const std::string path = get<std::string>(vm, "json");
    std::ofstream f(path);
    require(f.good(), "--json: cannot write " + path + ": check the directory exists and is writable");
    f << out.dump(1) << "\n";
  }
  return 0;
}

}  // namespace pc::cli
