// `data pack`: caption tables (CSV, TSV, JSONL) and ImageFolder trees -> WebDataset shards.
// Rows are read in chunks; the chunk's files are read and validated by `jobs` threads, then the
// samples are written in row order by this thread, so the shards do not depend on `jobs`.
#include "pyramidclip/data/pack.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <istream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "loader_internal.h"
#include "table_text.h"
#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace fs = std::filesystem;

namespace pc {
namespace {

using data_internal::lower_ext;
using data_internal::read_table_record;
using data_internal::trim;

const char* const kFields[] = {"image", "caption", "summary", "tags", "roi"};
enum Field { kImage = 0, kCaption, kSummary, kTags, kRoi, kNumFields };

// Skip reasons (PackReport::skip_reasons keys).
const char* const kMissingImage = "missing image";
const char* const kCorruptImage = "corrupt image";
const char* const kEmptyCaption = "empty caption";
const char* const kBadRoi = "bad roi";
const char* const kBadRow = "bad row";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string zero_pad(int64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*lld", width, static_cast<long long>(v));
  return buf;
}

// One input row: the fields as written in the input (paths unresolved).
struct Row {
  int64_t row = 0;   // 1-based data row (ImageFolder: 1-based file index)
  int64_t line = 0;  // input line the row starts on (0 for an ImageFolder)
  std::string field[kNumFields];
  int64_t label = -1;  // ImageFolder
  std::string cls;     // ImageFolder
  std::string bad;     // non-empty: the row itself is malformed (why)
};

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual bool next(Row& row) = 0;
};

// ---------------------------------------------------------------- CSV / TSV

// The column index of each field in a header (-1: absent). UserError when image or caption
// is missing, or a column named by --columns is.
std::vector<int> map_header(const std::vector<std::string>& header, const std::map<std::string, std::string>& columns,
                            const std::string& name) {
  std::vector<int> idx(kNumFields, -1);
  std::string names;
  for (const auto& h : header) names += (names.empty() ? "" : ", ") + trim(h);
  for (int f = 0; f < kNumFields; ++f) {
    auto it = columns.find(kFields[f]);
    const std::string want = it == columns.end() ? kFields[f] : it->second;
    for (int pass = 0; pass < 2 && idx[f] < 0; ++pass)  // exact match first, then case-insensitive
      for (size_t i = 0; i < header.size(); ++i)
        if (pass == 0 ? trim(header[i]) == want : lower(trim(header[i])) == lower(want)) {
          idx[f] = static_cast<int>(i);
          break;
        }
    if (idx[f] < 0 && (f == kImage || f == kCaption || it != columns.end()))
      throw UserError(name + ": the header has no '" + want + "' column (it has: " + names +
                      "): name the " + kFields[f] + " column with --columns " + kFields[f] + "=<column>");
  }
  return idx;
}

class DelimitedSource : public RowSource {
 public:
  DelimitedSource(const std::string& path, bool csv, const std::map<std::string, std::string>& columns)
      : in_(path, std::ios::binary), csv_(csv), name_(path) {
    require(in_.good(), "cannot read " + path + ": check the path and its permissions");
    char bom[3] = {0, 0, 0};  // a UTF-8 byte order mark (Excel writes one) is not part of the first column name
    if (!in_.read(bom, 3) || std::string(bom, 3) != "\xEF\xBB\xBF") {
      in_.clear();
      in_.seekg(0);
    }
    std::vector<std::string> header;
    while (header.empty() || (header.size() == 1 && trim(header[0]).empty())) {
      require(read_table_record(in_, sep(), csv_, header, line_, name_), name_ + " is empty: it needs a header row (" +
                                                                        std::string(csv_ ? "image,caption,..." : "image<TAB>caption...") + ")");
    }
    width_ = header.size();
    idx_ = map_header(header, columns, name_);
  }

  bool next(Row& row) override {
    std::vector<std::string> f;
    for (;;) {
      const int64_t start = line_;
      if (!read_table_record(in_, sep(), csv_, f, line_, name_)) return false;
      if (f.size() == 1 && f[0].empty()) continue;  // blank line
      row = Row();
      row.row = ++rows_;
      row.line = start;
      if (f.size() != width_) {
        row.bad = "has " + std::to_string(f.size()) + " fields, the header has " + std::to_string(width_) +
                  (csv_ ? " (quote fields that hold commas)" : " (a field holds a tab?)");
        return true;
      }
      for (int k = 0; k < kNumFields; ++k)
        if (idx_[k] >= 0) row.field[k] = f[static_cast<size_t>(idx_[k])];
      return true;
    }
  }

