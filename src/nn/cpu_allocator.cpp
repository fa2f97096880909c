#include "nn/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/version.h>

#include <map>
#include <mutex>
#include <unordered_map>

namespace mlaas::nn {

namespace {

constexpr size_t kMinCached = size_t{1} << 20;
constexpr size_t kGranule = size_t{64} << 10;

// libtorch 2.3 made Allocator::allocate non-const and added a pure virtual copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define MLAAS_ALLOCATE_CONST
#define MLAAS_ALLOCATOR_COPY_DATA 1
#else
#define MLAAS_ALLOCATE_CONST const
#define MLAAS_ALLOCATOR_COPY_DATA 0
#endif

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) MLAAS_ALLOCATE_CONST override {
    void* p = Allocate(n);
    return {p, p, &Release, c10::Device(c10::kCPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &Release; }
#if MLAAS_ALLOCATOR_COPY_DATA
  void copy_data(void* dest, const void* src, size_t count) const override { default_copy_data(dest, src, count); }
#endif

  static CachingCpuAllocator& Get() {
    static auto* instance = new CachingCpuAllocator();  // never destroyed: tensors may outlive main
    return *instance;
  }

  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = bytes;
    Trim();
  }

  CpuCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {hits_, misses_, cached_};
  }

 private:
  static void* Allocate(size_t n) {
    if (n < kMinCached) return c10::alloc_cpu(n);
    auto& self = Get();
    const size_t size = (n + kGranule - 1) / kGranule * kGranule;
    {
      std::lock_guard<std::mutex> lock(self.mu_);
      // Best fit, wasting at most a quarter of the block.
      auto it = self.free_.lower_bound(size);
      if (it != self.free_.end() && it->first <= size + size / 4) {
        void* p = it->second.p;
        self.cached_ -= it->first;
        self.by_age_.erase(it->second.age);
        self.free_.erase(it);
        ++self.hits_;
        return p;
      }
      ++self.misses_;
    }
    void* p = c10::alloc_cpu(size);
    std::lock_guard<std::mutex> lock(self.mu_);
    self.sizes_[p] = size;
    return p;
  }

  static void Release(void* p) {
    if (p == nullptr) return;
    auto& self = Get();
    {
      std::lock_guard<std::mutex> lock(self.mu_);
      auto it = self.sizes_.find(p);
      if (it != self.sizes_.end()) {
        if (it->second <= self.limit_) {
          const uint64_t age = self.next_age_++;
          self.by_age_.emplace(age, self.free_.emplace(it->second, Block{p, age}));
          self.cached_ += it->second;
          self.Trim();
          return;
        }
        self.sizes_.erase(it);
      }
    }
    c10::free_cpu(p);
  }

  // Frees the blocks cached longest ago until the cache is within its bound, so that blocks of
  // sizes nobody asks for any more (a finished task's) leave first, not the ones in use now
  // (evicting the largest first kept a previous task's blocks for good while each of the next
  // task's went back to the system, to be faulted in again at every step). Caller holds mu_.
  void Trim() {
    while (cached_ > limit_ && !by_age_.empty()) {
      auto oldest = by_age_.begin();
      auto it = oldest->second;
      cached_ -= it->first;
      sizes_.erase(it->second.p);
      c10::free_cpu(it->second.p);
      free_.erase(it);
      by_age_.erase(oldest);
    }
  }

  struct Block {
    void* p;
    uint64_t age;  // when it was cached
  };
  std::mutex mu_;
  std::multimap<size_t, Block> free_;  // cached blocks by size
  std::map<uint64_t, std::multimap<size_t, Block>::iterator> by_age_;  // the same, oldest first
  uint64_t next_age_ = 0;
  std::unordered_map<void*, size_t> sizes_;  // every large block, live or cached
  size_t cached_ = 0;
  size_t limit_ = size_t{1} << 30;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace

void UseCachingCpuAllocator(size_t max_cached_bytes) {
  static std::once_flag once;
  auto& allocator = CachingCpuAllocator::Get();
  allocator.set_limit(max_cached_bytes);
  std::call_once(once, [&] { c10::SetCPUAllocator(&allocator, /*priority=*/1); });
}

CpuCacheStats GetCpuCacheStats() { return CachingCpuAllocator::Get().Stats(); }

}  // namespace mlaas::nn
