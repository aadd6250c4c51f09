// Deterministic ustar writer (libarchive).
#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"

namespace pc {

struct TarWriter::Impl {
  std::string path, tmp;
  archive* a = nullptr;
  archive_entry* entry = nullptr;
  bool closed = false;
};

TarWriter::TarWriter(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->tmp = path + ".tmp";
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  impl_->a = archive_write_new();
  archive_write_set_format_ustar(impl_->a);
  archive_write_add_filter_none(impl_->a);
  if (archive_write_open_filename(impl_->a, impl_->tmp.c_str()) != ARCHIVE_OK) {
    const std::string err = archive_error_string(impl_->a) ? archive_error_string(impl_->a) : "unknown error";
    archive_write_free(impl_->a);
    impl_->a = nullptr;
    throw UserError("cannot create shard " + impl_->tmp + ": " + err + " (check the output directory is writable)");
  }
  impl_->entry = archive_entry_new();
}

TarWriter::~TarWriter() {
  if (!impl_) return;
  if (impl_->entry) archive_entry_free(impl_->entry);
  if (impl_->a) archive_write_free(impl_->a);
  if (!impl_->closed) std::remove(impl_->tmp.c_str());
}

void TarWriter::add(const std::string& name, const void* data, size_t size) {
  if (impl_->closed) throw std::logic_error("TarWriter::add after close");
  archive_entry* e = impl_->entry;
  archive_entry_clear(e);
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_size(e, static_cast<la_int64_t>(size));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_mtime(e, 0, 0);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  if (archive_write_header(impl_->a, e) != ARCHIVE_OK)
    throw std::runtime_error("tar " + impl_->tmp + ": cannot write header for " + name + ": " +
                             archive_error_string(impl_->a));
  if (size > 0 && archive_write_data(impl_->a, data, size) != static_cast<la_ssize_t>(size))
    throw std::runtime_error("tar " + impl_->tmp + ": cannot write " + name + ": " + archive_error_string(impl_->a));
}

void TarWriter::close() {
  if (impl_->closed) return;
  if (archive_write_close(impl_->a) != ARCHIVE_OK)
    throw std::runtime_error("tar " + impl_->tmp + ": close failed: " + archive_error_string(impl_->a));
  archive_write_free(impl_->a);
  impl_->a = nullptr;
  std::error_code ec;
  std::filesystem::rename(impl_->tmp, impl_->path, ec);
  if (ec) throw UserError("cannot rename " + impl_->tmp + " to " + impl_->path + ": " + ec.message());
  impl_->closed = true;
}

}  // namespace pc
