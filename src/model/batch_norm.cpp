// Local and synchronized BatchNorm (see batch_norm.h).
#include "pyramidclip/model/batch_norm.h"

#include <torch/torch.h>

#include <utility>

namespace pc {
namespace detail {
namespace {
thread_local BnTape* t_tape = nullptr;
}  // namespace

BnTapeScope::BnTapeScope(BnTape* tape) : prev_(t_tape) { t_tape = tape; }
BnTapeScope::~BnTapeScope() { t_tape = prev_; }

}  // namespace detail

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool reduced_precision(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf; }

// Per-channel vector -> shape broadcasting along dim 1 of a tensor with `dims` dimensions.
at::Tensor channel_view(const at::Tensor& v, int64_t dims) {
  std::vector<int64_t> shape(static_cast<size_t>(dims), 1);
  shape[1] = v.numel();
  return v.view(shape);
}

// Keeps the BnSync alive for the backward pass (IValue capsules hold CustomClassHolders).
struct SyncHolder : torch::CustomClassHolder {
  explicit SyncHolder(std::shared_ptr<BnSync> s) : sync(std::move(s)) {}
  std::shared_ptr<BnSync> sync;
};

// Non-tensor arguments of the autograd function (passed by value: not autograd inputs).
struct SyncBnCall {
  std::shared_ptr<BnSync> sync;
  at::Tensor running_mean, running_var;  // undefined: no update
  double momentum = 0.1, eps = 1e-5;
  detail::BnTape* tape = nullptr;  // record or replay (activation checkpointing), or none
};

// Training-mode SyncBN. Forward: local mean/var with the native BN statistics kernel, converted
// to per-channel sum and sum of squares in float64 (no cancellation problem from fp32 sums of
// squares), ONE allreduce of [sum | sumsq | count], then the native BN kernel in its inference
// form with the global (mean, var) normalizes. Backward: the native BN backward in inference form
// gives dy * w * invstd and the two local reductions sum(dy), sum(dy * xhat) in one pass; those two
// are allreduced in one call and the batch-statistics terms are subtracted:
//   dx = w * invstd * (dy - sum_g(dy) / N - xhat * sum_g(dy * xhat) / N).
class SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            const SyncBnCall& call) {
    const int64_t c = x.size(1);
    const at::Tensor xf = reduced_precision(x) ? x.to(at::kFloat) : x;
    at::Tensor mean, var;
    double count = 0;
    if (call.tape && call.tape->replay) {
      TORCH_CHECK(call.tape->cursor < call.tape->stats.size(), "SyncBN recompute: no recorded statistics left");
      const auto& s = call.tape->stats[call.tape->cursor++];
      mean = s.mean;
      var = s.var;
      count = s.count;
    } else {
      at::Tensor lmean, lvar;
      std::tie(lmean, lvar) = at::batch_norm_update_stats(xf, {}, {}, 0.0);  // local mean, biased var
      const double n = static_cast<double>(xf.numel() / c);
      lmean = lmean.to(at::kDouble);
      lvar = lvar.to(at::kDouble);
      at::Tensor pack = at::cat({lmean * n, (lvar + lmean * lmean) * n, at::full({1}, n, lmean.options())});
      call.sync->allreduce_sum(pack);
      count = pack[2 * c].item<double>();
      TORCH_CHECK(count > 1, "SyncBN: expected more than 1 value per channel when training, got ", count);
      at::Tensor gmean = pack.narrow(0, 0, c) / count;
      at::Tensor gvar = (pack.narrow(0, c, c) / count - gmean * gmean).clamp_min(0);
      if (call.running_mean.defined()) {
        const double m = call.momentum;
        call.running_mean.mul_(1 - m).add_(gmean.to(call.running_mean.scalar_type()), m);
        call.running_var.mul_(1 - m).add_((gvar * (count / (count - 1))).to(call.running_var.scalar_type()), m);
      }
      mean = gmean.to(xf.scalar_type());
      var = gvar.to(xf.scalar_type());
      if (call.tape) call.tape->stats.push_back({mean, var, count});
    }
    at::Tensor y = std::get<0>(at::native_batch_norm(xf, weight, bias, mean, var, /*training=*/false, 0.0, call.eps));
    ctx->save_for_backward({x, weight, mean, var});
    ctx->saved_data["count"] = count;
    ctx->saved_data["eps"] = call.eps;
    ctx->saved_data["sync"] = at::IValue::make_capsule(c10::make_intrusive<SyncHolder>(call.sync));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& mean = saved[2];
    const at::Tensor& var = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    const double eps = ctx->saved_data["eps"].toDouble();
    auto sync = c10::static_intrusive_pointer_cast<SyncHolder>(ctx->saved_data["sync"].toCapsule())->sync;
    const int64_t c = x.size(1);
    at::Tensor dy = grad_outputs[0];
    const at::Tensor xf = reduced_precision(x) ? x.to(at::kFloat) : x;
    if (dy.scalar_type() != xf.scalar_type()) dy = dy.to(xf.scalar_type());
    // inference-form backward: dx0 = dy * w * invstd, dw = sum(dy * xhat), db = sum(dy) (local)
    at::Tensor dx, dw, db;
    std::tie(dx, dw, db) = at::native_batch_norm_backward(dy, xf, weight, mean, var, {}, {}, /*train=*/false, eps,
                                                          {ctx->needs_input_grad(0), true, true});
    // Every rank must join the allreduce, whether or not its input needs a gradient.
    at::Tensor pack = at::cat({db.to(at::kDouble), dw.to(at::kDouble)});
    sync->allreduce_sum(pack);
    if (dx.defined()) {
      const at::Tensor invstd = (var.to(at::kDouble) + eps).rsqrt();
      const at::Tensor k = weight.to(at::kDouble) * invstd;
      const at::Tensor mean_dy = pack.narrow(0, 0, c) / count;
      const at::Tensor mean_dy_xhat = pack.narrow(0, c, c) / count;
      // dx = dx0 - k * (mean_dy + (x - mean) * invstd * mean_dy_xhat) = dx0 + x * c1 + c0
      const at::Tensor c1 = -k * invstd * mean_dy_xhat;
      const at::Tensor c0 = -k * mean_dy - c1 * mean.to(at::kDouble);
      const int64_t dims = x.dim();
      dx.addcmul_(xf, channel_view(c1.to(dx.scalar_type()), dims)).add_(channel_view(c0.to(dx.scalar_type()), dims));
      if (dx.scalar_type() != x.scalar_type()) dx = dx.to(x.scalar_type());
    }
    return {dx, dw, db, at::Tensor()};
  }
};

}  // namespace

