#pragma once
// Shared pieces of bench_suite (bench/bench_suite_*.cpp, one Google Benchmark binary; run it
// with bench/run_suite.sh). The binary initializes MPI itself: alone it is a 1-rank singleton,
// under `mpirun -np N` rank 0 reports and the others only take part in the collectives.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace pc {
class Comm;
}

namespace pc::bench {

// MPI_COMM_WORLD as a pc::Comm (the MPI backend with its communication thread), made on first use.
Comm& world();

// The slowest rank's value (a max-allreduce; the value itself with one rank).
double max_over_ranks(double seconds);

// Times fn() once per benchmark iteration on every rank, starting together (barrier), and reports
// the slowest rank's time as the iteration's manual time. Every rank therefore sees the same times
// and makes the same iteration-count decisions, so the collectives inside fn() stay matched.
// Register such benchmarks with ->UseManualTime(). Returns the summed reported seconds.
template <class Fn>
double time_on_all_ranks(benchmark::State& state, Fn&& fn);

double seconds_since(std::chrono::steady_clock::time_point t0);
void barrier();

template <class Fn>
double time_on_all_ranks(benchmark::State& state, Fn&& fn) {
  double total = 0;
  for (auto _ : state) {
    barrier();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double t = max_over_ranks(seconds_since(t0));
    state.SetIterationTime(t);
    total += t;
  }
  return total;
}

// Decimal rate counter in units of 1e9 per second (GB/s as nccl-tests print it).
inline benchmark::Counter giga_per_second(double amount, double seconds) {
  return benchmark::Counter(seconds > 0 ? amount / seconds / 1e9 : 0.0);
}

}  // namespace pc::bench
