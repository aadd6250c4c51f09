#pragma once
// `data pack`: turns a caption table (CSV, TSV, JSONL) or an ImageFolder tree into WebDataset
// shards in the layout of DESIGN §3. Every image is decoded once to validate it, then copied
// unchanged; bad rows are skipped, counted and named in a (rate-limited) warning.
//
// Output under out_dir:
//   <prefix>NNNNN.tar   K.jpg|K.png K.txt [K.summary.txt] [K.tags.txt] [K.roi.npy] K.json
//                       (+ K.cls, the label as decimal text, for an ImageFolder)
//   shards.txt          the shard file names, one per line (a list file for list_shards)
//   meta.json           {"shard_samples": {"00000.tar": {"samples": N, "bytes": B}, ...}}
//   classes.txt         ImageFolder only: the sorted class names, index = label
// K is the zero-padded index of the written sample (000000000, 000000001, ...).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pc {

struct PackOptions {
  std::string input;                 // a .csv/.tsv/.jsonl file or an ImageFolder directory
  std::string out_dir;
  int64_t samples_per_shard = 10000;
  std::string prefix;                // shard names: <prefix>00000.tar, ...
  std::string format = "auto";       // auto, csv, tsv, jsonl, imagefolder (auto: directory or file extension)
  // Column (JSONL: key) of each field; fields not named keep their default name:
  // image, caption, summary, tags, roi.
  std::map<std::string, std::string> columns;
  std::string base_dir;              // relative paths resolve here; default: the input file's directory
  int jobs = 1;                      // reader/validator threads; the output does not depend on it
  bool overwrite = false;            // replace existing shards in out_dir (else UserError)
  int64_t roi_dim = 2052;            // required second dimension of a .roi.npy
};

struct PackReport {
  std::string format;                         // the format that was read
  int64_t rows = 0;                           // data rows (or image files) seen
  int64_t written = 0, skipped = 0;
  std::map<std::string, int64_t> skip_reasons;  // "missing image", "corrupt image", "empty caption", "bad roi", "bad row"
  std::vector<std::string> shards;            // paths of the written shards, in order
  std::vector<std::string> classes;           // ImageFolder only
};

// Parses "image=url,caption=text" into --columns overrides. UserError on an unknown field name
// or a malformed item.
std::map<std::string, std::string> parse_pack_columns(const std::string& spec);

// Writes the shards. Deterministic: the same input gives byte-identical shards for any `jobs`.
// Throws UserError on a missing input, an unknown format, a header without the image or caption
// column, existing shards without `overwrite`, or an input without a single usable sample.
PackReport pack_dataset(const PackOptions& opt);

// "12 samples written in 3 shards to DIR, 4 skipped (1 missing image, 3 corrupt image)".
std::string pack_summary(const PackReport& r, const std::string& out_dir);

}  // namespace pc
