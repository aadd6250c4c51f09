// Fused attention kernel: plain loops the compiler vectorizes (built with -fopenmp-simd for the
// reductions), compiled three times (AVX-512, AVX2 + FMA, baseline x86-64) and picked once at
// run time, so one binary runs everywhere and uses the widest vectors the CPU has.
#include "pyramidclip/model/attention_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "pyramidclip/util/cpu_isa.h"
#include "vec_math.h"

namespace pc::kernel {
namespace {

// Rows of scores are padded to whole vectors of kLanes floats, so every loop below runs over full
// vectors (a loop over a run-time length with a max-reduction stayed scalar).
constexpr int64_t kLanes = 16;

// s[0..n_pad) = softmax(s[0..n_pad)) in place; the padding holds -inf (probability 0).
PC_INLINE void softmax_row(float* __restrict s, int64_t n_pad) {
  float mx[kLanes];
  std::fill(mx, mx + kLanes, -std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < n_pad; j += kLanes)
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) mx[l] = s[j + l] > mx[l] ? s[j + l] : mx[l];
  const float row_max = *std::max_element(mx, mx + kLanes);
  float sum[kLanes] = {};
  for (int64_t j = 0; j < n_pad; j += kLanes)
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) {
      const float x = s[j + l] - row_max;
      const float e = exp_nonpositive(x);
      const float p = x < kExpFloor ? 0.0f : e;
      s[j + l] = p;
      sum[l] += p;
    }
  float total = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) total += sum[l];
  const float inv = 1.0f / total;
  for (int64_t j = 0; j < n_pad; j += kLanes)
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) s[j + l] *= inv;
}

// Every product below is C = A B with the rows of B (and C) padded to whole vectors of kLanes
// floats: kRows rows of C accumulate in registers while one row of B is loaded per step of the
// sum, and A's elements are broadcast (read through strides, so A can be a transpose).
constexpr int64_t kRows = 4;

int64_t padded(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// c[r * ldc + col] = sum_k a[r * ars + k * aks] * b[k * ldb + col] for r < m, col < n_pad.
PC_INLINE void gemm_bcast(int64_t m, int64_t k, int64_t n_pad, const float* __restrict a, int64_t ars, int64_t aks,
                          const float* __restrict b, int64_t ldb, float* __restrict c, int64_t ldc) {
  int64_t r0 = 0;
  for (; r0 + kRows <= m; r0 += kRows) {
    for (int64_t c0 = 0; c0 < n_pad; c0 += kLanes) {
      float acc[kRows][kLanes] = {};
      for (int64_t kk = 0; kk < k; ++kk) {
        const float* __restrict bk = b + kk * ldb + c0;
#pragma GCC unroll 4
        for (int64_t ri = 0; ri < kRows; ++ri) {
          const float av = a[(r0 + ri) * ars + kk * aks];
#pragma omp simd
          for (int64_t l = 0; l < kLanes; ++l) acc[ri][l] += av * bk[l];
        }
      }
      for (int64_t ri = 0; ri < kRows; ++ri) std::copy(acc[ri], acc[ri] + kLanes, c + (r0 + ri) * ldc + c0);
    }
  }
  for (; r0 < m; ++r0) {
    for (int64_t c0 = 0; c0 < n_pad; c0 += kLanes) {
      float acc[kLanes] = {};
      for (int64_t kk = 0; kk < k; ++kk) {
        const float av = a[r0 * ars + kk * aks];
        const float* __restrict bk = b + kk * ldb + c0;
#pragma omp simd
        for (int64_t l = 0; l < kLanes; ++l) acc[l] += av * bk[l];
      }
      std::copy(acc, acc + kLanes, c + r0 * ldc + c0);
    }
  }
}

// One head's [rows, dh] block (rows row_stride apart) as [dh, ld] (transposed) or [rows, ld]
// (copied); the padding columns are zero.
PC_INLINE void load_transposed(const float* src, int64_t row_stride, int64_t rows, int64_t dh, int64_t ld, float* dst) {
  std::fill(dst, dst + dh * ld, 0.0f);
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t d = 0; d < dh; ++d) dst[d * ld + j] = src[j * row_stride + d];
}
PC_INLINE void load_rows(const float* src, int64_t row_stride, int64_t rows, int64_t dh, int64_t ld, float* dst) {
  for (int64_t j = 0; j < rows; ++j) {
    std::copy(src + j * row_stride, src + j * row_stride + dh, dst + j * ld);
    std::fill(dst + j * ld + dh, dst + (j + 1) * ld, 0.0f);
  }
}
PC_INLINE void store_rows(const float* src, int64_t ld, int64_t rows, int64_t dh, float* dst, int64_t row_stride) {
  for (int64_t j = 0; j < rows; ++j) std::copy(src + j * ld, src + j * ld + dh, dst + j * row_stride);
}

