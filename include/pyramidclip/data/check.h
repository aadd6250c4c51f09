#pragma once
// `data check`: reads WebDataset shards end to end and counts what a loader would skip or
// miss (DESIGN §3): undecodable images, samples without an image or caption, missing optional
// sidecars, bad .roi.npy members and damaged (e.g. truncated) tar files.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pc {

struct CheckOptions {
  std::string shards;     // brace pattern, list file or directory (list_shards)
  bool decode = true;     // decode every image (false: only check that one is present)
  int64_t roi_dim = 2052; // required second dimension of K.roi.npy
  int jobs = 1;           // shards checked in parallel; the report does not depend on it
};

struct ShardCheck {
  std::string path;
  int64_t samples = 0;
  int64_t images_ok = 0;        // decoded (or, without decoding, present)
  int64_t corrupt_images = 0;   // present but not decodable
  int64_t missing_image = 0;    // no jpg/jpeg/png member
  int64_t missing_caption = 0;  // no .txt member, or only whitespace in it
  int64_t missing_summary = 0, missing_tags = 0, missing_roi = 0;  // optional sidecars (not bad)
  int64_t bad_roi = 0;          // .roi.npy that does not parse or is not [M, roi_dim]
  int64_t bad_samples = 0;      // samples with at least one of: corrupt/missing image, missing caption, bad roi
  int64_t damaged_shards = 0;   // 1 when the tar could not be read to its end (0/1 per shard; a sum in the total)
  std::string error;            // what was wrong with a damaged tar

  void add(const ShardCheck& o);  // accumulates counts (for the total)
};

struct CheckReport {
  std::vector<ShardCheck> shards;
  ShardCheck total;  // path "total"
  bool decoded = true;
  bool ok() const { return total.bad_samples == 0 && total.damaged_shards == 0; }
};

// Throws UserError when the spec names missing shards (list_shards); damaged shards are reported.
CheckReport check_shards(const CheckOptions& opt);

// A table: one row per shard and a total row.
std::string check_table(const CheckReport& r);
// {"ok": .., "decoded": .., "shards": [{"path": .., "samples": .., ...}], "total": {...}}
nlohmann::json check_json(const CheckReport& r);

}  // namespace pc
