// PyramidClip: parameter counts and state-dict keys of the published sizes, forward/backward of the
// tiny model (shapes, unit norm, ROI masking, text pooling, gradient reach), input validation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <map>
#include <string>

#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

ModelConfig preset(const std::string& name, bool official, bool with_roi) {
  ModelConfig c = model_preset(name, official);
  c.with_roi = with_roi;
  return c;
}

struct Shapes {
  std::map<std::string, std::vector<int64_t>> shape;
  std::map<std::string, bool> trainable;
  int64_t params = 0;
};

// Builds the model once and keeps what the tests need (the B-sized models take ~600 MB each).
Shapes inspect(const ModelConfig& cfg) {
  torch::NoGradGuard no_grad;
  PyramidClip m(cfg);
  Shapes s;
  for (const auto& p : m->named_parameters()) {
    s.shape[p.key()] = p.value().sizes().vec();
    s.trainable[p.key()] = p.value().requires_grad();
  }
  for (const auto& b : m->named_buffers()) s.shape[b.key()] = b.value().sizes().vec();
  s.params = count_parameters(*m);
  return s;
}

void expect_key(const Shapes& s, const std::string& key, std::vector<int64_t> shape) {
  auto it = s.shape.find(key);
  ASSERT_NE(it, s.shape.end()) << "missing key " << key;
  EXPECT_EQ(it->second, shape) << key;
}

void expect_no_key(const Shapes& s, const std::string& key) { EXPECT_EQ(s.shape.count(key), 0u) << key; }

// Extra parameters of the official ViT: each LeFF adds 2 BN1d/BN2d (2 x 4d each), the
// depthwise 3x3 kernel (9 x 4d) and BN1d(d) (2d) to the tensors a standard MLP has.
int64_t leff_extra(int64_t width, int64_t leff_layers) { return leff_layers * (8 * width + 36 * width + 8 * width + 2 * width); }

TEST(ModelCounts, VitB32) {
  const Shapes std_ = inspect(preset("vit-b32", false, false));
  EXPECT_EQ(std_.params, 151277313);
  expect_key(std_, "visual.conv1.weight", {768, 3, 32, 32});
  expect_key(std_, "visual.class_embedding", {768});
  expect_key(std_, "visual.positional_embedding", {50, 768});
  expect_key(std_, "visual.ln_pre.weight", {768});
  expect_key(std_, "visual.transformer.resblocks.0.attn.in_proj_weight", {2304, 768});
  expect_key(std_, "visual.transformer.resblocks.0.attn.in_proj_bias", {2304});
  expect_key(std_, "visual.transformer.resblocks.0.attn.out_proj.weight", {768, 768});
  expect_key(std_, "visual.transformer.resblocks.11.mlp.c_fc.weight", {3072, 768});
  expect_key(std_, "visual.transformer.resblocks.11.mlp.c_proj.bias", {768});
  expect_key(std_, "visual.transformer.resblocks.11.ln_2.bias", {768});
  expect_key(std_, "visual.ln_post.weight", {768});
  expect_key(std_, "visual.proj", {768, 512});
  expect_key(std_, "token_embedding.weight", {49408, 512});
  expect_key(std_, "positional_embedding", {77, 512});
  expect_key(std_, "transformer.resblocks.11.attn.in_proj_weight", {1536, 512});
  expect_key(std_, "ln_final.weight", {512});
  expect_key(std_, "text_projection", {512, 512});
  expect_key(std_, "logit_scale", {});
  expect_no_key(std_, "visual.proj_pre");
  EXPECT_TRUE(std_.trainable.at("visual.conv1.weight"));

  const Shapes off = inspect(preset("vit-b32", true, true));
  const int64_t extra = leff_extra(768, 9) + 2052 * 768;
  std::printf("vit-b32 official: %lld = %lld + LeFF %lld + proj_pre %d\n", static_cast<long long>(off.params),
              static_cast<long long>(std_.params), static_cast<long long>(leff_extra(768, 9)), 2052 * 768);
  EXPECT_EQ(off.params, std_.params + extra);
  expect_key(off, "visual.transformer.resblocks1.0.mlp.linear1.weight", {3072, 768});
  expect_key(off, "visual.transformer.resblocks1.0.mlp.ac1.bn.weight", {3072});
  expect_key(off, "visual.transformer.resblocks1.0.mlp.ac1.bn.running_var", {3072});
  expect_key(off, "visual.transformer.resblocks1.0.mlp.ac1.bn.num_batches_tracked", {});
  expect_key(off, "visual.transformer.resblocks1.0.mlp.depConv.depconv.weight", {3072, 1, 3, 3});
  expect_key(off, "visual.transformer.resblocks1.8.mlp.depConv.bn.running_mean", {3072});
  expect_key(off, "visual.transformer.resblocks1.8.mlp.linear2.weight", {768, 3072});
  expect_key(off, "visual.transformer.resblocks1.8.mlp.ac2.bn.bias", {768});
  expect_key(off, "visual.transformer.resblocks1.8.attn.in_proj_weight", {2304, 768});
  expect_key(off, "visual.transformer.resblocks2.0.mlp.c_fc.weight", {3072, 768});
  expect_key(off, "visual.transformer.resblocks2.2.attn.out_proj.bias", {768});
  expect_key(off, "visual.proj_pre", {2052, 768});
  // the official text transformer is the same split Transformer class (without LeFF)
  expect_key(off, "transformer.resblocks1.8.mlp.c_fc.weight", {2048, 512});
  expect_key(off, "transformer.resblocks2.2.mlp.c_proj.weight", {512, 2048});
  expect_no_key(off, "visual.transformer.resblocks1.9.attn.in_proj_weight");
  expect_no_key(off, "visual.transformer.resblocks2.3.attn.in_proj_weight");
  expect_no_key(off, "visual.transformer.resblocks.0.attn.in_proj_weight");
  EXPECT_FALSE(off.trainable.at("visual.conv1.weight"));
  EXPECT_TRUE(off.trainable.at("visual.proj_pre"));
}

