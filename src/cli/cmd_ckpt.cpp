// pyramidclip ckpt info | verify: what a checkpoint holds, and whether it is intact;
// ckpt import | export: PyTorch weight files <-> model.h5.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "options.h"
#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/ckpt/checkpoint_files.h"
#include "pyramidclip/interop/checkpoint_export.h"
#include "pyramidclip/interop/checkpoint_import.h"
#include "pyramidclip/util/errors.h"

namespace pc::cli {
namespace {

namespace fs = std::filesystem;

// A run directory, its checkpoints/ directory, or one step directory -> the step directories.
std::vector<std::string> step_dirs(const std::string& path) {
  require(fs::is_directory(path), path + " is not a directory: give a checkpoint, a checkpoints/ directory or a run");
  if (fs::exists(fs::path(path) / "MANIFEST.json") || fs::exists(fs::path(path) / "state.h5")) return {path};
  for (const std::string& root : {path, (fs::path(path) / "checkpoints").string()}) {
    std::vector<std::string> out;
    for (const auto& e : list_checkpoints(root)) out.push_back(e.path);
    if (!out.empty()) return out;
  }
  throw UserError(path + " holds no checkpoint (no step-* directories, no MANIFEST.json)");
}

std::string positional_path(int argc, char** argv, const std::string& cmd, const std::string& summary,
                            po::variables_map& vm) {
  po::options_description opts("Options");
  opts.add_options()("path", po::value<std::string>()->required(),
                     "checkpoint directory, a run's checkpoints/ directory, or a run directory (first positional)");
  po::positional_options_description pos;
  pos.add("path", 1);
  if (!parse(cmd, summary, opts, argc, argv, vm, &pos)) return "";
  return get<std::string>(vm, "path");
}

// "first, second, third (and N more)"
std::string first_few(const std::vector<std::string>& items, size_t shown = 4) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < shown; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > shown) s += " (and " + std::to_string(items.size() - shown) + " more)";
  return s;
}

// model.h5 itself, a directory holding one (a step directory, a finished run), or a run / checkpoints/
// directory: the newest valid checkpoint's model.h5.
std::string model_h5_of(const std::string& path) {
  if (fs::is_regular_file(path)) return path;
  require(fs::is_directory(path), path + " does not exist: give a model.h5, a checkpoint directory or a run");
  if (fs::is_regular_file(fs::path(path) / "model.h5")) return (fs::path(path) / "model.h5").string();
  for (const std::string& root : {path, (fs::path(path) / "checkpoints").string()}) {
    std::vector<std::string> rejected;
    if (auto found = newest_valid_checkpoint(root, &rejected)) return (fs::path(found->path) / "model.h5").string();
  }
  throw UserError(path + " holds no model.h5 and no valid checkpoint: give a model.h5 or a checkpoint directory");
}

}  // namespace

int cmd_ckpt_import(int argc, char** argv) {
  po::options_description opts("Import options");
  add_model_options(opts);
  opts.add_options()
      ("source", po::value<std::string>()->required(), "PyTorch file: torch.save state dict or checkpoint, or a TorchScript archive (first positional)")
      ("output", po::value<std::string>()->required(), "model.h5 to write")
      ("strict", po::bool_switch(), "keys the model does not have are an error (default: listed and left out)");
  po::positional_options_description pos;
  pos.add("source", 1);
  po::variables_map vm;
  if (!parse("ckpt import",
             "Converts PyTorch weights (official PyramidCLIP / open_clip checkpoints, OpenAI CLIP TorchScript "
             "archives) into model.h5 for the model --config describes; every key and shape is checked.",
             opts, argc, argv, vm, &pos))
    return 0;
  const std::string source = get<std::string>(vm, "source"), output = get<std::string>(vm, "output");
  const ImportReport r = import_torch_checkpoint(source, model_config_from(vm), output, get<bool>(vm, "strict"));
  std::printf("imported %zu tensors from %s (%s%s) into %s\n", r.loaded, source.c_str(), r.format.c_str(),
              r.unwrapped.empty() ? "" : (", state dict under '" + r.unwrapped + "'").c_str(), output.c_str());
  if (!r.dropped.empty())
    std::printf("left out %zu non-weight entries: %s\n", r.dropped.size(), first_few(r.dropped).c_str());
  if (!r.unexpected.empty())
    std::fprintf(stderr, "pyramidclip: warning: left out %zu keys the model does not have: %s (--strict makes this "
                 "an error)\n", r.unexpected.size(), first_few(r.unexpected).c_str());
  return 0;
}

int cmd_ckpt_export(int argc, char** argv) {
  po::options_description opts("Export options");
  opts.add_options()
      ("path", po::value<std::string>()->required(), "model.h5, a checkpoint directory or a run directory (first positional)")
      ("output", po::value<std::string>()->required(), "file to write (.pt); Python: torch.load(f) is the state dict");
  po::positional_options_description pos;
  pos.add("path", 1);
  po::variables_map vm;
  if (!parse("ckpt export", "Writes model.h5's weights as a state dict that Python's torch.load reads.", opts, argc,
             argv, vm, &pos))
    return 0;
  const std::string h5 = model_h5_of(get<std::string>(vm, "path")), output = get<std::string>(vm, "output");
  const size_t n = export_model_h5_to_torch(h5, output);
  std::printf("exported %zu tensors from %s to %s\n", n, h5.c_str(), output.c_str());
  return 0;
}

int cmd_ckpt_info(int argc, char** argv) {
  po::variables_map vm;
  const std::string path = positional_path(
      argc, argv, "ckpt info", "Prints each checkpoint's step, samples seen, world size, files and sizes (no checksums).",
      vm);
  if (path.empty()) return 0;
  for (const auto& dir : step_dirs(path)) {
    const std::string why = verify_checkpoint(dir, /*checksums=*/false);
    std::printf("%s: %s\n", dir.c_str(), why.empty() ? "complete (sizes match; `ckpt verify` checks contents)" : why.c_str());
    if (!why.empty()) continue;
    const Manifest m = read_manifest(dir);
    const TrainState st = read_train_state((fs::path(dir) / "state.h5").string());
    int64_t bytes = 0;
    for (const auto& f : m.files) bytes += f.bytes;
    std::printf("  step %lld, %.0f samples seen (epoch %.3f), written by %d rank(s), global batch %d, arch %s, "
                "pyramidclip %s\n",
                static_cast<long long>(m.step), m.samples_seen, st.epoch, m.world_size, st.global_batch,
                st.arch.c_str(), m.version.c_str());
    std::printf("  %zu files, %.1f MB:", m.files.size(), bytes / 1e6);
    for (const auto& f : m.files) std::printf(" %s", f.name.c_str());
    std::printf("\n");
  }
  return 0;
}

int cmd_ckpt_verify(int argc, char** argv) {
  po::variables_map vm;
  const std::string path = positional_path(
      argc, argv, "ckpt verify",
      "Checks every file of each checkpoint against its MANIFEST.json (size and XXH3 checksum).\n"
      "Exit code: 0 when all are valid, 1 when one is not, 2 on a usage error.",
      vm);
  if (path.empty()) return 0;
  int bad = 0;
  for (const auto& dir : step_dirs(path)) {
    const std::string why = verify_checkpoint(dir, /*checksums=*/true);
    std::printf("%s: %s\n", dir.c_str(), why.empty() ? "valid" : ("INVALID: " + why).c_str());
    bad += !why.empty();
  }
  return bad ? 1 : 0;
}

}  // namespace pc::cli
