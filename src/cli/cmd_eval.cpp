// pyramidclip eval: zero-shot classification with trained weights (CLIP protocol, DESIGN §1).
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include "commands.h"
#include "options.h"
#include "pyramidclip/data/eval_loader.h"
#include "pyramidclip/eval/templates.h"
#include "pyramidclip/eval/zero_shot.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"

namespace pc::cli {

int cmd_eval(int argc, char** argv) {
  po::options_description opts("Eval options");
  add_model_options(opts);
  opts.add_options()
      ("weights", po::value<std::string>()->required(), "model.h5 written by train")
      ("images", po::value<std::string>()->required(), "held-out shards (K.jpg + K.cls) or an ImageFolder tree")
      ("classes", po::value<std::string>(), "class-name file, one per line (default: classes.txt beside the shards or the folder names)")
      ("templates", po::value<std::string>()->default_value("imagenet"), "'imagenet' (CLIP's 80 templates) or a file with one template per line, {} = class name")
      ("data.vocab", po::value<std::string>()->required(), "BPE merges file the model was trained with")
      ("batch-size", po::value<int>()->default_value(128), "images per forward pass")
      ("threads", po::value<int>()->default_value(0), "intra-op threads (0 = all cores)")
      ("output", po::value<std::string>(), "also write the result as JSON here");
  po::variables_map vm;
  if (!parse("eval", "Zero-shot top-1/top-5 of trained weights on labelled images. --config <run>/config.cfg "
             "supplies the model and vocabulary of a run.", opts, argc, argv, vm))
    return 0;
  ModelConfig mcfg = model_config_from(vm);
  const std::string weights = get<std::string>(vm, "weights");
  const int batch = get<int>(vm, "batch-size");
  require(batch > 0, "--batch-size must be positive");
  if (get<int>(vm, "threads") > 0) torch::set_num_threads(get<int>(vm, "threads"));

  Tokenizer tok = Tokenizer::from_file(get<std::string>(vm, "data.vocab"));
  const std::string tsrc = get<std::string>(vm, "templates");
  std::vector<std::string> templates = tsrc == "imagenet" ? imagenet_templates() : read_templates(tsrc);

  torch::NoGradGuard no_grad;
  PyramidClip model(mcfg);
  load_model_h5(*model, weights);
  model->eval();

  EvalLoaderOptions lo;
  lo.source = get<std::string>(vm, "images");
  lo.image_size = mcfg.image_size;
  lo.batch_size = batch;
  EvalLoader loader(lo);
  std::vector<std::string> classes =
      vm.count("classes") ? read_class_names(get<std::string>(vm, "classes")) : loader.class_names();
  require(!classes.empty(), "no class names for " + lo.source + ": pass --classes FILE");

  ZeroShotScorer scorer(class_embeddings(*model, tok, classes, templates));
  EvalBatch b;
  while (loader.next(b)) {
    require(b.labels.numel() == 0 || b.labels.max().item<int64_t>() < static_cast<int64_t>(classes.size()),
            "a label in " + lo.source + " is >= the " + std::to_string(classes.size()) + " class names: check --classes");
    scorer.add(model->encode_image(b.images, /*normalize=*/true), b.labels);
  }
  ZeroShotResult r = scorer.result();
  require(r.images > 0, "no readable labelled images in " + lo.source);
  const double chance = 1.0 / classes.size();
  std::printf("zero-shot: %lld images, %zu classes, %zu templates | top-1 %.2f%% | top-5 %.2f%% | chance %.2f%% "
              "(top-1 = %.1fx chance)\n",
              static_cast<long long>(r.images), classes.size(), templates.size(), 100 * r.top1, 100 * r.top5,
              100 * chance, r.top1 / chance);
  if (loader.stats().bad() > 0)
    std::printf("zero-shot: %lld unreadable samples skipped\n", static_cast<long long>(loader.stats().bad()));
  if (vm.count("output")) {
    nlohmann::json j = {{"weights", weights},     {"images", lo.source},    {"num_images", r.images},
                        {"num_classes", classes.size()}, {"num_templates", templates.size()},
                        {"top1", r.top1},         {"top5", r.top5},         {"chance", chance}};
    nlohmann::json per_class = nlohmann::json::object();
    for (size_t c = 0; c < classes.size(); ++c) per_class[classes[c]] = r.per_class_top1[c];
    j["per_class_top1"] = per_class;
    std::ofstream out(get<std::string>(vm, "output"));
    require(out.good(), "cannot write " + get<std::string>(vm, "output"));
    out << j.dump(2) << '\n';
  }
  return 0;
}

}  // namespace pc::cli
