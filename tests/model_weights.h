#pragma once
// model.h5 contents for trainer-level tests: every dataset as doubles, and the largest
// per-tensor relative difference between two files.
#include <H5Cpp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace pc::test {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Parameters the model's outputs do not depend on have a true gradient of zero; AdamW turns the
// rounding residue there into full-size random steps, different for any change of summation
// order (in PyTorch DDP too), and no other tensor feels them. They are: the bias of a Linear
// feeding a BatchNorm (LeFF linear1/linear2; the BN subtracts it again, and its running_mean
// tracks it) and the key third of each attention's in_proj_bias (softmax is shift-invariant).
inline bool output_invariant(const std::string& name) {
  for (const char* s : {"mlp.linear1.bias", "mlp.linear2.bias", "mlp.ac1.bn.running_mean", "mlp.ac2.bn.running_mean"})
    if (ends_with(name, s)) return true;
  return false;
}

using Weights = std::map<std::string, std::vector<double>>;

// Every dataset at the root of a model.h5 as doubles; with `comparable_only`, less the
// output-invariant values (for comparisons across different summation orders).
inline Weights read_weights(const std::string& path, bool comparable_only) {
  Weights out;
  H5::H5File file(path, H5F_ACC_RDONLY);
  for (hsize_t i = 0; i < file.getNumObjs(); ++i) {
    const std::string name = file.getObjnameByIdx(i);
    if (comparable_only && output_invariant(name)) continue;
    H5::DataSet ds = file.openDataSet(name);
    std::vector<double>& v = out[name];
    v.resize(static_cast<size_t>(ds.getSpace().getSimpleExtentNpoints()));
    ds.read(v.data(), H5::PredType::NATIVE_DOUBLE);
    if (comparable_only && ends_with(name, "attn.in_proj_bias")) {
      const auto third = static_cast<std::ptrdiff_t>(v.size() / 3);
      v.erase(v.begin() + third, v.begin() + 2 * third);
    }
  }
  return out;
}

// max over tensors of ||a - b|| / ||b||; 1e9 (and a message in `problem`) when the files do not
// hold the same tensors.
inline double worst_relative_difference(const Weights& a, const Weights& b, std::string* worst_name,
                                        std::string* problem) {
  if (a.size() != b.size() || a.size() < 20) {
    *problem = "different tensor sets: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
    return 1e9;
  }
  double worst = 0;
  for (const auto& [name, vb] : b) {
    auto it = a.find(name);
    if (it == a.end() || it->second.size() != vb.size()) {
      *problem = name + " missing or of another size";
      return 1e9;
    }
    double diff = 0, norm = 0;
    for (size_t i = 0; i < vb.size(); ++i) {
      diff += (it->second[i] - vb[i]) * (it->second[i] - vb[i]);
      norm += vb[i] * vb[i];
    }
    const double rel = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
    if (std::getenv("PC_PARITY_VERBOSE") && rel > 1e-6) std::printf("    %-60s %.2e\n", name.c_str(), rel);
    if (rel > worst) worst = rel, *worst_name = name;
  }
  return worst;
}

}  // namespace pc::test