TEST(ModelCounts, VitB16) {
  const Shapes std_ = inspect(preset("vit-b16", false, false));
  EXPECT_EQ(std_.params, 149620737);
  expect_key(std_, "visual.conv1.weight", {768, 3, 16, 16});
  expect_key(std_, "visual.positional_embedding", {197, 768});
  const Shapes off = inspect(preset("vit-b16", true, true));
  std::printf("vit-b16 official: %lld\n", static_cast<long long>(off.params));
  EXPECT_EQ(off.params, std_.params + leff_extra(768, 9) + 2052 * 768);
}

TEST(ModelCounts, Rn50) {
  const Shapes std_ = inspect(preset("rn50", false, false));
  EXPECT_EQ(std_.params, 102007137);
  expect_key(std_, "visual.conv1.weight", {32, 3, 3, 3});
  expect_key(std_, "visual.bn3.running_mean", {64});
  expect_key(std_, "visual.layer1.0.downsample.0.weight", {256, 64, 1, 1});
  expect_key(std_, "visual.layer1.0.downsample.1.running_var", {256});
  expect_key(std_, "visual.layer4.2.conv3.weight", {2048, 512, 1, 1});
  expect_key(std_, "visual.attnpool.positional_embedding", {50, 2048});
  expect_key(std_, "visual.attnpool.q_proj.weight", {2048, 2048});
  expect_key(std_, "visual.attnpool.k_proj.bias", {2048});
  expect_key(std_, "visual.attnpool.c_proj.weight", {1024, 2048});
  expect_key(std_, "text_projection", {512, 1024});
  expect_no_key(std_, "visual.attnpool.ln_pre.weight");
  expect_no_key(std_, "visual.layer1.1.downsample.0.weight");

  const Shapes off = inspect(preset("rn50", true, true));
  std::printf("rn50 official: %lld\n", static_cast<long long>(off.params));
  EXPECT_EQ(off.params, std_.params + 2052 * 2048 + 2 * 2048);
  expect_key(off, "visual.attnpool.proj_pre", {2052, 2048});
  expect_key(off, "visual.attnpool.ln_pre.weight", {2048});
  expect_key(off, "transformer.resblocks1.0.attn.in_proj_weight", {1536, 512});
}

TEST(ModelCounts, Tiny) {
  const Shapes std_ = inspect(preset("tiny", false, false));
  const Shapes off = inspect(preset("tiny", true, true));
  std::printf("tiny: standard %lld, official %lld\n", static_cast<long long>(std_.params),
              static_cast<long long>(off.params));
  const ModelConfig t = model_preset("tiny", true);
  const int64_t w = t.vision_width, tw = t.text_width;
  EXPECT_EQ(off.params, std_.params + leff_extra(w, 3) + 2052 * w);
  expect_key(off, "visual.transformer.resblocks1.2.mlp.depConv.depconv.weight", {4 * w, 1, 3, 3});
  expect_key(off, "visual.transformer.resblocks2.2.mlp.c_fc.weight", {4 * w, w});
  expect_key(off, "transformer.resblocks1.2.attn.in_proj_weight", {3 * tw, tw});
  expect_key(off, "transformer.resblocks2.0.attn.in_proj_weight", {3 * tw, tw});
}

