#pragma once
// Transformer building blocks shared by the image and text towers. Every module registers its
// tensors under the official PyramidCLIP / OpenAI CLIP names, so a state dict written by
// PyTorch maps 1:1 onto ours. Activations are batch-first [B, L, D] throughout (the official
// code runs [L, B, D]; the arithmetic is the same, batch-first keeps the GEMMs contiguous).
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "pyramidclip/model/batch_norm.h"
#include "pyramidclip/model/quick_gelu_kernel.h"

namespace pc {

// QuickGELU(x) = x * sigmoid(a x), a = kQuickGeluAlpha (quick_gelu_kernel.h), as CLIP. The blocks
// run the fused kernel or silu(a x) / a with the factors folded into neighbouring weights; this is
// the reference form.
at::Tensor quick_gelu(const at::Tensor& x);

// Additive causal mask [L, L]: 0 on and below the diagonal, -inf above (CLIP's build_attention_mask).
at::Tensor causal_mask(int64_t length, const at::TensorOptions& options = {});

// Additive key-padding mask [B, 1, Lk] (0 keep, -inf drop) from a bool "keep" mask [B, Lk].
at::Tensor key_padding_bias(const at::Tensor& keep);

// Multi-head scaled dot-product attention without projections.
// q [B, Lq, D], k and v [B, Lk, D]; bias (optional) is added to the [B*heads, Lq, Lk] scores and
// must broadcast to it: [Lq, Lk] (causal) or [B*heads, 1, Lk] (see expand_bias_to_heads).
at::Tensor scaled_dot_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                                const at::Tensor& bias = {});

// Self-attention on a packed [B, L, 3D] qkv projection (q | k | v along the last dimension) with
// the fused CPU kernel (attention_kernel.h): [B, L, D] in merged-head order. bias as in
// scaled_dot_attention, constant (no gradient).
at::Tensor fused_self_attention(const at::Tensor& qkv, int64_t heads, const at::Tensor& bias = {});
// Whether MultiheadAttention takes the fused path for this input: CPU, fp32 (autocast's bf16 and
// CUDA keep the bmm/softmax path), and the fused kernels not switched off.
bool fused_attention_applies(const at::Tensor& qkv, const at::Tensor& bias);

// QuickGELU in one pass forward and one backward (quick_gelu_kernel.h) on CPU fp32 tensors; Mlp
// uses it where it applies, else silu with the factor folded into its weights.
at::Tensor fused_quick_gelu(const at::Tensor& x);
bool fused_quick_gelu_applies(const at::Tensor& x);

// Process-wide switch of the fused CPU kernels above (default on; train.fused-kernels; the tests
// and the benchmark suite compare both paths).
void set_fused_kernels(bool enabled);
bool fused_kernels_enabled();

// x [B, L, ...] at one row per sample -> [B, ...]; rows [B] (undefined: row 0).
at::Tensor pooled_rows(const at::Tensor& x, const at::Tensor& rows);

// [B, 1, Lk] per-sample bias -> [B*heads, 1, Lk], the layout scaled_dot_attention consumes.
at::Tensor expand_bias_to_heads(const at::Tensor& bias, int64_t heads);

// LayerNorm in fp32: a bf16/fp16 input (autocast) is cast to float first; CPU autocast in
// LibTorch 1.13 leaves layer_norm alone and fails on a bf16 input with fp32 weights.
at::Tensor layer_norm(torch::nn::LayerNormImpl& ln, const at::Tensor& x);

// nn.MultiheadAttention's parameters: in_proj_weight [3D, D], in_proj_bias [3D], out_proj (Linear).
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int64_t width, int64_t heads);
  // x [B, L, D]; bias as in scaled_dot_attention (already expanded to heads).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& bias = {});
  // The output of one query row per sample, [B, D]: every row's keys and values, but the query,
  // attention and output projection of `rows` only (pooled_rows). bias: that row's [B*heads, 1, L]
  // (or undefined).
  at::Tensor forward_rows(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& bias = {});
  void reset_parameters();  // PyTorch's: xavier_uniform in_proj_weight, zero biases

  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(MultiheadAttention);

