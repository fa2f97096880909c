#include "api/connection_pool.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace mlaas::api {

ConnectionPool::ConnectionPool(size_t base, size_t max, std::chrono::milliseconds idle_exit)
    : base_(std::max<size_t>(1, base)), max_(std::max(max, std::max<size_t>(1, base))), idle_exit_(idle_exit) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < base_; ++i) {
    std::thread t([this] { Work(false); });
    threads_.emplace(t.get_id(), std::move(t));
  }
}

ConnectionPool::~ConnectionPool() { shutdown(); }

void ConnectionPool::enqueue(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && threads_.size() < max_ && !stop_) {
      try {
        std::thread t([this] { Work(true); });
        threads_.emplace(t.get_id(), std::move(t));
      } catch (const std::system_error& e) {
        // Out of threads: the job waits for a running one.
        spdlog::warn("connection pool: cannot start a thread ({}); {} running", e.what(), threads_.size());
      }
    }
  }
  cv_.notify_one();
  JoinExited();
}

void ConnectionPool::Work(bool extra) {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    bool have = extra ? cv_.wait_for(lock, idle_exit_, [this] { return stop_ || !jobs_.empty(); })
                      : (cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); }), true);
    --idle_;
    if (jobs_.empty() && (stop_ || (!have && extra))) break;
    if (jobs_.empty()) continue;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    try {
      job();
    } catch (...) {
      // httplib's connection handler does not throw; a job that does must not end the pool.
    }
    lock.lock();
  }
  if (!stop_) {
    // An extra thread leaving while the pool lives: the next enqueue joins it.
    auto it = threads_.find(std::this_thread::get_id());
    if (it != threads_.end()) {
      exited_.push_back(std::move(it->second));
      threads_.erase(it);
    }
  }
}

void ConnectionPool::JoinExited() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu_);
    done.swap(exited_);
  }
  for (auto& t : done) t.join();
}

void ConnectionPool::shutdown() {
  std::map<std::thread::id, std::thread> running;
  {
    std::lock_guard lock(mu_);
    if (stop_ && threads_.empty()) return;
    stop_ = true;
  }
  cv_.notify_all();
  {
    // Threads stay in threads_ once stop_ is set; join them outside the lock.
    std::lock_guard lock(mu_);
    running.swap(threads_);
  }
  for (auto& [id, t] : running) t.join();
  JoinExited();
}

size_t ConnectionPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

}  // namespace mlaas::api
