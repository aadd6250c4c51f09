#pragma once
// Tar shards through libarchive: a writer for `data synth` and tests, a streaming member reader,
// and a WebDataset sample reader that groups consecutive members by key.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace pc {

// Writes a POSIX ustar archive deterministically (mtime 0, mode 0644, uid/gid 0, no user names),
// so the same members give byte-identical shards. Writes `path.tmp` and renames it to `path` on
// close(): a crashed writer never leaves a half shard under the final name.
class TarWriter {
 public:
  explicit TarWriter(const std::string& path);  // UserError when the file cannot be created
  ~TarWriter();                                 // abandons (deletes) the .tmp unless close() ran
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  void add(const std::string& name, const void* data, size_t size);
  void add(const std::string& name, const std::string& data) { add(name, data.data(), data.size()); }
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct TarMember {
  std::string name;  // path inside the archive
  std::string data;  // contents (regular files only; directories and links are skipped)
};

// Streams the regular-file members of a tar (optionally gzip/zstd/... compressed) in order.
class TarReader {
 public:
  // CorruptData when libarchive cannot open it (also a zero-byte file: not a tar archive).
  // CorruptData messages name the member, not the shard path: callers add it.
  explicit TarReader(const std::string& path);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // Next member with its data; false at the end. Throws CorruptData when the archive is damaged
  // (a truncated member, a bad header): nothing after that point is readable.
  bool next(TarMember& member);
  // Like next() but skips the data (fast counting): only the name and the size. The data of
  // that member can still be read with read_data() before the next call.
  bool next_header(std::string& name, int64_t& size);
  // The data of the member whose header next_header() returned (CorruptData when truncated).
  void read_data(const std::string& name, int64_t size, std::string& data);
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// WebDataset's split of a member name into sample key and extension: the key is the path up to
// the first '.' of the basename, the extension everything after it
// ("a/b/000123.summary.txt" -> key "a/b/000123", ext "summary.txt"). Names without a dot in
// the basename give an empty extension.
void split_key_ext(const std::string& name, std::string& key, std::string& ext);

struct RawSample {
  std::string key;
  std::map<std::string, std::string> members;  // extension (lower-case) -> bytes
  bool has(const std::string& ext) const { return members.count(ext) != 0; }
};

// Groups consecutive members of one key into a sample, as WebDataset does. A damaged archive
// ends the stream early: damaged() then tells what happened (the last partial sample is dropped).
// `first` > 0 starts at that sample index, passing over the earlier samples without reading their
// data (a logical stream that begins inside a shard).
class SampleReader {
 public:
  explicit SampleReader(const std::string& path, int64_t first = 0);
  bool next(RawSample& sample);
  bool damaged() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  TarReader tar_;
  int64_t first_ = 0;
  int64_t group_ = -1;      // index in the shard of the sample the pending member belongs to
  std::string group_key_;   // its key
  TarMember pending_;       // data read only when its sample is kept
  bool have_pending_ = false, pending_kept_ = false, done_ = false;
  std::string error_;
};

}  // namespace pc
