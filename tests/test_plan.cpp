// The capacity planner (src/plan): ZeRO memory and collective formulas against the closed forms,
// analytic parameter counts against the real PyramidClip, FLOPs against hand-computed values,
// the run arithmetic, and `pyramidclip plan` through the binary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/plan/planner.h"
#include "pyramidclip/util/errors.h"
#include "test_process.h"

namespace pc::plan {
namespace {

TEST(PlanMemory, ZeroMixedPrecisionMatchesThePaper) {
  const double psi = 1.5e8;
  for (int n : {1, 8, 64, 512}) {
    EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, n, 0, StateAccounting::kMixedPrecision).total(), 16 * psi);
    EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, n, 1, StateAccounting::kMixedPrecision).total(), 4 * psi + 12 * psi / n);
    EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, n, 2, StateAccounting::kMixedPrecision).total(), 2 * psi + 14 * psi / n);
  }
}

TEST(PlanMemory, ZeroFp32AndTrainerAsImplemented) {
  const double psi = 1.5e8, n = 64;
  EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, 64, 0, StateAccounting::kFp32).total(), 16 * psi);
  EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, 64, 1, StateAccounting::kFp32).total(), 8 * psi + 8 * psi / n);
  EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, 64, 2, StateAccounting::kFp32).total(), 4 * psi + 12 * psi / n);
  EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, 64, 0, StateAccounting::kTrainer).total(), 16 * psi);
  EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, 64, 1, StateAccounting::kTrainer).total(), 8 * psi + 12 * psi / n);
  EXPECT_DOUBLE_EQ(zero_state_bytes(psi, psi, 64, 2, StateAccounting::kTrainer).total(), 8 * psi + 16 * psi / n);
  // frozen parameters have weights but no gradients or optimizer state
  const StateBytes b = zero_state_bytes(psi + 1000, psi, 1, 0, StateAccounting::kMixedPrecision);
  EXPECT_DOUBLE_EQ(b.weights, 2 * (psi + 1000));
  EXPECT_DOUBLE_EQ(b.gradients + b.optimizer, 14 * psi);
}

TEST(PlanCollectives, RingAndTreeClosedForms) {
  const double bytes = 1e9, bw = 1e11, lat = 1e-5;
  EXPECT_DOUBLE_EQ(ring_allreduce_seconds(bytes, 8, bw, lat), 2.0 * 7 / 8 * bytes / bw + 2.0 * 7 * lat);
  EXPECT_DOUBLE_EQ(ring_reduce_scatter_seconds(bytes, 8, bw, lat), 7.0 / 8 * bytes / bw + 7 * lat);
  EXPECT_DOUBLE_EQ(ring_all_gather_seconds(bytes, 8, bw, lat), 7.0 / 8 * bytes / bw + 7 * lat);
  EXPECT_DOUBLE_EQ(tree_allreduce_seconds(bytes, 8, bw, lat), 2 * bytes / bw + 2 * 3 * lat);
  EXPECT_EQ(ring_allreduce_seconds(bytes, 1, bw, lat), 0);
}

TEST(PlanCollectives, HierarchicalAllreduce) {
  Topology t{8, 8, {"intra", 2e11, 3e-6}, {"inter", 2e10, 6e-6}};
  const double bytes = 6e8;
  // one node: the node-local ring alone
  EXPECT_NEAR(hierarchical_allreduce_seconds(bytes, t), ring_allreduce_seconds(bytes, 8, 2e11, 3e-6), 1e-15);
  t.gpus = 64;  // 8 nodes: reduce-scatter + all-gather in the node, allreduce of 1/8 across nodes
  const double intra = 2 * (7.0 / 8 * bytes / 2e11 + 7 * 3e-6);
  const double ring = 2.0 * 7 / 8 * (bytes / 8) / 2e10 + 14 * 6e-6;
  const double tree = 2 * (bytes / 8) / 2e10 + 2 * 3 * 6e-6;
  EXPECT_NEAR(hierarchical_allreduce_seconds(bytes, t), intra + std::min(ring, tree), 1e-12);
}

