// HDF5 helpers for model.h5 and checkpoint files (see h5_io.h).
#include "pyramidclip/model/h5_io.h"

#include "pyramidclip/util/errors.h"

namespace pc::h5 {
namespace {

hid_t file_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return H5T_IEEE_F32LE;
    case at::kDouble: return H5T_IEEE_F64LE;
    case at::kLong: return H5T_STD_I64LE;
    case at::kByte: return H5T_STD_U8LE;
    default: throw UserError(std::string("checkpoint: cannot store tensors of type ") + c10::toString(t));
  }
}

hid_t mem_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return H5T_NATIVE_FLOAT;
    case at::kDouble: return H5T_NATIVE_DOUBLE;
    case at::kLong: return H5T_NATIVE_INT64;
    case at::kByte: return H5T_NATIVE_UINT8;
    default: throw UserError(std::string("checkpoint: cannot read tensors as ") + c10::toString(t));
  }
}

at::ScalarType tensor_type(hid_t dtype) {
  const H5T_class_t c = H5Tget_class(dtype);
  if (c == H5T_FLOAT) return H5Tget_size(dtype) == 8 ? at::kDouble : at::kFloat;
  if (c == H5T_INTEGER) return H5Tget_size(dtype) == 1 ? at::kByte : at::kLong;
  throw UserError("checkpoint: unsupported HDF5 dataset type");
}

