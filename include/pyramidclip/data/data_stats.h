#pragma once
// What a loader has read and what it had to skip (DESIGN §3: corrupt data is skipped, counted,
// and named in the log; a run stops only past data.max-bad-fraction).
#include <cstdint>

namespace pc {

struct DataStats {
  int64_t samples_read = 0;      // sample groups taken from the shards (good or bad)
  int64_t samples_skipped = 0;   // dropped whole: no/corrupt image, no caption, bad label
  int64_t members_dropped = 0;   // a corrupt sidecar (e.g. .roi.npy) dropped, the sample kept
  int64_t shards_damaged = 0;    // shards that could not be opened or ended in a damaged member
  int64_t bad() const { return samples_skipped + members_dropped; }
  double bad_fraction() const { return samples_read > 0 ? static_cast<double>(bad()) / samples_read : 0.0; }
};

}  // namespace pc
