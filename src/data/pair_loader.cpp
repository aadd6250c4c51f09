// PairLoader: caption tables or caption shards -> distinct eval-transformed images + captions.
#include "pyramidclip/data/pair_loader.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "loader_internal.h"
#include "table_text.h"
#include "pyramidclip/data/augment.h"
#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"

namespace fs = std::filesystem;

namespace pc {
namespace {

using data_internal::lower_ext;
using data_internal::read_table_record;
using data_internal::trim;

struct TableImage {
  std::string path;
  std::vector<std::string> captions;
};

// Rows of a caption table grouped by image (first appearance order).
std::vector<TableImage> read_caption_table(const std::string& path, const std::string& format, DataStats& stats) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot read " + path + ": check the path and its permissions");
  const fs::path base = fs::path(path).parent_path();
  std::vector<TableImage> images;
  std::unordered_map<std::string, size_t> index;
  auto add = [&](const std::string& image, const std::string& caption, int64_t row) {
    ++stats.samples_read;
    if (trim(image).empty() || trim(caption).empty()) {
      ++stats.samples_skipped;
      data_internal::warn_bad(path, "row " + std::to_string(row), "skipped: empty image or caption");
      return;
    }
    fs::path p(trim(image));
    if (p.is_relative()) p = base / p;
    const std::string key = p.lexically_normal().string();
    auto [it, fresh] = index.emplace(key, images.size());
    if (fresh) images.push_back({key, {}});
    images[it->second].captions.push_back(caption);
  };
  if (format == "jsonl") {
    int64_t row = 0;
    for (std::string line; std::getline(in, line);) {
      if (row == 0 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
      if (trim(line).empty()) continue;
      ++row;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        j = nullptr;
      }
      const bool ok = j.is_object() && j.contains("image") && j["image"].is_string() && j.contains("caption") &&
                      j["caption"].is_string();
      if (!ok && row == 1)
        throw UserError(path + ": the first line is not a JSON object with string \"image\" and \"caption\" keys");
      if (!ok) {
        ++stats.samples_read;
        ++stats.samples_skipped;
        data_internal::warn_bad(path, "row " + std::to_string(row), "skipped: not an object with image and caption");
        continue;
      }
      add(j["image"].get<std::string>(), j["caption"].get<std::string>(), row);
    }
  } else {
    const bool csv = format == "csv";
    const char sep = csv ? ',' : '\t';
    if (in.peek() == 0xEF) {  // UTF-8 byte order mark (Excel) is not part of the first column name
      char bom[3];
      in.read(bom, 3);
      if (std::string(bom, 3) != "\xEF\xBB\xBF") in.seekg(0);
    }
    std::vector<std::string> header, f;
    int64_t line = 1;
    require(read_table_record(in, sep, csv, header, line, path), path + " is empty: it needs a header row with image and caption");
    int col_image = -1, col_caption = -1;
    std::string names;
    for (size_t i = 0; i < header.size(); ++i) {
      std::string h = trim(header[i]);
      names += (names.empty() ? "" : ", ") + h;
      std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (h == "image" && col_image < 0) col_image = static_cast<int>(i);
      if (h == "caption" && col_caption < 0) col_caption = static_cast<int>(i);
    }
    require(col_image >= 0 && col_caption >= 0,
            path + ": the header needs 'image' and 'caption' columns (it has: " + names + ")");
    int64_t row = 0;
    while (read_table_record(in, sep, csv, f, line, path)) {
      if (f.size() == 1 && trim(f[0]).empty()) continue;
      ++row;
      if (f.size() != header.size()) {
        ++stats.samples_read;
        ++stats.samples_skipped;
        data_internal::warn_bad(path, "row " + std::to_string(row),
                                "skipped: " + std::to_string(f.size()) + " fields, the header has " +
                                    std::to_string(header.size()));
        continue;
      }
      add(f[static_cast<size_t>(col_image)], f[static_cast<size_t>(col_caption)], row);
    }
  }
  require(!images.empty(), path + " has no usable (image, caption) rows");
  return images;
}

}  // namespace

struct PairLoader::Impl {
  PairLoaderOptions opt;
  DataStats stats;
  std::vector<std::string> captions;
  std::vector<int64_t> caption_image;
  int64_t images = 0;
  // table
  bool table = false;
  std::vector<TableImage> rows;
  size_t row_pos = 0;
  // shards: identical image bytes are one image (-1: those bytes did not decode)
  data_internal::ShardWalk walk;
  std::unordered_map<std::string, int64_t> seen;

