#pragma once
// `pyramidclip ckpt export`: model.h5 -> a file Python's torch.load reads as {key: tensor}, with the
// official key names (ours), so `model.load_state_dict(torch.load(f))` works in PyTorch.
#include <cstddef>
#include <string>

namespace pc {

// Every dataset of model.h5 (fp32 / int64, shapes as stored) -> torch::pickle_save of a
// dict name -> tensor, written atomically (write_file_atomic). Returns the number of tensors.
size_t export_model_h5_to_torch(const std::string& model_h5, const std::string& output);

}  // namespace pc
