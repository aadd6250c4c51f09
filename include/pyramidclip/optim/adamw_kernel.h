#pragma once
// One fused pass of AdamW over contiguous CPU arrays (the update of zero_adamw.h, element for
// element): reads p, g, m, v once and writes p, m, v once, where the equivalent ATen ops
// (mul_, add_, mul_, addcmul_, sqrt, div_, add_, addcdiv_) make eight passes. Torch-free.
#include <cstdint>

namespace pc::kernel {

struct AdamWStep {
  double decay = 1.0;        // 1 - lr * weight_decay (1: no decay)
  double beta1 = 0.9, beta2 = 0.999;
  double sqrt_bias_correction2 = 1.0;  // sqrt(1 - beta2^t)
  double eps = 1e-8;
  double step_size = 0.0;    // lr / (1 - beta1^t)
};

void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamWStep& s);
void adamw_update(double* p, double* m, double* v, const double* g, int64_t n, const AdamWStep& s);

}  // namespace pc::kernel
