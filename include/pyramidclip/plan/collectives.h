#pragma once
// Alpha-beta cost of the collectives data parallel training issues (bytes = the whole vector
// each rank contributes / ends with; bw in bytes/s per GPU and direction; latency per step, s).
//   ring allreduce:          2(N-1)/N * bytes/bw + 2(N-1) * latency
//   ring reduce-scatter / all-gather: (N-1)/N * bytes/bw + (N-1) * latency
//   tree allreduce (double binary tree, pipelined): 2 * bytes/bw + 2 log2(N) * latency
// Hierarchical (NCCL-style for N = nodes x G): reduce-scatter over the G GPUs of a node (NVLink),
// allreduce of each GPU's 1/G shard across nodes over its own NIC (ring or tree, whichever is
// faster, as NCCL's tuner picks), all-gather inside the node.
#include "pyramidclip/plan/hardware.h"

namespace pc::plan {

double ring_allreduce_seconds(double bytes, int n, double bw, double latency);
double ring_reduce_scatter_seconds(double bytes, int n, double bw, double latency);
double ring_all_gather_seconds(double bytes, int n, double bw, double latency);
double tree_allreduce_seconds(double bytes, int n, double bw, double latency);

struct Topology {
  int gpus = 1;
  int gpus_per_node = 8;
  LinkSpec intra, inter;
  int nodes() const { return (gpus + gpus_per_node - 1) / gpus_per_node; }
  int local() const { return gpus < gpus_per_node ? gpus : gpus_per_node; }
};

double hierarchical_allreduce_seconds(double bytes, const Topology& t);
double hierarchical_reduce_scatter_seconds(double bytes, const Topology& t);
double hierarchical_all_gather_seconds(double bytes, const Topology& t);

}  // namespace pc::plan
