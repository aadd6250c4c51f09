#pragma once
// Linear warmup then cosine decay to zero, as a function of samples seen (not steps of this
// launch), so a resumed run with another rank count follows the same curve.
#include <algorithm>
#include <cmath>

namespace pc {

inline double lr_at(double samples_seen, double base_lr, double warmup_samples, double total_samples) {
  if (samples_seen < warmup_samples) return base_lr * (samples_seen + 1.0) / warmup_samples;
  const double span = std::max(1.0, total_samples - warmup_samples);
  const double progress = std::clamp((samples_seen - warmup_samples) / span, 0.0, 1.0);
  return 0.5 * base_lr * (1.0 + std::cos(M_PI * progress));
}

}  // namespace pc
