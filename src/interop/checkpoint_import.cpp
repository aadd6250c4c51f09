// A PyTorch state dict -> our model -> model.h5, checked key by key before anything is written.
#include "pyramidclip/interop/checkpoint_import.h"

#include <torch/torch.h>

#include <map>

#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/util/errors.h"

namespace pc {

namespace {

constexpr size_t kShown = 4;  // keys named per kind of problem; the count says how many more

std::string shape_str(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

// "2 missing keys: 'a' [3], 'b' [4]" / "... (and 7 more)"
std::string listing(const std::vector<std::string>& items, const std::string& what) {
  std::string s = std::to_string(items.size()) + " " + what + (items.size() == 1 ? "" : "s") + ": ";
  for (size_t i = 0; i < items.size() && i < kShown; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > kShown) s += " (and " + std::to_string(items.size() - kShown) + " more)";
  return s;
}

// A hint that names the likely config mistake from the keys involved.
std::string config_hint(const std::vector<std::string>& missing, const std::vector<std::string>& unexpected) {
  auto any_has = [](const std::vector<std::string>& v, const std::string& part) {
    for (const auto& s : v)
      if (s.find(part) != std::string::npos) return true;
    return false;
  };
  if (any_has(missing, "proj_pre") && !any_has(unexpected, "proj_pre"))
    return "the file has no ROI projection: set model.roi = false";
  if (any_has(unexpected, "proj_pre") && !any_has(missing, "proj_pre"))
    return "the file has an ROI projection (proj_pre): set model.roi = true";
  if (any_has(missing, "resblocks1") || any_has(unexpected, "resblocks1"))
    return "one side is the official PyramidCLIP variant (resblocks1/resblocks2) and the other OpenAI CLIP "
           "(resblocks): set model.variant to match the file";
  return "give --config the architecture the file was trained with (model.preset, model.variant, model.roi)";
}

}  // namespace

ImportReport load_torch_state(torch::nn::Module& model, const TorchState& state, const std::string& source,
                              bool strict) {
  ImportReport report;
  report.format = state.format;
  report.unwrapped = state.unwrapped;
  report.dropped = state.dropped;

  std::map<std::string, at::Tensor> targets;  // named_parameters then named_buffers, as state_dict()
  for (const auto& p : model.named_parameters(true)) targets.emplace(p.key(), p.value());
  for (const auto& b : model.named_buffers(true))
    if (b.value().defined()) targets.emplace(b.key(), b.value());

  std::vector<std::string> mismatched, duplicate;
  std::map<std::string, const at::Tensor*> found;
  for (const auto& [key, t] : state.tensors) {
    auto it = targets.find(key);
    if (it == targets.end()) {
      report.unexpected.push_back("'" + key + "' " + shape_str(t));
      continue;
    }
    if (!found.emplace(key, &t).second) {
      duplicate.push_back("'" + key + "'");
      continue;
    }
    const at::Tensor& want = it->second;
    if (t.sizes() != want.sizes())
      mismatched.push_back("'" + key + "' " + shape_str(t) + " in the file, " + shape_str(want) + " in the model");
    else if (t.is_floating_point() != want.is_floating_point())
      mismatched.push_back("'" + key + "' is " + (t.is_floating_point() ? "floating point" : "integer") +
                           " in the file, " + (want.is_floating_point() ? "floating point" : "integer") +
                           " in the model");
  }
  std::vector<std::string> missing;
  for (const auto& [key, t] : targets)
    if (!found.count(key)) missing.push_back("'" + key + "' " + shape_str(t));

  std::vector<std::string> problems;
  if (!missing.empty()) problems.push_back(listing(missing, "missing key"));
  if (!mismatched.empty()) problems.push_back(listing(mismatched, "shape/type mismatch"));
  if (!duplicate.empty()) problems.push_back(listing(duplicate, "duplicate key (after removing prefixes)"));
  if (strict && !report.unexpected.empty()) problems.push_back(listing(report.unexpected, "unexpected key"));
  if (!problems.empty()) {
    std::string msg = source + " does not fit the model: ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw UserError(msg + " (" + config_hint(missing, report.unexpected) + ")");
  }

  torch::NoGradGuard no_grad;
  for (const auto& [key, t] : found) {
    at::Tensor& dst = targets.at(key);
    dst.copy_(*t);
    ++report.loaded;
  }
  return report;
}

ImportReport import_torch_checkpoint(const std::string& source, const ModelConfig& cfg, const std::string& output,
                                     bool strict) {
  const TorchState state = read_torch_state(source);
  PyramidClip model(cfg);
  const ImportReport report = load_torch_state(*model, state, source, strict);
  save_model_h5(*model, output, /*step=*/0, cfg.name);
  return report;
}

}  // namespace pc
