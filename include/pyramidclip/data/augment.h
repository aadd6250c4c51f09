#pragma once
// Image transforms (DESIGN §1): training views by torchvision's RandomResizedCrop + antialiased
// bilinear resize; evaluation by CLIP's resize-shorter-side (bicubic) + center crop; both end
// with CLIP's mean/std normalization.
#include <ATen/ATen.h>

#include "pyramidclip/data/image.h"
#include "pyramidclip/data/rng.h"

namespace pc {

inline constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// Fraction of the image area a random crop covers (torchvision's `scale`).
struct CropRange {
  double min = 0.9, max = 1.0;
};

struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

// torchvision.transforms.RandomResizedCrop.get_params: up to 10 tries of (area fraction uniform in
// [scale.min, scale.max], log-uniform aspect ratio in [ratio_min, ratio_max]) that fit the image,
// else a center crop clamped to the ratio range.
CropBox sample_resized_crop(int height, int width, CropRange scale, Rng& rng, double ratio_min = 3.0 / 4.0,
                            double ratio_max = 4.0 / 3.0);

// A non-owning [3,H,W] uint8 view of an Image's pixels (valid while `img` lives).
at::Tensor image_view(const Image& img);

// Crops `box` from a [3,H,W] image (uint8 or float, 0..255) and resizes it to size x size with
// antialiased bilinear interpolation; returns float32 [3,size,size] in 0..1 (not normalized).
at::Tensor resized_crop(const at::Tensor& chw, CropBox box, int size);

// sample_resized_crop + resized_crop on a decoded image: float32 [3,size,size] in 0..1.
at::Tensor random_resized_crop(const Image& img, int size, CropRange scale, Rng& rng);

// The loaders' fast path: clip_normalize_(resized_crop(image_view(img), box, size)) computed
// straight from the 8-bit pixels with the same antialiased bilinear weights as
// at::_upsample_bilinear2d_aa (horizontal pass, then vertical), written to out[3][size][size].
// ~10x faster than the ATen kernel in LibTorch 1.13 and no allocation per call but a row buffer.
void resized_crop_normalized(const Image& img, CropBox box, int size, float* out);

// (x - mean) / std per channel, for x in 0..1 with channels at dim -3; in place and returns x.
at::Tensor& clip_normalize_(at::Tensor& x);

// CLIP's eval transform: resize the shorter side to `size` (bicubic, antialiased, rounded to
// 8 bits as PIL does), center crop size x size, normalize. float32 [3,size,size].
at::Tensor eval_transform(const Image& img, int size);

}  // namespace pc
