#include "nn/cpu_allocator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

namespace mlaas::nn {
namespace {

TEST(CpuAllocatorTest, ReusesLargeBlocksWithinItsBound) {
  UseCachingCpuAllocator(size_t{64} << 20);
  const auto before = GetCpuCacheStats();
  for (int i = 0; i < 5; ++i) {
    auto t = torch::full({1024, 1024}, static_cast<float>(i));  // 4 MiB
    EXPECT_EQ(t.sum().item<double>(), 1024.0 * 1024.0 * i);
  }
  const auto after = GetCpuCacheStats();
  EXPECT_GE(after.hits - before.hits, 4u);  // the first allocation may miss, the rest reuse it
  EXPECT_LE(after.cached_bytes, size_t{64} << 20);

  // Small tensors bypass the cache; a tighter bound frees what it no longer allows.
  auto small = torch::ones({16});
  EXPECT_EQ(small.sum().item<float>(), 16.0f);
  UseCachingCpuAllocator(size_t{1} << 20);
  EXPECT_LE(GetCpuCacheStats().cached_bytes, size_t{1} << 20);
  auto again = torch::zeros({1024, 1024});  // allocated anew, still correct
  EXPECT_EQ(again.abs().sum().item<double>(), 0.0);
  UseCachingCpuAllocator();
}

// A finished task's blocks must not hold the cache against the next task's: with the cache full
// of blocks of one size, blocks of another size, allocated and freed in turn, come from the cache
// after the first round (evicting the largest blocks first kept the stale ones and sent every new
// block back to the system).
TEST(CpuAllocatorTest, AFinishedTasksBlocksLeaveTheCacheFirst) {
  UseCachingCpuAllocator(size_t{64} << 20);
  {
    std::vector<torch::Tensor> previous;
    for (int i = 0; i < 30; ++i) previous.push_back(torch::empty({512, 1024}));  // 30 x 2 MiB
  }
  const auto before = GetCpuCacheStats();
  for (int step = 0; step < 20; ++step) {
    auto a = torch::full({2048, 1024}, 1.0f);  // 8 MiB each
    auto b = torch::full({2048, 1024}, 2.0f);
    EXPECT_EQ((a + b).sum().item<double>(), 3.0 * 2048 * 1024);
  }
  const auto after = GetCpuCacheStats();
  // a + b is a third 8 MiB block a step: at most the first step's three miss.
  EXPECT_LE(after.misses - before.misses, 3u);
  EXPECT_GE(after.hits - before.hits, 57u);
  EXPECT_LE(after.cached_bytes, size_t{64} << 20);
  UseCachingCpuAllocator();
}

}  // namespace
}  // namespace mlaas::nn
