// WebDataset grouping: consecutive members with the same key form one sample.
#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/tar.h"

namespace pc {

void split_key_ext(const std::string& name, std::string& key, std::string& ext) {
  const size_t slash = name.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = name.find('.', base);
  if (dot == std::string::npos) {
    key = name;
    ext.clear();
    return;
  }
  key = name.substr(0, dot);
  ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
}

SampleReader::SampleReader(const std::string& path, int64_t first) : tar_(path), first_(first) {
  if (first < 0) throw std::invalid_argument("SampleReader: negative first sample");
}

bool SampleReader::next(RawSample& sample) {
  sample.key.clear();
  sample.members.clear();
  std::string key, ext;
  for (;;) {
    if (!have_pending_) {
      if (done_) break;
      try {
        int64_t size = 0;
        pending_.name.clear();  // a damaged header leaves no stale name behind
        if (!tar_.next_header(pending_.name, size)) {
          done_ = true;
          break;
        }
        split_key_ext(pending_.name, key, ext);
        if (key.empty() || ext.empty()) continue;  // "__meta__"-style or extension-less: not part of a sample
        if (key != group_key_) {
          ++group_;
          group_key_ = key;
        }
        pending_kept_ = group_ >= first_;
        if (pending_kept_) tar_.read_data(pending_.name, size, pending_.data);  // others: libarchive skips
      } catch (const CorruptData& e) {
        // The rest of the shard is unreadable. The sample being assembled is kept when the
        // damaged member belongs to the next key (its own members were all read whole).
        done_ = true;
        error_ = e.what();
        split_key_ext(pending_.name, key, ext);
        if (!sample.key.empty() && key != sample.key) return true;
        sample.members.clear();
        sample.key.clear();
        return false;
      }
      have_pending_ = true;
    }
    split_key_ext(pending_.name, key, ext);
    if (!pending_kept_) {  // before `first`: skipped samples always precede the kept ones
      have_pending_ = false;
      continue;
    }
    if (!sample.key.empty() && key != sample.key) return true;  // pending_ starts the next sample
    sample.key = key;
    sample.members[ext] = std::move(pending_.data);
    have_pending_ = false;
  }
  return !sample.key.empty();
}

}  // namespace pc
