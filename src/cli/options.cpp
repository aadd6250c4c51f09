#include "options.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "pyramidclip/util/errors.h"

namespace pc::cli {

bool parse(const std::string& command, const std::string& summary, po::options_description& opts, int argc,
           char** argv, po::variables_map& vm, const po::positional_options_description* positional) {
  po::options_description general("General");
  general.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                     "INI config file (configs/*.cfg); command-line options override it");
  po::options_description all;
  all.add(general).add(opts);
  try {
    po::command_line_parser parser(argc, argv);
    parser.options(all);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: pyramidclip " << command << " [options]\n" << summary << "\n\n" << all << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream in(path);
      require(in.good(), "cannot read config file " + path + ": check the path (configs/ lists the shipped ones)");
      // train owns every section and rejects typos; other commands read the same files for the
      // sections they need ([model] for eval and model info) and ignore the rest
      po::store(po::parse_config_file(in, opts, /*allow_unregistered=*/command != "train"), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UserError(std::string(e.what()) + " (see pyramidclip " + command + " --help)");
  }
  return true;
}

void add_model_options(po::options_description& opts) {
  opts.add_options()
      ("model.preset", po::value<std::string>()->default_value("tiny"), "architecture: tiny, vit-b32, vit-b16, rn50")
      ("model.variant", po::value<std::string>()->default_value("official"),
       "official (PyramidCLIP: LeFF ViT, frozen patch conv, max-pooled text) or standard (OpenAI CLIP)")
      ("model.roi", po::value<bool>()->default_value(true), "build the ROI path (proj_pre, ROI LayerNorm)")
      ("model.text-pool", po::value<std::string>(), "max (official) or eot (OpenAI CLIP); default follows the variant")
      ("model.vocab-size", po::value<int>(), "token embedding rows (default 49408)")
      ("model.image-size", po::value<int>(), "input resolution (default from the preset)")
      ("model.checkpoint-image", po::value<bool>()->default_value(false), "activation checkpointing of the image tower's blocks / RN50 stages (less memory, one more forward)")
      ("model.checkpoint-text", po::value<bool>()->default_value(false), "activation checkpointing of the text tower's blocks")
      ("model.sync-batchnorm", po::value<bool>()->default_value(true), "BatchNorm (LeFF blocks, RN50) with statistics over all ranks; false: per rank");
}

ModelConfig model_config_from(const po::variables_map& vm) {
  const std::string variant = get<std::string>(vm, "model.variant");
  require(variant == "official" || variant == "standard",
          "model.variant must be official or standard, not '" + variant + "'");
  ModelConfig m = model_preset(get<std::string>(vm, "model.preset"), variant == "official");
  m.with_roi = get<bool>(vm, "model.roi");
  m.checkpoint_image = get<bool>(vm, "model.checkpoint-image");
  m.checkpoint_text = get<bool>(vm, "model.checkpoint-text");
  m.sync_batchnorm = get<bool>(vm, "model.sync-batchnorm");
  if (vm.count("model.text-pool")) {
    m.text_pool = get<std::string>(vm, "model.text-pool");
    require(m.text_pool == "max" || m.text_pool == "eot", "model.text-pool must be max or eot");
  }
  if (vm.count("model.vocab-size")) {
    m.vocab_size = get<int>(vm, "model.vocab-size");
    require(m.vocab_size > 2, "model.vocab-size must be > 2");
  }
  if (vm.count("model.image-size")) {
    m.image_size = get<int>(vm, "model.image-size");
    require(m.vision == "rn50" ? m.image_size % 32 == 0 : m.image_size % m.patch_size == 0,
            "model.image-size must be a multiple of the patch size (32 for rn50)");
  }
  return m;
}

namespace {
std::string value_text(const boost::any& v) {
  std::ostringstream s;
  if (auto p = boost::any_cast<std::string>(&v)) return *p;
  if (auto p = boost::any_cast<int>(&v)) s << *p;
  else if (auto p = boost::any_cast<int64_t>(&v)) s << *p;
  else if (auto p = boost::any_cast<uint64_t>(&v)) s << *p;
  else if (auto p = boost::any_cast<double>(&v)) { s.precision(17); s << *p; }
  else if (auto p = boost::any_cast<bool>(&v)) s << (*p ? "true" : "false");
  return s.str();
}
}  // namespace

std::string resolved_config_text(const po::variables_map& vm, const std::vector<std::string>& skip) {
  std::map<std::string, std::map<std::string, std::string>> sections;
  for (const auto& [name, value] : vm) {
    if (name == "help" || name == "config") continue;
    if (std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
    auto dot = name.find('.');
    if (dot == std::string::npos) continue;
    sections[name.substr(0, dot)][name.substr(dot + 1)] = value_text(value.value());
  }
  std::string out = "# resolved by pyramidclip " PYRAMIDCLIP_VERSION "\n";
  for (const auto& [section, kv] : sections) {
    out += "\n[" + section + "]\n";
    for (const auto& [k, v] : kv) out += k + " = " + v + "\n";
  }
  return out;
}

}  // namespace pc::cli
