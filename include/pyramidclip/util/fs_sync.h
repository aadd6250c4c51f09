#pragma once
// Durable file-system steps for checkpoints and run files: fsync of files and directories, an
// atomic text write (tmp + fsync + rename + fsync of the directory), and a file's checksum.
#include <cstdint>
#include <string>

namespace pc {

// fsync(2) of a file or a directory; throws UserError naming the path when it fails.
void fsync_file(const std::string& path);
void fsync_dir(const std::string& path);

// Writes `text` to path + ".tmp", fsyncs it, renames it over `path` and fsyncs the directory:
// a reader sees the old or the new contents, never a mix. Throws UserError on failure.
void write_file_atomic(const std::string& path, const std::string& text);

// The whole file's size and XXH3-64 checksum as 16 hex digits; throws UserError if unreadable.
struct FileDigest {
  int64_t bytes = 0;
  std::string xxh3;
};
FileDigest file_digest(const std::string& path);

}  // namespace pc
