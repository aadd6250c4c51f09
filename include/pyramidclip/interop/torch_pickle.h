#pragma once
// The pickle inside a torch.save zip archive (data.pkl + data/<key> storages), read without Python.
// LibTorch 1.13's torch::pickle_load turns collections.OrderedDict into None, so it cannot read
// torch.save(model.state_dict()) (an OrderedDict with a _metadata attribute); this reader covers
// what torch.save writes: dicts (OrderedDict included, its _metadata ignored), lists, tuples,
// strings, numbers, None/bools, tensors (_rebuild_tensor_v2, _rebuild_parameter) on typed storages,
// and LibTorch's own pickle_save output (`ckpt export`).
#include <ATen/core/ivalue.h>

#include <string>

namespace pc {

// Any other Python object (argparse.Namespace, an optimizer class, ...) throws UserError naming it.
c10::IValue load_torch_pickle(const std::string& path);

}  // namespace pc
