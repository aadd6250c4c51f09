// EvalLoader: labelled shards or an ImageFolder tree -> eval-transformed batches.
#include "pyramidclip/data/eval_loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "loader_internal.h"
#include "pyramidclip/data/augment.h"
#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"

namespace fs = std::filesystem;

namespace pc {
namespace {

std::vector<std::string> read_lines(const fs::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

bool has_tar_files(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && (n.find(".tar") != std::string::npos || (n.size() > 4 && n.substr(n.size() - 4) == ".tgz")))
      return true;
  }
  return false;
}

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  if (!e.empty()) e.erase(0, 1);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

bool parse_label(const std::string& text, int64_t& label) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  size_t j = i;
  int64_t v = 0;
  while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])) && j - i < 12) v = v * 10 + (text[j++] - '0');
  if (j == i) return false;
  while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
  if (j != text.size()) return false;
  label = v;
  return true;
}

}  // namespace

struct EvalLoader::Impl {
  EvalLoaderOptions opt;
  bool folder = false;
  std::vector<std::string> classes;
  DataStats stats;
  // ImageFolder
  std::vector<std::pair<std::string, int64_t>> files;
  size_t file_pos = 0;
  // shards
  data_internal::ShardWalk walk;

  int min_side() const { return opt.fast_decode ? opt.image_size : 0; }

  // Next decodable, labelled item; false at the end of the pass.
  bool next_item(at::Tensor& image, int64_t& label, std::string& key) {
    if (folder) {
      while (file_pos < files.size()) {
        const auto& [path, cls] = files[file_pos++];
        ++stats.samples_read;
        std::ifstream in(path, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
          image = eval_transform(decode_image(bytes.data(), bytes.size(), lower_ext(path), min_side()), opt.image_size);
        } catch (const CorruptData& e) {
          ++stats.samples_skipped;
          data_internal::warn_bad(path, "", std::string("skipped: ") + e.what());
          continue;
        }
        label = cls;
        key = path;
        return true;
      }
      return false;
    }
    RawSample s;
    while (walk.next(s, stats)) {
      const std::string& reader_path = walk.path();
      std::string ext;
      const std::string* bytes = data_internal::find_image_member(s, ext);
      auto cls = s.members.find("cls");
      int64_t v = 0;
      if (!bytes || cls == s.members.end() || !parse_label(cls->second, v)) {
        ++stats.samples_skipped;
        data_internal::warn_bad(reader_path, s.key, !bytes ? "skipped: no image member" : "skipped: no valid .cls label");
        continue;
      }
      if (!classes.empty() && v >= static_cast<int64_t>(classes.size())) {
        ++stats.samples_skipped;
        data_internal::warn_bad(reader_path, s.key, "skipped: label " + std::to_string(v) + " is outside classes.txt");
        continue;
      }
      try {
        image = eval_transform(decode_image(bytes->data(), bytes->size(), ext, min_side()), opt.image_size);
      } catch (const CorruptData& e) {
        ++stats.samples_skipped;
        data_internal::warn_bad(reader_path, s.key, std::string("skipped: corrupt .") + ext + ": " + e.what());
        continue;
      }
      label = v;
      key = s.key;
      return true;
    }
    return false;
  }
};

EvalLoader::EvalLoader(EvalLoaderOptions opt) : impl_(std::make_unique<Impl>()) {
  require(opt.image_size > 0 && opt.batch_size > 0, "eval: image size and batch size must be positive");
  require(!opt.source.empty(), "eval: no evaluation data given: pass shards or an ImageFolder directory");
  Impl& s = *impl_;
  s.opt = std::move(opt);
  std::error_code ec;
  const fs::path root(s.opt.source);
  if (fs::is_directory(root, ec) && !has_tar_files(root)) {
    s.folder = true;
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory()) s.classes.push_back(e.path().filename().string());
    std::sort(s.classes.begin(), s.classes.end());
    require(!s.classes.empty(), "eval: " + s.opt.source +
                                    " has neither .tar shards nor class subdirectories: give shards or an ImageFolder tree");
    for (size_t c = 0; c < s.classes.size(); ++c) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(root / s.classes[c], ec))
        if (e.is_regular_file() && is_image_extension(lower_ext(e.path()))) found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      for (auto& f : found) s.files.emplace_back(std::move(f), static_cast<int64_t>(c));
    }
    return;
  }
  s.walk.start(list_shards(s.opt.source));
  const fs::path dir = fs::path(s.walk.shards().front()).parent_path();
  for (const fs::path& cand : {dir / "classes.txt", dir.parent_path() / "classes.txt"}) {
    if (fs::is_regular_file(cand, ec)) {
      s.classes = read_lines(cand);
      break;
    }
  }
}

EvalLoader::~EvalLoader() = default;

bool EvalLoader::next(EvalBatch& batch) {
  Impl& s = *impl_;
  std::vector<at::Tensor> images;
  std::vector<int64_t> labels;
  batch.keys.clear();
  at::Tensor img;
  int64_t label = 0;
  std::string key;
  while (static_cast<int>(images.size()) < s.opt.batch_size && s.next_item(img, label, key)) {
    images.push_back(img);
    labels.push_back(label);
    batch.keys.push_back(key);
  }
  if (images.empty()) {
    batch.images = batch.labels = at::Tensor();
    return false;
  }
  batch.images = at::stack(images);
  batch.labels = torch::tensor(labels, torch::kLong);
  return true;
}

void EvalLoader::reset() {
  Impl& s = *impl_;
  s.file_pos = 0;
  s.walk.rewind();
}

const std::vector<std::string>& EvalLoader::class_names() const { return impl_->classes; }
bool EvalLoader::is_image_folder() const { return impl_->folder; }
DataStats EvalLoader::stats() const { return impl_->stats; }

EvalSet read_eval_images(const std::string& source, int image_size) {
  EvalLoaderOptions opt;
  opt.source = source;
  opt.image_size = image_size;
  opt.batch_size = 256;
  EvalLoader loader(opt);
  EvalSet set;
  std::vector<at::Tensor> images, labels;
  EvalBatch b;
  while (loader.next(b)) {
    images.push_back(b.images);
    labels.push_back(b.labels);
    set.keys.insert(set.keys.end(), b.keys.begin(), b.keys.end());
  }
  if (!images.empty()) {
    set.images = at::cat(images);
    set.labels = at::cat(labels);
  } else {
    set.images = at::empty({0, 3, image_size, image_size});
    set.labels = at::empty({0}, at::kLong);
  }
  set.class_names = loader.class_names();
  set.stats = loader.stats();
  return set;
}

}  // namespace pc