TEST(PlanFlops, LayersAgainstHandComputedValues) {
  EXPECT_DOUBLE_EQ(linear_flops(50, 768, 3072), 2.0 * 50 * 768 * 3072);
  EXPECT_DOUBLE_EQ(attention_core_flops(50, 50, 768), 2 * (2.0 * 50 * 50 * 768));  // QK^T and AV
  // ViT-B/32 block: qkv 2*50*768*2304 + out 2*50*768^2 + fc 2*50*768*3072 + proj 2*50*3072*768 + core
  const double block = 176947200.0 + 58982400.0 + 235929600.0 + 235929600.0 + 7680000.0;
  EXPECT_DOUBLE_EQ(transformer_block_flops(50, 768), block);
  EXPECT_DOUBLE_EQ(conv2d_flops(64, 64, 3, 56, 56), 2.0 * 64 * 64 * 9 * 56 * 56);
  EXPECT_DOUBLE_EQ(conv2d_flops(256, 256, 3, 7, 7, 256), 2.0 * 256 * 9 * 49);  // depthwise
  // whole standard ViT-B/32 image tower: patch GEMM + 12 blocks + projection
  ModelConfig m = model_preset("vit-b32", false);
  EXPECT_DOUBLE_EQ(image_cost(m).forward, 2.0 * 49 * 3072 * 768 + 12 * block + 2.0 * 768 * 512);
  // OpenCLIP's profile of the same towers: ViT-B/32 image 4.41 GMACs, ViT-B/16 image 17.58, text 2.96
  EXPECT_NEAR(image_cost(m).forward / 2e9, 4.41, 0.02);
  EXPECT_NEAR(image_cost(model_preset("vit-b16", false)).forward / 2e9, 17.58, 0.06);
  EXPECT_NEAR(text_cost(m, 77).forward / 2e9, 2.96, 0.03);
}

TEST(PlanFlops, PyramidStepRunsTwoViewsThreeTextsAndRois) {
  ModelConfig m = model_preset("vit-b32", true);
  const StepWorkload w = default_workload(m, 10);
  EXPECT_EQ(w.image_views, 2);
  EXPECT_EQ(w.texts, 3);
  EXPECT_EQ(w.pairs, 6);
  const SampleCost s = sample_cost(m, w);
  EXPECT_DOUBLE_EQ(s.forward, 2 * image_cost(m).forward + roi_cost(m, 10).forward + 3 * text_cost(m, 77).forward);
  // checkpointing recomputes every block of a run but the last
  EXPECT_DOUBLE_EQ(text_cost(m, 77).recompute, 11 * transformer_block_flops(77, 512));
}

// count_params must equal sum(p.numel()) of the real model for every preset and variant.
TEST(PlanParams, EqualTheRealModel) {
  torch::NoGradGuard no_grad;
  for (const char* name : {"tiny", "vit-b32", "vit-b16", "rn50"})
    for (bool official : {true, false})
      for (bool roi : {true, false}) {
        if (std::string(name) != "tiny" && roi != official) continue;  // the shipped configs; tiny: all four
        ModelConfig m = model_preset(name, official);
        m.with_roi = roi;
        PyramidClip model(m);
        int64_t trainable = 0;
        for (const auto& p : model->parameters())
          if (p.requires_grad()) trainable += p.numel();
        const ParamCount pc = count_params(m);
        EXPECT_EQ(pc.total, count_parameters(*model)) << name << (official ? " official" : " standard") << " roi " << roi;
        EXPECT_EQ(pc.trainable, trainable) << name << (official ? " official" : " standard") << " roi " << roi;
      }
}

PlanInput clip_b32() {
  PlanInput in;
  in.model = model_preset("vit-b32", false);
  in.model.with_roi = false;
  in.workload = default_workload(in.model);
  in.gpu = gpu_preset("a100-80gb");
  in.intra = link_preset("nvlink3");
  in.inter = link_preset("ib-hdr");
  return in;
}

