// A bound on how many requests of one kind hold HTTP threads at once (task event streams;
// prediction, inference and search requests): a request takes a slot or is refused (429), and
// gives it back when the last copy of its lease is destroyed. Internal to the api module.
#pragma once

#include <atomic>
#include <memory>

namespace mlaas::api {

class SlotGate {
 public:
  explicit SlotGate(int limit) : limit_(limit) {}
  SlotGate(const SlotGate&) = delete;
  SlotGate& operator=(const SlotGate&) = delete;

  // A lease on one slot, or null when all `limit` are taken.
  std::shared_ptr<void> TryAcquire() {
    if (++used_ > limit_) {
      --used_;
      return nullptr;
    }
    return std::shared_ptr<void>(this, [](SlotGate* gate) { --gate->used_; });
  }

  int limit() const { return limit_; }
  int in_use() const { return used_.load(); }

 private:
  const int limit_;
  std::atomic<int> used_{0};
};

}  // namespace mlaas::api
