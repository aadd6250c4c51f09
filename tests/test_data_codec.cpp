// Image codecs and .npy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/rng.h"

namespace pc {
namespace {

Image test_image(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.pixel(x, y);
      p[0] = static_cast<uint8_t>(255 * x / (w - 1));
      p[1] = static_cast<uint8_t>(255 * y / (h - 1));
      p[2] = static_cast<uint8_t>((x - w / 2) * (x - w / 2) + (y - h / 2) * (y - h / 2) < w * h / 16 ? 200 : 40);
    }
  return img;
}

double psnr(const Image& a, const Image& b) {
  double se = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) se += (a.rgb[i] - b.rgb[i]) * (a.rgb[i] - b.rgb[i]);
  const double mse = se / a.rgb.size();
  return 10 * std::log10(255.0 * 255.0 / std::max(mse, 1e-9));
}

TEST(DataCodec, JpegRoundTripIsClose) {
  const Image src = test_image(96, 80);
  const std::string jpg = encode_jpeg(src, 90);
  ASSERT_GT(jpg.size(), 100u);
  EXPECT_EQ(static_cast<uint8_t>(jpg[0]), 0xFF);
  const Image back = decode_jpeg(jpg.data(), jpg.size());
  ASSERT_EQ(back.width, 96);
  ASSERT_EQ(back.height, 80);
  EXPECT_GT(psnr(src, back), 30.0);
  // decode_image dispatches by magic bytes, even under a wrong extension
  const Image again = decode_image(jpg.data(), jpg.size(), "png");
  EXPECT_EQ(again.rgb, back.rgb);
}

TEST(DataCodec, JpegReducedDctScaling) {
  const Image src = test_image(512, 400);
  const std::string jpg = encode_jpeg(src, 90);
  const Image full = decode_jpeg(jpg.data(), jpg.size());
  EXPECT_EQ(full.width, 512);
  const Image small = decode_jpeg(jpg.data(), jpg.size(), 96);  // 1/4 keeps the short side at 100 >= 96
  EXPECT_EQ(small.width, 128);
  EXPECT_EQ(small.height, 100);
  const Image half = decode_jpeg(jpg.data(), jpg.size(), 150);  // 1/2: 200 >= 150, 3/8: 150 >= 150
  EXPECT_LE(half.height, 200);
  EXPECT_GE(half.height, 150);
}

TEST(DataCodec, GrayAndCmykJpegBecomeRgb) {
  std::vector<uint8_t> gray(64 * 48);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i % 64 * 4);
  const std::string g = encode_jpeg_gray(gray, 64, 48);
  const Image gi = decode_image(g.data(), g.size(), "jpg");
  ASSERT_EQ(gi.rgb.size(), 64u * 48 * 3);
  for (int x : {0, 20, 63}) {
    const uint8_t* p = gi.pixel(x, 10);
    EXPECT_EQ(p[0], p[1]);
    EXPECT_EQ(p[1], p[2]);
    EXPECT_NEAR(p[0], x * 4, 12);
  }
  // Adobe-style inverted CMYK (255 = no ink): red is no cyan (C=255), full magenta and yellow
  // (M=Y=0) and no black (K=255).
  std::vector<uint8_t> cmyk(32 * 32 * 4);
  for (size_t i = 0; i < 32 * 32; ++i) {
    cmyk[4 * i] = 255;
    cmyk[4 * i + 1] = 0;
    cmyk[4 * i + 2] = 0;
    cmyk[4 * i + 3] = 255;
  }
  const std::string c = encode_jpeg_cmyk(cmyk, 32, 32);
  const Image ci = decode_image(c.data(), c.size(), "jpg");
  ASSERT_EQ(ci.width, 32);
  const uint8_t* p = ci.pixel(16, 16);
  EXPECT_GT(p[0], 240);
  EXPECT_LT(p[1], 15);
  EXPECT_LT(p[2], 15);
}

