#pragma once
// Mixed precision (issue #4): an autocast region for the model's forward and a dynamic loss
// scaler for fp16. No dependency on dist: the scaler returns its overflow flag as a tensor and
// the trainer combines it across ranks.
//
// What runs in which precision under AutocastGuard(kBFloat16) on the CPU (LibTorch 1.13):
//  - autocast casts linear/matmul/mm/bmm/baddbmm/conv to bf16 (measured on this LibTorch);
//  - it leaves layer_norm, softmax, batch_norm and norm alone (bf16 in -> bf16 out; layer_norm even
//    fails on a bf16 input with fp32 weights), so the model casts explicitly: LayerNorm
//    (layers.h layer_norm), BatchNorm (batch_norm.h) and the attention softmax run in fp32;
//  - residual additions of an fp32 stream and a bf16 branch promote to fp32, so the residual
//    stream stays fp32;
//  - the tower outputs are cast to fp32 before the L2 normalization; logit_scale stays fp32.
// The loss belongs OUTSIDE the guard (or inside an AutocastOffGuard): with fp32 embeddings the
// logit GEMMs and the softened InfoNCE then run in fp32.
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pc {

// "fp32" -> kFloat, "bf16" -> kBFloat16, "fp16" -> kHalf; anything else throws UserError.
at::ScalarType parse_precision(const std::string& name);

// Whether autocast to dtype exists for tensors on device type dev in this LibTorch: fp32 always
// (no autocast); bf16 on CPU and CUDA; fp16 on CUDA only (CPU autocast in 1.13 is bf16-only).
bool autocast_supported(at::ScalarType dtype, at::DeviceType dev);

// RAII autocast region. dtype kFloat: does nothing. kBFloat16: CPU autocast to bf16, plus CUDA
// autocast to bf16 when LibTorch has CUDA. kHalf: CUDA autocast to fp16 only (the CPU part stays
// off: CPU ops run in fp32). Restores the previous state on exit and, when leaving the outermost
// region, clears autocast's weight-cast cache (as torch.autocast's __exit__).
class AutocastGuard {
 public:
  explicit AutocastGuard(at::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool prev_cpu_ = false, prev_cuda_ = false;
  at::ScalarType prev_cpu_dtype_ = at::kBFloat16, prev_cuda_dtype_ = at::kHalf;
};

// An fp32 island inside an autocast region (e.g. a loss computed there); restores on exit.
class AutocastOffGuard {
 public:
  AutocastOffGuard();
  ~AutocastOffGuard();
  AutocastOffGuard(const AutocastOffGuard&) = delete;
  AutocastOffGuard& operator=(const AutocastOffGuard&) = delete;

 private:
  bool prev_cpu_, prev_cuda_;
};

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16, as torch.cuda.amp.GradScaler
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;  // consecutive finite steps before the scale grows
  bool enabled = true;             // false: scale 1, never skips (fp32/bf16 training)
};

// Dynamic loss scaling for fp16, as torch.cuda.amp.GradScaler. One step:
//   scaler.scale(loss).backward();
//   average/reduce the gradients (they are scaled: fp16-safe range);
//   at::Tensor found_inf = scaler.unscale_(grads);   // grads /= scale; 1.0 if any is inf/nan
//   comm.allreduce_max(found_inf);                   // only needed when ranks hold different
//                                                    // grads (sharded, before averaging)
//   if (scaler.update(found_inf.item<float>() > 0)) optimizer.step();   // else: step skipped
class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  bool enabled() const { return opt_.enabled; }
  double scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }  // finite steps since the last change
  const GradScalerOptions& options() const { return opt_; }

  // loss * scale (the loss itself when disabled).
  at::Tensor scale(const at::Tensor& loss) const;
  // Multiplies every defined grad by 1/scale in place and checks them for inf/nan: one fused
  // elementwise pass and one sum per tensor, one device->host sync in update(). An inf/nan in any
  // element makes its tensor's sum non-finite (a sum overflowing fp32, |sum| > 3.4e38, counts too:
  // such a step would be useless anyway). Returns a float32 scalar on the grads' device: 1 if a
  // non-finite value was found, else 0 (always 0 when disabled).
  at::Tensor unscale_(const std::vector<at::Tensor>& grads);
  // Given the job-wide flag: backoff (scale *= backoff_factor, tracker reset) and returns false
  // (skip the optimizer step) on overflow; otherwise counts a good step, grows the scale by
  // growth_factor after growth_interval consecutive good steps, and returns true.
  bool update(bool found_inf);
  // Restores scale and growth tracker (checkpoint resume).
  void load(double scale, int64_t growth_tracker);

 private:
  GradScalerOptions opt_;
  double scale_;
  int64_t growth_tracker_ = 0;
};

}  // namespace pc