TEST(ModelPresets, UnknownNameIsUserError) {
  try {
    model_preset("vit-b64", true);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("vit-b64"), std::string::npos);
  }
  ModelConfig c = model_preset("tiny", true);
  c.roi_layers = 2;
  EXPECT_THROW(PyramidClip{c}, UserError);
}

// ---------------------------------------------------------------- tiny forward / backward

Batch random_batch(const ModelConfig& c, int64_t b, int64_t m = 10) {
  Batch batch;
  batch.global_images = torch::randn({b, 3, c.image_size, c.image_size});
  batch.local_images = torch::randn({b, 3, c.image_size, c.image_size});
  batch.roi = torch::randn({b, m, c.roi_dim});
  batch.roi_mask = torch::ones({b, m}, torch::kBool);
  for (int64_t i = 0; i < b; ++i) batch.roi_mask.index_put_({i, torch::indexing::Slice(m - i % m, m)}, false);
  auto text = [&] {
    at::Tensor t = torch::zeros({b, c.context_length}, torch::kLong);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t len = 3 + i % 10;
      t.index_put_({i, 0}, 49406);
      t.index_put_({i, torch::indexing::Slice(1, len)}, torch::randint(1, 49000, {len - 1}));
      t.index_put_({i, len}, 49407);
    }
    return t;
  };
  batch.text = text();
  batch.summary = text();
  batch.tags = text();
  return batch;
}

void expect_unit_rows(const at::Tensor& x, int64_t b, int64_t d, const char* what) {
  ASSERT_TRUE(x.defined()) << what;
  EXPECT_EQ(x.sizes().vec(), (std::vector<int64_t>{b, d})) << what;
  EXPECT_TRUE(torch::allclose(x.norm(2, 1), torch::ones({b}), 1e-5, 1e-5)) << what;
}

TEST(ModelForward, TinyOfficialShapesAndNorms) {
  torch::manual_seed(0);
  const ModelConfig c = model_preset("tiny", true);
  PyramidClip m(c);
  m->train();
  Batch batch = random_batch(c, 4);
  Embeddings e = m->forward(batch);
  for (auto [t, n] : {std::pair{e.image_global, "global"}, {e.image_local, "local"}, {e.roi, "roi"},
                      {e.text, "text"}, {e.summary, "summary"}, {e.tags, "tags"}})
    expect_unit_rows(t, 4, c.embed_dim, n);
  EXPECT_NEAR(e.logit_scale.item<double>(), 1 / 0.07, 1e-3);
  EXPECT_EQ(e.logit_scale.dim(), 0);

  Batch partial;
  partial.global_images = batch.global_images;
  partial.text = batch.text;
  Embeddings p = m->forward(partial);
  EXPECT_TRUE(p.image_global.defined() && p.text.defined());
  EXPECT_FALSE(p.image_local.defined() || p.roi.defined() || p.summary.defined() || p.tags.defined());

  // eval mode (running BN statistics) still gives unit vectors
  m->eval();
  torch::NoGradGuard no_grad;
  expect_unit_rows(m->encode_image(batch.global_images), 4, c.embed_dim, "eval image");
}

TEST(ModelForward, TextConcatenationMatchesSeparateCalls) {
  torch::manual_seed(1);
  const ModelConfig c = model_preset("tiny", false);
  PyramidClip m(c);
  torch::NoGradGuard no_grad;
  Batch batch = random_batch(c, 3);
  Embeddings e = m->forward(batch);
  EXPECT_TRUE(torch::allclose(e.summary, m->encode_text(batch.summary), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(e.tags, m->encode_text(batch.tags), 1e-5, 1e-6));
}

TEST(ModelForward, RoiPaddingDoesNotMatter) {
  torch::manual_seed(2);
  for (bool official : {true, false}) {
    ModelConfig c = model_preset("tiny", official);
    PyramidClip m(c);
    m->train();  // no BatchNorm on the ROI path: train mode must not matter either
    torch::NoGradGuard no_grad;
    at::Tensor roi = torch::randn({3, 6, c.roi_dim});
    at::Tensor mask = torch::tensor({1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, torch::kBool).view({3, 6});
    at::Tensor a = m->encode_roi(roi, mask);
    at::Tensor roi2 = roi.clone();
    roi2.masked_fill_(mask.logical_not().unsqueeze(-1), 7.5);
    at::Tensor b = m->encode_roi(roi2, mask);
    EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6)) << "official=" << official;
    // dropping the padded regions altogether gives the same embedding
    EXPECT_TRUE(torch::allclose(a[0], m->encode_roi(roi.narrow(0, 0, 1).narrow(1, 0, 3), {})[0], 1e-5, 1e-6));
    // real regions do matter
    at::Tensor roi3 = roi.clone();
    roi3.index_put_({0, 0}, 3.0);
    EXPECT_FALSE(torch::allclose(a[0], m->encode_roi(roi3, mask)[0], 1e-4, 1e-5));
    ASSERT_FALSE(torch::isnan(a).any().item<bool>());
  }
}

