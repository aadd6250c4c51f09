#pragma once
// AdamW parameter groups: weight decay on weights, none on norms, biases, 1-D tensors and the
// logit scale (open_clip's exclusion rule, the recipe PyramidCLIP follows).
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace torch::nn {
class Module;
}

namespace pc {

struct ParamGroups {
  std::vector<at::Tensor> decay, no_decay;
  std::vector<std::string> decay_names, no_decay_names;
};

bool excluded_from_weight_decay(const std::string& name, const at::Tensor& p);
ParamGroups split_for_weight_decay(torch::nn::Module& model);  // trainable parameters only

// The trainable parameters in named_parameters order (the flat layout ZeRO shards and GradBuckets
// fills), with their names and weight-decay flags: what make_flat_layout takes.
struct TrainableParams {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  std::vector<bool> decay;
};
TrainableParams trainable_params(torch::nn::Module& model);

}  // namespace pc
