// The six-pair PyramidCLIP objective (DESIGN §1) and the one-pair CLIP baseline.
// Groups: peer (global,T_S) (local,T); cross-global (global,T_OA) (ROI,T_S);
// cross-local (local,T_OA) (ROI,T). Weights (1-lambda-mu), lambda, mu; each group averages the
// pairs it has, and groups without any pair hand their weight to the others (renormalised),
// so a dataset without ROI features or T_OA trains what it has.
#include <torch/torch.h>

#include <vector>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/loss/pyramid_loss.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

struct Pair {
  const char* name;
  const at::Tensor* a;
  const at::Tensor* b;
};

}  // namespace

LossOutput pyramid_loss(const Embeddings& e, const LossConfig& cfg, Comm* comm) {
  require(e.image_global.defined() && e.text.defined(), "loss: a batch needs global images and captions");
  const int64_t rows = e.image_global.size(0);
  const int64_t offset = comm ? rows * comm->rank() : 0;
  LossOutput out;

  // Gather each embedding once even when it appears in several pairs.
  std::map<const at::Tensor*, at::Tensor> gathered;
  auto gather = [&](const at::Tensor* t) -> const at::Tensor& {
    auto it = gathered.find(t);
    if (it == gathered.end()) it = gathered.emplace(t, all_gather_with_grad(*t, comm)).first;
    return it->second;
  };
  auto pair_loss = [&](const Pair& p, double alpha) {
    at::Tensor l = softened_infonce(*p.a, *p.b, gather(p.a), gather(p.b), offset, e.logit_scale, alpha);
    out.pairs[p.name] = l.item<double>();
    return l;
  };

  if (cfg.objective == "clip") {
    out.total = pair_loss({"clip", &e.image_global, &e.text}, 0.0);
    return out;
  }
  require(cfg.objective == "pyramid", "loss: unknown objective '" + cfg.objective + "' (use pyramid or clip)");
  require(cfg.lambda >= 0 && cfg.mu >= 0 && cfg.lambda + cfg.mu <= 1.0,
          "loss: lambda and mu must be >= 0 with lambda + mu <= 1");

  const std::vector<std::pair<double, std::vector<Pair>>> groups = {
      {1.0 - cfg.lambda - cfg.mu,
       {{"peer_global", &e.image_global, &e.summary}, {"peer_local", &e.image_local, &e.text}}},
      {cfg.lambda, {{"cross_global_oa", &e.image_global, &e.tags}, {"cross_roi_s", &e.roi, &e.summary}}},
      {cfg.mu, {{"cross_local_oa", &e.image_local, &e.tags}, {"cross_roi_t", &e.roi, &e.text}}},
  };
  at::Tensor total;
  double weight_sum = 0.0;
  for (const auto& [weight, pairs] : groups) {
    at::Tensor group;
    int n = 0;
    for (const Pair& p : pairs) {
      if (!p.a->defined() || !p.b->defined()) continue;
      at::Tensor l = pair_loss(p, cfg.alpha);
      group = group.defined() ? group + l : l;
      ++n;
    }
    if (n == 0) continue;
    at::Tensor term = weight * group / static_cast<double>(n);
    total = total.defined() ? total + term : term;
    weight_sum += weight;
  }
  require(total.defined() && weight_sum > 0.0,
          "loss: no PyramidCLIP pair can be formed from this batch (needs local view or summary/tags/ROI); "
          "use objective=clip for image-caption data");
  out.total = total / weight_sum;
  return out;
}

}  // namespace pc
