// model.h5 -> a torch.load-able {name: tensor} file (torch::pickle_save writes torch.save's zip format).
#include "pyramidclip/interop/checkpoint_export.h"

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <vector>

#include "pyramidclip/model/h5_io.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace pc {

namespace {

// model.h5 holds datasets only, at the root (model_h5.h); read_tensor rejects anything else.
herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* op_data) {
  static_cast<std::vector<std::string>*>(op_data)->push_back(name);
  return 0;
}

}  // namespace

size_t export_model_h5_to_torch(const std::string& model_h5, const std::string& output) {
  h5::Quiet quiet;
  h5::Id file = h5::open_read(model_h5);
  std::vector<std::string> names;
  require(H5Literate(file.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names) >= 0,
          "cannot list the datasets of " + model_h5 + " (damaged file?)");
  require(!names.empty(), model_h5 + " holds no weights: give a model.h5 written by pyramidclip");
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& name : names) {
    at::Tensor t = h5::read_tensor(file.get(), name, model_h5);
    require(t.scalar_type() == at::kFloat || t.scalar_type() == at::kLong,
            model_h5 + ": dataset '" + name + "' is " + std::string(c10::toString(t.scalar_type())) +
                ", not float32 or int64: not a pyramidclip model.h5");
    dict.insert(name, t);
  }
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  write_file_atomic(output, std::string(bytes.begin(), bytes.end()));
  return names.size();
}

}  // namespace pc
