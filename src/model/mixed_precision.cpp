// Autocast guards and the dynamic loss scaler (see mixed_precision.h).
#include "pyramidclip/model/mixed_precision.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "pyramidclip/util/errors.h"

namespace pc {

at::ScalarType parse_precision(const std::string& name) {
  if (name == "fp32") return at::kFloat;
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp16") return at::kHalf;
  throw UserError("precision must be fp32, bf16 or fp16, not '" + name + "'");
}

bool autocast_supported(at::ScalarType dtype, at::DeviceType dev) {
  if (dtype == at::kFloat) return true;
  if (dev == at::kCUDA) return at::hasCUDA() && (dtype == at::kBFloat16 || dtype == at::kHalf);
  if (dev == at::kCPU) return dtype == at::kBFloat16;
  return false;
}

AutocastGuard::AutocastGuard(at::ScalarType dtype) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf,
              "AutocastGuard: dtype must be float, bfloat16 or half");
  if (dtype == at::kFloat) return;
  active_ = true;
  prev_cpu_ = at::autocast::is_cpu_enabled();
  prev_cuda_ = at::autocast::is_enabled();
  prev_cpu_dtype_ = at::autocast::get_autocast_cpu_dtype();
  prev_cuda_dtype_ = at::autocast::get_autocast_gpu_dtype();
  if (dtype == at::kBFloat16) {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  if (at::hasCUDA()) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(prev_cpu_);
  at::autocast::set_enabled(prev_cuda_);
  at::autocast::set_autocast_cpu_dtype(prev_cpu_dtype_);
  at::autocast::set_autocast_gpu_dtype(prev_cuda_dtype_);
}

AutocastOffGuard::AutocastOffGuard()
    : prev_cpu_(at::autocast::is_cpu_enabled()), prev_cuda_(at::autocast::is_enabled()) {
  at::autocast::set_cpu_enabled(false);
  at::autocast::set_enabled(false);
}

AutocastOffGuard::~AutocastOffGuard() {
  at::autocast::set_cpu_enabled(prev_cpu_);
  at::autocast::set_enabled(prev_cuda_);
}

GradScaler::GradScaler(GradScalerOptions options) : opt_(options), scale_(options.enabled ? options.init_scale : 1.0) {
  require(opt_.init_scale > 0, "loss scaler: init_scale must be > 0");
  require(opt_.growth_factor > 1, "loss scaler: growth_factor must be > 1");
  require(opt_.backoff_factor > 0 && opt_.backoff_factor < 1, "loss scaler: backoff_factor must be in (0, 1)");
  require(opt_.growth_interval > 0, "loss scaler: growth_interval must be > 0");
}

at::Tensor GradScaler::scale(const at::Tensor& loss) const { return opt_.enabled ? loss * scale_ : loss; }

at::Tensor GradScaler::unscale_(const std::vector<at::Tensor>& grads) {
  std::vector<at::Tensor> defined;
  for (const auto& g : grads)
    if (g.defined()) defined.push_back(g);
  at::TensorOptions flag_options = at::TensorOptions().dtype(at::kFloat);
  if (!defined.empty()) flag_options = flag_options.device(defined.front().device());
  if (!opt_.enabled || defined.empty()) return at::zeros({}, flag_options);
  torch::NoGradGuard no_grad;
  at::_foreach_mul_(defined, 1.0 / scale_);
  std::vector<at::Tensor> sums;
  sums.reserve(defined.size());
  for (const auto& g : defined) sums.push_back(g.sum().to(at::kFloat));
  return at::isfinite(at::stack(sums).sum()).logical_not().to(at::kFloat);
}

bool GradScaler::update(bool found_inf) {
  if (!opt_.enabled) return true;
  if (found_inf) {
    scale_ *= opt_.backoff_factor;
    growth_tracker_ = 0;
    return false;
  }
  if (++growth_tracker_ == opt_.growth_interval) {
    scale_ *= opt_.growth_factor;
    growth_tracker_ = 0;
  }
  return true;
}

void GradScaler::load(double scale, int64_t growth_tracker) {
  require(scale > 0, "loss scaler: a saved scale must be > 0");
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

}  // namespace pc
