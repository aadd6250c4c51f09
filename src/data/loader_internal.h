#pragma once
// Helpers shared by the train and eval loaders.
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/data_stats.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/tar.h"

namespace pc::data_internal {

// The image member of a WebDataset sample (jpg, jpeg or png, in that preference); nullptr if none.
inline const std::string* find_image_member(const RawSample& s, std::string& ext) {
  for (const char* e : {"jpg", "jpeg", "png"}) {
    auto it = s.members.find(e);
    if (it != s.members.end()) {
      ext = e;
      return &it->second;
    }
  }
  return nullptr;
}

// FNV-1a: a stable hash of a sample key (seeds its augmentation).
inline uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return h;
}

// Logs bad data naming shard and sample key ("data: <shard> sample <key>: <what>"); `what`
// says what was skipped or dropped. Rate-limited per process: the first 50, then every
// 1000th, so a badly damaged dataset cannot flood the log.
inline void warn_bad(const std::string& shard, const std::string& key, const std::string& what) {
  static std::atomic<int64_t> count{0};
  const int64_t n = ++count;
  if (n <= 50 || n % 1000 == 0)
    spdlog::warn("data: {}{}: {}{}", shard, key.empty() ? std::string() : " sample " + key, what,
                 n == 50 ? " (further warnings: every 1000th)" : "");
}

// The samples of a list of shards, in order, for the eval loaders. A shard that cannot be opened,
// or is damaged part way, is counted (stats.shards_damaged), logged, and the walk goes on with
// the next one; every sample returned counts in stats.samples_read.
class ShardWalk {
 public:
  void start(std::vector<std::string> shards) {
    shards_ = std::move(shards);
    rewind();
  }
  void rewind() {
    pos_ = 0;
    reader_.reset();
  }
  const std::vector<std::string>& shards() const { return shards_; }
  const std::string& path() const { return path_; }  // the shard of the last sample

  bool next(RawSample& s, DataStats& stats) {
    for (;;) {
      if (!reader_) {
        if (pos_ >= shards_.size()) return false;
        path_ = shards_[pos_++];
        try {
          reader_ = std::make_unique<SampleReader>(path_);
        } catch (const CorruptData& e) {
          ++stats.shards_damaged;
          warn_bad(path_, "", std::string("shard skipped: ") + e.what());
          continue;
        }
      }
      if (reader_->next(s)) {
        ++stats.samples_read;
        return true;
      }
      if (reader_->damaged()) {
        ++stats.shards_damaged;
        warn_bad(path_, "", "damaged, rest of the shard skipped: " + reader_->error());
      }
      reader_.reset();
    }
  }

 private:
  std::vector<std::string> shards_;
  size_t pos_ = 0;
  std::unique_ptr<SampleReader> reader_;
  std::string path_;
};

}  // namespace pc::data_internal
