#include "pyramidclip/eval/templates.h"

#include <fstream>

#include "pyramidclip/util/errors.h"

namespace pc {

const std::vector<std::string>& imagenet_templates() {
  // CLIP's ImageNet prompt ensemble (openai/CLIP notebooks/Prompt_Engineering_for_ImageNet.ipynb)
  static const std::vector<std::string> t = {
      "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
      "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
      "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
      "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
      "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
      "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
      "a painting of a {}.", "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.",
      "a cropped photo of a {}.", "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
      "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.",
      "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.", "a close-up photo of the {}.",
      "a photo of a {}.", "the origami {}.", "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.",
      "a origami {}.", "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
      "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.", "a photo of a nice {}.",
      "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.", "art of a {}.", "a sketch of the {}.",
      "a embroidered {}.", "a pixelated photo of a {}.", "itap of the {}.", "a jpeg corrupted photo of the {}.",
      "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.", "a photo of the small {}.",
      "a photo of the weird {}.", "the cartoon {}.", "art of the {}.", "a drawing of the {}.",
      "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.", "a dark photo of a {}.",
      "itap of a {}.", "graffiti of the {}.", "a toy {}.", "itap of my {}.", "a photo of a cool {}.",
      "a photo of a small {}.", "a tattoo of the {}.",
  };
  return t;
}

namespace {
std::vector<std::string> read_lines(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  require(in.good(), "cannot read " + what + " file " + path + ": check the path");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  require(!lines.empty(), what + " file " + path + " is empty: give one entry per line");
  return lines;
}
}  // namespace

std::vector<std::string> read_templates(const std::string& path) {
  auto t = read_lines(path, "template");
  for (const auto& line : t)
    require(line.find("{}") != std::string::npos,
            "template '" + line + "' in " + path + " has no {} where the class name goes");
  return t;
}

std::string fill_template(const std::string& tmpl, const std::string& class_name) {
  std::string s = tmpl;
  auto pos = s.find("{}");
  if (pos != std::string::npos) s.replace(pos, 2, class_name);
  return s;
}

std::vector<std::string> read_class_names(const std::string& path) { return read_lines(path, "class-name"); }

}  // namespace pc