Id open_dataset(hid_t file, const std::string& name, const std::string& where) {
  Id ds(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  require(ds.ok(), where + " has no dataset '" + name + "' (not a pyramidclip checkpoint file, or damaged)");
  return ds;
}

Id open_attr(hid_t file, const std::string& name, const std::string& where) {
  require(H5Aexists(file, name.c_str()) > 0, where + " has no attribute '" + name + "' (damaged or not ours)");
  Id a(H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose);
  require(a.ok(), "cannot open attribute '" + name + "' of " + where);
  return a;
}

template <typename T>
void write_scalar_attr(hid_t file, const std::string& name, hid_t ftype, hid_t mtype, const T& v,
                       const std::string& where) {
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(file, name.c_str(), ftype, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  require(a.ok() && H5Awrite(a.get(), mtype, &v) >= 0, "cannot write attribute " + name + " to " + where);
}

}  // namespace

Quiet::Quiet() {
  H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}
Quiet::~Quiet() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

Id create(const std::string& path) {
  Id f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  require(f.ok(), "cannot create " + path + ": check that the directory exists and is writable");
  return f;
}

Id open_read(const std::string& path) {
  Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  require(f.ok(), "cannot open " + path + ": missing, truncated or not an HDF5 file");
  return f;
}

void write_tensor(hid_t file, const std::string& name, const at::Tensor& tensor, const std::string& where) {
  at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  std::vector<hsize_t> dims;
  for (int64_t s : t.sizes()) dims.push_back(static_cast<hsize_t>(s));
  Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
           H5Sclose);
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(dcpl.get(), 0);  // same contents, same bytes
  Id ds(H5Dcreate2(file, name.c_str(), file_type(t.scalar_type()), space.get(), H5P_DEFAULT, dcpl.get(),
                   H5P_DEFAULT),
        H5Dclose);
  require(ds.ok(), "cannot create dataset " + name + " in " + where);
  require(t.numel() == 0 ||
              H5Dwrite(ds.get(), mem_type(t.scalar_type()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0,
          "cannot write dataset " + name + " to " + where + " (disk full?)");
}

at::Tensor read_tensor(hid_t file, const std::string& name, const std::string& where) {
  Id ds = open_dataset(file, name, where);
  Id space(H5Dget_space(ds.get()), H5Sclose);
  Id dtype(H5Dget_type(ds.get()), H5Tclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  require(rank >= 0, "cannot read the shape of " + name + " in " + where);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(tensor_type(dtype.get())));
  require(t.numel() == 0 ||
              H5Dread(ds.get(), mem_type(t.scalar_type()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0,
          "cannot read dataset " + name + " of " + where + " (truncated or damaged file)");
  return t;
}

int64_t dataset_length(hid_t file, const std::string& name, const std::string& where) {
  Id ds = open_dataset(file, name, where);
  Id space(H5Dget_space(ds.get()), H5Sclose);
  require(H5Sget_simple_extent_ndims(space.get()) == 1, name + " in " + where + " is not 1-D");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  return static_cast<int64_t>(n);
}

at::Tensor read_range(hid_t file, const std::string& name, int64_t begin, int64_t n, at::ScalarType dtype,
                      const std::string& where) {
  at::Tensor t = at::empty({n}, at::TensorOptions().dtype(dtype));
  if (n == 0) return t;
  Id ds = open_dataset(file, name, where);
  Id fspace(H5Dget_space(ds.get()), H5Sclose);
  hsize_t len = 0;
  require(H5Sget_simple_extent_ndims(fspace.get()) == 1, name + " in " + where + " is not 1-D");
  H5Sget_simple_extent_dims(fspace.get(), &len, nullptr);
  require(begin >= 0 && static_cast<hsize_t>(begin + n) <= len,
          name + " in " + where + " is shorter than its layout says (truncated?)");
  const hsize_t start = static_cast<hsize_t>(begin), count = static_cast<hsize_t>(n);
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  Id mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
  require(H5Dread(ds.get(), mem_type(dtype), mspace.get(), fspace.get(), H5P_DEFAULT, t.data_ptr()) >= 0,
          "cannot read " + name + " of " + where + " (truncated or damaged file)");
  return t;
}

void write_attr(hid_t file, const std::string& name, int64_t v, const std::string& where) {
  write_scalar_attr(file, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, where);
}
void write_attr(hid_t file, const std::string& name, double v, const std::string& where) {
  write_scalar_attr(file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, where);
}
void write_attr(hid_t file, const std::string& name, const std::string& v, const std::string& where) {
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* s = v.c_str();
  write_scalar_attr(file, name, type.get(), type.get(), s, where);
}

int64_t read_attr_i64(hid_t file, const std::string& name, const std::string& where) {
  Id a = open_attr(file, name, where);
  int64_t v = 0;
  require(H5Aread(a.get(), H5T_NATIVE_INT64, &v) >= 0, "cannot read attribute " + name + " of " + where);
  return v;
}

double read_attr_f64(hid_t file, const std::string& name, const std::string& where) {
  Id a = open_attr(file, name, where);
  double v = 0;
  require(H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) >= 0, "cannot read attribute " + name + " of " + where);
  return v;
}

std::string read_attr_str(hid_t file, const std::string& name, const std::string& where) {
  Id a = open_attr(file, name, where);
  Id ftype(H5Aget_type(a.get()), H5Tclose);
  require(H5Tget_class(ftype.get()) == H5T_STRING, "attribute " + name + " of " + where + " is not a string");
  Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
  if (H5Tis_variable_str(ftype.get()) > 0) {
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    char* s = nullptr;
    require(H5Aread(a.get(), mtype.get(), &s) >= 0 && s, "cannot read attribute " + name + " of " + where);
    std::string out(s);
    H5free_memory(s);
    return out;
  }
  const size_t n = H5Tget_size(ftype.get());  // fixed-length (h5py np.bytes_)
  std::vector<char> buf(n + 1, '\0');
  H5Tset_size(mtype.get(), n + 1);
  H5Tset_strpad(mtype.get(), H5T_STR_NULLTERM);
  require(H5Aread(a.get(), mtype.get(), buf.data()) >= 0, "cannot read attribute " + name + " of " + where);
  return buf.data();
}

bool has_attr(hid_t file, const std::string& name) { return H5Aexists(file, name.c_str()) > 0; }

}  // namespace pc::h5
