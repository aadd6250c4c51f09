#include "blas_coretype.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace pc::cli {
namespace {

// The best OpenBLAS kernel family this CPU can run, or "" when unsure (then OpenBLAS decides).
std::string coretype_from_cpuinfo() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    line += ' ';
    auto has = [&](const std::string& flag) { return line.find(' ' + flag + ' ') != std::string::npos; };
    // (0.3.21 cannot be told "Cooperlake" by name; SkylakeX is its AVX-512 family)
    if (has("avx512f") && has("avx512vl")) return "SkylakeX";
    if (has("avx2") && has("fma")) return "Haswell";
    return "";
  }
  return "";
}

}  // namespace

void ensure_blas_coretype(char** argv) {
  bool changed = false;
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string core = coretype_from_cpuinfo();  // "" = let OpenBLAS decide (same after re-exec)
    if (!core.empty()) {
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      changed = true;
    }
  }
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  if (changed) execv("/proc/self/exe", argv);  // only returns on failure: carry on as we are
}

}  // namespace pc::cli