 private:
  char sep() const { return csv_ ? ',' : '\t'; }
  std::ifstream in_;
  bool csv_;
  std::string name_;
  int64_t line_ = 1, rows_ = 0;
  size_t width_ = 0;
  std::vector<int> idx_;
};

// ---------------------------------------------------------------- JSONL

std::string json_text(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {  // e.g. a list of tags
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ", ") + json_text(e);
    return s;
  }
  return v.dump();
}

class JsonlSource : public RowSource {
 public:
  JsonlSource(const std::string& path, const std::map<std::string, std::string>& columns)
      : in_(path, std::ios::binary), name_(path) {
    require(in_.good(), "cannot read " + path + ": check the path and its permissions");
    for (int f = 0; f < kNumFields; ++f) {
      auto it = columns.find(kFields[f]);
      key_[f] = it == columns.end() ? kFields[f] : it->second;
    }
  }

  bool next(Row& row) override {
    std::string text;
    while (std::getline(in_, text)) {
      ++line_;
      if (line_ == 1 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
      if (trim(text).empty()) continue;
      row = Row();
      row.row = ++rows_;
      row.line = line_;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {
        row.bad = std::string("not valid JSON: ") + e.what();
        return true;
      }
      if (!j.is_object()) {
        row.bad = "not a JSON object";
        return true;
      }
      if (!checked_) {  // the first object stands for the header: wrong key names are a usage error
        checked_ = true;
        std::string keys;
        for (auto it = j.begin(); it != j.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
        for (int f : {kImage, kCaption})
          require(j.contains(key_[f]), name_ + ": the first object has no \"" + key_[f] + "\" key (it has: " + keys +
                                           "): name the " + kFields[f] + " key with --columns " + kFields[f] + "=<key>");
      }
      for (int f = 0; f < kNumFields; ++f)
        if (auto it = j.find(key_[f]); it != j.end()) row.field[f] = json_text(*it);
      return true;
    }
    return false;
  }

 private:
  std::ifstream in_;
  std::string name_;
  std::string key_[kNumFields];
  int64_t line_ = 0, rows_ = 0;
  bool checked_ = false;
};

// ---------------------------------------------------------------- ImageFolder

class FolderSource : public RowSource {
 public:
  FolderSource(const fs::path& root, std::vector<std::string>& classes) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory()) classes.push_back(e.path().filename().string());
    require(!ec, "cannot list " + root.string() + ": " + ec.message());
    std::sort(classes.begin(), classes.end());
    require(!classes.empty(), root.string() + " has no class subdirectories: an ImageFolder tree is DIR/<class>/<image>");
    for (size_t c = 0; c < classes.size(); ++c) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(root / classes[c], ec))
        if (e.is_regular_file() && is_image_extension(lower_ext(e.path())))
          found.push_back(e.path().lexically_relative(root).generic_string());
      std::sort(found.begin(), found.end());
      for (auto& f : found) files_.emplace_back(std::move(f), static_cast<int64_t>(c));
    }
    classes_ = &classes;
  }

  bool next(Row& row) override {
    if (pos_ >= files_.size()) return false;
    const auto& [rel, label] = files_[pos_++];
    row = Row();
    row.row = static_cast<int64_t>(pos_);
    row.field[kImage] = rel;
    row.label = label;
    row.cls = (*classes_)[static_cast<size_t>(label)];
    std::string words = row.cls;
    std::replace(words.begin(), words.end(), '_', ' ');
    row.field[kCaption] = "a photo of a " + words + ".";
    return true;
  }

 private:
  std::vector<std::pair<std::string, int64_t>> files_;
  size_t pos_ = 0;
  const std::vector<std::string>* classes_ = nullptr;
};

// ---------------------------------------------------------------- validation

struct Prepared {
  const char* reason = nullptr;  // skip reason; nullptr: good
  std::string detail;            // for the warning
  std::string image, image_ext, roi;
};

bool read_whole(const fs::path& p, std::string& out) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return false;
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

fs::path resolve(const fs::path& base, const std::string& p) {
  const fs::path path(p);
  return path.is_absolute() ? path : base / path;
}