TEST(PlanRun, OneGpuHasNoCommunicationAndEfficiencyOne) {
  PlanInput in = clip_b32();
  in.gpus = 1;
  const PlanResult r = make_plan(in);
  EXPECT_EQ(r.efficiency, 1.0);
  EXPECT_EQ(r.comm_exposed_s, 0.0);
  EXPECT_DOUBLE_EQ(r.step_s, r.compute_s + r.optimizer_s);
  EXPECT_DOUBLE_EQ(r.compute_s, r.executed_flops * 256 / (312e12 * kDefaultMfu));
  in.gpus = 256;
  const PlanResult many = make_plan(in);
  EXPECT_LT(many.efficiency, 1.0);
  EXPECT_GT(many.efficiency, 0.8);
}

TEST(PlanRun, WallTimeAndGpuHoursArithmetic) {
  PlanInput in = clip_b32();
  in.gpus = 64;
  in.batch_per_gpu = 256;
  const PlanResult r = make_plan(in);
  const double steps = std::ceil(143e6 * 32 / (64.0 * 256));
  EXPECT_EQ(r.steps, steps);
  EXPECT_DOUBLE_EQ(r.wall_s, steps * r.step_s);
  EXPECT_DOUBLE_EQ(r.gpu_hours, steps * r.step_s / 3600 * 64);
  EXPECT_DOUBLE_EQ(r.checkpoint_bytes, 16.0 * 151277313 + 1e6);
  EXPECT_DOUBLE_EQ(r.checkpoint_write_s, r.checkpoint_bytes / 2e9);
}

TEST(PlanRun, FitMfuInvertsThePlan) {
  PlanInput in = clip_b32();
  in.gpus = 8;
  in.mfu = 0.2;
  const double sps = make_plan(in).samples_per_s_per_gpu;
  EXPECT_NEAR(fit_mfu(in, sps), 0.2, 1e-9);
}

TEST(PlanRun, RejectsBadInput) {
  PlanInput in = clip_b32();
  in.gpus = 0;
  EXPECT_THROW(make_plan(in), pc::UserError);
  in = clip_b32();
  in.zero_stage = 3;
  EXPECT_THROW(make_plan(in), pc::UserError);
  EXPECT_THROW(gpu_preset("tpu-v4"), pc::UserError);
}

std::string plan_cmd(const std::string& args, const std::string& err) {
  return std::string(PC_BINARY) + " plan " + args + " >/dev/null 2>" + err;
}

TEST(PlanCli, BadOptionsExitTwoWithOneLine) {
  const std::string err = ::testing::TempDir() + "plan_err.txt";
  for (const char* args : {"--gpus 0", "--gpus 64,x", "--zero 3", "--gpu tpu", "--precision fp8", "--variant big",
                           "--model vit-h14", "--mfu 2", "--bogus"}) {
    EXPECT_EQ(test::exit_code_of(plan_cmd(args, err)), 2) << args;
    const std::string msg = test::slurp(err);
    EXPECT_EQ(msg.rfind("pyramidclip: error: ", 0), 0u) << args << ": " << msg;
    EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 1) << args << ": " << msg;
  }
}

TEST(PlanCli, WritesJsonRowsAndWarnsWhenMemoryIsShort) {
  const std::string json = ::testing::TempDir() + "plan.json", err = ::testing::TempDir() + "plan_err.txt";
  ASSERT_EQ(test::exit_code_of(plan_cmd("--model vit-b16 --variant standard --gpus 1,64 --json " + json, err)), 0)
      << test::slurp(err);
  const auto j = nlohmann::json::parse(test::slurp(json));
  ASSERT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][0]["gpus"], 1);
  EXPECT_EQ(j["rows"][0]["efficiency"], 1.0);
  EXPECT_EQ(j["params"]["total"], 149620737);
  ASSERT_EQ(test::exit_code_of(plan_cmd("--gpu a100-40gb --gpus 8 --batch-per-gpu 4096", err)), 0);
  EXPECT_NE(test::slurp(err).find("warning: 8 GPUs:"), std::string::npos) << test::slurp(err);
}

}  // namespace
}  // namespace pc::plan
