#pragma once
// OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeons and falls back to its SSE3 kernels,
// ~2x slower for our matmuls; OPENBLAS_CORETYPE fixes it but is read when the library loads, before
// main(). So when it is unset we pick a kernel from the CPU flags and re-execute ourselves once.
namespace pc::cli {

// Returns only if no re-exec was needed (or it failed, in which case we run as we are).
void ensure_blas_coretype(char** argv);

}  // namespace pc::cli
