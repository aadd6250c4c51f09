#pragma once
// Prompt templates for zero-shot classification: CLIP's 80 ImageNet templates, or a file with
// one template per line containing "{}" where the class name goes.
#include <string>
#include <vector>

namespace pc {

const std::vector<std::string>& imagenet_templates();
std::vector<std::string> read_templates(const std::string& path);  // UserError if unreadable / no "{}"
std::string fill_template(const std::string& tmpl, const std::string& class_name);
std::vector<std::string> read_class_names(const std::string& path);  // one per line, blank lines skipped

}  // namespace pc