// Standard CLIP MLP: c_fc (D -> 4D), QuickGELU, c_proj (4D -> D).
class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(int64_t width);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(Mlp);

// A module that only holds a BatchNorm under the name "bn" (the official nn.Sequential
// ("bn", BatchNorm), ("gelu", QuickGELU) gives keys "ac1.bn.*").
template <typename BN>
class BnHolderImpl : public torch::nn::Module {
 public:
  explicit BnHolderImpl(int64_t channels) { bn = register_module("bn", BN(channels)); }
  BN bn{nullptr};
};

// Holds "depconv" (3x3 depthwise Conv2d, no bias) and "bn" (BatchNorm2d), as official depConv.
class DepConvImpl : public torch::nn::Module {
 public:
  explicit DepConvImpl(int64_t channels);
  torch::nn::Conv2d depconv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(DepConv);

// Official PyramidCLIP LEFF: linear1 (D -> 4D), BN1d, QuickGELU, depthwise 3x3 conv on the
// patch grid, BN2d, QuickGELU, linear2 (4D -> D), BN1d, QuickGELU. The class token (position 0)
// bypasses it: its output is the block's input token itself (official: cat([clsToken, x])).
// Its three BatchNorms are synchronized across ranks when bn_sync is set (batch_norm.h).
class LeFFImpl : public torch::nn::Module, public BatchNormSyncable {
 public:
  explicit LeFFImpl(int64_t width);
  at::Tensor forward(const at::Tensor& x);  // x [B, 1 + G*G, D]
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  std::shared_ptr<BnHolderImpl<torch::nn::BatchNorm1d>> ac1, ac2;
  DepConv depConv{nullptr};
};
TORCH_MODULE(LeFF);

// Pre-LN residual block: x + attn(ln_1(x)); x + mlp(ln_2(x)); mlp is Mlp or LeFF.
class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  ResidualAttentionBlockImpl(int64_t width, int64_t heads, bool leff);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& bias = {});
  // forward(x, bias) at one row per sample, [B, D] (standard blocks; see forward_rows above).
  at::Tensor forward_rows(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& bias = {});
  MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Mlp mlp{nullptr};        // standard block
  LeFF leff_mlp{nullptr};  // LeFF block (registered as "mlp")
};
TORCH_MODULE(ResidualAttentionBlock);

// A stack of blocks. Registered as "resblocks" (OpenAI CLIP) or, when split > 0, as
// "resblocks1" (blocks [0, split)) and "resblocks2" (blocks [split, layers)) as the official
// PyramidCLIP Transformer; leff makes the resblocks1 blocks LeFF blocks. With checkpoint set and
// gradients recorded, each block of a forward run but the last runs under activation
// checkpointing (checkpoint.h); the last one's activations would be needed first anyway.
class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, int64_t split = 0, bool leff = false);
  // Runs blocks [begin, end) (end < 0: all). bias as in scaled_dot_attention.
  at::Tensor forward(at::Tensor x, const at::Tensor& bias = {}, int64_t begin = 0, int64_t end = -1);
  // The same stack when the caller keeps one output row per sample (CLS, EOT), [B, D]: the last
  // block computes only those rows (the others feed nothing downstream), unless it is a LeFF block,
  // whose depthwise convolution mixes rows. rows: [B] indices, undefined = row 0 for all;
  // rows_bias: the bias restricted to those query rows, [B*heads, 1, L] (undefined: none).
  at::Tensor forward_pooled(at::Tensor x, const at::Tensor& bias, const at::Tensor& rows, const at::Tensor& rows_bias,
                            int64_t begin = 0, int64_t end = -1);
  // OpenAI CLIP initialize_parameters for the text transformer (attn/proj/fc std formulas).
  void init_clip_text();

  int64_t width, layers, heads;
  bool checkpoint = false;
  std::vector<ResidualAttentionBlock> blocks;  // in order, across resblocks1/resblocks2

 private:
  // blocks [begin, end); last_of_stack: block end-1 ends the stack (then it is not checkpointed)
  at::Tensor run_blocks(at::Tensor x, const at::Tensor& bias, int64_t begin, int64_t end, bool last_of_stack);
};
TORCH_MODULE(Transformer);

}  // namespace pc
