#pragma once
// A caching CPU allocator for large tensors, in front of LibTorch's. LibTorch 1.13 hands every
// CPU tensor to malloc, and glibc maps each block above 32 MiB afresh (and unmaps it on free), so
// a training step's large tensors (the token-embedding gradient, wide activations at real batch
// sizes) cost page faults and kernel zeroing on every step. Here blocks of at least min_bytes come
// from 2 MiB-aligned mappings advised for transparent huge pages (fewer TLB misses in the GEMMs
// and optimizer passes that stream them), and a freed block waits for the next request of its
// size, as PyTorch's CUDA caching allocator does. Idle blocks are capped at cache_limit bytes
// (beyond it a freed block is unmapped); smaller requests go to the previous allocator.
#include <cstddef>
#include <cstdint>

namespace pc {

struct LargeBlockCacheStats {
  int64_t hits = 0, misses = 0;  // large requests served from the cache / by a new mapping
  int64_t live_bytes = 0;        // in tensors now
  int64_t idle_bytes = 0;        // cached, waiting for reuse
};

struct LargeBlockCacheOptions {
  size_t min_bytes = size_t{4} << 20;  // smaller requests: the previous CPU allocator
  size_t cache_limit = 0;              // idle bytes kept; 0 = half the physical memory
};

// Installs the cache as LibTorch's CPU allocator (once per process; later calls only change the
// options). PYRAMIDCLIP_BLOCK_CACHE_MB in the environment sets cache_limit in MiB; 0 there means
// do not install.
void install_large_block_cache(const LargeBlockCacheOptions& options = {});
bool large_block_cache_installed();
LargeBlockCacheStats large_block_cache_stats();
void release_large_block_cache();  // unmaps every idle block

}  // namespace pc
