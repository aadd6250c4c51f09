#pragma once
// One evaluation task (zero-shot classification or image-text retrieval) run on a loaded model:
// the single code path shared by `pyramidclip eval` and `pyramidclip sweep`.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pc {

class PyramidClipImpl;
class Tokenizer;

struct EvalTaskSpec {
  std::string name;                    // file-name safe: [A-Za-z0-9._-]+
  std::string kind;                    // "zeroshot" or "retrieval"
  std::string source;                  // zeroshot: labelled shards / ImageFolder; retrieval: pairs
  std::string classes;                 // zeroshot: class-name file ("" = from the source)
  std::string templates = "imagenet";  // zeroshot: "imagenet" or a template file
};

// "NAME=SRC[,classes=FILE][,templates=FILE]" (kind "zeroshot") or "NAME=SRC" (kind "retrieval").
// Commas inside {...} belong to the source (brace patterns). UserError naming the bad part.
EvalTaskSpec parse_task_spec(const std::string& kind, const std::string& text);
// A task file: one task a line, "zeroshot SPEC" or "retrieval SPEC"; blank lines and # comments
// skipped. Relative paths stay relative to the working directory (like the command line).
std::vector<EvalTaskSpec> read_task_file(const std::string& path);
// UserError on duplicate names (results are stored per name).
void check_unique_task_names(const std::vector<EvalTaskSpec>& tasks);

nlohmann::json task_spec_json(const EvalTaskSpec& spec);
// Cheap up-front check that the task's files exist and parse (source, class names, templates),
// so a sweep fails at once with one line instead of at its first checkpoint. UserError.
void check_eval_task(const EvalTaskSpec& spec);

struct EvalRunOptions {
  int batch_size = 128;
};

// Runs the task with the model as loaded (eval mode, no grad) and returns its metrics:
//   zeroshot:  num_images, num_classes, num_templates, top1, top5, chance, skipped,
//              per_class_top1 / per_class_top5 {class: fraction, -1 when the class has no image}
//   retrieval: num_images, num_captions, i2t_r1/5/10, t2i_r1/5/10, mean_recall, skipped
// `summary` gets one human-readable line. UserError on unreadable data or when nothing is usable.
nlohmann::json run_eval_task(PyramidClipImpl& model, const Tokenizer& tok, const EvalTaskSpec& spec,
                             const EvalRunOptions& opt, std::string* summary = nullptr);

// The scalar metrics plotted and tabulated for a task kind, in display order.
const std::vector<std::string>& headline_metrics(const std::string& kind);

}  // namespace pc
