#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

namespace mlaas {
namespace {

// Whatever a message quotes, a log line stays one line with no terminal sequence: a task's error
// once wrote a request field's "\nFORGED\x1b[31m" into the log as a new line and a colour.
TEST(LoggingTest, EveryMessageIsOneLineWithItsControlCharactersEscaped) {
  ASSERT_TRUE(InitLogging("info").ok());
  testing::internal::CaptureStderr();
  spdlog::warn("task {} failed: {}", 7, "device '\nFORGED\x1b[31mX\xc2\x9b" "1m' \xe2\x80\xae" "gnp.exe");
  spdlog::warn("a clean message keeps its backslash \\ and caf\xc3\xa9");
  spdlog::warn("invalid UTF-8 \xff\xfe stays readable");
  spdlog::default_logger()->flush();
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 3) << out;
  EXPECT_NE(out.find("task 7 failed: device '\\x0aFORGED\\x1b[31mX\\xc2\\x9b1m' \\xe2\\x80\\xaegnp.exe"), std::string::npos) << out;
  EXPECT_NE(out.find("a clean message keeps its backslash \\ and caf\xc3\xa9"), std::string::npos) << out;
  EXPECT_NE(out.find("invalid UTF-8 \\xff\\xfe stays readable"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_FALSE(InitLogging("loud").ok());
}

}  // namespace
}  // namespace mlaas