  // The next new decodable image (its captions recorded); false at the end of the pass.
  bool next_image(at::Tensor& image) {
    if (table) {
      while (row_pos < rows.size()) {
        const TableImage& t = rows[row_pos++];
        std::ifstream in(t.path, std::ios::binary);
        if (!in.good()) {
          stats.samples_skipped += static_cast<int64_t>(t.captions.size());
          data_internal::warn_bad(t.path, "", "skipped: missing or unreadable image");
          continue;
        }
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
          image = eval_transform(decode_image(bytes.data(), bytes.size(), lower_ext(t.path)), opt.image_size);
        } catch (const CorruptData& e) {
          stats.samples_skipped += static_cast<int64_t>(t.captions.size());
          data_internal::warn_bad(t.path, "", std::string("skipped: ") + e.what());
          continue;
        }
        for (const auto& c : t.captions) {
          captions.push_back(c);
          caption_image.push_back(images);
        }
        ++images;
        return true;
      }
      return false;
    }
    RawSample s;
    while (walk.next(s, stats)) {
      const std::string& reader_path = walk.path();
      std::string ext;
      const std::string* bytes = data_internal::find_image_member(s, ext);
      auto cap = s.members.find("txt");
      if (!bytes || cap == s.members.end() || trim(cap->second).empty()) {
        ++stats.samples_skipped;
        data_internal::warn_bad(reader_path, s.key, !bytes ? "skipped: no image member" : "skipped: no .txt caption");
        continue;
      }
      char digest[32];
      std::snprintf(digest, sizeof digest, "%016llx-%zu",
                    static_cast<unsigned long long>(XXH3_64bits(bytes->data(), bytes->size())), bytes->size());
      auto known = seen.find(digest);
      if (known != seen.end()) {  // another caption of an image already read
        if (known->second < 0) {
          ++stats.samples_skipped;
          continue;
        }
        captions.push_back(cap->second);
        caption_image.push_back(known->second);
        continue;
      }
      try {
        image = eval_transform(decode_image(bytes->data(), bytes->size(), ext), opt.image_size);
      } catch (const CorruptData& e) {
        seen.emplace(digest, -1);
        ++stats.samples_skipped;
        data_internal::warn_bad(reader_path, s.key, std::string("skipped: corrupt .") + ext + ": " + e.what());
        continue;
      }
      seen.emplace(digest, images);
      captions.push_back(cap->second);
      caption_image.push_back(images);
      ++images;
      return true;
    }
    return false;
  }
};

PairLoader::PairLoader(PairLoaderOptions opt) : impl_(std::make_unique<Impl>()) {
  require(opt.image_size > 0 && opt.batch_size > 0, "retrieval: image size and batch size must be positive");
  require(!opt.source.empty(), "retrieval: no pairs given: pass a CSV/TSV/JSONL caption table or caption shards");
  Impl& s = *impl_;
  s.opt = std::move(opt);
  const std::string ext = lower_ext(s.opt.source);
  std::error_code ec;
  if ((ext == "csv" || ext == "tsv" || ext == "jsonl") && !fs::is_directory(s.opt.source, ec)) {
    s.table = true;
    s.rows = read_caption_table(s.opt.source, ext, s.stats);
  } else {
    s.walk.start(list_shards(s.opt.source));
  }
}

PairLoader::~PairLoader() = default;

bool PairLoader::next(PairBatch& batch) {
  Impl& s = *impl_;
  std::vector<at::Tensor> images;
  batch.image_index.clear();
  at::Tensor img;
  while (static_cast<int>(images.size()) < s.opt.batch_size && s.next_image(img)) {
    images.push_back(img);
    batch.image_index.push_back(s.images - 1);
  }
  if (images.empty()) {
    batch.images = at::Tensor();
    return false;
  }
  batch.images = at::stack(images);
  return true;
}

const std::vector<std::string>& PairLoader::captions() const { return impl_->captions; }
const std::vector<int64_t>& PairLoader::caption_image() const { return impl_->caption_image; }
int64_t PairLoader::num_images() const { return impl_->images; }
DataStats PairLoader::stats() const { return impl_->stats; }

}  // namespace pc
