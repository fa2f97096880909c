// The process's one cache of loaded models (prediction, and the embedding models of vector
// search): least recently used out first, within a number of models and one memory budget
// (their weights' bytes). Concurrent requests for a model being loaded wait for that one load;
// requests still holding an evicted model keep it alive until they finish. Keys are the
// callers' (files' fingerprints, objective, device, tokenizer). Torch-free.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "predict/nlp_predictor.h"
#include "predict/servable_model.h"

namespace mlaas::predict {

using LoadedPtr = std::shared_ptr<const ServableModel>;

// A cache of loaded models, least recently used out first, within a number of models and a
// memory budget (their weights' bytes). Concurrent requests for a model being loaded wait for
// that one load. Requests still holding an evicted model keep it alive until they finish.
class ModelCache {
 public:
  ModelCache(size_t capacity, uint64_t max_bytes) : capacity_(std::max<size_t>(1, capacity)), max_bytes_(max_bytes) {}
  uint64_t max_bytes() const { return max_bytes_; }

  Result<LoadedPtr> Get(const std::string& key, const std::function<Result<LoadedPtr>()>& load) {
    std::shared_future<Result<LoadedPtr>> future;
    std::promise<Result<LoadedPtr>> promise;
    bool loader = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        ++hits_;
        it->second.last_use = ++clock_;
        future = it->second.future;
      } else {
        ++misses_;
        loader = true;
        future = promise.get_future().share();
        entries_[key] = {future, ++clock_, 0};
      }
    }
    if (loader) {
      Result<LoadedPtr> r = Internal("model load did not finish");
      try {
        r = load();
      } catch (const std::exception& e) {
        r = Internal(std::string("loading the model failed: ") + e.what());
      }
      promise.set_value(r);
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      const bool ours = it != entries_.end() && &it->second.future.get() == &future.get();
      if (ours && !r.has_value()) entries_.erase(it);
      if (ours && r.has_value()) it->second.bytes = (*r)->info().parameter_bytes;
      Evict(key);
    }
    return future.get();
  }

  CacheStats Stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    CacheStats s{hits_, misses_, evictions_, entries_.size(), 0};
    for (const auto& [k, e] : entries_) s.bytes += e.bytes;
    return s;
  }

 private:
  struct Entry {
    std::shared_future<Result<LoadedPtr>> future;
    uint64_t last_use = 0;
    uint64_t bytes = 0;  // once loaded
  };
  // Drops the least recently used loaded entries (never `keep`, the one just loaded) while
  // the cache holds too many models or too many bytes.
  void Evict(const std::string& keep) {
    for (;;) {
      uint64_t bytes = 0;
      for (const auto& [k, e] : entries_) bytes += e.bytes;
      if (entries_.size() <= capacity_ && (max_bytes_ == 0 || bytes <= max_bytes_)) return;
      auto victim = entries_.end();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->first == keep || it->second.future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
        if (victim == entries_.end() || it->second.last_use < victim->second.last_use) victim = it;
      }
      if (victim == entries_.end()) return;
      entries_.erase(victim);
      ++evictions_;
    }
  }

  mutable std::mutex mu_;
  size_t capacity_;
  uint64_t max_bytes_;
  std::map<std::string, Entry> entries_;
  uint64_t clock_ = 0, hits_ = 0, misses_ = 0, evictions_ = 0;
};


}  // namespace mlaas::predict
