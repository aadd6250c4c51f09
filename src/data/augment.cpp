// Crops and resizes on ATen tensors; the crop parameters come from pc::Rng so the views are
// reproducible from the loader seed alone.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "pyramidclip/data/augment.h"

namespace pc {

CropBox sample_resized_crop(int height, int width, CropRange scale, Rng& rng, double ratio_min, double ratio_max) {
  const double area = static_cast<double>(height) * width;
  const double log_lo = std::log(ratio_min), log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(scale.min, scale.max);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    // Python's round() rounds half to even; nearbyint does the same in the default mode
    const int w = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect)));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.height = h;
      box.width = w;
      box.top = static_cast<int>(rng.range(0, height - h));
      box.left = static_cast<int>(rng.range(0, width - w));
      return box;
    }
  }
  // Fallback: central crop with the ratio clamped to the allowed range.
  const double in_ratio = static_cast<double>(width) / height;
  CropBox box;
  if (in_ratio < ratio_min) {
    box.width = width;
    box.height = static_cast<int>(std::nearbyint(width / ratio_min));
  } else if (in_ratio > ratio_max) {
    box.height = height;
    box.width = static_cast<int>(std::nearbyint(height * ratio_max));
  } else {
    box.width = width;
    box.height = height;
  }
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

at::Tensor image_view(const Image& img) {
  // from_blob needs a non-const pointer; the tensor is only ever read
  auto* p = const_cast<uint8_t*>(img.rgb.data());
  return at::from_blob(p, {img.height, img.width, 3}, at::TensorOptions().dtype(at::kByte)).permute({2, 0, 1});
}

at::Tensor resized_crop(const at::Tensor& chw, CropBox box, int size) {
  at::Tensor crop = chw.slice(1, box.top, box.top + box.height).slice(2, box.left, box.left + box.width);
  at::Tensor x = crop.to(at::kFloat).unsqueeze(0);
  if (box.height != size || box.width != size)
    x = at::_upsample_bilinear2d_aa(x, {size, size}, /*align_corners=*/false);
  return x.squeeze(0).mul(1.0f / 255.0f);  // not in place: x may alias a float input
}

at::Tensor random_resized_crop(const Image& img, int size, CropRange scale, Rng& rng) {
  const CropBox box = sample_resized_crop(img.height, img.width, scale, rng);
  return resized_crop(image_view(img), box, size);
}

namespace {

// Four floats in one SIMD register (GCC/Clang vector extension; SSE on x86-64, NEON on ARM).
typedef float Float4 __attribute__((vector_size(16)));

// Antialiased linear ("triangle") filter taps per output index, as ATen's
// HelperInterpLinear::_compute_weights_aa and PIL's ImagingResample compute them.
struct AaTaps {
  int taps = 0;                // max taps per output
  std::vector<int> start, count;
  std::vector<float> w;        // out x taps, normalized to sum 1
};

AaTaps aa_linear_taps(int in, int out) {
  AaTaps t;
  const double scale = static_cast<double>(in) / out;
  const double support = scale >= 1.0 ? scale : 1.0;  // interp_size / 2 * max(scale, 1)
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  t.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.start.resize(out);
  t.count.resize(out);
  t.w.assign(static_cast<size_t>(out) * t.taps, 0.0f);
  for (int i = 0; i < out; ++i) {
    const double center = scale * (i + 0.5);
    const int xmin = std::max(static_cast<int>(static_cast<int64_t>(center - support + 0.5)), 0);
    const int xmax = std::min(static_cast<int>(static_cast<int64_t>(center + support + 0.5)), in);
    const int n = std::min(xmax - xmin, t.taps);
    double total = 0;
    for (int j = 0; j < n; ++j) total += std::max(0.0, 1.0 - std::fabs((j + xmin - center + 0.5) * invscale));
    for (int j = 0; j < n; ++j) {
      const double w = std::max(0.0, 1.0 - std::fabs((j + xmin - center + 0.5) * invscale));
      t.w[static_cast<size_t>(i) * t.taps + j] = static_cast<float>(total != 0.0 ? w / total : w);
    }
    t.start[i] = xmin;
    t.count[i] = n;
  }
  return t;
}

// One row of the horizontal pass: dst[ox][c] = sum_j w[ox][j] * rf[(start[ox] + j) * 3 + c] over
// the first T taps (T = 0: hx.taps, not unrolled). rf holds floats with zero padding behind.
template <int T>
void horizontal_taps(const AaTaps& hx, const float* rf, int size, float* dst) {
  const int taps = T > 0 ? T : hx.taps;
  for (int ox = 0; ox < size; ++ox) {
    const float* w = hx.w.data() + static_cast<size_t>(ox) * taps;
    const float* p = rf + static_cast<size_t>(hx.start[ox]) * 3;
    Float4 acc = {0, 0, 0, 0};
    for (int j = 0; j < taps; ++j) {
      Float4 v;
      std::memcpy(&v, p + 3 * j, sizeof v);
      acc += v * w[j];
    }
    dst[3 * ox] = acc[0];
    dst[3 * ox + 1] = acc[1];
    dst[3 * ox + 2] = acc[2];
  }
}

}  // namespace

