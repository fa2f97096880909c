// Polls a condition until it holds or a generous deadline passes (a deadline, not a timing
// assertion: on a loaded machine the condition simply takes longer to come true).
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace mlaas::testing {

inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

}  // namespace mlaas::testing
