// The caching CPU allocator for large tensors (run/large_block_cache.h): a freed block serves the
// next request of its size (same address, counted as a hit), blocks are 2 MiB-aligned and keep
// their data while live, small tensors bypass it, the idle cap unmaps what exceeds it, many
// threads can allocate at once, and tensor arithmetic on cached blocks is unchanged.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "pyramidclip/run/large_block_cache.h"

namespace pc {
namespace {

constexpr int64_t kMiB = 1 << 20;

class LargeBlockCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LargeBlockCacheOptions o;
    o.min_bytes = 4 * kMiB;
    o.cache_limit = 64 * kMiB;
    install_large_block_cache(o);
    ASSERT_TRUE(large_block_cache_installed());
    release_large_block_cache();
  }
};

at::Tensor floats(int64_t mib) { return torch::empty({mib * kMiB / 4}); }

TEST_F(LargeBlockCacheTest, FreedBlockServesTheNextRequestOfItsSize) {
  const LargeBlockCacheStats before = large_block_cache_stats();
  void* first = nullptr;
  {
    at::Tensor t = floats(9);
    first = t.data_ptr();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (2 * kMiB), 0u);
    EXPECT_EQ(large_block_cache_stats().live_bytes - before.live_bytes, 10 * kMiB);  // rounded to 2 MiB
  }
  EXPECT_EQ(large_block_cache_stats().idle_bytes, 10 * kMiB);
  at::Tensor again = floats(9);
  EXPECT_EQ(again.data_ptr(), first);
  const LargeBlockCacheStats after = large_block_cache_stats();
  EXPECT_EQ(after.misses - before.misses, 1);
  EXPECT_EQ(after.hits - before.hits, 1);
  EXPECT_EQ(after.idle_bytes, 0);
}

TEST_F(LargeBlockCacheTest, SmallTensorsBypassTheCache) {
  const LargeBlockCacheStats before = large_block_cache_stats();
  at::Tensor small = floats(1);
  small.fill_(1);
  const LargeBlockCacheStats after = large_block_cache_stats();
  EXPECT_EQ(after.hits + after.misses, before.hits + before.misses);
  EXPECT_EQ(small.sum().item<double>(), static_cast<double>(small.numel()));
}

TEST_F(LargeBlockCacheTest, MuchLargerIdleBlockIsNotHandedToASmallRequest) {
  { at::Tensor big = floats(40); }
  at::Tensor smaller = floats(8);
  EXPECT_EQ(large_block_cache_stats().idle_bytes, 40 * kMiB);  // the 40 MiB block stays idle
}

TEST_F(LargeBlockCacheTest, IdleBytesStayWithinTheCap) {
  {
    std::vector<at::Tensor> blocks;
    for (int i = 0; i < 5; ++i) blocks.push_back(floats(20));  // 100 MiB live, cap 64 MiB
  }
  const LargeBlockCacheStats s = large_block_cache_stats();
  EXPECT_LE(s.idle_bytes, 64 * kMiB);
  EXPECT_EQ(s.idle_bytes, 60 * kMiB);  // three of the five fit
  release_large_block_cache();
  EXPECT_EQ(large_block_cache_stats().idle_bytes, 0);
}

TEST_F(LargeBlockCacheTest, ArithmeticOnCachedBlocksMatchesFreshOnes) {
  torch::manual_seed(1);
  const at::Tensor a = torch::randn({1024, 1536}), b = torch::randn({1536, 1024});  // 6 MiB each
  const at::Tensor reference = at::mm(a, b).sum(0);
  for (int i = 0; i < 3; ++i) {  // later iterations run in reused (not zeroed) blocks
    at::Tensor c = at::mm(a.clone(), b.clone());
    EXPECT_TRUE(at::equal(c.sum(0), reference));
  }
  EXPECT_GT(large_block_cache_stats().hits, 0);
}

TEST_F(LargeBlockCacheTest, ThreadsAllocateAndFreeConcurrently) {
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t, &wrong] {
      for (int i = 0; i < 50; ++i) {
        at::Tensor x = torch::full({(4 + (i + t) % 3) * kMiB / 4}, static_cast<float>(t));
        if (x.min().item<float>() != static_cast<float>(t) || x.max().item<float>() != static_cast<float>(t)) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(large_block_cache_stats().live_bytes, 0);
}

}  // namespace
}  // namespace pc
