// GPU and interconnect presets. Sources (vendor data sheets, dense = without 2:4 sparsity):
//  A100 SXM: NVIDIA A100 Tensor Core GPU datasheet (2021): BF16 312 TFLOP/s, FP32 19.5 TFLOP/s,
//            40 GB HBM2 1,555 GB/s; 80 GB HBM2e 2,039 GB/s; NVLink3 600 GB/s (both directions).
//  H100 SXM: NVIDIA H100 Tensor Core GPU datasheet (2023): BF16 1,979 TFLOP/s with sparsity =
//            989 dense, FP32 67 TFLOP/s, 80 GB HBM3 3.35 TB/s; NVLink4 900 GB/s (both directions).
//  H200 SXM: NVIDIA H200 datasheet (2024): same compute as H100 SXM, 141 GB HBM3e 4.8 TB/s.
//  InfiniBand HDR 200 Gb/s and NDR 400 Gb/s per port (one NIC per GPU as in DGX A100/H100).
// Link bandwidths below are per GPU and direction, derated to what NCCL's bus bandwidth reaches
// in practice (~80 % of the NVLink rate, ~92 % of the InfiniBand line rate); latencies are the
// per-step software + wire latency of one ring step (NCCL's LL protocol is a few microseconds).
#include "pyramidclip/plan/hardware.h"

#include <map>

#include "pyramidclip/util/errors.h"

namespace pc::plan {
namespace {

const std::map<std::string, GpuSpec>& gpus() {
  static const std::map<std::string, GpuSpec> m = {
      {"a100-40gb", {"a100-40gb", 312e12, 19.5e12, 40e9, 1555e9}},
      {"a100-80gb", {"a100-80gb", 312e12, 19.5e12, 80e9, 2039e9}},
      {"h100-80gb", {"h100-80gb", 989e12, 67e12, 80e9, 3350e9}},
      {"h200", {"h200", 989e12, 67e12, 141e9, 4800e9}},
  };
  return m;
}

const std::map<std::string, LinkSpec>& links() {
  static const std::map<std::string, LinkSpec> m = {
      {"nvlink3", {"nvlink3", 0.8 * 300e9, 3e-6}},   // 12 links x 25 GB/s per direction
      {"nvlink4", {"nvlink4", 0.8 * 450e9, 3e-6}},   // 18 links x 25 GB/s per direction
      {"ib-hdr", {"ib-hdr", 0.92 * 25e9, 6e-6}},     // 200 Gb/s per GPU
      {"ib-ndr", {"ib-ndr", 0.92 * 50e9, 6e-6}},     // 400 Gb/s per GPU
      {"eth-100g", {"eth-100g", 0.8 * 12.5e9, 15e-6}},  // 100 GbE (RoCE) per GPU
  };
  return m;
}

template <class M>
std::vector<std::string> keys(const M& m) {
  std::vector<std::string> k;
  for (const auto& item : m) k.push_back(item.first);
  return k;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

GpuSpec gpu_preset(const std::string& name) {
  auto it = gpus().find(name);
  require(it != gpus().end(), "unknown GPU type '" + name + "': known types are " + joined(gpu_preset_names()) +
                                  " (or give --peak-tflops and --gpu-mem-gb)");
  return it->second;
}

std::vector<std::string> gpu_preset_names() { return keys(gpus()); }

LinkSpec link_preset(const std::string& name) {
  auto it = links().find(name);
  require(it != links().end(),
          "unknown interconnect '" + name + "': known ones are " + joined(link_preset_names()) +
              " (or give the bandwidth in GB/s with --intra-bw / --inter-bw)");
  return it->second;
}

std::vector<std::string> link_preset_names() { return keys(links()); }

std::string default_intra_link(const std::string& gpu) { return gpu.rfind("a100", 0) == 0 ? "nvlink3" : "nvlink4"; }

}  // namespace pc::plan
