// pyramidclip eval: zero-shot classification or image-text retrieval with trained weights
// (CLIP protocol, DESIGN §1). The task itself is eval/eval_task.h, shared with `sweep`.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "options.h"
#include "pyramidclip/eval/eval_task.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace fs = std::filesystem;

namespace pc::cli {

int cmd_eval(int argc, char** argv) {
  po::options_description opts("Eval options");
  add_model_options(opts);
  opts.add_options()
      ("weights", po::value<std::string>()->required(), "model.h5 written by train (or a checkpoint's)")
      ("task", po::value<std::string>(), "zeroshot (default) or retrieval (default when --pairs is given)")
      ("images", po::value<std::string>(), "zeroshot: held-out shards (K.jpg + K.cls) or an ImageFolder tree")
      ("classes", po::value<std::string>(), "zeroshot: class-name file, one per line (default: classes.txt beside the shards or the folder names)")
      ("templates", po::value<std::string>()->default_value("imagenet"), "zeroshot: 'imagenet' (CLIP's 80 templates) or a file with one template per line, {} = class name")
      ("pairs", po::value<std::string>(), "retrieval: a CSV/TSV/JSONL table with image (relative to the table) and caption columns, or shards of K.jpg + K.txt; rows with the same image are its captions")
      ("data.vocab", po::value<std::string>()->required(), "BPE merges file the model was trained with")
      ("batch-size", po::value<int>()->default_value(128), "images (captions) per forward pass")
      ("threads", po::value<int>()->default_value(0), "intra-op threads (0 = all cores)")
      ("output", po::value<std::string>(), "also write the result as JSON here");
  po::variables_map vm;
  if (!parse("eval", "Zero-shot top-1/top-5 on labelled images, or image<->text recall@1/5/10 on caption pairs, "
             "of trained weights. --config <run>/config.cfg supplies the model and vocabulary of a run.",
             opts, argc, argv, vm))
    return 0;
  ModelConfig mcfg = model_config_from(vm);
  const std::string weights = get<std::string>(vm, "weights");
  EvalRunOptions run;
  run.batch_size = get<int>(vm, "batch-size");
  require(run.batch_size > 0, "--batch-size must be positive");
  if (get<int>(vm, "threads") > 0) torch::set_num_threads(get<int>(vm, "threads"));

  EvalTaskSpec spec;
  spec.kind = vm.count("task") ? get<std::string>(vm, "task") : (vm.count("pairs") ? "retrieval" : "zeroshot");
  require(spec.kind == "zeroshot" || spec.kind == "retrieval", "--task must be zeroshot or retrieval, not '" + spec.kind + "'");
  if (spec.kind == "zeroshot") {
    require(vm.count("images"), "zero-shot evaluation needs --images (labelled shards or an ImageFolder tree)");
    spec.source = get<std::string>(vm, "images");
    spec.classes = vm.count("classes") ? get<std::string>(vm, "classes") : "";
    spec.templates = get<std::string>(vm, "templates");
  } else {
    require(vm.count("pairs") || vm.count("images"),
            "retrieval needs --pairs (a CSV/TSV/JSONL caption table or caption shards)");
    spec.source = get<std::string>(vm, vm.count("pairs") ? "pairs" : "images");
  }

  // named after the data in the printed summary ("zero-shot heldout: ...")
  spec.name = fs::path(spec.source).lexically_normal().filename().string();
  if (spec.name.empty()) spec.name = fs::path(spec.source).lexically_normal().parent_path().filename().string();

  Tokenizer tok = Tokenizer::from_file(get<std::string>(vm, "data.vocab"));
  torch::NoGradGuard no_grad;
  PyramidClip model(mcfg);
  load_model_h5(*model, weights);
  model->eval();

  std::string summary;
  nlohmann::json metrics = run_eval_task(*model, tok, spec, run, &summary);
  std::printf("%s\n", summary.c_str());
  if (vm.count("output")) {
    // metrics at the top level (as before) plus what was evaluated
    nlohmann::json j = {{"weights", weights}, {"task", task_spec_json(spec)}};
    if (spec.kind == "zeroshot") j["images"] = spec.source;
    else j["pairs"] = spec.source;
    j.update(metrics);
    write_file_atomic(get<std::string>(vm, "output"), j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace pc::cli
