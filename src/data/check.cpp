// `data check`: one pass over every shard, counting what the loaders would skip.
#include "pyramidclip/data/check.h"

#include <atomic>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "loader_internal.h"
#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

bool missing_text(const RawSample& s, const char* ext) {
  auto it = s.members.find(ext);
  return it == s.members.end() || blank(it->second);
}

ShardCheck check_one(const std::string& path, const CheckOptions& opt) {
  using data_internal::warn_bad;
  ShardCheck c;
  c.path = path;
  std::unique_ptr<SampleReader> reader;
  try {
    reader = std::make_unique<SampleReader>(path);
  } catch (const CorruptData& e) {
    c.damaged_shards = 1;
    c.error = e.what();
    warn_bad(path, "", std::string("damaged, not readable: ") + e.what());
    return c;
  }
  RawSample s;
  while (reader->next(s)) {
    ++c.samples;
    bool bad = false;
    std::string ext;
    if (const std::string* img = data_internal::find_image_member(s, ext)) {
      try {
        if (opt.decode) decode_image(img->data(), img->size(), ext, /*min_side=*/64);
        ++c.images_ok;
      } catch (const CorruptData& e) {
        ++c.corrupt_images;
        bad = true;
        warn_bad(path, s.key, std::string("corrupt image: ") + e.what());
      }
    } else {
      ++c.missing_image;
      bad = true;
      warn_bad(path, s.key, "no image member (.jpg, .jpeg or .png)");
    }
    if (missing_text(s, "txt")) {
      ++c.missing_caption;
      bad = true;
      warn_bad(path, s.key, "no caption (.txt missing or empty)");
    }
    if (missing_text(s, "summary.txt")) ++c.missing_summary;
    if (missing_text(s, "tags.txt")) ++c.missing_tags;
    if (auto it = s.members.find("roi.npy"); it == s.members.end()) {
      ++c.missing_roi;
    } else {
      try {
        const NpyArray a = parse_npy(it->second.data(), it->second.size());
        if (a.shape.size() != 2 || a.cols() != opt.roi_dim)
          throw CorruptData("shape [" + std::to_string(a.rows()) + "," + std::to_string(a.cols()) + "], expected [M," +
                            std::to_string(opt.roi_dim) + "]");
      } catch (const CorruptData& e) {
        ++c.bad_roi;
        bad = true;
        warn_bad(path, s.key, std::string("bad .roi.npy: ") + e.what());
      }
    }
    if (bad) ++c.bad_samples;
  }
  if (reader->damaged()) {
    c.damaged_shards = 1;
    c.error = reader->error();
    warn_bad(path, "", "damaged, the rest of the shard is unreadable: " + c.error);
  }
  return c;
}

nlohmann::json shard_json(const ShardCheck& c) {
  nlohmann::json j = {{"path", c.path},
                      {"samples", c.samples},
                      {"images_ok", c.images_ok},
                      {"corrupt_images", c.corrupt_images},
                      {"missing_image", c.missing_image},
                      {"missing_caption", c.missing_caption},
                      {"missing_summary", c.missing_summary},
                      {"missing_tags", c.missing_tags},
                      {"missing_roi", c.missing_roi},
                      {"bad_roi", c.bad_roi},
                      {"bad_samples", c.bad_samples},
                      {"damaged_shards", c.damaged_shards}};
  if (!c.error.empty()) j["error"] = c.error;
  return j;
}

}  // namespace

void ShardCheck::add(const ShardCheck& o) {
  samples += o.samples;
  images_ok += o.images_ok;
  corrupt_images += o.corrupt_images;
  missing_image += o.missing_image;
  missing_caption += o.missing_caption;
  missing_summary += o.missing_summary;
  missing_tags += o.missing_tags;
  missing_roi += o.missing_roi;
  bad_roi += o.bad_roi;
  bad_samples += o.bad_samples;
  damaged_shards += o.damaged_shards;
}

CheckReport check_shards(const CheckOptions& opt) {
  require(!opt.shards.empty(), "data check: no shards given: pass a brace pattern, a .txt list file or a directory");
  require(opt.roi_dim > 0, "--roi-dim must be positive");
  require(opt.jobs > 0, "--jobs must be positive");
  const std::vector<std::string> paths = list_shards(opt.shards);
  CheckReport r;
  r.decoded = opt.decode;
  r.shards.resize(paths.size());
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&] {
    for (size_t i = next++; i < paths.size(); i = next++) {
      try {
        r.shards[i] = check_one(paths[i], opt);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  const size_t threads = std::min(static_cast<size_t>(opt.jobs), paths.size());
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
  r.total.path = "total";
  for (const auto& s : r.shards) r.total.add(s);
  return r;
}

std::string check_table(const CheckReport& r) {
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%9s %9s %8s %8s %8s %8s %8s %8s %8s %8s  %s\n", "samples",
                r.decoded ? "images_ok" : "images", "corrupt", "no_image", "no_text", "no_summ", "no_tags", "no_roi",
                "bad_roi", "bad", "shard");
  out += buf;
  auto row = [&](const ShardCheck& c, const std::string& name) {
    std::snprintf(buf, sizeof buf, "%9lld %9lld %8lld %8lld %8lld %8lld %8lld %8lld %8lld %8lld  ",
                  static_cast<long long>(c.samples), static_cast<long long>(c.images_ok),
                  static_cast<long long>(c.corrupt_images), static_cast<long long>(c.missing_image),
                  static_cast<long long>(c.missing_caption), static_cast<long long>(c.missing_summary),
                  static_cast<long long>(c.missing_tags), static_cast<long long>(c.missing_roi),
                  static_cast<long long>(c.bad_roi), static_cast<long long>(c.bad_samples));
    out += buf + name + "\n";
  };
  for (const auto& s : r.shards) row(s, s.path + (s.damaged_shards ? "  DAMAGED: " + s.error : std::string()));
  row(r.total, "total: " + std::to_string(r.shards.size()) + " shards, " + std::to_string(r.total.damaged_shards) +
                   " damaged" + (r.ok() ? " -- OK" : " -- BAD"));
  return out;
}

nlohmann::json check_json(const CheckReport& r) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& s : r.shards) shards.push_back(shard_json(s));
  return {{"ok", r.ok()}, {"decoded", r.decoded}, {"shards", shards}, {"total", shard_json(r.total)}};
}

}  // namespace pc
