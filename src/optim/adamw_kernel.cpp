// Fused AdamW loop, instantiated per instruction set (util/cpu_isa.h). Built with
// -ffp-contract=off: each element gets the same roundings whether it falls in a vector body or a
// scalar tail, so the result does not depend on where a rank's slice starts (ZeRO stages agree
// bitwise) and it follows the ATen ops' rounding steps.
#include "pyramidclip/optim/adamw_kernel.h"

#include <cmath>

#include "pyramidclip/util/cpu_isa.h"

namespace pc::kernel {
namespace {

template <class T>
PC_INLINE void update_body(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t n,
                           const AdamWStep& s) {
  // the scalars in T, as ATen's CPU kernels convert a Scalar for a float tensor
  const T decay = static_cast<T>(s.decay), b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T one_minus_b1 = static_cast<T>(1 - s.beta1), one_minus_b2 = static_cast<T>(1 - s.beta2);
  const T sqrt_bc2 = static_cast<T>(s.sqrt_bias_correction2), eps = static_cast<T>(s.eps);
  const T neg_step = static_cast<T>(-s.step_size);
  const bool decays = s.decay != 1.0;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T pi = decays ? p[i] * decay : p[i];
    const T mi = m[i] * b1 + one_minus_b1 * gi;
    const T vi = v[i] * b2 + one_minus_b2 * gi * gi;
    const T denom = std::sqrt(vi) / sqrt_bc2 + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + neg_step * (mi / denom);
  }
}

#if PC_HAVE_ISA_TARGETS
template <class T>
PC_TARGET_AVX512 void update_avx512(T* p, T* m, T* v, const T* g, int64_t n, const AdamWStep& s) {
  update_body(p, m, v, g, n, s);
}
template <class T>
PC_TARGET_AVX2 void update_avx2(T* p, T* m, T* v, const T* g, int64_t n, const AdamWStep& s) {
  update_body(p, m, v, g, n, s);
}
#endif

template <class T>
void update(T* p, T* m, T* v, const T* g, int64_t n, const AdamWStep& s) {
#if PC_HAVE_ISA_TARGETS
  if (cpu_isa() == CpuIsa::kAvx512) return update_avx512(p, m, v, g, n, s);
  if (cpu_isa() == CpuIsa::kAvx2) return update_avx2(p, m, v, g, n, s);
#endif
  update_body(p, m, v, g, n, s);
}

}  // namespace

void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamWStep& s) {
  update(p, m, v, g, n, s);
}
void adamw_update(double* p, double* m, double* v, const double* g, int64_t n, const AdamWStep& s) {
  update(p, m, v, g, n, s);
}

}  // namespace pc::kernel
