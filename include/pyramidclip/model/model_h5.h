#pragma once
#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>
// model.h5 (DESIGN §3): full fp32 weights, one dataset per parameter and buffer at the file root,
// named exactly as the state-dict key ("visual.conv1.weight") with the tensor's shape
// (BatchNorm num_batches_tracked as int64); file attributes `step` (int64) and `arch` (string).
// h5py reads it: {k: f[k][()] for k in f} is a state dict.
#include <cstdint>
#include <string>

namespace torch::nn {
class Module;
}

namespace pc {

struct ModelH5Info {
  int64_t step = -1;  // -1 when the file has no `step` attribute
  std::string arch;   // empty when the file has no `arch` attribute
};

// Writes path + ".tmp", fsyncs it and renames it to path (atomic on POSIX); fsyncs the directory.
// Throws UserError naming the path when the file cannot be written.
void save_model_h5(torch::nn::Module& model, const std::string& path, int64_t step, const std::string& arch);

// The same in two halves, for asynchronous checkpoints: the state dict as fp32/int64 CPU tensors
// (taken at a step boundary, on the training thread), then the write (on any thread, one at a
// time). copy_parameters false: CPU parameters are referenced, not copied (the caller keeps them
// unchanged until the write has read them); buffers (BatchNorm statistics change in forward)
// are always copied.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
NamedTensors snapshot_state(torch::nn::Module& model, bool copy_parameters = true);
// durable: write path.tmp, fsync, rename, fsync the directory; false: write `path` directly
// (the caller makes it durable, e.g. a checkpoint directory published as a whole).
void save_tensors_h5(const NamedTensors& entries, const std::string& path, int64_t step, const std::string& arch,
                     bool durable = true);

// Loads every parameter and buffer of model from path. Checks first, changes nothing on error:
// a missing, unexpected or shape/type-mismatched key throws one UserError that names the file and
// the keys. Returns the file's attributes.
ModelH5Info load_model_h5(torch::nn::Module& model, const std::string& path);

// The attributes only (no torch needed); throws UserError if path is not a readable HDF5 file.
ModelH5Info read_model_h5_info(const std::string& path);

}  // namespace pc
