#include "api/router.h"

#include <gtest/gtest.h>

namespace mlaas::api {
namespace {

Router MakeRouter() {
  Router r;
  for (auto [method, pattern] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/v1/tasks"},
           {"GET", "/api/v1/tasks/{id}"},
           {"POST", "/api/v1/tasks/{id}/cancel"},
           {"GET", "/api/v1/objects/{key+}"},
           {"PUT", "/api/v1/objects/{key+}"},
           {"DELETE", "/api/v1/objects/{key+}"}}) {
    r.Add({.method = method, .pattern = pattern});
  }
  return r;
}

TEST(RouterTest, MatchesLiteralAndParameterSegments) {
  Router r = MakeRouter();
  auto m = r.Match("GET", "/api/v1/tasks/abc");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/api/v1/tasks/{id}");
  EXPECT_EQ(m.path_params["id"], "abc");
  EXPECT_EQ(r.Match("POST", "/api/v1/tasks/abc/cancel").path_params["id"], "abc");
  EXPECT_EQ(r.Match("GET", "/api/v1/tasks").route->pattern, "/api/v1/tasks");
}

TEST(RouterTest, GreedyParameterTakesTheRestOfThePath) {
  Router r = MakeRouter();
  auto m = r.Match("PUT", "/api/v1/objects/datasets/a/b.csv");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.path_params["key"], "datasets/a/b.csv");
  EXPECT_EQ(r.Match("GET", "/api/v1/objects/").route, nullptr);
  EXPECT_EQ(r.Match("GET", "/api/v1/objects").route, nullptr);
}

TEST(RouterTest, GreedyParameterStopsBeforeTheLiteralSegmentsAfterIt) {
  Router r;
  r.Add({.method = "POST", .pattern = "/api/v1/vector-stores/{path+}/documents"});
  auto m = r.Match("POST", "/api/v1/vector-stores/stores/debian/v2/documents");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.path_params["path"], "stores/debian/v2");
  EXPECT_EQ(r.Match("POST", "/api/v1/vector-stores/s/documents").path_params["path"], "s");
  EXPECT_EQ(r.Match("POST", "/api/v1/vector-stores/documents").route, nullptr);  // no path
  EXPECT_EQ(r.Match("POST", "/api/v1/vector-stores/s/docs").route, nullptr);
  EXPECT_EQ(r.Match("POST", "/api/v1/vector-stores//documents").route, nullptr);
}

TEST(RouterTest, HeadMatchesGet) {
  Router r = MakeRouter();
  EXPECT_NE(r.Match("HEAD", "/api/v1/tasks").route, nullptr);
}

TEST(RouterTest, ReportsAllowedMethodsForAKnownPath) {
  Router r = MakeRouter();
  auto m = r.Match("POST", "/api/v1/objects/x");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allowed_methods, (std::vector<std::string>{"GET", "PUT", "DELETE"}));
  auto none = r.Match("GET", "/api/v2/nothing");
  EXPECT_EQ(none.route, nullptr);
  EXPECT_TRUE(none.allowed_methods.empty());
  EXPECT_EQ(r.Match("GET", "/api/v1/tasks/").route, nullptr);  // empty parameter
  EXPECT_EQ(r.Match("GET", "/api/v1/tasks/a/b").route, nullptr);
}

TEST(ErrorMappingTest, EveryCodeHasOneHttpStatus) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnimplemented), 501);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDeadlineExceeded), 504);
}

TEST(ErrorMappingTest, BodyNamesCodeMessageFieldAndRequest) {
  auto body = ErrorBody(InvalidArgument("must be >= 1", "model_train.epochs"), "rid-1");
  EXPECT_EQ(body["error"]["code"], "invalid_argument");
  EXPECT_EQ(body["error"]["message"], "must be >= 1");
  EXPECT_EQ(body["error"]["field"], "model_train.epochs");
  EXPECT_EQ(body["error"]["request_id"], "rid-1");
  EXPECT_FALSE(ErrorBody(NotFound("x"), "").at("error").contains("field"));
  EXPECT_EQ(DumpJson(nlohmann::json(std::string("bad\xff"))), "\"bad\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace mlaas::api
