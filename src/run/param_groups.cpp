#include "pyramidclip/run/param_groups.h"

#include <torch/torch.h>

namespace pc {

bool excluded_from_weight_decay(const std::string& name, const at::Tensor& p) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  return p.dim() < 2 || has("bn") || has("ln") || has("bias") || has("logit_scale");
}

TrainableParams trainable_params(torch::nn::Module& model) {
  TrainableParams t;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    t.names.push_back(item.key());
    t.tensors.push_back(item.value());
    t.decay.push_back(!excluded_from_weight_decay(item.key(), item.value()));
  }
  return t;
}

ParamGroups split_for_weight_decay(torch::nn::Module& model) {
  ParamGroups g;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;  // frozen (e.g. the official ViT's patch conv)
    if (excluded_from_weight_decay(item.key(), item.value())) {
      g.no_decay.push_back(item.value());
      g.no_decay_names.push_back(item.key());
    } else {
      g.decay.push_back(item.value());
      g.decay_names.push_back(item.key());
    }
  }
  return g;
}

}  // namespace pc
