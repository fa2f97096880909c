#include "predict/compute_thread.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace mlaas::predict {
namespace {

TEST(ComputeThreadTest, RunsEveryCallersWorkOnOneThreadOneAtATime) {
  std::mutex mu;
  std::set<std::thread::id> ran_on;
  std::atomic<int> running{0}, most{0}, done{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 8; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        bool caller_is_compute = true;
        RunOnComputeThread([&] {
          const int now = ++running;
          most = std::max(most.load(), now);
          {
            std::lock_guard<std::mutex> lock(mu);
            ran_on.insert(std::this_thread::get_id());
          }
          caller_is_compute = OnComputeThread();
          std::this_thread::sleep_for(std::chrono::microseconds(50));
          --running;
        });
        EXPECT_TRUE(caller_is_compute);
        EXPECT_FALSE(OnComputeThread());
        ++done;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(done, 160);
  EXPECT_EQ(ran_on.size(), 1u);
  EXPECT_EQ(ran_on.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(most, 1);
}

TEST(ComputeThreadTest, RethrowsToTheCallerAndKeepsRunning) {
  EXPECT_THROW(RunOnComputeThread([] { throw std::runtime_error("bad pass"); }), std::runtime_error);
  int value = 0;
  RunOnComputeThread([&] { value = 7; });
  EXPECT_EQ(value, 7);
}

TEST(ComputeThreadTest, WorkThatAsksForMoreWorkRunsItInPlace) {
  int inner = 0;
  RunOnComputeThread([&] { RunOnComputeThread([&] { inner = OnComputeThread() ? 1 : -1; }); });
  EXPECT_EQ(inner, 1);
}

}  // namespace
}  // namespace mlaas::predict
