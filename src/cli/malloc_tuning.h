#pragma once
// glibc malloc serves large blocks with mmap and gives freed heap back to the kernel, so the
// activation tensors of every training step (megabytes each, freed after backward) come back as
// fresh pages: page faults and zeroing in the kernel on every step. On the tiny model that was
// ~10 % of the profile and the forward pass ran 0.54 s instead of 0.30 s (bench/RESULTS.md).
// Keeping blocks up to glibc's 32 MiB mmap ceiling on the heap and never trimming it makes the
// second step onward reuse warm pages (the resident size stays at the peak, as a caching
// allocator's does). Environment settings (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
// MALLOC_TOP_PAD_) win: then nothing is changed.
namespace pc::cli {

void tune_malloc_for_training();

}  // namespace pc::cli
