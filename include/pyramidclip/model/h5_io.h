#pragma once
// Small HDF5 (C API) helpers for model.h5 and the checkpoint files: RAII ids, quiet errors, datasets of
// tensors (whole or a range), scalar and string attributes. Every failure throws UserError
// naming the file and the object. Serial HDF5: the caller keeps one thread per file.
#include <ATen/ATen.h>
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pc::h5 {

class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Id& operator=(Id&&) = delete;
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  bool close() {  // closing a file flushes it: report failure
    const herr_t rc = id_ >= 0 ? close_(id_) : -1;
    id_ = -1;
    return rc >= 0;
  }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// Silences HDF5's own error stack printing while alive (we report errors ourselves).
class Quiet {
 public:
  Quiet();
  ~Quiet();

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

Id create(const std::string& path);     // truncates
Id open_read(const std::string& path);  // UserError: missing or not HDF5

// Datasets: a tensor's dtype decides the file type (float32, float64, int64, uint8); shape as is.
void write_tensor(hid_t file, const std::string& name, const at::Tensor& t, const std::string& where);
at::Tensor read_tensor(hid_t file, const std::string& name, const std::string& where);
// Elements [begin, begin + n) of a 1-D dataset, read as `dtype`.
at::Tensor read_range(hid_t file, const std::string& name, int64_t begin, int64_t n, at::ScalarType dtype,
                      const std::string& where);
int64_t dataset_length(hid_t file, const std::string& name, const std::string& where);  // 1-D

void write_attr(hid_t file, const std::string& name, int64_t v, const std::string& where);
void write_attr(hid_t file, const std::string& name, double v, const std::string& where);
void write_attr(hid_t file, const std::string& name, const std::string& v, const std::string& where);
int64_t read_attr_i64(hid_t file, const std::string& name, const std::string& where);
double read_attr_f64(hid_t file, const std::string& name, const std::string& where);
std::string read_attr_str(hid_t file, const std::string& name, const std::string& where);
bool has_attr(hid_t file, const std::string& name);

}  // namespace pc::h5