void prepare(const Row& row, const fs::path& base, int64_t roi_dim, Prepared& out) {
  auto fail = [&](const char* reason, std::string detail) {
    out.reason = reason;
    out.detail = std::move(detail);
    out.image.clear();
    out.roi.clear();
  };
  if (!row.bad.empty()) return fail(kBadRow, row.bad);
  if (trim(row.field[kCaption]).empty()) return fail(kEmptyCaption, "empty caption");
  const std::string& img = row.field[kImage];
  if (trim(img).empty()) return fail(kMissingImage, "no image path");
  if (img.find("://") != std::string::npos)
    return fail(kMissingImage, "image '" + img + "' is a URL: pack reads local files (download them first, e.g. with img2dataset)");
  const fs::path ipath = resolve(base, img);
  if (!read_whole(ipath, out.image)) {
    std::error_code ec;
    return fail(kMissingImage, (fs::exists(ipath, ec) ? "cannot read image " : "image not found: ") + ipath.string());
  }
  std::string ext = lower_ext(ipath);
  try {
    // A reduced DCT scale still entropy-decodes the whole stream, so truncation is caught.
    decode_image(out.image.data(), out.image.size(), ext, /*min_side=*/64);
  } catch (const CorruptData& e) {
    return fail(kCorruptImage, "image " + ipath.string() + ": " + e.what());
  }
  if (ext == "jpeg") ext = "jpg";
  if (ext != "jpg" && ext != "png") {  // an unusual extension: name the member by its contents
    const auto* b = reinterpret_cast<const unsigned char*>(out.image.data());
    ext = out.image.size() >= 2 && b[0] == 0xFF && b[1] == 0xD8 ? "jpg" : "png";
  }
  out.image_ext = ext;
  const std::string& roi = row.field[kRoi];
  if (!trim(roi).empty()) {
    const fs::path rpath = resolve(base, roi);
    if (!read_whole(rpath, out.roi)) {
      std::error_code ec;
      return fail(kBadRoi, (fs::exists(rpath, ec) ? "cannot read ROI file " : "ROI file not found: ") + rpath.string());
    }
    try {
      const NpyArray a = parse_npy(out.roi.data(), out.roi.size());
      if (a.shape.size() != 2 || a.cols() != roi_dim)
        throw CorruptData("shape [" + std::to_string(a.rows()) + "," + std::to_string(a.cols()) + "], expected [M," +
                          std::to_string(roi_dim) + "]");
    } catch (const CorruptData& e) {
      return fail(kBadRoi, "ROI file " + rpath.string() + ": " + e.what());
    }
  }
}

// ---------------------------------------------------------------- output

// "<prefix>NNNNN.tar" (five or more digits) in dir.
bool is_own_shard(const std::string& file, const std::string& prefix) {
  if (file.size() < prefix.size() + 9 || file.compare(0, prefix.size(), prefix) != 0) return false;
  if (file.compare(file.size() - 4, 4, ".tar") != 0) return false;
  const std::string digits = file.substr(prefix.size(), file.size() - prefix.size() - 4);
  return digits.size() >= 5 && std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::vector<std::string> own_shards(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && is_own_shard(e.path().filename().string(), prefix)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string detect_format(const PackOptions& opt, bool is_dir) {
  std::string f = lower(opt.format);
  if (f == "auto") {
    if (is_dir) return "imagefolder";
    const std::string e = lower_ext(opt.input);
    if (e == "csv") return "csv";
    if (e == "tsv" || e == "tab") return "tsv";
    if (e == "jsonl" || e == "ndjson") return "jsonl";
    throw UserError("cannot tell the format of " + opt.input + " from its extension: pass --format csv, tsv or jsonl");
  }
  if (f != "csv" && f != "tsv" && f != "jsonl" && f != "imagefolder")
    throw UserError("unknown --format '" + opt.format + "': use auto, csv, tsv, jsonl or imagefolder");
  if (f == "imagefolder" && !is_dir)
    throw UserError("--format imagefolder needs a directory (DIR/<class>/<image>), but " + opt.input + " is a file");
  if (f != "imagefolder" && is_dir)
    throw UserError(opt.input + " is a directory: pass --format imagefolder (or auto) for an ImageFolder tree, or give a " +
                    f + " file");
  return f;
}

}  // namespace

std::map<std::string, std::string> parse_pack_columns(const std::string& spec) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= spec.size()) {
    const size_t comma = std::min(spec.find(',', pos), spec.size());
    const std::string item = trim(spec.substr(pos, comma - pos));
    pos = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    require(eq != std::string::npos && eq > 0 && eq + 1 < item.size(),
            "bad --columns item '" + item + "': write field=column, e.g. --columns image=url,caption=text");
    const std::string field = trim(item.substr(0, eq)), column = trim(item.substr(eq + 1));
    require(std::find(std::begin(kFields), std::end(kFields), field) != std::end(kFields),
            "unknown --columns field '" + field + "': the fields are image, caption, summary, tags, roi");
    out[field] = column;
  }
  return out;
}

