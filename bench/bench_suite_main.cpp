// bench_suite's main: MPI first (collectives and the ZeRO optimizer need a Comm), then Google
// Benchmark. Rank 0 prints and writes --benchmark_out; other ranks run the same benchmarks (they
// must, to match the collectives) with their output discarded.
#include <mpi.h>

#include <cstring>
#include <memory>
#include <vector>

#include "bench_suite.h"
#include "pyramidclip/dist/comm.h"

namespace pc::bench {

namespace {
std::unique_ptr<Comm>& world_slot() {  // reset in main before MPI_Finalize
  static std::unique_ptr<Comm> comm;
  return comm;
}
}  // namespace

Comm& world() {
  if (!world_slot()) world_slot() = make_mpi_comm();
  return *world_slot();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void barrier() {
  if (world().size() > 1) world().barrier();
}

double max_over_ranks(double seconds) {
  if (world().size() == 1) return seconds;
  at::Tensor t = at::full({1}, seconds, at::kDouble);
  world().allreduce_max(t);
  return t.item<double>();
}

namespace {

class SilentReporter final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace
}  // namespace pc::bench

int main(int argc, char** argv) {
  pc::MpiRuntime mpi(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i)  // one file writer: rank 0
    if (rank == 0 || std::strncmp(argv[i], "--benchmark_out", 15) != 0) args.push_back(argv[i]);
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  if (rank == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    pc::bench::SilentReporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  pc::bench::world_slot().reset();  // its communication thread ends before MPI does
  return 0;
}
