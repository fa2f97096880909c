// A small least-recently-used map for the vector module's caches (a few entries each).
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <utility>

namespace mlaas::vector {

template <class V>
class Lru {
 public:
  explicit Lru(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}
  // The value kept under `key`, now the most recently used.
  std::optional<V> Get(const std::string& key) {
    for (auto it = items_.begin(); it != items_.end(); ++it) {
      if (it->first != key) continue;
      items_.splice(items_.end(), items_, it);
      return items_.back().second;
    }
    return std::nullopt;
  }
  // Keeps `value` under `key`; the least recently used entry goes when full.
  void Put(const std::string& key, V value) {
    items_.remove_if([&](const auto& kv) { return kv.first == key; });
    if (items_.size() >= capacity_) items_.pop_front();
    items_.emplace_back(key, std::move(value));
  }

 private:
  size_t capacity_;
  std::list<std::pair<std::string, V>> items_;
};

}  // namespace mlaas::vector
