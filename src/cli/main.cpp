// pyramidclip: git-style subcommands (DESIGN §5). Bad input is one line on stderr and exit 2.
#include <c10/util/Exception.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "blas_coretype.h"
#include "malloc_tuning.h"
#include "pyramidclip/run/large_block_cache.h"
#include "commands.h"
#include "pyramidclip/util/errors.h"

namespace {

struct Command {
  std::vector<std::string> words;
  int (*run)(int, char**);
  const char* help;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> c = {
      {{"train"}, pc::cli::cmd_train, "train PyramidCLIP (launch with mpirun/srun for data parallel)"},
      {{"eval"}, pc::cli::cmd_eval, "zero-shot classification or image-text retrieval with trained weights"},
      {{"sweep"}, pc::cli::cmd_sweep, "evaluate every checkpoint of a run (cached JSON per task, CSV, SVG plots)"},
      {{"data", "synth"}, pc::cli::cmd_data_synth, "write the synthetic dataset (shards, held-out split, vocabulary)"},
      {{"data", "pack"}, pc::cli::cmd_data_pack, "pack a CSV/TSV/JSONL caption table or an ImageFolder into shards"},
      {{"data", "check"}, pc::cli::cmd_data_check, "validate shards: decode images, count bad and missing members"},
      {{"ckpt", "info"}, pc::cli::cmd_ckpt_info, "list checkpoints: step, samples seen, world size, files"},
      {{"ckpt", "verify"}, pc::cli::cmd_ckpt_verify, "check checkpoints' files against their manifests (exit 1 if not)"},
      {{"ckpt", "import"}, pc::cli::cmd_ckpt_import, "PyTorch weights (torch.save, TorchScript) -> model.h5"},
      {{"ckpt", "export"}, pc::cli::cmd_ckpt_export, "model.h5 -> a file Python's torch.load reads (official key names)"},
      {{"model", "info"}, pc::cli::cmd_model_info, "print an architecture's parameter counts"},
      {{"plan"}, pc::cli::cmd_plan, "capacity planner: memory, step time, scaling, wall time and GPU-hours"},
      {{"tokenize"}, pc::cli::cmd_tokenize, "print the 77 CLIP token ids of each stdin line"},
  };
  return c;
}

void usage(FILE* out) {
  std::fprintf(out, "usage: pyramidclip <command> [options]   (pyramidclip <command> --help for its options)\n\n");
  for (const auto& c : commands()) {
    std::string w;
    for (const auto& s : c.words) w += (w.empty() ? "" : " ") + s;
    std::fprintf(out, "  %-14s %s\n", w.c_str(), c.help);
  }
}

// Under mpirun every rank fails the same way: let rank 0 alone print it.
bool is_quiet_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"})
    if (const char* s = std::getenv(v)) return std::atoi(s) != 0;
  return false;
}

int dispatch(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? pc::kExitUsage : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("pyramidclip %s\n", PYRAMIDCLIP_VERSION);
    return 0;
  }
  for (const auto& c : commands()) {
    const int n = static_cast<int>(c.words.size());
    bool match = argc > n;
    for (int i = 0; match && i < n; ++i) match = c.words[i] == argv[1 + i];
    if (match) return c.run(argc - n, argv + n);
  }
  // "pyramidclip data" alone: name the subcommands it has
  std::string subs;
  for (const auto& c : commands())
    if (c.words.size() > 1 && c.words[0] == argv[1]) subs += (subs.empty() ? "" : ", ") + c.words[1];
  if (!subs.empty() && argc > 2 && (!std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h"))) {
    usage(stdout);
    return 0;
  }
  if (!subs.empty() && (argc == 2 || argv[2][0] == '-'))
    throw pc::UserError(std::string("'") + argv[1] + "' needs a subcommand: " + subs + " (pyramidclip " + argv[1] +
                        " " + subs.substr(0, subs.find(',')) + " --help)");
  std::string got = argv[1];
  if (argc > 2 && argv[2][0] != '-') got += std::string(" ") + argv[2];
  throw pc::UserError("unknown command '" + got + "' (run pyramidclip --help for the list)");
}

}  // namespace

int main(int argc, char** argv) {
  pc::cli::ensure_blas_coretype(argv);
  pc::cli::tune_malloc_for_training();
  pc::install_large_block_cache();  // large tensors: reused, huge-page mappings
  try {
    return dispatch(argc, argv);
  } catch (const pc::UserError& e) {
    if (!is_quiet_rank()) std::fprintf(stderr, "pyramidclip: error: %s\n", e.what());
    return pc::kExitUsage;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "pyramidclip: internal error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pyramidclip: internal error: %s\n", e.what());
    return 1;
  }
}
