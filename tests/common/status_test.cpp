#include "common/status.h"

#include <gtest/gtest.h>

#include "common/result.h"

namespace mlaas {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd", "x");
  return x / 2;
}

Result<int> Quarter(int x) {
  MLAAS_ASSIGN_OR_RETURN(int h, Half(x));
  MLAAS_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  MLAAS_RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(StatusTest, OkByDefault) {
  Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.ToString(), "ok");
}

TEST(StatusTest, CarriesCodeMessageAndField) {
  Status st = InvalidArgument("must be >= 1", "model_train.epochs");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeName(st.code()), "invalid_argument");
  EXPECT_EQ(st.field(), "model_train.epochs");
  EXPECT_EQ(st.ToString(), "invalid_argument: must be >= 1 (field model_train.epochs)");
  EXPECT_EQ(st.WithContext("loading").message(), "loading: must be >= 1");
  EXPECT_EQ(NotFound("x").WithField("id").field(), "id");
}

TEST(StatusTest, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    names.insert(StatusCodeName(static_cast<StatusCode>(c)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(StatusCode::kInternal) + 1);
}

TEST(ResultTest, PropagatesValuesAndErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "odd");
  EXPECT_EQ(r.error().field(), "x");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(3).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlaas
