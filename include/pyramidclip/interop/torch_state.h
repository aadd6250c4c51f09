#pragma once
// Reading PyTorch weight files into our state-dict names (issue #6): torch.save zip archives
// (state dicts, training checkpoints with a `state_dict` / `model` entry, `module.` prefixes from
// DDP) and TorchScript archives (OpenAI CLIP's .pt files). Floating tensors become fp32, integer
// ones (BatchNorm num_batches_tracked) int64. Every failure is one UserError naming the file and the fix.
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace pc {

struct TorchState {
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // our key names, file order
  std::string format;                                        // "torch.save archive" | "TorchScript archive"
  std::string unwrapped;  // where the state dict was found ("" top level, "state_dict", "model", ...)
  std::vector<std::string> dropped;  // entries that are not weights (OpenAI's input_resolution, attn_mask, ...)
};

// Reads `path` (zip-format torch.save file or TorchScript archive) and maps its names onto ours
// (torch_key_names.h). Throws UserError for an unreadable, legacy (pre-1.6) or non-state-dict file.
TorchState read_torch_state(const std::string& path);

}  // namespace pc