void resized_crop_normalized(const Image& img, CropBox box, int size, float* out) {
  TORCH_CHECK(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 &&
                  box.top + box.height <= img.height && box.left + box.width <= img.width,
              "resized_crop_normalized: crop box outside the image");
  const AaTaps hx = aa_linear_taps(box.width, size), hy = aa_linear_taps(box.height, size);
  // horizontal pass over every crop row: tmp[y][ox][c]. The row is widened to float once (u8 ->
  // float is exact), then each tap adds w * (r, g, b, next r) as one 4-lane vector over a fixed
  // number of taps (the zero weights past an output's count add exact zeros): the same products
  // and sums per channel as a scalar loop, bit for bit, and 1.4-1.8x faster (whole crop) than
  // converting every byte at every tap (bench/RESULTS.md, decode + augment).
  thread_local std::vector<float> tmp, row_f;
  tmp.resize(static_cast<size_t>(box.height) * size * 3);
  const size_t row_vals = static_cast<size_t>(box.width) * 3;
  // zero padding: the last output's taps reach up to `taps` pixels past the crop, and the 4-lane
  // load of a pixel reads one value past it
  row_f.assign(row_vals + static_cast<size_t>(hx.taps) * 3 + 1, 0.0f);
  for (int y = 0; y < box.height; ++y) {
    const uint8_t* row = img.pixel(box.left, box.top + y);
    float* rf = row_f.data();
    for (size_t k = 0; k < row_vals; ++k) rf[k] = row[k];
    float* dst = tmp.data() + static_cast<size_t>(y) * size * 3;
    switch (hx.taps) {  // 3: upscaling, 5: down by up to 2x, 7: up to 3x, ...
      case 3: horizontal_taps<3>(hx, rf, size, dst); break;
      case 5: horizontal_taps<5>(hx, rf, size, dst); break;
      case 7: horizontal_taps<7>(hx, rf, size, dst); break;
      case 9: horizontal_taps<9>(hx, rf, size, dst); break;
      default: horizontal_taps<0>(hx, rf, size, dst); break;
    }
  }
  // vertical pass + normalization: (v / 255 - mean) / std = v * a + b
  float a[3], b[3];
  for (int c = 0; c < 3; ++c) {
    a[c] = 1.0f / (255.0f * kClipStd[c]);
    b[c] = -kClipMean[c] / kClipStd[c];
  }
  const size_t plane = static_cast<size_t>(size) * size, row_len = static_cast<size_t>(size) * 3;
  thread_local std::vector<float> acc;
  acc.resize(row_len);
  for (int oy = 0; oy < size; ++oy) {
    // weighted sum of whole interleaved rows (a vectorizable axpy per tap), then de-interleave
    const float* w = hy.w.data() + static_cast<size_t>(oy) * hy.taps;
    const float* base = tmp.data() + static_cast<size_t>(hy.start[oy]) * row_len;
    std::fill(acc.begin(), acc.end(), 0.0f);
    float* ac = acc.data();
    for (int j = 0; j < hy.count[oy]; ++j) {
      const float wj = w[j];
      const float* src = base + static_cast<size_t>(j) * row_len;
      for (size_t k = 0; k < row_len; ++k) ac[k] += wj * src[k];
    }
    float* o0 = out + static_cast<size_t>(oy) * size;
    for (int ox = 0; ox < size; ++ox)
      for (int c = 0; c < 3; ++c) o0[c * plane + ox] = ac[3 * ox + c] * a[c] + b[c];
  }
}

at::Tensor& clip_normalize_(at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 3 && x.size(-3) == 3, "clip_normalize_: expected channels at dim -3");
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[shape.size() - 3] = 3;
  const at::Tensor mean = torch::tensor({kClipMean[0], kClipMean[1], kClipMean[2]}).view(shape);
  const at::Tensor stdv = torch::tensor({kClipStd[0], kClipStd[1], kClipStd[2]}).view(shape);
  x.sub_(mean).div_(stdv);
  return x;
}

at::Tensor eval_transform(const Image& img, int size) {
  TORCH_CHECK(!img.empty(), "eval_transform: empty image");
  // torchvision Resize(int): the shorter side becomes `size`, the longer keeps the aspect (truncated)
  int new_h, new_w;
  if (img.height <= img.width) {
    new_h = size;
    new_w = static_cast<int>(static_cast<int64_t>(size) * img.width / img.height);
  } else {
    new_w = size;
    new_h = static_cast<int>(static_cast<int64_t>(size) * img.height / img.width);
  }
  at::Tensor x = image_view(img).to(at::kFloat).unsqueeze(0);
  if (new_h != img.height || new_w != img.width) {
    x = at::_upsample_bicubic2d_aa(x, {new_h, new_w}, /*align_corners=*/false);
    x = x.round_().clamp_(0, 255);  // PIL resamples into 8 bits
  }
  // CenterCrop: offsets round half to even, as Python's round()
  const int top = static_cast<int>(std::nearbyint((new_h - size) / 2.0));
  const int left = static_cast<int>(std::nearbyint((new_w - size) / 2.0));
  x = x.squeeze(0).slice(1, top, top + size).slice(2, left, left + size).mul(1.0f / 255.0f);
  return clip_normalize_(x);
}

}  // namespace pc
