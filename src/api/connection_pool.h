// The HTTP server's connection threads: `base` threads always ready, more started while every
// thread is busy, up to `max`, and the extra ones ending after `idle_exit` without work. A
// connection holds its thread for as long as it lives (keep-alive, a slow body, an event
// stream), so a fixed pool lets a few hundred slow clients starve everyone else; this one
// keeps answering (/healthz too) until `max` connections are open at once. Jobs beyond that
// wait in order. Internal to the api module.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace mlaas::api {

class ConnectionPool : public httplib::TaskQueue {
 public:
  ConnectionPool(size_t base, size_t max, std::chrono::milliseconds idle_exit = std::chrono::seconds(30));
  ~ConnectionPool() override;
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  void enqueue(std::function<void()> fn) override;
  // Runs the jobs already queued, then ends every thread.
  void shutdown() override;

  size_t threads() const;  // running now

 private:
  void Work(bool extra);
  void JoinExited();  // with mu_ not held

  const size_t base_;
  const size_t max_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread> exited_;  // extra threads that returned, to be joined
  size_t idle_ = 0;
  bool stop_ = false;
};

}  // namespace mlaas::api
