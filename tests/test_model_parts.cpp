// Building blocks against straightforward references: attention vs torch::nn::MultiheadAttention,
// LeFF vs the official op order, the causal mask, a small ModifiedResNet with its ROI path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/model/layers.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/model/vision.h"

namespace pc {
namespace {

TEST(ModelParts, AttentionMatchesTorchMultiheadAttention) {
  torch::manual_seed(10);
  const int64_t d = 32, h = 4, b = 3, l = 7;
  MultiheadAttention mine(d, h);
  torch::nn::MultiheadAttention ref(torch::nn::MultiheadAttentionOptions(d, h));
  {
    torch::NoGradGuard no_grad;
    for (auto* t : {&mine->in_proj_bias, &mine->out_proj->bias}) t->normal_();  // non-zero biases
    ref->in_proj_weight.copy_(mine->in_proj_weight);
    ref->in_proj_bias.copy_(mine->in_proj_bias);
    ref->out_proj->weight.copy_(mine->out_proj->weight);
    ref->out_proj->bias.copy_(mine->out_proj->bias);
  }
  at::Tensor x = torch::randn({b, l, d});
  at::Tensor xt = x.transpose(0, 1);  // reference is [L, B, D]
  // no mask
  at::Tensor want = std::get<0>(ref->forward(xt, xt, xt, {}, false)).transpose(0, 1);
  EXPECT_TRUE(torch::allclose(mine->forward(x), want, 1e-5, 1e-5));
  // causal
  at::Tensor causal = causal_mask(l);
  want = std::get<0>(ref->forward(xt, xt, xt, {}, false, causal)).transpose(0, 1);
  EXPECT_TRUE(torch::allclose(mine->forward(x, causal), want, 1e-5, 1e-5));
  // key padding (true = ignore in PyTorch; ours takes keep = true)
  at::Tensor keep = torch::ones({b, l}, torch::kBool);
  keep.index_put_({0, torch::indexing::Slice(4, l)}, false);
  keep.index_put_({2, torch::indexing::Slice(1, l)}, false);
  want = std::get<0>(ref->forward(xt, xt, xt, keep.logical_not(), false)).transpose(0, 1);
  EXPECT_TRUE(torch::allclose(mine->forward(x, expand_bias_to_heads(key_padding_bias(keep), h)), want, 1e-5, 1e-5));
}

TEST(ModelParts, MlpIsQuickGelu) {
  torch::manual_seed(15);
  Mlp mlp(16);
  at::Tensor x = torch::randn({2, 5, 16});
  at::Tensor want = mlp->c_proj->forward(quick_gelu(mlp->c_fc->forward(x)));
  EXPECT_TRUE(torch::allclose(mlp->forward(x), want, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(quick_gelu(x), x * torch::sigmoid(1.702 * x)));
}

TEST(ModelParts, LeffMatchesOfficialOpOrder) {
  torch::manual_seed(11);
  const int64_t d = 16, b = 3, g = 4, n = g * g;
  LeFF leff(d);
  leff->train();
  at::Tensor x = torch::randn({b, 1 + n, d});
  at::Tensor got = leff->forward(x);
  // official LEFF.forward on [L, B, D], transcribed literally
  at::Tensor xl = x.transpose(0, 1);
  at::Tensor cls = xl.narrow(0, 0, 1), patch = xl.narrow(0, 1, n);
  at::Tensor y = leff->linear1->forward(patch);                            // [N, B, 4D]
  y = quick_gelu(leff->ac1->bn->forward(y.permute({1, 2, 0})));           // [B, 4D, N]
  y = y.reshape({b, 4 * d, g, g});
  y = quick_gelu(leff->depConv->bn->forward(leff->depConv->depconv->forward(y)));
  y = y.reshape({b, 4 * d, n});
  y = leff->linear2->forward(y.permute({0, 2, 1}));                        // [B, N, D]
  y = quick_gelu(leff->ac2->bn->forward(y.permute({0, 2, 1})));           // [B, D, N]
  at::Tensor want = torch::cat({cls, y.permute({2, 0, 1})}, 0).transpose(0, 1);
  EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-5)) << (got - want).abs().max().item<double>();
  EXPECT_TRUE(torch::equal(got.select(1, 0), x.select(1, 0)));  // the class token bypasses LeFF
  // each BN saw one batch from ours and one from the reference
  EXPECT_EQ(leff->ac1->bn->num_batches_tracked.item<int64_t>(), 2);
  EXPECT_EQ(leff->depConv->bn->num_batches_tracked.item<int64_t>(), 2);
  // eval mode uses the running statistics
  leff->eval();
  at::Tensor e1 = leff->forward(x), e2 = leff->forward(x.narrow(0, 0, 1));
  EXPECT_TRUE(torch::allclose(e1.narrow(0, 0, 1), e2, 1e-5, 1e-6));
}

TEST(ModelParts, CausalMaskHidesLaterTokens) {
  torch::manual_seed(12);
  Transformer t(32, 3, 4);
  torch::NoGradGuard no_grad;
  const int64_t l = 12, k = 7;
  at::Tensor x = torch::randn({2, l, 32});
  at::Tensor mask = causal_mask(l);
  at::Tensor a = t->forward(x, mask);
  at::Tensor x2 = x.clone();
  x2.select(1, k).normal_();
  at::Tensor b = t->forward(x2, mask);
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, k), b.narrow(1, 0, k), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(a.narrow(1, k, l - k), b.narrow(1, k, l - k), 1e-4, 1e-5));
  // without the mask, earlier positions do see the change
  EXPECT_FALSE(torch::allclose(t->forward(x).narrow(1, 0, k), t->forward(x2).narrow(1, 0, k), 1e-4, 1e-5));
}

