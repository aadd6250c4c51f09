// Model compute, one intra-op thread (as each rank uses on the 2-core machine), forward + backward:
// one transformer block (standard attention + MLP, and the official LeFF block), the text tower,
// and the six-pair PyramidCLIP loss at several batch sizes. The towers of the tiny model are in
// bench_model.cpp (also part of this binary, bench_suite_existing.cpp).
#include <torch/torch.h>

#include "bench_suite.h"
#include "pyramidclip/loss/pyramid_loss.h"
#include "pyramidclip/model/layers.h"
#include "pyramidclip/model/pyramid_clip.h"

namespace {

// Arg "preset" of the block benchmarks: 0 = tiny (width 96, 4 heads, 6x6 patches), 1 = ViT-B/32 (768, 12, 7x7).
pc::ModelConfig preset(int64_t which) { return pc::model_preset(which == 0 ? "tiny" : "vit-b32", false); }

void block_forward_backward(benchmark::State& state, bool leff) {
  torch::set_num_threads(1);
  const pc::ModelConfig cfg = preset(state.range(0));
  const int64_t batch = state.range(1), grid = cfg.image_size / cfg.patch_size, tokens = 1 + grid * grid;
  pc::ResidualAttentionBlock block(cfg.vision_width, cfg.vision_heads, leff);
  block->train();
  at::Tensor x = torch::randn({batch, tokens, cfg.vision_width}).requires_grad_();
  for (auto _ : state) {
    block->zero_grad();
    x.mutable_grad() = at::Tensor();
    block->forward(x).sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(std::string(state.range(0) == 0 ? "tiny" : "vit-b32") + ", " + std::to_string(tokens) + " tokens");
}

void BM_AttentionBlock(benchmark::State& state) { block_forward_backward(state, false); }
void BM_LeFFBlock(benchmark::State& state) { block_forward_backward(state, true); }
BENCHMARK(BM_AttentionBlock)->ArgNames({"preset", "batch"})->Args({0, 64})->Args({1, 16})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LeFFBlock)->ArgNames({"preset", "batch"})->Args({0, 64})->Args({1, 16})->Unit(benchmark::kMillisecond);

// Multi-head self-attention (projections included) forward + backward, fused CPU kernel vs the
// bmm / softmax / bmm path, side by side. Arg "shape": 0 tiny image (37 tokens, 96 = 4 x 24),
// 1 tiny text (77 tokens, causal, 64 = 4 x 16), 2 ViT-B/32 image (50, 768 = 12 x 64),
// 3 ViT-B/32 text (77, causal, 512 = 8 x 64).
void BM_SelfAttention(benchmark::State& state) {
  torch::set_num_threads(1);
  struct Shape { const char* name; int64_t tokens, width, heads, batch; bool causal; };
  const Shape shapes[] = {{"tiny image", 37, 96, 4, 128, false}, {"tiny text", 77, 64, 4, 128, true},
                          {"vit-b32 image", 50, 768, 12, 8, false}, {"vit-b32 text", 77, 512, 8, 8, true}};
  const Shape& s = shapes[state.range(0)];
  const bool fused = state.range(1) != 0;
  pc::set_fused_kernels(fused);
  pc::MultiheadAttention attn(s.width, s.heads);
  at::Tensor x = torch::randn({s.batch, s.tokens, s.width}).requires_grad_();
  const at::Tensor mask = s.causal ? pc::causal_mask(s.tokens) : at::Tensor();
  for (auto _ : state) {
    attn->zero_grad();
    x.mutable_grad() = at::Tensor();
    attn->forward(x, mask).sum().backward();
  }
  pc::set_fused_kernels(true);
  state.SetItemsProcessed(state.iterations() * s.batch);
  state.SetLabel(std::string(s.name) + ", batch " + std::to_string(s.batch) + (fused ? ", fused" : ", bmm+softmax"));
}
BENCHMARK(BM_SelfAttention)->ArgNames({"shape", "fused"})->ArgsProduct({{0, 1, 2, 3}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// The MLP (c_fc, QuickGELU, c_proj) forward + backward with the fused QuickGELU kernel vs silu with
// the factor folded into the weights (the non-fused path). Arg "shape": 0 tiny image (batch 128,
// 37 tokens, 96 -> 384), 1 ViT-B/32 image (batch 8, 50 tokens, 768 -> 3072).
void BM_Mlp(benchmark::State& state) {
  torch::set_num_threads(1);
  const bool tiny = state.range(0) == 0, fused = state.range(1) != 0;
  const int64_t batch = tiny ? 128 : 8, tokens = tiny ? 37 : 50, width = tiny ? 96 : 768;
  pc::set_fused_kernels(fused);
  pc::Mlp mlp(width);
  at::Tensor x = torch::randn({batch, tokens, width}).requires_grad_();
  for (auto _ : state) {
    mlp->zero_grad();
    x.mutable_grad() = at::Tensor();
    mlp->forward(x).sum().backward();
  }
  pc::set_fused_kernels(true);
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(std::string(tiny ? "tiny" : "vit-b32") + " image, batch " + std::to_string(batch) +
                 (fused ? ", fused QuickGELU" : ", silu + scaled weights"));
}
BENCHMARK(BM_Mlp)->ArgNames({"shape", "fused"})->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMillisecond);

// The whole text tower of ViT-B/32 CLIP (12 x 512, 77 tokens, EOT pooling, projection).
void BM_TextTowerB32(benchmark::State& state) {
  torch::set_num_threads(1);
  pc::ModelConfig cfg = preset(1);
  cfg.with_roi = false;
  torch::manual_seed(0);
  pc::PyramidClip model(cfg);
  const int64_t batch = state.range(0);
  at::Tensor tokens = torch::randint(1, 40000, {batch, cfg.context_length}, torch::kLong);
  tokens.select(1, cfg.context_length - 1).fill_(cfg.vocab_size - 1);  // EOT = the largest id, as CLIP's
  for (auto _ : state) {
    model->zero_grad();
    model->encode_text(tokens).sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_TextTowerB32)->ArgName("batch")->Arg(8)->Unit(benchmark::kMillisecond);

// The six-pair loss (softened InfoNCE, alpha 0.2) on 512-d embeddings, one process (no gathers),
// forward + backward to the embeddings and the logit scale.
void BM_PyramidLoss(benchmark::State& state) {
  torch::set_num_threads(1);
  const int64_t batch = state.range(0), dim = 512;
  auto embedding = [&] {
    at::Tensor e = torch::randn({batch, dim});
    return (e / e.norm(2, 1, true)).requires_grad_();
  };
  pc::Embeddings e;
  e.image_global = embedding();
  e.image_local = embedding();
  e.roi = embedding();
  e.text = embedding();
  e.summary = embedding();
  e.tags = embedding();
  at::Tensor log_scale = torch::full({}, std::log(1 / 0.07)).requires_grad_();
  pc::LossConfig cfg;  // pyramid, alpha 0.2, lambda = mu = 1/3
  for (auto _ : state) {
    for (at::Tensor* t : {&e.image_global, &e.image_local, &e.roi, &e.text, &e.summary, &e.tags})
      t->mutable_grad() = at::Tensor();
    log_scale.mutable_grad() = at::Tensor();
    e.logit_scale = log_scale.exp();
    pc::LossOutput out = pc::pyramid_loss(e, cfg, nullptr);
    out.total.backward();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_PyramidLoss)->ArgName("batch")->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);

}  // namespace
