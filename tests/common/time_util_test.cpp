#include "common/time_util.h"

#include <gtest/gtest.h>

namespace mlaas {
namespace {

TEST(TimeUtilTest, FormatsIsoUtcLikeTheSpec) {
  // 2023-09-13T06:30:48 UTC, the submitted time in SPEC.md's training output.
  EXPECT_EQ(FormatIsoUtc(1694586648000), "2023-09-13T06:30:48");
  EXPECT_EQ(FormatIsoUtc(0), "1970-01-01T00:00:00");
}

TEST(TimeUtilTest, ParsesWhatItFormats) {
  EXPECT_EQ(ParseIsoUtc("2023-09-13T06:30:48"), 1694586648000);
  EXPECT_EQ(ParseIsoUtc("2023-09-13T06:30:48Z"), 1694586648000);
  EXPECT_FALSE(ParseIsoUtc("yesterday").has_value());
  EXPECT_FALSE(ParseIsoUtc("2023-09-13T06:30:48+02").has_value());
}

TEST(TimeUtilTest, FormatsElapsedLikePythonTimedelta) {
  EXPECT_EQ(FormatElapsed(0), "0:00:00");
  EXPECT_EQ(FormatElapsed(5999), "0:00:05");
  EXPECT_EQ(FormatElapsed((2 * 3600 + 20 * 60 + 31) * 1000LL), "2:20:31");
  EXPECT_EQ(FormatElapsed((86400 + 2 * 3600 + 20 * 60 + 31) * 1000LL), "1 day, 2:20:31");
  EXPECT_EQ(FormatElapsed(3 * 86400 * 1000LL), "3 days, 0:00:00");
  EXPECT_EQ(FormatElapsed(-5), "0:00:00");
}

}  // namespace
}  // namespace mlaas
