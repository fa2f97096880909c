#include "api/connection_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>

namespace mlaas::api {
namespace {

using namespace std::chrono_literals;

// Jobs that block until released, like connections of slow clients.
struct Gate {
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();
};

bool WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

TEST(ConnectionPoolTest, BusyThreadsDoNotStarveANewJob) {
  ConnectionPool pool(2, 64);
  Gate gate;
  std::atomic<int> started{0};
  for (int i = 0; i < 10; ++i) {
    pool.enqueue([&] {
      ++started;
      gate.opened.wait();
    });
  }
  // Ten slow connections on a pool of two: each got a thread, and an eleventh job still runs.
  ASSERT_TRUE(WaitUntil([&] { return started == 10; }));
  std::promise<void> ran;
  pool.enqueue([&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_LE(pool.threads(), 12u);  // one per held job, and the base threads
  gate.open.set_value();
}

TEST(ConnectionPoolTest, JobsBeyondTheMaximumWaitForAThread) {
  ConnectionPool pool(1, 3);
  Gate gate;
  std::atomic<int> started{0};
  for (int i = 0; i < 3; ++i) pool.enqueue([&] { ++started, gate.opened.wait(); });
  ASSERT_TRUE(WaitUntil([&] { return started == 3; }));
  std::mutex mu;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) pool.enqueue([&, i] {
      std::lock_guard l(mu);
      order.push_back(i);
    });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(pool.threads(), 3u);
  {
    std::lock_guard l(mu);
    EXPECT_TRUE(order.empty());  // every thread is held
  }
  gate.open.set_value();
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard l(mu);
    return order.size() == 5;
  }));
  std::sort(order.begin(), order.end());  // three threads run them: any order
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_LE(pool.threads(), 3u);
}

TEST(ConnectionPoolTest, ExtraThreadsEndWhenIdleAndTheBaseStays) {
  ConnectionPool pool(2, 16, 100ms);
  Gate gate;
  std::atomic<int> started{0};
  for (int i = 0; i < 8; ++i) pool.enqueue([&] { ++started, gate.opened.wait(); });
  ASSERT_TRUE(WaitUntil([&] { return started == 8; }));
  EXPECT_GE(pool.threads(), 8u);
  gate.open.set_value();
  EXPECT_TRUE(WaitUntil([&] { return pool.threads() == 2; }));
  // The pool still serves afterwards (the ended threads were joined by this enqueue).
  std::promise<void> ran;
  pool.enqueue([&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
}

TEST(ConnectionPoolTest, ShutdownRunsQueuedJobsAndAThrowingJobDoesNotEndThePool) {
  std::atomic<int> ran{0};
  {
    ConnectionPool pool(1, 1);
    pool.enqueue([] { throw std::runtime_error("boom"); });
    for (int i = 0; i < 20; ++i) pool.enqueue([&] { ++ran; });
    pool.shutdown();
    EXPECT_EQ(ran, 20);
    pool.shutdown();  // twice is harmless
  }
  EXPECT_EQ(ran, 20);
}

}  // namespace
}  // namespace mlaas::api
