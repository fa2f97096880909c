// A caching allocator for libtorch's CPU tensors. Large activations (>= 1 MiB) are reused
// from a bounded cache instead of going back to the system allocator, which under jemalloc
// purges and re-faults their pages on every forward pass: batch-32 inference went from 67 to
// ~96 seq/s with the cache (docs/benchmarks.md). Smaller tensors go straight to the system
// allocator. Thread-safe; installed once per process.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mlaas::nn {

// Makes the cache libtorch's CPU allocator, keeping at most `max_cached_bytes` of free blocks
// (later calls only change the bound).
void UseCachingCpuAllocator(size_t max_cached_bytes = size_t{1} << 30);

struct CpuCacheStats {
  uint64_t hits = 0, misses = 0;
  size_t cached_bytes = 0;
};
CpuCacheStats GetCpuCacheStats();

}  // namespace mlaas::nn