PackReport pack_dataset(const PackOptions& opt) {
  require(!opt.input.empty(), "data pack: no input given: pass --input <file.csv|.tsv|.jsonl or ImageFolder dir>");
  require(!opt.out_dir.empty(), "data pack: no output directory given: pass --output <dir>");
  require(opt.samples_per_shard > 0, "--samples-per-shard must be positive");
  require(opt.jobs > 0, "--jobs must be positive");
  require(opt.roi_dim > 0, "--roi-dim must be positive");
  require(opt.prefix.find('/') == std::string::npos, "--prefix '" + opt.prefix + "' must not contain '/': use --output for the directory");
  for (const auto& [field, column] : opt.columns) {
    require(std::find(std::begin(kFields), std::end(kFields), field) != std::end(kFields),
            "unknown --columns field '" + field + "': the fields are image, caption, summary, tags, roi");
    (void)column;
  }
  std::error_code ec;
  const fs::path input(opt.input);
  require(fs::exists(input, ec), "input " + opt.input + " does not exist: check the path given to --input");
  const bool is_dir = fs::is_directory(input, ec);
  PackReport rep;
  rep.format = detect_format(opt, is_dir);

  // Sources first: a bad header fails before anything is written.
  fs::path base;
  std::unique_ptr<RowSource> src;
  if (rep.format == "imagefolder") {
    base = input;
    src = std::make_unique<FolderSource>(input, rep.classes);
  } else {
    base = opt.base_dir.empty() ? input.parent_path() : fs::path(opt.base_dir);
    if (!opt.base_dir.empty())
      require(fs::is_directory(base, ec), "--base-dir " + opt.base_dir + " is not a directory: check the path");
    if (rep.format == "jsonl") src = std::make_unique<JsonlSource>(opt.input, opt.columns);
    else src = std::make_unique<DelimitedSource>(opt.input, rep.format == "csv", opt.columns);
  }
  if (base.empty()) base = ".";

  const fs::path out_dir(opt.out_dir);
  fs::create_directories(out_dir, ec);
  require(fs::is_directory(out_dir, ec), "cannot create the output directory " + opt.out_dir + ": check the path and permissions");
  const std::vector<std::string> existing = own_shards(out_dir, opt.prefix);
  if (!existing.empty() && !opt.overwrite)
    throw UserError(opt.out_dir + " already holds " + std::to_string(existing.size()) + " shard(s) (" + existing.front() +
                    (existing.size() > 1 ? " ... " + existing.back() : std::string()) +
                    "): pass --overwrite to replace them, or choose another --output or --prefix");

  const std::string where_prefix = rep.format == "imagefolder" ? opt.input : fs::path(opt.input).filename().string();
  std::unique_ptr<TarWriter> tar;
  int64_t in_shard = 0;
  std::set<std::string> written_names;
  std::vector<int64_t> shard_counts;
  auto flush_shard = [&] {
    if (!tar) return;
    tar->close();
    tar.reset();
    shard_counts.push_back(in_shard);
    spdlog::info("data pack: wrote {} ({} samples)", rep.shards.back(), in_shard);
    in_shard = 0;
  };

  const size_t chunk = static_cast<size_t>(opt.jobs) * 32;
  std::vector<Row> rows;
  std::vector<Prepared> prepared;
  bool more = true;
  while (more) {
    rows.clear();
    while (rows.size() < chunk) {
      Row r;
      if (!src->next(r)) {
        more = false;
        break;
      }
      rows.push_back(std::move(r));
    }
    if (rows.empty()) break;
    prepared.assign(rows.size(), Prepared());
    // validate the chunk with `jobs` threads
    std::atomic<size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mu;
    auto work = [&] {
      for (size_t i = next++; i < rows.size(); i = next++) {
        try {
          prepare(rows[i], base, opt.roi_dim, prepared[i]);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (!error) error = std::current_exception();
        }
      }
    };
    const int threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(opt.jobs), rows.size()));
    if (threads <= 1) {
      work();
    } else {
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back(work);
      for (auto& t : pool) t.join();
    }
    if (error) std::rethrow_exception(error);

    // write in row order
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& row = rows[i];
      Prepared& p = prepared[i];
      ++rep.rows;
      if (p.reason) {
        ++rep.skipped;
        ++rep.skip_reasons[p.reason];
        const std::string where = rep.format == "imagefolder" ? where_prefix
                                                               : where_prefix + " row " + std::to_string(row.row) +
                                                                     " (line " + std::to_string(row.line) + ")";
        data_internal::warn_bad(where, "", "skipped: " + p.detail);
        continue;
      }
      if (!tar) {
        const std::string name = opt.prefix + zero_pad(static_cast<int64_t>(rep.shards.size()), 5) + ".tar";
        rep.shards.push_back((out_dir / name).string());
        written_names.insert(name);
        tar = std::make_unique<TarWriter>(rep.shards.back());
      }
      const std::string key = zero_pad(rep.written, 9);
      nlohmann::json meta = {{"row", row.row}, {"source", row.field[kImage]}};
      if (row.line > 0) meta["line"] = row.line;
      if (row.label >= 0) {
        meta["label"] = row.label;
        meta["class"] = row.cls;
      }
      tar->add(key + "." + p.image_ext, p.image);
      tar->add(key + ".txt", row.field[kCaption]);
      if (!trim(row.field[kSummary]).empty()) tar->add(key + ".summary.txt", row.field[kSummary]);
      if (!trim(row.field[kTags]).empty()) tar->add(key + ".tags.txt", row.field[kTags]);
      if (!p.roi.empty()) tar->add(key + ".roi.npy", p.roi);
      if (row.label >= 0) tar->add(key + ".cls", std::to_string(row.label));
      tar->add(key + ".json", meta.dump());
      p = Prepared();  // release the bytes
      ++rep.written;
      if (++in_shard == opt.samples_per_shard) flush_shard();
    }
  }
  flush_shard();
  require(rep.rows > 0, opt.input + " has no " + (rep.format == "imagefolder" ? "images (.jpg/.jpeg/.png)" : "data rows") +
                            ": nothing to pack");
  require(rep.written > 0, "no usable sample in " + opt.input + ": all " + std::to_string(rep.rows) +
                               " rows were skipped (see the warnings above)");

  std::string list;
  for (const auto& s : rep.shards) list += fs::path(s).filename().string() + "\n";
  write_file_atomic((out_dir / "shards.txt").string(), list);
  // Sample counts the train loader trusts while a shard keeps its byte size (sample_count.h):
  // a run over thousands of shards then starts without scanning them.
  nlohmann::json counts = nlohmann::json::object();
  for (size_t i = 0; i < rep.shards.size(); ++i)
    counts[fs::path(rep.shards[i]).filename().string()] = {{"samples", shard_counts[i]},
                                                           {"bytes", fs::file_size(rep.shards[i])}};
  write_file_atomic((out_dir / "meta.json").string(), nlohmann::json{{"shard_samples", counts}}.dump(1) + "\n");
  if (rep.format == "imagefolder") {
    std::string text;
    for (const auto& c : rep.classes) text += c + "\n";
    write_file_atomic((out_dir / "classes.txt").string(), text);
  }
  for (const auto& old : existing)  // --overwrite: shards of an earlier, larger pack must not linger
    if (!written_names.count(old)) fs::remove(out_dir / old, ec);
  return rep;
}

std::string pack_summary(const PackReport& r, const std::string& out_dir) {
  std::string s = "data pack: " + std::to_string(r.written) + " samples written to " + out_dir + " in " +
                  std::to_string(r.shards.size()) + " shard" + (r.shards.size() == 1 ? "" : "s") + ", " +
                  std::to_string(r.skipped) + " of " + std::to_string(r.rows) + " " +
                  (r.format == "imagefolder" ? "images" : "rows") + " skipped";
  if (!r.skip_reasons.empty()) {
    s += " (";
    bool first = true;
    for (const auto& [why, n] : r.skip_reasons) {
      s += (first ? "" : ", ") + std::to_string(n) + " " + why;
      first = false;
    }
    s += ")";
  }
  if (!r.classes.empty()) s += "; " + std::to_string(r.classes.size()) + " classes in classes.txt";
  return s;
}

}  // namespace pc
