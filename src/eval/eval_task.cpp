// Evaluation tasks: spec parsing and the zero-shot / retrieval runs shared by eval and sweep.
#include "pyramidclip/eval/eval_task.h"

#include <torch/torch.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <set>

#include "pyramidclip/data/eval_loader.h"
#include "pyramidclip/data/pair_loader.h"
#include "pyramidclip/eval/retrieval.h"
#include "pyramidclip/eval/templates.h"
#include "pyramidclip/eval/zero_shot.h"
#include "pyramidclip/model/pyramid_clip.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

// Splits on commas outside {...} (a brace pattern's alternatives stay in the source).
std::vector<std::string> split_spec(const std::string& text) {
  std::vector<std::string> parts(1);
  int depth = 0;
  for (char c : text) {
    if (c == '{') ++depth;
    if (c == '}' && depth > 0) --depth;
    if (c == ',' && depth == 0) parts.emplace_back();
    else parts.back() += c;
  }
  return parts;
}

bool valid_name(const std::string& n) {
  if (n.empty() || n == "." || n == "..") return false;
  for (unsigned char c : n)
    if (!std::isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  return true;
}

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

at::Tensor encode_texts(PyramidClipImpl& model, const Tokenizer& tok, const std::vector<std::string>& texts, int batch) {
  const int ctx = model.config().context_length;
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < texts.size(); i += static_cast<size_t>(batch)) {
    const size_t end = std::min(texts.size(), i + static_cast<size_t>(batch));
    std::vector<int64_t> ids;
    for (size_t t = i; t < end; ++t)
      for (int32_t id : tok.tokenize(texts[t], ctx)) ids.push_back(id);
    out.push_back(model.encode_text(torch::tensor(ids, torch::kLong).view({static_cast<int64_t>(end - i), ctx}),
                                    /*normalize=*/true));
  }
  return torch::cat(out);
}

nlohmann::json run_zero_shot(PyramidClipImpl& model, const Tokenizer& tok, const EvalTaskSpec& spec,
                             const EvalRunOptions& opt, std::string* summary) {
  const std::vector<std::string> templates =
      spec.templates.empty() || spec.templates == "imagenet" ? imagenet_templates() : read_templates(spec.templates);
  EvalLoaderOptions lo;
  lo.source = spec.source;
  lo.image_size = model.config().image_size;
  lo.batch_size = opt.batch_size;
  EvalLoader loader(lo);
  const std::vector<std::string> classes =
      spec.classes.empty() ? loader.class_names() : read_class_names(spec.classes);
  require(!classes.empty(), "no class names for " + spec.source + ": give a class-name file (eval --classes FILE, "
                            "sweep --zeroshot NAME=SRC,classes=FILE) or put classes.txt beside the shards");
  ZeroShotScorer scorer(class_embeddings(model, tok, classes, templates));
  EvalBatch b;
  while (loader.next(b)) {
    require(b.labels.max().item<int64_t>() < static_cast<int64_t>(classes.size()),
            "a label in " + spec.source + " is >= the " + std::to_string(classes.size()) +
                " class names: check the class-name file");
    scorer.add(model.encode_image(b.images, /*normalize=*/true), b.labels);
  }
  const ZeroShotResult r = scorer.result();
  require(r.images > 0, "no readable labelled images in " + spec.source);
  const double chance = 1.0 / static_cast<double>(classes.size());
  nlohmann::json per1 = nlohmann::json::object(), per5 = nlohmann::json::object();
  for (size_t c = 0; c < classes.size(); ++c) {
    per1[classes[c]] = r.per_class_top1[c];
    per5[classes[c]] = r.per_class_top5[c];
  }
  if (summary) {
    char line[320];
    std::snprintf(line, sizeof line,
                  "zero-shot %s: %lld images, %zu classes, %zu templates | top-1 %.2f%% | top-5 %.2f%% | chance "
                  "%.2f%% (top-1 = %.1fx chance)",
                  spec.name.c_str(), static_cast<long long>(r.images), classes.size(), templates.size(), 100 * r.top1,
                  100 * r.top5, 100 * chance, r.top1 / chance);
    *summary = line;
    if (loader.stats().bad() > 0)
      *summary += " | " + std::to_string(loader.stats().bad()) + " unreadable samples skipped";
  }
  return {{"num_images", r.images}, {"num_classes", classes.size()}, {"num_templates", templates.size()},
          {"top1", r.top1},         {"top5", r.top5},                {"chance", chance},
          {"skipped", loader.stats().bad()}, {"per_class_top1", per1}, {"per_class_top5", per5}};
}

