// pyramidclip model info: parameter counts of an architecture (no weights needed).
#include <torch/torch.h>

#include <cstdio>
#include <map>

#include "commands.h"
#include "options.h"
#include "pyramidclip/model/pyramid_clip.h"

namespace pc::cli {

int cmd_model_info(int argc, char** argv) {
  po::options_description opts("Model options");
  add_model_options(opts);
  po::variables_map vm;
  if (!parse("model info", "Prints the parameter count of a configured model (as sum(p.numel()) in PyTorch).", opts,
             argc, argv, vm))
    return 0;
  ModelConfig cfg = model_config_from(vm);
  torch::NoGradGuard no_grad;
  PyramidClip model(cfg);
  std::map<std::string, int64_t> by_part;
  int64_t trainable = 0;
  for (const auto& p : model->named_parameters()) {
    const std::string& k = p.key();
    std::string part = k.rfind("visual.", 0) == 0 ? "image tower (visual.*)" : k == "logit_scale" ? "logit_scale" : "text tower";
    by_part[part] += p.value().numel();
    if (p.value().requires_grad()) trainable += p.value().numel();
  }
  std::printf("model: %s (%s, %s image tower, text pooling %s, ROI path %s)\n", cfg.name.c_str(),
              cfg.official ? "official PyramidCLIP" : "standard CLIP", cfg.vision.c_str(), cfg.text_pool.c_str(),
              cfg.with_roi ? "on" : "off");
  for (const auto& [part, n] : by_part) std::printf("  %-24s %'15lld\n", part.c_str(), static_cast<long long>(n));
  std::printf("parameters: %lld\n", static_cast<long long>(count_parameters(*model)));
  std::printf("trainable:  %lld\n", static_cast<long long>(trainable));
  return 0;
}

}  // namespace pc::cli
