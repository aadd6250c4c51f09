// QuickGELU kernels, one build per instruction set (util/cpu_isa.h).
#include "pyramidclip/model/quick_gelu_kernel.h"

#include "vec_math.h"

namespace pc::kernel {
namespace {

constexpr float kAlpha = static_cast<float>(kQuickGeluAlpha);

PC_INLINE void forward_body(const float* __restrict x, float* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(kAlpha * x[i]);
}

PC_INLINE void backward_body(const float* __restrict x, const float* __restrict dy, float* __restrict dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float s = sigmoid(kAlpha * x[i]);
    dx[i] = dy[i] * (s + kAlpha * x[i] * s * (1.0f - s));
  }
}

#if PC_HAVE_ISA_TARGETS
PC_TARGET_AVX512 void forward_avx512(const float* x, float* y, int64_t n) { forward_body(x, y, n); }
PC_TARGET_AVX2 void forward_avx2(const float* x, float* y, int64_t n) { forward_body(x, y, n); }
PC_TARGET_AVX512 void backward_avx512(const float* x, const float* dy, float* dx, int64_t n) {
  backward_body(x, dy, dx, n);
}
PC_TARGET_AVX2 void backward_avx2(const float* x, const float* dy, float* dx, int64_t n) {
  backward_body(x, dy, dx, n);
}
#endif

}  // namespace

void quick_gelu_forward(const float* x, float* y, int64_t n) {
#if PC_HAVE_ISA_TARGETS
  if (cpu_isa() == CpuIsa::kAvx512) return forward_avx512(x, y, n);
  if (cpu_isa() == CpuIsa::kAvx2) return forward_avx2(x, y, n);
#endif
  forward_body(x, y, n);
}

void quick_gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
#if PC_HAVE_ISA_TARGETS
  if (cpu_isa() == CpuIsa::kAvx512) return backward_avx512(x, dy, dx, n);
  if (cpu_isa() == CpuIsa::kAvx2) return backward_avx2(x, dy, dx, n);
#endif
  backward_body(x, dy, dx, n);
}

}  // namespace pc::kernel
