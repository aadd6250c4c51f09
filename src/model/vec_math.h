#pragma once
// Branch-free float math for the hand-vectorized CPU kernels (attention_kernel.cpp,
// quick_gelu_kernel.cpp): inline, so each instruction-set build of a kernel gets its own copy.
#include <cstdint>
#include <cstring>

#include "pyramidclip/util/cpu_isa.h"

namespace pc::kernel {

// Below this exp() is under FLT_MIN: callers treat it as 0 (a softmax probability of a masked,
// -inf, score is then exactly 0 as in at::softmax).
constexpr float kExpFloor = -87.0f;

// exp(x) for x in [kExpFloor, 0]: Cody-Waite range reduction and a degree-6 polynomial (the
// Cephes expf coefficients, ~1 ulp). Branch-free, and rounding by adding 1.5 * 2^23 instead of
// floor() / an int conversion, so the loops around it vectorize on every instruction set.
PC_INLINE float exp_nonpositive(float x) {
  x = x < kExpFloor ? kExpFloor : x;
  const float t = x * 1.44269504088896341f + 12582912.0f;  // n = round(x / ln 2) in t's low bits
  const float n = t - 12582912.0f;
  int32_t t_bits;
  std::memcpy(&t_bits, &t, sizeof t_bits);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t scale_bits = (t_bits - 0x4B400000 + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}

// sigmoid(z) = 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) below, with e = exp(-|z|) <= 1: no
// overflow for any z.
PC_INLINE float sigmoid(float z) {
  const float e = exp_nonpositive(z < 0.0f ? z : -z);
  const float r = 1.0f / (1.0f + e);
  return z < 0.0f ? e * r : r;
}

}  // namespace pc::kernel