PC_INLINE void forward_body(const AttentionArgs& a, int64_t pair_begin, int64_t pair_end) {
  const int64_t lq = a.q_len, lk = a.k_len, dh = a.head_dim, lkp = padded(lk), dhp = padded(dh);
  std::vector<float> kt(static_cast<size_t>(dh * lkp)), vp(static_cast<size_t>(lk * dhp));
  std::vector<float> sp(static_cast<size_t>(lq * lkp)), op(static_cast<size_t>(lq * dhp));
  for (int64_t n = pair_begin; n < pair_end; ++n) {
    const int64_t b = n / a.heads, h = n % a.heads;
    load_transposed(a.k.at(b, h, dh), a.k.row_stride, lk, dh, lkp, kt.data());
    load_rows(a.v.at(b, h, dh), a.v.row_stride, lk, dh, dhp, vp.data());
    // S = Q K^T, then scale, bias and softmax row by row (probabilities kept for backward)
    gemm_bcast(lq, dh, lkp, a.q.at(b, h, dh), a.q.row_stride, 1, kt.data(), lkp, sp.data(), lkp);
    for (int64_t i = 0; i < lq; ++i) {
      float* __restrict s = sp.data() + i * lkp;
      if (a.bias) {
        const float* __restrict bias = a.bias + n * a.bias_pair_stride + i * a.bias_row_stride;
#pragma omp simd
        for (int64_t j = 0; j < lk; ++j) s[j] = s[j] * a.scale + bias[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < lk; ++j) s[j] *= a.scale;
      }
      std::fill(s + lk, s + lkp, -std::numeric_limits<float>::infinity());
      softmax_row(s, lkp);
      std::copy(s, s + lk, a.probs + (n * lq + i) * lk);
    }
    // O = P V
    gemm_bcast(lq, lk, dhp, sp.data(), lkp, 1, vp.data(), dhp, op.data(), dhp);
    store_rows(op.data(), dhp, lq, dh, a.out.at(b, h, dh), a.out.row_stride);
  }
}

