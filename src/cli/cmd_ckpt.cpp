// pyramidclip ckpt info | verify: what a checkpoint holds, and whether it is intact.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "options.h"
#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/ckpt/checkpoint_files.h"
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

}  // namespace

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
