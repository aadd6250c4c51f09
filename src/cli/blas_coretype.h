#pragma once
// OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and falls back to its SSE3 kernels,
// ~2x slower for our matmuls; OPENBLAS_CORETYPE fixes it but is read when the library loads, before
// main(). So when it is unset we pick a kernel from the CPU flags and re-execute ourselves once.
// OMP_WAIT_POLICY (read at load time too) defaults to PASSIVE: GNU OpenMP's spinning workers
// stall every small parallel region for a time slice whenever anything else (decode threads, the
// communication thread, another rank) wants the core: 1 rank x 2 threads ran the tiny model at
// 4.8 samples/s with spinning and 24.6 without (bench/RESULTS.md).
namespace pc::cli {

// Returns only if no re-exec was needed (or it failed, in which case we run as we are).
void ensure_blas_coretype(char** argv);

}  // namespace pc::cli