at::Tensor sync_batch_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const at::Tensor& running_mean, const at::Tensor& running_var, double momentum, double eps,
                           const std::shared_ptr<BnSync>& sync) {
  TORCH_CHECK(sync, "sync_batch_norm needs a BnSync");
  TORCH_CHECK(x.dim() >= 2, "sync_batch_norm: input must have a channel dimension (dim 1)");
  TORCH_CHECK(running_mean.defined() == running_var.defined(),
              "sync_batch_norm: running_mean and running_var go together");
  const int64_t c = x.size(1);
  const auto popts = x.options().dtype(at::kFloat);
  SyncBnCall call;
  call.sync = sync;
  call.running_mean = running_mean;
  call.running_var = running_var;
  call.momentum = momentum;
  call.eps = eps;
  call.tape = detail::t_tape;
  if (call.tape && call.tape->replay) call.running_mean = call.running_var = at::Tensor();
  // the function's tensor inputs must be defined: a BN without affine parameters uses w = 1, b = 0
  return SyncBatchNormFn::apply(x, weight.defined() ? weight : at::ones({c}, popts),
                                bias.defined() ? bias : at::zeros({c}, popts), call);
}

template <size_t D, typename Derived>
at::Tensor batch_norm(torch::nn::BatchNormImplBase<D, Derived>& bn, const at::Tensor& x_in,
                      const std::shared_ptr<BnSync>& sync, double scale) {
  const auto& o = bn.options;
  // fp32 BatchNorm under autocast (CPU autocast in LibTorch 1.13 leaves batch_norm in bf16)
  const at::Tensor x = reduced_precision(x_in) ? x_in.to(at::kFloat) : x_in;
  const bool replay = detail::t_tape && detail::t_tape->replay;
  const bool training = bn.is_training() || !o.track_running_stats();
  const bool update = bn.is_training() && o.track_running_stats() && !replay;
  double momentum = o.momentum().value_or(0.0);
  if (update && bn.num_batches_tracked.defined()) {
    bn.num_batches_tracked += 1;
    if (!o.momentum()) momentum = 1.0 / bn.num_batches_tracked.template item<double>();  // cumulative average
  }
  at::Tensor w = bn.weight, b = bn.bias;
  if (scale != 1.0) {
    const int64_t c = x.size(1);
    w = w.defined() ? w * scale : at::full({c}, scale, x.options().dtype(at::kFloat));
    b = b.defined() ? b * scale : at::zeros({c}, x.options().dtype(at::kFloat));
  }
  if (training && sync && sync->world_size() > 1)
    return sync_batch_norm(x, w, b, update ? bn.running_mean : at::Tensor(), update ? bn.running_var : at::Tensor(),
                           momentum, o.eps(), sync);
  // local: eval reads the running statistics; training passes them only when they are to be updated
  const bool pass_running = !training || update;
  return at::batch_norm(x, w, b, pass_running ? bn.running_mean : at::Tensor(),
                        pass_running ? bn.running_var : at::Tensor(), training, momentum, o.eps(),
                        /*cudnn_enabled=*/true);
}
template at::Tensor batch_norm(torch::nn::BatchNormImplBase<1, torch::nn::BatchNorm1dImpl>&, const at::Tensor&,
                               const std::shared_ptr<BnSync>&, double);
template at::Tensor batch_norm(torch::nn::BatchNormImplBase<2, torch::nn::BatchNorm2dImpl>&, const at::Tensor&,
                               const std::shared_ptr<BnSync>&, double);

int set_batchnorm_sync(torch::nn::Module& root, const std::shared_ptr<BnSync>& sync) {
  int n = 0;
  if (auto* s = dynamic_cast<BatchNormSyncable*>(&root)) {
    s->bn_sync = sync;
    ++n;
  }
  for (const auto& m : root.modules(/*include_self=*/false))
    if (auto* s = dynamic_cast<BatchNormSyncable*>(m.get())) {
      s->bn_sync = sync;
      ++n;
    }
  return n;
}

}  // namespace pc
