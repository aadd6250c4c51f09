#pragma once
// Built-in accelerator and interconnect figures for the capacity planner (vendor data sheets;
// every figure is overridable from the command line).
#include <string>
#include <vector>

namespace pc::plan {

struct GpuSpec {
  std::string name;
  double peak_bf16_flops = 0;  // dense (no sparsity) bf16 tensor-core FLOP/s
  double peak_fp32_flops = 0;  // plain fp32 FLOP/s (no TF32: LibTorch's matmul default)
  double memory_bytes = 0;     // device memory
  double memory_bw = 0;        // device memory bandwidth, bytes/s (optimizer step, a streaming pass)
};

// A link class as the collectives see it: achievable bus bandwidth per GPU and direction
// (bytes/s) and the per-hop latency (s) of one collective step.
struct LinkSpec {
  std::string name;
  double bandwidth = 0;
  double latency = 0;
};

// "a100-40gb", "a100-80gb", "h100-80gb" (SXM), "h200"; throws UserError naming the known ones.
GpuSpec gpu_preset(const std::string& name);
std::vector<std::string> gpu_preset_names();

// "nvlink3", "nvlink4", "ib-hdr", "ib-ndr", "eth-100g"; throws UserError naming the known ones.
LinkSpec link_preset(const std::string& name);
std::vector<std::string> link_preset_names();

// The node-local link that comes with a GPU preset (NVLink3 for A100, NVLink4 for H100/H200).
std::string default_intra_link(const std::string& gpu);

}  // namespace pc::plan
