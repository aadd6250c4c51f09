#pragma once
// How many samples shards hold: from the meta.json that `data synth` (and later `data pack`)
// writes, else by scanning tar headers (no data is read).
#include <cstdint>
#include <string>
#include <vector>

namespace pc {

// Samples in one shard by reading its member headers only. A damaged shard counts the samples
// before the damage (and logs a warning).
int64_t scan_shard_samples(const std::string& path);

// Per-shard sample counts. A shard's count comes from a meta.json in its directory or the one
// above when that file lists the shard (path relative to the meta.json directory) with its
// current byte size; otherwise the shard is scanned.
std::vector<int64_t> shard_sample_counts(const std::vector<std::string>& shards);

// Total samples of a shard spec (see list_shards). Throws UserError as list_shards does.
int64_t count_samples(const std::string& spec);

}  // namespace pc
