// Alpha-beta collective costs (collectives.h).
#include "pyramidclip/plan/collectives.h"

#include <algorithm>
#include <cmath>

namespace pc::plan {

double ring_allreduce_seconds(double bytes, int n, double bw, double latency) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) / n * bytes / bw + 2.0 * (n - 1) * latency;
}

double ring_reduce_scatter_seconds(double bytes, int n, double bw, double latency) {
  if (n <= 1) return 0;
  return static_cast<double>(n - 1) / n * bytes / bw + (n - 1) * latency;
}

double ring_all_gather_seconds(double bytes, int n, double bw, double latency) {
  return ring_reduce_scatter_seconds(bytes, n, bw, latency);  // the same traffic, reversed
}

double tree_allreduce_seconds(double bytes, int n, double bw, double latency) {
  if (n <= 1) return 0;
  return 2.0 * bytes / bw + 2.0 * std::log2(static_cast<double>(n)) * latency;
}

namespace {

double inter_allreduce(double shard_bytes, const Topology& t) {
  const int nodes = t.nodes();
  return std::min(ring_allreduce_seconds(shard_bytes, nodes, t.inter.bandwidth, t.inter.latency),
                  tree_allreduce_seconds(shard_bytes, nodes, t.inter.bandwidth, t.inter.latency));
}

}  // namespace

double hierarchical_allreduce_seconds(double bytes, const Topology& t) {
  const int g = t.local();
  const double intra = 2 * ring_reduce_scatter_seconds(bytes, g, t.intra.bandwidth, t.intra.latency);
  return intra + inter_allreduce(bytes / g, t);
}

double hierarchical_reduce_scatter_seconds(double bytes, const Topology& t) {
  // node-local reduce-scatter, then a reduce-scatter of each 1/G shard across the nodes
  const int g = t.local();
  return ring_reduce_scatter_seconds(bytes, g, t.intra.bandwidth, t.intra.latency) +
         ring_reduce_scatter_seconds(bytes / g, t.nodes(), t.inter.bandwidth, t.inter.latency);
}

double hierarchical_all_gather_seconds(double bytes, const Topology& t) {
  const int g = t.local();
  return ring_all_gather_seconds(bytes / g, t.nodes(), t.inter.bandwidth, t.inter.latency) +
         ring_all_gather_seconds(bytes, g, t.intra.bandwidth, t.intra.latency);
}

}  // namespace pc::plan
