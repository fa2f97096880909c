#include "api/slot_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace mlaas::api {
namespace {

TEST(SlotGateTest, GivesAtMostItsLimitAndTakesSlotsBackWithTheLastLease) {
  SlotGate gate(2);
  auto a = gate.TryAcquire();
  auto b = gate.TryAcquire();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(gate.TryAcquire(), nullptr);
  EXPECT_EQ(gate.in_use(), 2);
  auto copy = a;
  a.reset();
  EXPECT_EQ(gate.TryAcquire(), nullptr) << "a copy of the lease still holds the slot";
  copy.reset();
  EXPECT_EQ(gate.in_use(), 1);
  auto c = gate.TryAcquire();
  EXPECT_NE(c, nullptr);
  EXPECT_EQ(gate.TryAcquire(), nullptr) << "a refused try takes nothing";
  EXPECT_EQ(gate.in_use(), 2);
}

TEST(SlotGateTest, NeverOverCommitsUnderContention) {
  SlotGate gate(3);
  std::atomic<int> held{0}, most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (auto lease = gate.TryAcquire()) {
          const int now = ++held;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          --held;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 1);
  EXPECT_EQ(gate.in_use(), 0);
}

}  // namespace
}  // namespace mlaas::api