TEST(DataCodec, CorruptImagesThrowCorruptData) {
  const std::string jpg = encode_jpeg(test_image(64, 64), 90);
  EXPECT_THROW(decode_image(jpg.data(), jpg.size() / 2, "jpg"), CorruptData);  // truncated
  EXPECT_THROW(decode_image("", 0, "jpg"), CorruptData);                        // zero bytes
  const std::string garbage(1000, 'x');
  EXPECT_THROW(decode_image(garbage.data(), garbage.size(), "jpg"), CorruptData);
  EXPECT_THROW(decode_image(garbage.data(), garbage.size(), "png"), CorruptData);
  EXPECT_THROW(decode_image(garbage.data(), garbage.size(), "gif"), CorruptData);
  std::string bad_header = jpg;
  for (size_t i = 2; i < 40; ++i) bad_header[i] = 0;  // keeps the SOI magic, kills the headers
  EXPECT_THROW(decode_image(bad_header.data(), bad_header.size(), "jpg"), CorruptData);
  // a corrupt image must not poison this thread's decoder for the next, valid one
  std::string bogus_tables = jpg;
  for (size_t i = 20; i < 400 && i < bogus_tables.size(); i += 7) bogus_tables[i] = '\xC4';
  try {
    decode_image(bogus_tables.data(), bogus_tables.size(), "jpg");
  } catch (const CorruptData&) {
  }
  EXPECT_EQ(decode_image(jpg.data(), jpg.size(), "jpg").width, 64);
}

TEST(DataCodec, PngRoundTripIsExact) {
  const Image src = test_image(40, 30);
  std::string png;
  try {
    png = encode_png(src);
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << e.what();
  }
  const Image back = decode_image(png.data(), png.size(), "png");
  ASSERT_EQ(back.width, 40);
  ASSERT_EQ(back.height, 30);
  EXPECT_EQ(back.rgb, src.rgb);
  EXPECT_THROW(decode_png(png.data(), png.size() - 20), CorruptData);
}

TEST(DataCodec, HalfConversionMatchesC10) {
  Rng rng(7);
  std::vector<float> values = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65520.0f, 1e-8f, 5.96e-8f, 6.1e-5f, 3.0e-5f,
                               1e6f, -1e6f, 0.1f, 1.0f / 3.0f};
  for (int i = 0; i < 20000; ++i) values.push_back(static_cast<float>(rng.normal() * std::pow(10.0, rng.uniform(-8, 5))));
  for (float f : values) {
    const c10::Half ref(f);
    EXPECT_EQ(float_to_half(f), ref.x) << f;
    EXPECT_EQ(half_to_float(float_to_half(f)), static_cast<float>(ref)) << f;
  }
}

TEST(DataCodec, NpyRoundTrip) {
  std::vector<float> m(3 * 2052);
  Rng rng(1);
  for (float& v : m) v = static_cast<float>(rng.normal());
  for (NpyDtype dt : {NpyDtype::kFloat16, NpyDtype::kFloat32}) {
    const std::string bytes = encode_npy(m.data(), 3, 2052, dt);
    EXPECT_EQ((bytes.size() - m.size() * (dt == NpyDtype::kFloat16 ? 2 : 4)) % 64, 0u);  // header aligned
    const NpyArray a = parse_npy(bytes.data(), bytes.size());
    ASSERT_EQ(a.shape, (std::vector<int64_t>{3, 2052}));
    for (size_t i = 0; i < m.size(); ++i)
      ASSERT_NEAR(a.data[i], m[i], dt == NpyDtype::kFloat16 ? 2e-3 * std::max(1.0f, std::fabs(m[i])) : 0.0);
  }
  // what numpy writes for np.zeros((0, 2052), np.float16) parses as an empty matrix
  const std::string empty = encode_npy(nullptr, 0, 2052);
  EXPECT_EQ(parse_npy(empty.data(), empty.size()).rows(), 0);
}

TEST(DataCodec, CorruptNpyThrows) {
  std::vector<float> m(10, 1.0f);
  const std::string good = encode_npy(m.data(), 2, 5);
  EXPECT_THROW(parse_npy(good.data(), good.size() - 1), CorruptData);
  const std::string garbage(200, '\x07');
  EXPECT_THROW(parse_npy(garbage.data(), garbage.size()), CorruptData);
  std::string wrong_dtype = good;
  wrong_dtype.replace(wrong_dtype.find("<f2"), 3, "<i8");
  EXPECT_THROW(parse_npy(wrong_dtype.data(), wrong_dtype.size()), CorruptData);
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_THROW(parse_npy(fortran.data(), fortran.size()), CorruptData);
}

}  // namespace
}  // namespace pc
