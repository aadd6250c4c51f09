#pragma once
// `pyramidclip ckpt import`: a PyTorch weight file -> our model -> model.h5, with every key and shape
// checked against the model the config builds.
#include <string>
#include <vector>

#include "pyramidclip/interop/torch_state.h"
#include "pyramidclip/model/model_config.h"

namespace torch::nn {
class Module;
}

namespace pc {

struct ImportReport {
  std::string format, unwrapped;
  size_t loaded = 0;                    // tensors copied into the model
  std::vector<std::string> dropped;     // non-weight entries left out
  std::vector<std::string> unexpected;  // keys the model does not have (an error when strict)
};

// Copies `state` into `model` after checking all of it first (nothing changes on error): missing
// keys, shape and type mismatches, and (strict) unexpected keys throw ONE UserError listing the
// first few of each kind with their counts, naming `source`.
ImportReport load_torch_state(torch::nn::Module& model, const TorchState& state, const std::string& source,
                              bool strict);

// read_torch_state(source) -> a model built from `cfg` -> save_model_h5(output) (step 0, arch = preset).
ImportReport import_torch_checkpoint(const std::string& source, const ModelConfig& cfg, const std::string& output,
                                     bool strict);

}  // namespace pc