nlohmann::json run_retrieval(PyramidClipImpl& model, const Tokenizer& tok, const EvalTaskSpec& spec,
                             const EvalRunOptions& opt, std::string* summary) {
  PairLoaderOptions lo;
  lo.source = spec.source;
  lo.image_size = model.config().image_size;
  lo.batch_size = opt.batch_size;
  PairLoader loader(lo);
  std::vector<at::Tensor> image_emb;
  PairBatch b;
  while (loader.next(b)) image_emb.push_back(model.encode_image(b.images, /*normalize=*/true));
  require(loader.num_images() > 0, "no readable (image, caption) pairs in " + spec.source);
  const at::Tensor text_emb = encode_texts(model, tok, loader.captions(), opt.batch_size);
  const RetrievalResult r = score_retrieval(torch::cat(image_emb), text_emb, loader.caption_image());
  if (summary) {
    char line[320];
    std::snprintf(line, sizeof line,
                  "retrieval %s: %lld images, %lld captions | image->text R@1 %.2f%% R@5 %.2f%% R@10 %.2f%% | "
                  "text->image R@1 %.2f%% R@5 %.2f%% R@10 %.2f%% | mean %.2f%%",
                  spec.name.c_str(), static_cast<long long>(r.images), static_cast<long long>(r.captions),
                  100 * r.i2t_r1, 100 * r.i2t_r5, 100 * r.i2t_r10, 100 * r.t2i_r1, 100 * r.t2i_r5, 100 * r.t2i_r10,
                  100 * r.mean_recall);
    *summary = line;
    if (loader.stats().bad() > 0)
      *summary += " | " + std::to_string(loader.stats().bad()) + " unreadable pairs skipped";
  }
  return {{"num_images", r.images}, {"num_captions", r.captions}, {"i2t_r1", r.i2t_r1},
          {"i2t_r5", r.i2t_r5},     {"i2t_r10", r.i2t_r10},       {"t2i_r1", r.t2i_r1},
          {"t2i_r5", r.t2i_r5},     {"t2i_r10", r.t2i_r10},       {"mean_recall", r.mean_recall},
          {"skipped", loader.stats().bad()}};
}

}  // namespace

EvalTaskSpec parse_task_spec(const std::string& kind, const std::string& text) {
  require(kind == "zeroshot" || kind == "retrieval",
          "unknown evaluation task kind '" + kind + "': use zeroshot or retrieval");
  const std::string usage = kind == "zeroshot" ? "NAME=SRC[,classes=FILE][,templates=FILE]" : "NAME=SRC";
  const auto parts = split_spec(text);
  const auto eq = parts[0].find('=');
  require(eq != std::string::npos && eq > 0 && eq + 1 < parts[0].size(),
          "bad " + kind + " task '" + text + "': write " + usage);
  EvalTaskSpec s;
  s.kind = kind;
  s.name = parts[0].substr(0, eq);
  s.source = parts[0].substr(eq + 1);
  require(valid_name(s.name), "bad task name '" + s.name + "' in '" + text +
                                  "': use letters, digits, '_', '-' and '.' (it names the result files)");
  for (size_t i = 1; i < parts.size(); ++i) {
    const auto e = parts[i].find('=');
    const std::string key = parts[i].substr(0, e), value = e == std::string::npos ? "" : parts[i].substr(e + 1);
    require(kind == "zeroshot" && (key == "classes" || key == "templates") && !value.empty(),
            "bad " + kind + " task '" + text + "': unknown or empty option '" + parts[i] + "' (write " + usage + ")");
    (key == "classes" ? s.classes : s.templates) = value;
  }
  return s;
}

std::vector<EvalTaskSpec> read_task_file(const std::string& path) {
  std::ifstream in(path);
  require(in.good(), "cannot read task file " + path + ": check the path");
  std::vector<EvalTaskSpec> tasks;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.find_first_of(" \t");
    require(sp != std::string::npos, path + " line " + std::to_string(line_no) +
                                         ": write 'zeroshot NAME=SRC[,classes=F][,templates=F]' or 'retrieval NAME=SRC'");
    try {
      tasks.push_back(parse_task_spec(line.substr(0, sp), trim(line.substr(sp))));
    } catch (const UserError& e) {
      throw UserError(path + " line " + std::to_string(line_no) + ": " + e.what());
    }
  }
  require(!tasks.empty(), "task file " + path + " lists no task");
  return tasks;
}

void check_unique_task_names(const std::vector<EvalTaskSpec>& tasks) {
  std::set<std::string> names;
  for (const auto& t : tasks)
    require(names.insert(t.name).second, "two tasks are named '" + t.name + "': give each task its own name");
}

nlohmann::json task_spec_json(const EvalTaskSpec& spec) {
  nlohmann::json j = {{"name", spec.name}, {"kind", spec.kind}, {"source", spec.source}};
  if (spec.kind == "zeroshot") {
    j["classes"] = spec.classes;
    j["templates"] = spec.templates;
  }
  return j;
}

void check_eval_task(const EvalTaskSpec& spec) {
  if (spec.kind == "retrieval") {
    PairLoaderOptions lo;
    lo.source = spec.source;
    PairLoader check(lo);  // lists the shards or reads the table; decodes nothing
    return;
  }
  EvalLoaderOptions lo;
  lo.source = spec.source;
  EvalLoader check(lo);
  if (!spec.classes.empty()) read_class_names(spec.classes);
  else require(!check.class_names().empty(), "no class names for " + spec.source + ": add classes=FILE to the task");
  if (!spec.templates.empty() && spec.templates != "imagenet") read_templates(spec.templates);
}

nlohmann::json run_eval_task(PyramidClipImpl& model, const Tokenizer& tok, const EvalTaskSpec& spec,
                             const EvalRunOptions& opt, std::string* summary) {
  require(opt.batch_size > 0, "the batch size must be positive");
  torch::NoGradGuard no_grad;
  model.eval();
  return spec.kind == "retrieval" ? run_retrieval(model, tok, spec, opt, summary)
                                  : run_zero_shot(model, tok, spec, opt, summary);
}

const std::vector<std::string>& headline_metrics(const std::string& kind) {
  static const std::vector<std::string> zs = {"top1", "top5"};
  static const std::vector<std::string> rt = {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10",
                                              "mean_recall"};
  return kind == "retrieval" ? rt : zs;
}

}  // namespace pc
