// PyTorch weight files -> named fp32/int64 tensors under our names: the file's format is sniffed
// first so that each kind of unreadable file gets its own message and fix.
#include "pyramidclip/interop/torch_state.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "pyramidclip/interop/torch_key_names.h"
#include "pyramidclip/interop/torch_pickle.h"
#include "pyramidclip/util/errors.h"

namespace pc {

namespace {

// First line of a LibTorch error (its messages carry C++ backtraces below).
std::string first_line(const c10::Error& e) {
  const std::string s = e.what_without_backtrace();
  return s.substr(0, s.find('\n'));
}

std::vector<char> read_bytes(const std::string& path) {
  require(std::filesystem::is_regular_file(path), "cannot read " + path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot read " + path + ": check its permissions");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  require(!in.bad(), "cannot read " + path + " (I/O error)");
  return bytes;
}

bool is_zip(const std::vector<char>& b) { return b.size() >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4; }

// torch.save before 1.6 (or with _use_new_zipfile_serialization=False) writes plain pickles, which
// start with the PROTO opcode 0x80.
bool is_pickle(const std::vector<char>& b) { return !b.empty() && static_cast<unsigned char>(b[0]) == 0x80; }

// A TorchScript archive holds code/ and constants.pkl next to data.pkl; torch.save's holds data.pkl only.
bool is_torchscript(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    return reader.hasRecord("constants.pkl");
  } catch (const c10::Error&) {
    return false;
  }
}

at::Tensor to_stored_type(const at::Tensor& t, const std::string& key, const std::string& path) {
  at::Tensor c = t.detach();
  if (c.is_floating_point()) return c.to(at::kFloat).contiguous();  // fp16 / bf16 (OpenAI, AMP) -> fp32
  require(!c.is_complex() && c.scalar_type() != at::kBool,
          path + ": entry '" + key + "' has type " + std::string(c10::toString(c.scalar_type())) +
              ", not a floating point or integer tensor: remove it from the state dict");
  return c.to(at::kLong).contiguous();  // BatchNorm num_batches_tracked
}

void add_tensor(TorchState& out, const std::string& key, const at::Tensor& t, const std::string& path) {
  const std::string ours = our_key_name(key);
  if (ours.empty()) {
    out.dropped.push_back(key);
    return;
  }
  out.tensors.emplace_back(ours, to_stored_type(t, key, path));
}

bool has_tensor_values(const c10::impl::GenericDict& d) {
  for (const auto& e : d)
    if (e.value().isTensor()) return true;
  return false;
}

std::string key_list(const c10::impl::GenericDict& d) {
  std::string s;
  int n = 0;
  for (const auto& e : d) {
    if (n++ == 8) return s + ", ...";
    s += (s.empty() ? "" : ", ") + (e.key().isString() ? "'" + e.key().toStringRef() + "'" : e.key().tagKind());
  }
  return s;
}

// Training checkpoints wrap the state dict: {'state_dict': ...} (official PyramidCLIP, open_clip),
// {'model': ...} (DeiT-style), possibly nested.
void read_pickled(const std::string& path, TorchState& out) {
  c10::IValue root;
  try {
    root = load_torch_pickle(path);  // Python objects other than tensors and containers: UserError naming them
  } catch (const c10::Error& e) {
    throw UserError(path + ": cannot read this torch.save archive (" + first_line(e) +
                    "): re-save the weights in Python with torch.save(torch.load(f, map_location='cpu'), "
                    "'weights.pt') and import that");
  }
  require(root.isGenericDict(), path + " holds a " + root.tagKind() +
                                    ", not a state dict: save model.state_dict() (a dict name -> tensor)");
  c10::impl::GenericDict dict = root.toGenericDict();
  for (int depth = 0; depth < 4 && !has_tensor_values(dict); ++depth) {
    bool descended = false;
    for (const char* wrapper : {"state_dict", "model", "module", "model_state_dict"}) {
      auto it = dict.find(c10::IValue(std::string(wrapper)));
      if (it != dict.end() && it->value().isGenericDict()) {
        out.unwrapped += (out.unwrapped.empty() ? "" : ".") + std::string(wrapper);
        dict = it->value().toGenericDict();
        descended = true;
        break;
      }
    }
    if (!descended) break;
  }
  require(has_tensor_values(dict), path + " holds no state dict (no tensors" +
                                       (out.unwrapped.empty() ? std::string() : " under '" + out.unwrapped + "'") +
                                       "; keys: " + key_list(dict) +
                                       "): save model.state_dict(), or a dict with it under 'state_dict'");
  for (const auto& e : dict) {
    require(e.key().isString(), path + ": the state dict has a non-string key (" + e.key().tagKind() +
                                    "): save model.state_dict()");
    const std::string& key = e.key().toStringRef();
    if (!e.value().isTensor()) {
      out.dropped.push_back(key + " (not a tensor)");
      continue;
    }
    add_tensor(out, key, e.value().toTensor(), path);
  }
}

void read_torchscript(const std::string& path, TorchState& out) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw UserError(path + ": cannot load this TorchScript archive (" + first_line(e) +
                    "): re-save its weights in Python with torch.save(torch.jit.load(f, map_location='cpu')"
                    ".state_dict(), 'weights.pt') and import that");
  }
  for (const auto& p : m.named_parameters(/*recurse=*/true)) add_tensor(out, p.name, p.value, path);
  for (const auto& b : m.named_buffers(/*recurse=*/true)) add_tensor(out, b.name, b.value, path);
}

}  // namespace

TorchState read_torch_state(const std::string& path) {
  const std::vector<char> bytes = read_bytes(path);
  TorchState out;
  if (is_zip(bytes)) {
    if (is_torchscript(path)) {
      out.format = "TorchScript archive";
      read_torchscript(path, out);
    } else {
      out.format = "torch.save archive";
      read_pickled(path, out);
    }
  } else if (is_pickle(bytes)) {
    throw UserError(path + " is in the legacy (pre-1.6, non-zip) torch.save format, which the C++ reader cannot "
                    "load: re-save it with torch >= 1.6 in Python: torch.save(torch.load(f, map_location='cpu'), "
                    "'weights.pt')");
  } else {
    throw UserError(path + " is not a PyTorch file (neither a torch.save zip archive nor a TorchScript archive): "
                    "check the path, or save the weights with torch.save(model.state_dict(), f)");
  }
  require(!out.tensors.empty(), path + " holds no weights (" + std::to_string(out.dropped.size()) +
                                    " non-weight entries only)");
  return out;
}

}  // namespace pc
