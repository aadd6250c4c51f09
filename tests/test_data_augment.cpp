// Crops, resizes and normalization.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "pyramidclip/data/augment.h"

namespace pc {
namespace {

Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = r;
    img.rgb[i + 1] = g;
    img.rgb[i + 2] = b;
  }
  return img;
}

TEST(DataAugment, CropAreaWithinBounds) {
  Rng rng(11);
  for (const CropRange range : {CropRange{0.9, 1.0}, CropRange{0.5, 1.0}, CropRange{0.08, 1.0}}) {
    double min_seen = 1, max_seen = 0;
    for (int i = 0; i < 3000; ++i) {
      // aspect ratios inside [3/4, 4/3]: torchvision's fallback is then the whole image
      const int h = 96, w = i % 2 ? 96 : 120;
      const CropBox b = sample_resized_crop(h, w, range, rng);
      ASSERT_GE(b.top, 0);
      ASSERT_GE(b.left, 0);
      ASSERT_LE(b.top + b.height, h);
      ASSERT_LE(b.left + b.width, w);
      const double area = static_cast<double>(b.height) * b.width / (h * w);
      const double ratio = static_cast<double>(b.width) / b.height;
      // rounding w and h to whole pixels moves the area by about a pixel row
      EXPECT_GE(area, range.min - 0.03) << b.height << "x" << b.width;
      EXPECT_LE(area, range.max + 0.03) << b.height << "x" << b.width;
      EXPECT_GE(ratio, 3.0 / 4.0 - 0.05);
      EXPECT_LE(ratio, 4.0 / 3.0 + 0.05);
      min_seen = std::min(min_seen, area);
      max_seen = std::max(max_seen, area);
    }
    EXPECT_LT(min_seen, range.min + 0.05);  // the whole range is used
    EXPECT_GT(max_seen, range.max - 0.08);
  }
  // an image far outside the ratio range falls back to a center crop of the clamped ratio
  Rng r2(1);
  const CropBox b = sample_resized_crop(10, 1000, CropRange{0.99, 1.0}, r2);
  EXPECT_EQ(b.height, 10);
  EXPECT_EQ(b.width, 13);
  EXPECT_EQ(b.left, (1000 - 13) / 2);
}

TEST(DataAugment, CropIsDeterministicForAGivenRng) {
  Rng a(5), b(5);
  for (int i = 0; i < 100; ++i) {
    const CropBox x = sample_resized_crop(120, 90, CropRange{0.5, 1.0}, a);
    const CropBox y = sample_resized_crop(120, 90, CropRange{0.5, 1.0}, b);
    ASSERT_EQ(x.top, y.top);
    ASSERT_EQ(x.width, y.width);
  }
}

TEST(DataAugment, ResizedCropContentAndNormalization) {
  // left half black, right half white: a crop of the right part is white after resizing
  Image img = solid(64, 64, 0, 0, 0);
  for (int y = 0; y < 64; ++y)
    for (int x = 32; x < 64; ++x) std::fill(img.pixel(x, y), img.pixel(x, y) + 3, 255);
  at::Tensor right = resized_crop(image_view(img), CropBox{0, 40, 20, 20}, 48);
  ASSERT_EQ(right.sizes(), (at::IntArrayRef{3, 48, 48}));
  EXPECT_NEAR(right.min().item<float>(), 1.0f, 1e-5);
  at::Tensor whole = resized_crop(image_view(img), CropBox{0, 0, 64, 64}, 16);
  EXPECT_NEAR(whole.mean().item<float>(), 0.5f, 1e-3);
  // clip normalization of a mid-gray pixel
  at::Tensor x = torch::full({2, 3, 4, 4}, 0.5f);
  clip_normalize_(x);
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(x[1][c][2][3].item<float>(), (0.5f - kClipMean[c]) / kClipStd[c], 1e-6);
}

TEST(DataAugment, FastPathMatchesTheAtenKernel) {
  Image img;
  img.width = 97;
  img.height = 71;
  img.rgb.resize(97 * 71 * 3);
  Rng rng(2);
  for (auto& v : img.rgb) v = static_cast<uint8_t>(rng.below(256));
  const at::Tensor view = image_view(img);
  for (const CropBox box : {CropBox{0, 0, 71, 97}, CropBox{3, 5, 60, 50}, CropBox{10, 20, 33, 41}, CropBox{0, 0, 7, 9},
                            CropBox{1, 2, 64, 64}}) {
    for (int size : {16, 32, 64, 150}) {
      at::Tensor ref = resized_crop(view, box, size);
      clip_normalize_(ref);
      at::Tensor fast = at::empty({3, size, size});
      resized_crop_normalized(img, box, size, fast.data_ptr<float>());
      EXPECT_LT((fast - ref).abs().max().item<float>(), 2e-4)
          << box.top << "," << box.left << " " << box.height << "x" << box.width << " -> " << size;
    }
  }
}

TEST(DataAugment, EvalTransformShapeAndValues) {
  const Image img = solid(150, 100, 255, 0, 128);
  const at::Tensor t = eval_transform(img, 64);
  ASSERT_EQ(t.sizes(), (at::IntArrayRef{3, 64, 64}));
  EXPECT_NEAR(t[0].mean().item<float>(), (1.0f - kClipMean[0]) / kClipStd[0], 1e-4);
  EXPECT_NEAR(t[1].mean().item<float>(), (0.0f - kClipMean[1]) / kClipStd[1], 1e-4);
  EXPECT_NEAR(t[2].mean().item<float>(), (128.0f / 255 - kClipMean[2]) / kClipStd[2], 1e-4);
  // the center crop keeps the middle: a vertical stripe at the center survives, the edges go
  Image stripes = solid(300, 100, 0, 0, 0);
  for (int y = 0; y < 100; ++y)
    for (int x = 140; x < 160; ++x) std::fill(stripes.pixel(x, y), stripes.pixel(x, y) + 3, 255);
  const at::Tensor s = eval_transform(stripes, 50);
  ASSERT_EQ(s.sizes(), (at::IntArrayRef{3, 50, 50}));
  EXPECT_GT(s[0][25][25].item<float>(), 1.5f);   // white, normalized
  EXPECT_LT(s[0][25][2].item<float>(), -1.5f);   // black
  // a tall image and an image already at the size
  EXPECT_EQ(eval_transform(solid(40, 90, 1, 2, 3), 32).sizes(), (at::IntArrayRef{3, 32, 32}));
  EXPECT_EQ(eval_transform(solid(32, 32, 1, 2, 3), 32).sizes(), (at::IntArrayRef{3, 32, 32}));
}

TEST(DataAugment, RandomResizedCropOutputRange) {
  Rng rng(3);
  Image img = solid(96, 96, 10, 200, 30);
  const at::Tensor v = random_resized_crop(img, 64, CropRange{0.5, 1.0}, rng);
  ASSERT_EQ(v.sizes(), (at::IntArrayRef{3, 64, 64}));
  EXPECT_NEAR(v[1].mean().item<float>(), 200.0f / 255, 1e-4);
}

}  // namespace
}  // namespace pc
