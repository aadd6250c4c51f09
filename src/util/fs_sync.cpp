// fsync, atomic replace and checksums on POSIX.
#include "pyramidclip/util/fs_sync.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

void fsync_path(const std::string& path, int flags, const char* what) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw UserError(std::string("cannot open ") + what + " " + path + " to sync it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // some file systems refuse fsync on directories (EINVAL): nothing more can be done there
  if (rc != 0 && !(err == EINVAL && (flags & O_DIRECTORY)))
    throw UserError(std::string("cannot sync ") + what + " " + path + ": " + std::strerror(err) + " (disk full or I/O error?)");
}

}  // namespace

void fsync_file(const std::string& path) { fsync_path(path, O_RDONLY, "file"); }
void fsync_dir(const std::string& path) { fsync_path(path, O_RDONLY | O_DIRECTORY, "directory"); }

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
    if (!f) throw UserError("cannot create " + tmp + ": " + std::strerror(errno));
    if (std::fwrite(text.data(), 1, text.size(), f.get()) != text.size() || std::fflush(f.get()) != 0)
      throw UserError("cannot write " + tmp + ": " + std::strerror(errno) + " (disk full?)");
    if (::fsync(::fileno(f.get())) != 0) throw UserError("cannot sync " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw UserError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  const auto parent = std::filesystem::path(path).parent_path();
  fsync_dir(parent.empty() ? "." : parent.string());
}

FileDigest file_digest(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw UserError("cannot read " + path + ": " + std::strerror(errno));
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(XXH3_createState(), &XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> buf(1 << 20);
  FileDigest d;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0;) {
    XXH3_64bits_update(state.get(), buf.data(), n);
    d.bytes += static_cast<int64_t>(n);
  }
  if (std::ferror(f.get())) throw UserError("I/O error reading " + path);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(state.get())));
  d.xxh3 = hex;
  return d;
}

}  // namespace pc
