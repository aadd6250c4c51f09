// pyramidclip sweep <run>/checkpoints: evaluate every published checkpoint once per task, cache
// one JSON per (checkpoint, task), tabulate and plot them (eval/sweep.h). Slurm: one array task
// per --shard i/n (slurm/eval_sweep.sbatch).
#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "commands.h"
#include "options.h"
#include "pyramidclip/eval/sweep.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/logging.h"

namespace fs = std::filesystem;

namespace pc::cli {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_signal(int sig) {
  g_stop.store(true);
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process at once
}

bool has_config_option(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--config") || !std::strncmp(argv[i], "--config=", 9)) return true;
  return false;
}

}  // namespace

int cmd_sweep(int argc, char** argv) {
  po::options_description opts("Sweep options");
  add_model_options(opts);
  opts.add_options()
      ("checkpoints", po::value<std::string>(), "<run>/checkpoints (positional); the model and vocabulary come from <run>/config.cfg unless --config is given")
      ("zeroshot", po::value<std::vector<std::string>>()->composing(), "zero-shot task NAME=SRC[,classes=FILE][,templates=FILE] (repeatable); SRC: labelled shards or an ImageFolder tree; templates default to CLIP's 80 ImageNet ones")
      ("retrieval", po::value<std::vector<std::string>>()->composing(), "retrieval task NAME=SRC (repeatable); SRC: a CSV/TSV/JSONL caption table or caption shards")
      ("tasks", po::value<std::string>(), "a file of tasks, one a line: 'zeroshot NAME=SRC[,...]' or 'retrieval NAME=SRC'")
      ("out", po::value<std::string>(), "results directory (default <run>/eval)")
      ("shard", po::value<std::string>()->default_value("0/1"), "evaluate only the checkpoints of shard i of n (i/n; Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
      ("watch", po::bool_switch(), "keep evaluating new checkpoints until the run's last step is evaluated (or SIGINT/SIGTERM)")
      ("poll", po::value<double>()->default_value(60), "with --watch: seconds between looks for new checkpoints")
      ("limit", po::value<int64_t>()->default_value(-1), "stop after evaluating this many checkpoints (-1: all)")
      ("data.vocab", po::value<std::string>(), "BPE merges file the model was trained with (from the run's config)")
      ("batch-size", po::value<int>()->default_value(128), "images (captions) per forward pass")
      ("threads", po::value<int>()->default_value(0), "intra-op threads (0 = all cores)");
  po::positional_options_description pos;
  pos.add("checkpoints", 1);
  const std::string summary =
      "Evaluate every published checkpoint of a run that has no result yet: one JSON per checkpoint and task "
      "under <run>/eval/step-N/, then <run>/eval/results.csv and plot-<metric>.svg. Stop and restart at will.";
  po::variables_map vm;
  if (!parse("sweep", summary, opts, argc, argv, vm, &pos)) return 0;
  require(vm.count("checkpoints"), "sweep needs the run's checkpoint directory: pyramidclip sweep <run>/checkpoints");
  const fs::path ckpt_root = fs::path(get<std::string>(vm, "checkpoints")).lexically_normal();
  const fs::path run_dir = (ckpt_root.filename().empty() ? ckpt_root.parent_path() : ckpt_root).parent_path();
  if (!has_config_option(argc, argv)) {  // the run's own configuration, unless overridden
    const std::string cfg = (run_dir / "config.cfg").string();
    require(fs::is_regular_file(cfg), "no " + cfg + ": pass the run's configuration with --config FILE");
    std::vector<std::string> extra(argv, argv + argc);
    extra.insert(extra.end(), {"--config", cfg});
    std::vector<char*> args;
    for (auto& a : extra) args.push_back(a.data());
    vm = po::variables_map();
    parse("sweep", summary, opts, static_cast<int>(args.size()), args.data(), vm, &pos);
  }
  require(vm.count("data.vocab"), "no vocabulary: the run's config has no [data] vocab; pass --data.vocab FILE");

  SweepOptions so;
  so.checkpoints = ckpt_root.string();
  so.out_dir = vm.count("out") ? get<std::string>(vm, "out") : (run_dir / "eval").string();
  so.model = model_config_from(vm);
  so.vocab = get<std::string>(vm, "data.vocab");
  so.run.batch_size = get<int>(vm, "batch-size");
  require(so.run.batch_size > 0, "--batch-size must be positive");
  std::tie(so.shard_index, so.shard_count) = parse_shard(get<std::string>(vm, "shard"));
  so.watch = get<bool>(vm, "watch");
  so.poll_seconds = get<double>(vm, "poll");
  require(so.poll_seconds > 0, "--poll must be positive (seconds)");
  so.limit = get<int64_t>(vm, "limit");
  if (vm.count("tasks")) so.tasks = read_task_file(get<std::string>(vm, "tasks"));
  for (const char* kind : {"zeroshot", "retrieval"})
    if (vm.count(kind))
      for (const auto& spec : get<std::vector<std::string>>(vm, kind)) so.tasks.push_back(parse_task_spec(kind, spec));
  check_unique_task_names(so.tasks);
  if (get<int>(vm, "threads") > 0) torch::set_num_threads(get<int>(vm, "threads"));

  init_logging(0, "");
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const SweepReport r = run_sweep(so, g_stop);
  std::printf("sweep: shard %d/%d: %lld checkpoints evaluated (%lld results), %lld already done, %lld skipped as "
              "damaged, %lld deleted meanwhile%s\n",
              so.shard_index, so.shard_count, static_cast<long long>(r.checkpoints_evaluated),
              static_cast<long long>(r.results_written), static_cast<long long>(r.checkpoints_cached),
              static_cast<long long>(r.checkpoints_invalid), static_cast<long long>(r.checkpoints_vanished),
              r.stopped ? "; stopped early, run again to continue" : "");
  return 0;
}

}  // namespace pc::cli
