#include "pyramidclip/run/large_block_cache.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

namespace pc {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

size_t half_physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 2 : size_t{8} << 30;
}

// A 2 MiB-aligned mapping of `bytes` (a multiple of 2 MiB): map 2 MiB more, cut the ends.
void* map_aligned(size_t bytes) {
  const size_t span = bytes + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = round_up(base, kHugePage);
  if (aligned > base) munmap(raw, aligned - base);
  const uintptr_t end = base + span, used_end = aligned + bytes;
  if (end > used_end) munmap(reinterpret_cast<void*>(used_end), end - used_end);
  void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);  // advisory: without THP the block still works with 4 KiB pages
#endif
  return p;
}

class LargeBlockCache final : public c10::Allocator {
 public:
  explicit LargeBlockCache(c10::Allocator* previous) : previous_(previous) {}

  void set_options(const LargeBlockCacheOptions& o) {
    std::lock_guard<std::mutex> lock(mutex_);
    min_bytes_.store(std::max<size_t>(o.min_bytes, 1));
    limit_ = o.cache_limit > 0 ? o.cache_limit : half_physical_memory();
    trim_locked();
  }

  c10::DataPtr allocate(size_t n) const override {
    if (n < min_bytes_) return previous_->allocate(n);
    void* p = take(round_up(n, kHugePage));
    return {p, p, &release_block, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release_block; }

  LargeBlockCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void release_idle() {
    std::lock_guard<std::mutex> lock(mutex_);
    unmap_idle_locked();
  }

  // (raw_deallocate may hand back a block of the previous allocator: then its deleter frees it)
  static void release_block(void* p);
  void give_back(void* p);

 private:
  void* take(size_t bytes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    // best fit, and at most 1/8 larger than asked: a step's requests repeat with the same sizes
    auto it = idle_.lower_bound(bytes);
    if (it != idle_.end() && it->first <= bytes + bytes / 8) {
      void* p = it->second;
      const size_t size = it->first;
      idle_.erase(it);
      live_[p] = size;
      ++stats_.hits;
      stats_.idle_bytes -= static_cast<int64_t>(size);
      stats_.live_bytes += static_cast<int64_t>(size);
      return p;
    }
    void* p = map_aligned(bytes);
    if (!p && !idle_.empty()) {  // memory is short: give the idle blocks back and try once more
      unmap_idle_locked();
      p = map_aligned(bytes);
    }
    TORCH_CHECK(p, "CPU allocator: cannot map ", bytes >> 20, " MiB (out of memory); lower train.global-batch or "
                   "use train.micro-batches / activation checkpointing");
    live_[p] = bytes;
    ++stats_.misses;
    stats_.live_bytes += static_cast<int64_t>(bytes);
    return p;
  }

  void unmap_idle_locked() const {
    for (auto& [bytes, p] : idle_) munmap(p, bytes);
    idle_.clear();
    stats_.idle_bytes = 0;
  }

  void trim_locked() {
    while (!idle_.empty() && static_cast<size_t>(stats_.idle_bytes) > limit_) {
      auto largest = std::prev(idle_.end());
      munmap(largest->second, largest->first);
      stats_.idle_bytes -= static_cast<int64_t>(largest->first);
      idle_.erase(largest);
    }
  }

  c10::Allocator* previous_;
  std::atomic<size_t> min_bytes_{size_t{4} << 20};
  size_t limit_ = half_physical_memory();
  mutable std::mutex mutex_;
  mutable std::multimap<size_t, void*> idle_;       // size -> block
  mutable std::unordered_map<void*, size_t> live_;  // block -> size
  mutable LargeBlockCacheStats stats_;
};

// Never destroyed: tensors may outlive static destruction.
LargeBlockCache* g_cache = nullptr;
std::once_flag g_install;

void LargeBlockCache::release_block(void* p) { g_cache->give_back(p); }

void LargeBlockCache::give_back(void* p) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = live_.find(p);
  if (it == live_.end()) {
    lock.unlock();
    previous_->raw_deallocate(p);
    return;
  }
  const size_t bytes = it->second;
  live_.erase(it);
  stats_.live_bytes -= static_cast<int64_t>(bytes);
  if (static_cast<size_t>(stats_.idle_bytes) + bytes > limit_) {
    munmap(p, bytes);
    return;
  }
  idle_.emplace(bytes, p);
  stats_.idle_bytes += static_cast<int64_t>(bytes);
}

}  // namespace

void install_large_block_cache(const LargeBlockCacheOptions& options) {
  LargeBlockCacheOptions o = options;
  if (const char* mb = std::getenv("PYRAMIDCLIP_BLOCK_CACHE_MB")) {
    const long long v = std::atoll(mb);
    if (v <= 0 && !g_cache) return;
    if (v > 0) o.cache_limit = static_cast<size_t>(v) << 20;
  }
  std::call_once(g_install, [] {
    g_cache = new LargeBlockCache(c10::GetCPUAllocator());
    c10::SetCPUAllocator(g_cache, /*priority=*/1);
  });
  g_cache->set_options(o);
}

bool large_block_cache_installed() { return g_cache != nullptr; }

LargeBlockCacheStats large_block_cache_stats() { return g_cache ? g_cache->stats() : LargeBlockCacheStats{}; }

void release_large_block_cache() {
  if (g_cache) g_cache->release_idle();
}

}  // namespace pc
