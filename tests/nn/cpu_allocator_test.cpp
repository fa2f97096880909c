#include "nn/cpu_allocator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

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

}  // namespace
}  // namespace mlaas::nn
