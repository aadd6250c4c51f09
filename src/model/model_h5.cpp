// model.h5 reader/writer on the HDF5 C API (serial HDF5: one writer per file, not thread-safe;
// callers serialise HDF5 use across threads).
#include "pyramidclip/model/model_h5.h"

#include <hdf5.h>
#include <torch/torch.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "pyramidclip/model/h5_io.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace pc {

namespace {

struct Entry {
  std::string key;
  at::Tensor tensor;
};

// named_parameters then named_buffers (defined ones), as PyTorch's state_dict.
std::vector<Entry> state_entries(torch::nn::Module& model) {
  std::vector<Entry> out;
  for (const auto& item : model.named_parameters(true)) out.push_back({item.key(), item.value()});
  for (const auto& item : model.named_buffers(true))
    if (item.value().defined()) out.push_back({item.key(), item.value()});
  return out;
}

std::string shape_str(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

std::vector<hsize_t> tensor_dims(const at::Tensor& t) {
  std::vector<hsize_t> d;
  for (int64_t s : t.sizes()) d.push_back(static_cast<hsize_t>(s));
  return d;
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void write_attrs(hid_t file, int64_t step, const std::string& arch, const std::string& where) {
  {
    h5::Id space(H5Screate(H5S_SCALAR), H5Sclose);
    h5::Id attr(H5Acreate2(file, "step", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    require(attr.ok() && H5Awrite(attr.get(), H5T_NATIVE_INT64, &step) >= 0, "cannot write attribute step to " + where);
  }
  h5::Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  h5::Id space(H5Screate(H5S_SCALAR), H5Sclose);
  h5::Id attr(H5Acreate2(file, "arch", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* s = arch.c_str();
  require(attr.ok() && H5Awrite(attr.get(), type.get(), &s) >= 0, "cannot write attribute arch to " + where);
}

ModelH5Info read_attrs(hid_t file) {
  ModelH5Info info;
  if (H5Aexists(file, "step") > 0) {
    h5::Id attr(H5Aopen(file, "step", H5P_DEFAULT), H5Aclose);
    int64_t step = -1;
    if (attr.ok() && H5Aread(attr.get(), H5T_NATIVE_INT64, &step) >= 0) info.step = step;
  }
  if (H5Aexists(file, "arch") > 0) {
    h5::Id attr(H5Aopen(file, "arch", H5P_DEFAULT), H5Aclose);
    h5::Id ftype(H5Aget_type(attr.get()), H5Tclose);
    if (ftype.ok() && H5Tget_class(ftype.get()) == H5T_STRING) {
      h5::Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
      if (H5Tis_variable_str(ftype.get()) > 0) {
        H5Tset_size(mtype.get(), H5T_VARIABLE);
        H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
        char* s = nullptr;
        if (H5Aread(attr.get(), mtype.get(), &s) >= 0 && s) {
          info.arch = s;
          H5free_memory(s);
        }
      } else {  // fixed-length (h5py np.bytes_)
        const size_t n = H5Tget_size(ftype.get());
        std::vector<char> buf(n + 1, '\0');
        H5Tset_size(mtype.get(), n + 1);
        H5Tset_strpad(mtype.get(), H5T_STR_NULLTERM);
        if (H5Aread(attr.get(), mtype.get(), buf.data()) >= 0) info.arch = buf.data();
      }
    }
  }
  return info;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* op_data) {
  static_cast<std::vector<std::string>*>(op_data)->push_back(name);
  return 0;
}

}  // namespace

NamedTensors snapshot_state(torch::nn::Module& model, bool copy_parameters) {
  NamedTensors out;
  std::set<const void*> params;
  for (const auto& p : model.parameters(true)) params.insert(p.unsafeGetTensorImpl());
  for (const auto& e : state_entries(model)) {
    const bool reference = !copy_parameters && params.count(e.tensor.unsafeGetTensorImpl()) &&
                           e.tensor.device().is_cpu() && e.tensor.scalar_type() == at::kFloat &&
                           e.tensor.is_contiguous();
    at::Tensor t = reference ? e.tensor.detach() : e.tensor.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true);
    const bool fp = t.is_floating_point();
    require(fp || (!t.is_complex() && t.scalar_type() != at::kBool),
            "model.h5: cannot store " + e.key + " of type " + std::string(c10::toString(t.scalar_type())));
    out.emplace_back(e.key, t.to(fp ? at::kFloat : at::kLong).contiguous());
  }
  return out;
}

void save_tensors_h5(const NamedTensors& entries, const std::string& path, int64_t step, const std::string& arch,
                     bool durable) {
  h5::Quiet quiet;
  const std::string tmp = durable ? path + ".tmp" : path;
  {
    h5::Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    require(file.ok(), "cannot create " + tmp + ": check that the directory exists and is writable");
    // no modification times in the file: the same weights give the same bytes (checksums, cmp)
    h5::Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_obj_track_times(dcpl.get(), 0);
    for (const auto& [key, t] : entries) {
      const bool fp = t.scalar_type() == at::kFloat;
      const std::vector<hsize_t> dims = tensor_dims(t);
      h5::Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                   H5Sclose);
      h5::Id ds(H5Dcreate2(file.get(), key.c_str(), fp ? H5T_IEEE_F32LE : H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                           dcpl.get(), H5P_DEFAULT),
                H5Dclose);
      require(ds.ok(), "cannot create dataset " + key + " in " + tmp);
      require(t.numel() == 0 || H5Dwrite(ds.get(), fp ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                                         H5P_DEFAULT, t.data_ptr()) >= 0,
              "cannot write dataset " + key + " to " + tmp + " (disk full?)");
    }
    write_attrs(file.get(), step, arch, tmp);
    require(file.close(), "cannot finish writing " + tmp + " (disk full?)");
  }
  if (!durable) return;
  fsync_file(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw UserError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  fsync_dir(parent_dir(path));
}

void save_model_h5(torch::nn::Module& model, const std::string& path, int64_t step, const std::string& arch) {
  save_tensors_h5(snapshot_state(model), path, step, arch);
}

ModelH5Info read_model_h5_info(const std::string& path) {
  h5::Quiet quiet;
  h5::Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  require(file.ok(), "cannot open model weights " + path + ": missing or not an HDF5 file");
  return read_attrs(file.get());
}

ModelH5Info load_model_h5(torch::nn::Module& model, const std::string& path) {
  h5::Quiet quiet;
  h5::Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  require(file.ok(), "cannot open model weights " + path + ": missing or not an HDF5 file");
  std::vector<std::string> names;
  require(H5Literate(file.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names) >= 0,
          "cannot list the datasets of " + path);
  std::map<std::string, bool> in_file;  // name -> claimed by a model key
  for (const auto& n : names) in_file[n] = false;

  // Check everything before touching the model.
  std::vector<std::string> problems;
  std::vector<std::pair<const Entry*, at::Tensor>> staged;
  const std::vector<Entry> entries = state_entries(model);
  for (const auto& e : entries) {
    const std::vector<hsize_t> want = tensor_dims(e.tensor);
    auto it = in_file.find(e.key);
    if (it == in_file.end()) {
      problems.push_back("missing key '" + e.key + "' (shape " + shape_str(want) + ")");
      continue;
    }
    it->second = true;
    h5::Id ds(H5Dopen2(file.get(), e.key.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) {
      problems.push_back("key '" + e.key + "' is not a dataset");
      continue;
    }
    h5::Id space(H5Dget_space(ds.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> have(rank > 0 ? rank : 0);
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), have.data(), nullptr);
    if (rank < 0 || have != want) {
      problems.push_back("key '" + e.key + "' has shape " + shape_str(have) + " in the file but " + shape_str(want) +
                         " in the model");
      continue;
    }
    h5::Id ftype(H5Dget_type(ds.get()), H5Tclose);
    const H5T_class_t cls = H5Tget_class(ftype.get());
    const bool fp = e.tensor.is_floating_point();
    if (fp ? cls != H5T_FLOAT : cls != H5T_INTEGER) {
      problems.push_back("key '" + e.key + "' is " + (cls == H5T_FLOAT ? "floating point" : "not floating point") +
                         " in the file but " + (fp ? "floating point" : "integer") + " in the model");
      continue;
    }
    at::Tensor buf = at::empty(e.tensor.sizes(), at::TensorOptions().dtype(fp ? at::kFloat : at::kLong));
    if (buf.numel() > 0 &&
        H5Dread(ds.get(), fp ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data_ptr()) < 0) {
      problems.push_back("key '" + e.key + "' cannot be read");
      continue;
    }
    staged.emplace_back(&e, buf);
  }
  for (const auto& [name, claimed] : in_file)
    if (!claimed) problems.push_back("unexpected key '" + name + "'");
  if (!problems.empty()) {
    std::string msg = "model weights " + path + " do not match the model (" + std::to_string(problems.size()) +
                      " problem" + (problems.size() > 1 ? "s" : "") + "): ";
    const size_t shown = std::min<size_t>(problems.size(), 8);
    for (size_t i = 0; i < shown; ++i) msg += (i ? "; " : "") + problems[i];
    if (shown < problems.size()) msg += "; and " + std::to_string(problems.size() - shown) + " more";
    throw UserError(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [e, buf] : staged) e->tensor.copy_(buf);
  return read_attrs(file.get());
}

}  // namespace pc
