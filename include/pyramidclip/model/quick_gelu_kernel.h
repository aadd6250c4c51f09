#pragma once
// QuickGELU y = x * sigmoid(a x) (a = 1.702, CLIP) and its gradient, each one pass over fp32
// arrays (ATen: mul, sigmoid, mul forward and five elementwise ops backward). Torch-free;
// fused_quick_gelu.cpp wraps it in an autograd function.
#include <cstdint>

namespace pc {

// QuickGELU(x) = x * sigmoid(a x) with a = 1.702, as CLIP (layers.h uses it too: one constant).
constexpr double kQuickGeluAlpha = 1.702;

}  // namespace pc

namespace pc::kernel {

void quick_gelu_forward(const float* x, float* y, int64_t n);
// dx = dy * (s + a x s (1 - s)), s = sigmoid(a x)
void quick_gelu_backward(const float* x, const float* dy, float* dx, int64_t n);

}  // namespace pc::kernel