ModelConfig small_rn(bool official) {
  ModelConfig c = model_preset("rn50", official);
  c.image_size = 64;
  c.rn_width = 16;
  c.vision_width = 16;
  c.vision_heads = 8;
  c.rn_layers[0] = 1;
  c.rn_layers[1] = 2;
  c.rn_layers[2] = 1;
  c.rn_layers[3] = 1;
  c.embed_dim = 64;
  c.text_width = 64;
  c.text_heads = 4;
  c.text_layers = 2;
  return c;
}

TEST(ModelParts, SmallResNetForwardAndRoi) {
  torch::manual_seed(13);
  const ModelConfig c = small_rn(true);
  PyramidClip m(c);
  m->train();
  at::Tensor img = torch::randn({4, 3, 64, 64});
  at::Tensor e = m->encode_image(img);
  EXPECT_EQ(e.sizes().vec(), (std::vector<int64_t>{4, 64}));
  EXPECT_TRUE(torch::allclose(e.norm(2, 1), torch::ones({4}), 1e-5, 1e-5));

  torch::NoGradGuard no_grad;
  at::Tensor roi = torch::randn({2, 5, 2052});
  at::Tensor mask = torch::tensor({1, 1, 0, 0, 0, 1, 1, 1, 1, 1}, torch::kBool).view({2, 5});
  at::Tensor a = m->encode_roi(roi, mask);
  at::Tensor roi2 = roi.clone();
  roi2.narrow(1, 2, 3).select(0, 0).fill_(-4.0);
  EXPECT_TRUE(torch::allclose(a, m->encode_roi(roi2, mask), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(a[0], m->encode_roi(roi.narrow(0, 0, 1).narrow(1, 0, 2), {})[0], 1e-5, 1e-6));
  // an all-real mask equals no mask (official: unmasked mean and attention)
  at::Tensor all = torch::ones({2, 5}, torch::kBool);
  EXPECT_TRUE(torch::allclose(m->encode_roi(roi, all), m->encode_roi(roi, {}), 1e-5, 1e-6));
}

TEST(ModelParts, AttentionPoolMatchesFullAttention) {
  torch::manual_seed(14);
  const int64_t c = 32, heads = 4, out = 24;
  AttentionPool2d pool(2, c, heads, out, true, 2052);
  torch::nn::MultiheadAttention ref(torch::nn::MultiheadAttentionOptions(c, heads));
  torch::NoGradGuard no_grad;
  ref->in_proj_weight.copy_(torch::cat({pool->q_proj->weight, pool->k_proj->weight, pool->v_proj->weight}));
  ref->in_proj_bias.copy_(torch::cat({pool->q_proj->bias, pool->k_proj->bias, pool->v_proj->bias}));
  ref->out_proj->weight.copy_(torch::eye(c));
  ref->out_proj->bias.zero_();
  at::Tensor x = torch::randn({3, c, 2, 2});
  // official AttentionPool2d.forward, [HW+1, B, C]
  at::Tensor t = x.reshape({3, c, 4}).permute({2, 0, 1});
  t = torch::cat({t.mean(0, true), t}, 0) + pool->positional_embedding.unsqueeze(1);
  at::Tensor att = std::get<0>(ref->forward(t, t, t, {}, false))[0];
  at::Tensor want = pool->c_proj->forward(att);
  EXPECT_TRUE(torch::allclose(pool->forward(x), want, 1e-5, 1e-5));
}

}  // namespace
}  // namespace pc