PC_INLINE void backward_body(const AttentionArgs& a, const AttentionGrads& g, int64_t pair_begin,
                             int64_t pair_end) {
  const int64_t lq = a.q_len, lk = a.k_len, dh = a.head_dim, lkp = padded(lk), dhp = padded(dh);
  std::vector<float> vt(static_cast<size_t>(dh * lkp)), kp(static_cast<size_t>(lk * dhp));
  std::vector<float> qp(static_cast<size_t>(lq * dhp)), gop(static_cast<size_t>(lq * dhp));
  std::vector<float> ds(static_cast<size_t>(lq * lkp)), cp(static_cast<size_t>(std::max(lq, lk) * dhp));
  for (int64_t n = pair_begin; n < pair_end; ++n) {
    const int64_t b = n / a.heads, h = n % a.heads;
    const float* go = g.grad_out.at(b, h, dh);
    const float* probs = a.probs + n * lq * lk;
    load_transposed(a.v.at(b, h, dh), a.v.row_stride, lk, dh, lkp, vt.data());
    load_rows(a.k.at(b, h, dh), a.k.row_stride, lk, dh, dhp, kp.data());
    load_rows(a.q.at(b, h, dh), a.q.row_stride, lq, dh, dhp, qp.data());
    load_rows(go, g.grad_out.row_stride, lq, dh, dhp, gop.data());
    // dP = dO V^T;  dS = P * (dP - sum_j P dP) * scale  (the scale: d scores / d (Q K^T))
    gemm_bcast(lq, dh, lkp, go, g.grad_out.row_stride, 1, vt.data(), lkp, ds.data(), lkp);
    for (int64_t i = 0; i < lq; ++i) {
      const float* __restrict p = probs + i * lk;
      float* __restrict dsi = ds.data() + i * lkp;
      float delta = 0.0f;
#pragma omp simd reduction(+ : delta)
      for (int64_t j = 0; j < lk; ++j) delta += p[j] * dsi[j];
#pragma omp simd
      for (int64_t j = 0; j < lk; ++j) dsi[j] = p[j] * (dsi[j] - delta) * a.scale;
    }
    // dQ = dS K;  dK = dS^T Q;  dV = P^T dO
    gemm_bcast(lq, lk, dhp, ds.data(), lkp, 1, kp.data(), dhp, cp.data(), dhp);
    store_rows(cp.data(), dhp, lq, dh, g.grad_q.at(b, h, dh), g.grad_q.row_stride);
    gemm_bcast(lk, lq, dhp, ds.data(), 1, lkp, qp.data(), dhp, cp.data(), dhp);
    store_rows(cp.data(), dhp, lk, dh, g.grad_k.at(b, h, dh), g.grad_k.row_stride);
    gemm_bcast(lk, lq, dhp, probs, 1, lk, gop.data(), dhp, cp.data(), dhp);
    store_rows(cp.data(), dhp, lk, dh, g.grad_v.at(b, h, dh), g.grad_v.row_stride);
  }
}

// One instantiation of the bodies per instruction set (the always-inline helpers are compiled
// with the caller's target).
#if PC_HAVE_ISA_TARGETS
PC_TARGET_AVX512 void forward_avx512(const AttentionArgs& a, int64_t lo, int64_t hi) { forward_body(a, lo, hi); }
PC_TARGET_AVX2 void forward_avx2(const AttentionArgs& a, int64_t lo, int64_t hi) { forward_body(a, lo, hi); }
PC_TARGET_AVX512 void backward_avx512(const AttentionArgs& a, const AttentionGrads& g, int64_t lo, int64_t hi) {
  backward_body(a, g, lo, hi);
}
PC_TARGET_AVX2 void backward_avx2(const AttentionArgs& a, const AttentionGrads& g, int64_t lo, int64_t hi) {
  backward_body(a, g, lo, hi);
}
#endif

}  // namespace

void attention_forward(const AttentionArgs& a, int64_t pair_begin, int64_t pair_end) {
#if PC_HAVE_ISA_TARGETS
  if (cpu_isa() == CpuIsa::kAvx512) return forward_avx512(a, pair_begin, pair_end);
  if (cpu_isa() == CpuIsa::kAvx2) return forward_avx2(a, pair_begin, pair_end);
#endif
  forward_body(a, pair_begin, pair_end);
}

void attention_backward(const AttentionArgs& a, const AttentionGrads& g, int64_t pair_begin, int64_t pair_end) {
#if PC_HAVE_ISA_TARGETS
  if (cpu_isa() == CpuIsa::kAvx512) return backward_avx512(a, g, pair_begin, pair_end);
  if (cpu_isa() == CpuIsa::kAvx2) return backward_avx2(a, g, pair_begin, pair_end);
#endif
  backward_body(a, g, pair_begin, pair_end);
}

}  // namespace pc::kernel
