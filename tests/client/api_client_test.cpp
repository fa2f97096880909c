#include "client/api_client.h"

#include <gtest/gtest.h>

namespace mlaas::client {
namespace {

TEST(ApiClientTest, EncodesPathsAndQueries) {
  EXPECT_EQ(UrlEncode("a b/c"), "a%20b%2Fc");
  EXPECT_EQ(UrlEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(UrlEncode("caf\xC3\xA9"), "caf%C3%A9");
  EXPECT_EQ(QueryString({{"prefix", "datasets/"}, {"delimiter", ""}, {"limit", "5"}}),
            "?limit=5&prefix=datasets%2F");
  EXPECT_EQ(QueryString({}), "");
}

TEST(ApiClientTest, TurnsErrorResponsesIntoStatus) {
  Response r;
  r.status = 400;
  r.body = {{"error", {{"code", "invalid_argument"}, {"message", "bad epochs"},
                       {"field", "model_train.epochs"}}}};
  Status st = StatusFromResponse(r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "bad epochs");
  EXPECT_EQ(st.field(), "model_train.epochs");

  Response missing;
  missing.status = 404;
  EXPECT_EQ(StatusFromResponse(missing).code(), StatusCode::kNotFound);
  Response conflict;
  conflict.status = 409;
  EXPECT_EQ(StatusFromResponse(conflict).code(), StatusCode::kFailedPrecondition);
  Response ok;
  ok.status = 201;
  EXPECT_TRUE(StatusFromResponse(ok).ok());
  Response plain;
  plain.status = 502;
  plain.text = "bad gateway";
  EXPECT_EQ(StatusFromResponse(plain).message(), "HTTP 502: bad gateway");
}

TEST(ApiClientTest, RejectsBadUrlsAndReportsUnreachableServers) {
  EXPECT_EQ(ApiClient::Create("localhost:8080").error().field(), "server");
  auto c = ApiClient::Create("http://127.0.0.1:1", 2);
  ASSERT_TRUE(c.has_value());
  auto r = (*c)->Get("/healthz");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.error().message().find("is `mlaas serve` running?"), std::string::npos);
}

}  // namespace
}  // namespace mlaas::client
