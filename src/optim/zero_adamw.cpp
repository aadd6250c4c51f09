#include "pyramidclip/optim/zero_adamw.h"

#include <torch/torch.h>

#include <cmath>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/grad_buckets.h"
#include "pyramidclip/optim/adamw_kernel.h"

namespace pc {
namespace {
constexpr int64_t kChunk = int64_t{1} << 16;  // elements per pass: the five passes stay in cache
}

ZeroAdamW::ZeroAdamW(FlatLayout layout, std::vector<at::Tensor> params, Comm& comm, ZeroAdamWOptions options)
    : layout_(std::move(layout)), params_(std::move(params)), comm_(comm), opts_(options) {
  TORCH_CHECK(opts_.stage >= 0 && opts_.stage <= 2, "ZeroAdamW: stage must be 0, 1 or 2, got ", opts_.stage);
  TORCH_CHECK(layout_.world_size == comm_.size(), "ZeroAdamW: layout for ", layout_.world_size, " ranks, comm has ",
              comm_.size());
  TORCH_CHECK(params_.size() == layout_.params.size(), "ZeroAdamW: ", params_.size(), " parameters, layout has ",
              layout_.params.size());
  TORCH_CHECK(!params_.empty(), "ZeroAdamW: no parameters");
  const auto opts = params_.front().options().requires_grad(false);
  TORCH_CHECK(opts.dtype() == at::kFloat || opts.dtype() == at::kDouble, "ZeroAdamW: fp32 (or fp64) parameters");

  // the parameters become views of one flat buffer: the all-gather writes the weights in place
  flat_params_ = at::zeros({layout_.padded_numel}, opts);
  {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i];
      const auto& fp = layout_.params[i];
      TORCH_CHECK(p.sizes().vec() == fp.shape, "ZeroAdamW: parameter ", i, " (", fp.name, ") has shape ", p.sizes(),
                  ", layout says ", at::IntArrayRef(fp.shape));
      TORCH_CHECK(p.scalar_type() == opts.dtype().toScalarType() && p.device() == opts.device(),
                  "ZeroAdamW: all parameters need one dtype and device");
      at::Tensor v = flat_params_.narrow(0, fp.offset, fp.numel).view(p.sizes());
      v.copy_(p.detach());
      p.set_data(v);
    }
  }

  if (opts_.stage == 0) {
    begin_ = 0;
    end_ = layout_.numel;
    master_ = flat_params_.narrow(0, 0, layout_.numel);
  } else {
    begin_ = layout_.shard_begin(comm_.rank());
    end_ = layout_.shard_end(comm_.rank());
    // fp32 master of this slice; with one rank the slice is all of it and nothing is gathered:
    // the parameters serve as master (as in stage 0), saving a copy of the weights per step
    master_ = flat_params_.narrow(0, begin_, end_ - begin_);
    if (comm_.size() > 1) master_ = master_.clone();
  }
  exp_avg_ = at::zeros({end_ - begin_}, opts);
  exp_avg_sq_ = at::zeros({end_ - begin_}, opts);
  scratch_ = at::empty({std::min(kChunk, std::max<int64_t>(1, end_ - begin_))}, opts);
  spans_ = decay_spans(layout_, begin_, std::min(end_, layout_.numel));
}

int64_t ZeroAdamW::state_bytes() const {
  int64_t n = exp_avg_.numel() + exp_avg_sq_.numel();
  if (opts_.stage > 0 && comm_.size() > 1) n += master_.numel();
  return n * static_cast<int64_t>(exp_avg_.element_size());
}

void ZeroAdamW::step(double lr, const GradBuckets& grads, bool gather) {
  TORCH_CHECK(grads.padded_numel() == layout_.padded_numel && grads.num_params() == layout_.params.size(),
              "ZeroAdamW: GradBuckets and the flat layout differ");
  for (size_t i = 0; i < layout_.params.size(); ++i)
    TORCH_CHECK(grads.offset(i) == layout_.params[i].offset, "ZeroAdamW: parameter ", i,
                " sits at another offset in GradBuckets");
  TORCH_CHECK(grads.reduce_scatter() == (opts_.stage == 2),
              "ZeroAdamW: stage 2 needs GradBuckets with reduce_scatter = true, stages 0/1 with false");
  if (opts_.stage == 0)
    step(lr, grads.flat_grad(), gather);
  else
    step(lr, grads.shard_grad(), gather);
}

