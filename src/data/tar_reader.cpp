// Streaming tar member reader (libarchive): reads 1 MiB blocks, never the whole shard.
#include <archive.h>
#include <archive_entry.h>

#include <string>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/tar.h"

namespace pc {

struct TarReader::Impl {
  std::string path;
  archive* a = nullptr;
  std::string error(const std::string& what) const {
    const char* e = archive_error_string(a);
    return what + (e ? std::string(": ") + e : std::string());  // callers add the shard path
  }
};

TarReader::TarReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->a = archive_read_new();
  archive_read_support_format_tar(impl_->a);
  archive_read_support_format_gnutar(impl_->a);
  archive_read_support_filter_all(impl_->a);  // .tar.gz / .tar.zst shards are valid WebDataset too
  if (archive_read_open_filename(impl_->a, path.c_str(), 1 << 20) != ARCHIVE_OK) {
    const std::string msg = impl_->error("cannot open");
    archive_read_free(impl_->a);
    impl_->a = nullptr;
    throw CorruptData(msg);
  }
}

TarReader::~TarReader() {
  if (impl_ && impl_->a) archive_read_free(impl_->a);
}

const std::string& TarReader::path() const { return impl_->path; }

bool TarReader::next_header(std::string& name, int64_t& size) {
  for (;;) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(impl_->a, &e);
    if (r == ARCHIVE_EOF) return false;
    if (r < ARCHIVE_WARN) throw CorruptData(impl_->error("bad header"));
    if (archive_entry_filetype(e) != AE_IFREG) continue;  // directories, links: not samples
    const char* p = archive_entry_pathname(e);
    name = p ? p : "";
    size = archive_entry_size_is_set(e) ? static_cast<int64_t>(archive_entry_size(e)) : -1;
    return true;
  }
}

void TarReader::read_data(const std::string& name, int64_t size, std::string& data) {
  data.clear();
  if (size > (int64_t{1} << 31)) throw CorruptData(impl_->error("member " + name + " is larger than 2 GiB"));
  if (size > 0) data.reserve(static_cast<size_t>(size));
  char buf[65536];
  for (;;) {
    const la_ssize_t n = archive_read_data(impl_->a, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) throw CorruptData(impl_->error("truncated member " + name));
    data.append(buf, static_cast<size_t>(n));
  }
  if (size >= 0 && static_cast<int64_t>(data.size()) != size)
    throw CorruptData(impl_->error("member " + name + " is truncated"));
}

bool TarReader::next(TarMember& member) {
  int64_t size = 0;
  member.name.clear();  // a damaged header leaves no stale name behind
  if (!next_header(member.name, size)) return false;
  read_data(member.name, size, member.data);
  return true;
}

}  // namespace pc
