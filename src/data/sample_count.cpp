// Sample counts per shard: meta.json when it vouches for the shard (same byte size), else a
// header-only scan.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/sample_count.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/tar.h"

namespace fs = std::filesystem;

namespace pc {
namespace {

// meta.json "shard_samples": {"train/00000.tar": {"samples": N, "bytes": B}, ...}, or null.
const nlohmann::json* load_meta(const fs::path& dir, std::map<std::string, nlohmann::json>& cache) {
  const std::string key = dir.string();
  auto it = cache.find(key);
  if (it == cache.end()) {
    nlohmann::json j;
    std::ifstream in(dir / "meta.json");
    if (in) {
      j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object() || !j.contains("shard_samples") || !j["shard_samples"].is_object())
        j = nlohmann::json();
    }
    it = cache.emplace(key, std::move(j)).first;
  }
  return it->second.is_null() ? nullptr : &it->second["shard_samples"];
}

int64_t count_from_meta(const std::string& shard, std::map<std::string, nlohmann::json>& cache) {
  std::error_code ec;
  const fs::path p = fs::absolute(shard, ec).lexically_normal();
  const auto size = fs::file_size(p, ec);
  if (ec) return -1;
  for (fs::path dir = p.parent_path(); ; dir = dir.parent_path()) {
    if (const nlohmann::json* shards = load_meta(dir, cache)) {
      const std::string rel = p.lexically_relative(dir).generic_string();
      auto it = shards->find(rel);
      if (it != shards->end() && it->is_object() && it->value("bytes", uint64_t{0}) == size)
        return it->value("samples", int64_t{-1});
    }
    if (dir == p.parent_path().parent_path() || dir == dir.parent_path()) break;  // the shard's dir and one up
  }
  return -1;
}

}  // namespace

int64_t scan_shard_samples(const std::string& path) {
  int64_t samples = 0;
  try {
    TarReader tar(path);
    std::string name, key, ext, last;
    int64_t size = 0;
    while (tar.next_header(name, size)) {
      split_key_ext(name, key, ext);
      if (key.empty() || ext.empty() || key == last) continue;
      last = key;
      ++samples;
    }
  } catch (const CorruptData& e) {
    spdlog::warn("data: {}: {} (counted the {} samples before it)", path, e.what(), samples);
  }
  return samples;
}

std::vector<int64_t> shard_sample_counts(const std::vector<std::string>& shards) {
  std::map<std::string, nlohmann::json> cache;
  std::vector<int64_t> counts;
  counts.reserve(shards.size());
  for (const std::string& s : shards) {
    int64_t n = count_from_meta(s, cache);
    if (n < 0) n = scan_shard_samples(s);
    counts.push_back(n);
  }
  return counts;
}

int64_t count_samples(const std::string& spec) {
  int64_t total = 0;
  for (int64_t n : shard_sample_counts(list_shards(spec))) total += n;
  return total;
}

}  // namespace pc