TEST(ModelForward, TextPooling) {
  torch::manual_seed(3);
  at::Tensor tokens = torch::zeros({2, 77}, torch::kLong);
  tokens.index_put_({torch::indexing::Slice(), 0}, 49406);
  tokens.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, 5)}, torch::randint(1, 49000, {2, 4}));
  tokens.index_put_({torch::indexing::Slice(), 5}, 49407);
  at::Tensor after_eot = tokens.clone();
  after_eot.index_put_({torch::indexing::Slice(), torch::indexing::Slice(6, 77)}, 1234);
  at::Tensor before_eot = tokens.clone();
  before_eot.index_put_({0, 2}, 77);

  for (const char* pool : {"eot", "max"}) {
    ModelConfig c = model_preset("tiny", false);
    c.text_pool = pool;
    torch::manual_seed(4);
    PyramidClip m(c);
    torch::NoGradGuard no_grad;
    at::Tensor base = m->encode_text(tokens);
    at::Tensor changed_after = m->encode_text(after_eot);
    // the causal mask: tokens after the EOT never reach the EOT position; max pools over them
    if (std::string(pool) == "eot")
      EXPECT_TRUE(torch::allclose(base, changed_after, 1e-5, 1e-6));
    else
      EXPECT_FALSE(torch::allclose(base, changed_after, 1e-4, 1e-5));
    at::Tensor changed_before = m->encode_text(before_eot);
    EXPECT_FALSE(torch::allclose(base[0], changed_before[0], 1e-4, 1e-5)) << pool;
    EXPECT_TRUE(torch::allclose(base[1], changed_before[1], 1e-5, 1e-6)) << pool;
    // shorter contexts are accepted (positions 0..L-1)
    EXPECT_EQ(m->encode_text(tokens.narrow(1, 0, 6)).size(0), 2);
  }
}

TEST(ModelForward, GradientsReachEveryTrainableParameter) {
  torch::manual_seed(5);
  for (bool official : {true, false}) {
    ModelConfig c = model_preset("tiny", official);
    PyramidClip m(c);
    m->train();
    Batch batch = random_batch(c, 4);
    Embeddings e = m->forward(batch);
    at::Tensor loss = e.logit_scale * ((e.image_global * e.summary).sum() + (e.image_local * e.text).sum() +
                                       (e.roi * e.tags).sum() + (e.roi * e.text).sum());
    loss.backward();
    for (const auto& p : m->named_parameters()) {
      if (!p.value().requires_grad()) {
        EXPECT_TRUE(official && p.key() == "visual.conv1.weight") << p.key() << " is frozen";
        EXPECT_FALSE(p.value().grad().defined()) << p.key();
        continue;
      }
      ASSERT_TRUE(p.value().grad().defined()) << p.key() << " got no gradient (official=" << official << ")";
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key() << " (official=" << official << ")";
    }
  }
}

TEST(ModelForward, BadInputsAreUserErrors) {
  ModelConfig c = model_preset("tiny", true);
  PyramidClip m(c);
  torch::NoGradGuard no_grad;
  auto expect_error = [](auto&& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { m->encode_image(torch::randn({2, 3, 32, 32})); }, "[2,3,32,32]");
  expect_error([&] { m->encode_roi(torch::randn({2, 5, 2048}), {}); }, "2052");
  expect_error([&] { m->encode_roi(torch::randn({2, 5, 2052}), torch::ones({2, 4}, torch::kBool)); }, "mask");
  expect_error([&] { m->encode_text(torch::zeros({2, 78}, torch::kLong)); }, "77");
  expect_error([&] { m->encode_text(torch::full({2, 77}, 49408, torch::kLong)); }, "49408");
  c.with_roi = false;
  PyramidClip no_roi(c);
  expect_error([&] { no_roi->encode_roi(torch::randn({2, 5, 2052}), {}); }, "ROI");
}


}  // namespace
}  // namespace pc