void ZeroAdamW::step(double lr, const at::Tensor& grad, bool gather) {
  TORCH_CHECK(grad.dim() == 1 && grad.scalar_type() == exp_avg_.scalar_type(),
              "ZeroAdamW: the gradient must be a 1-D tensor of the parameters' dtype");
  const int64_t n = grad.numel();
  at::Tensor slice;
  if (n == layout_.padded_numel || (n == layout_.numel && end_ <= n)) {
    slice = grad.narrow(0, begin_, end_ - begin_);
  } else {
    TORCH_CHECK(opts_.stage > 0 && n == end_ - begin_, "ZeroAdamW: gradient of ", n,
                " elements: expected the flat gradient (", layout_.numel, " or ", layout_.padded_numel,
                ") or, for stages 1/2, this rank's slice (", end_ - begin_, ")");
    slice = grad;
  }
  update(lr, slice);
  if (opts_.stage > 0 && gather) gather_params();
}

void ZeroAdamW::update(double lr, const at::Tensor& grad) {
  at::NoGradGuard no_grad;
  ++t_;
  const double bias_correction1 = 1 - std::pow(opts_.beta1, static_cast<double>(t_));
  const double bias_correction2 = 1 - std::pow(opts_.beta2, static_cast<double>(t_));
  const double step_size = lr / bias_correction1;
  const double sqrt_bc2 = std::sqrt(bias_correction2);
  // CPU: one fused pass per chunk (adamw_kernel.h), chunks spread over the intra-op threads;
  // other devices: the ATen ops.
  const bool fused = master_.device().is_cpu() && grad.device().is_cpu() && grad.is_contiguous();
  for (const auto& span : spans_) {
    const double wd = opts_.weight_decay * span.weight_decay;
    if (fused) {
      kernel::AdamWStep s;
      s.decay = wd != 0 ? 1 - lr * wd : 1.0;
      s.beta1 = opts_.beta1;
      s.beta2 = opts_.beta2;
      s.sqrt_bias_correction2 = sqrt_bc2;
      s.eps = opts_.eps;
      s.step_size = step_size;
      const int64_t at = span.begin - begin_;
      AT_DISPATCH_FLOATING_TYPES(master_.scalar_type(), "ZeroAdamW", [&] {
        scalar_t* p = master_.data_ptr<scalar_t>() + at;
        scalar_t* m = exp_avg_.data_ptr<scalar_t>() + at;
        scalar_t* v = exp_avg_sq_.data_ptr<scalar_t>() + at;
        const scalar_t* g = grad.data_ptr<scalar_t>() + at;
        at::parallel_for(0, span.end - span.begin, kChunk, [&](int64_t lo, int64_t hi) {
          kernel::adamw_update(p + lo, m + lo, v + lo, g + lo, hi - lo, s);
        });
      });
      continue;
    }
    for (int64_t lo = span.begin; lo < span.end; lo += kChunk) {
      const int64_t len = std::min(kChunk, span.end - lo), at = lo - begin_;
      at::Tensor p = master_.narrow(0, at, len);
      at::Tensor g = grad.narrow(0, at, len);
      at::Tensor m = exp_avg_.narrow(0, at, len);
      at::Tensor v = exp_avg_sq_.narrow(0, at, len);
      at::Tensor denom = scratch_.narrow(0, 0, len);
      // the same ops, in the same order, as torch::optim::AdamW::step (LibTorch 1.13)
      if (wd != 0) p.mul_(1 - lr * wd);
      m.mul_(opts_.beta1).add_(g, 1 - opts_.beta1);
      v.mul_(opts_.beta2).addcmul_(g, g, 1 - opts_.beta2);
      at::sqrt_out(denom, v);
      denom.div_(sqrt_bc2).add_(opts_.eps);
      p.addcdiv_(m, denom, -step_size);
    }
  }
}

void ZeroAdamW::gather_params() {
  if (opts_.stage == 0 || comm_.size() == 1) return;  // one rank: master_ is the parameters
  at::NoGradGuard no_grad;
  at::Tensor mine = flat_params_.narrow(0, begin_, end_ - begin_);
  mine.copy_(master_);
  comm_.all_gather_into(mine, flat_params_);
}

void ZeroAdamW::reload_master_from_params() {
  if (opts_.stage == 0 || comm_.size() == 1) return;
  at::NoGradGuard no_grad;
  master_.copy_(flat_params_.narrow(0, begin_, end_ - begin_));
}

}  // namespace pc
