// End-to-end: accounts and access on a server started with --auth on. The access matrix is
// driven by the route table itself (every operation of /openapi.json and its x-access rule), so
// a route added without a rule, or whose rule is not enforced, fails here. Tokens: anonymous,
// garbage, expired, revoked, read, write, admin; then the CLI's login, whoami and tokens.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <regex>
#include <thread>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kAdminToken = "e2e-admin-token-0123456789";

class AuthE2eTest : public ServerSuite<AuthE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--auth", "on", "--workers", "0"});
    ::setenv("MLAAS_ADMIN_TOKEN", kAdminToken, 1);
    StartServer();
    ::unsetenv("MLAAS_ADMIN_TOKEN");
  }

  std::unique_ptr<client::ApiClient> As(const std::string& token) {
    return std::move(client::ApiClient::Create(server_->url(), 30, token)).value();
  }
  // A new token of `user` with `scopes`; its id in *id.
  std::string Issue(const std::string& user, json scopes, int64_t expires_in = 0, std::string* id = nullptr) {
    auto r = CallServer(*As(kAdminToken), "POST", "/api/v1/tokens",
                        json{{"user", user}, {"scopes", scopes}, {"expires_in", expires_in}}.dump());
    EXPECT_EQ(r.status, 201) << r.text;
    if (id) *id = r.body.value("id", "");
    return r.body.value("token", "");
  }
};

TEST_F(AuthE2eTest, TokensNameTheirUserAndScopesAndAreShownOnce) {
  auto anonymous = CallServer(*client_, "GET", "/api/v1/whoami");
  EXPECT_EQ(anonymous.status, 401) << anonymous.text;
  EXPECT_FALSE(anonymous.headers["www-authenticate"].empty());
  EXPECT_EQ(CallServer(*client_, "GET", "/healthz").status, 200) << "health needs no token";

  std::string id;
  const std::string alice = Issue("alice", {"read", "write"}, 0, &id);
  auto me = CallServer(*As(alice), "GET", "/api/v1/whoami");
  ASSERT_EQ(me.status, 200) << me.text;
  EXPECT_EQ(me.body["user"], "alice");
  EXPECT_EQ(me.body["scopes"], json({"read", "write"}));
  EXPECT_EQ(me.body["auth"], "on");
  // Listed without the secret; alice sees her own only, the admin everyone's.
  const std::string bob = Issue("bob", {"read"});
  auto mine = CallServer(*As(alice), "GET", "/api/v1/tokens");
  ASSERT_EQ(mine.status, 200) << mine.text;
  ASSERT_EQ(mine.body["tokens"].size(), 1u);
  EXPECT_EQ(mine.body["tokens"][0]["id"], id);
  EXPECT_EQ(mine.text.find(alice.substr(alice.rfind('_') + 1)), std::string::npos) << "no secret in a listing";
  auto all = CallServer(*As(kAdminToken), "GET", "/api/v1/tokens");
  EXPECT_GE(all.body["tokens"].size(), 3u);
  // Bob cannot revoke alice's token: to him it does not exist.
  EXPECT_EQ(CallServer(*As(bob), "DELETE", "/api/v1/tokens/" + id).status, 404);
  EXPECT_EQ(CallServer(*As(bob), "POST", "/api/v1/tokens", json{{"user", "bob"}, {"scopes", {"admin"}}}.dump()).status,
            403)
      << "only an admin makes tokens";
  // A token in the URL is refused, naming the parameter.
  auto in_url = CallServer(*client_, "GET", "/api/v1/tasks?access_token=" + alice);
  EXPECT_EQ(in_url.status, 400);
  EXPECT_EQ(in_url.body["error"]["field"], "access_token");
  // Alice revokes her own token; it stops working at once.
  EXPECT_EQ(CallServer(*As(alice), "DELETE", "/api/v1/tokens/" + id).status, 200);
  EXPECT_EQ(CallServer(*As(alice), "GET", "/api/v1/whoami").status, 401);
  // The server's log never holds a token.
  const std::string log = server_->Log();
  EXPECT_EQ(log.find(kAdminToken), std::string::npos);
  EXPECT_EQ(log.find(alice), std::string::npos);
}

// With auth on, each user's keys are relative to their own home, and tasks are their submitter's.
TEST_F(AuthE2eTest, UsersHaveTheirOwnObjectsAndTasks) {
  auto alice = As(Issue("alice2", {"read", "write"}));
  auto bob = As(Issue("bob2", {"read", "write"}));
  auto admin = As(kAdminToken);
  ASSERT_EQ(CallServer(*alice, "PUT", "/api/v1/objects/data.csv", "text,label\nalice row,a\n").status, 201);
  ASSERT_EQ(CallServer(*bob, "PUT", "/api/v1/objects/data.csv", "text,label\nbob row,b\n").status, 201);
  // The same key, two objects; each user reads their own, and answers show their own keys.
  EXPECT_EQ(CallServer(*alice, "GET", "/api/v1/objects/data.csv").text, "text,label\nalice row,a\n");
  EXPECT_EQ(CallServer(*bob, "GET", "/api/v1/objects/data.csv").text, "text,label\nbob row,b\n");
  auto listed = CallServer(*alice, "GET", "/api/v1/ml/utilities/s3/object");
  ASSERT_EQ(listed.status, 200) << listed.text;
  ASSERT_EQ(listed.body["objects"].size(), 1u) << listed.text;
  EXPECT_EQ(listed.body["objects"][0]["key"], "data.csv");
  EXPECT_EQ(listed.text.find("users/"), std::string::npos) << listed.text;
  // Bob cannot reach alice's home by a path: it is inside his own.
  EXPECT_EQ(CallServer(*bob, "GET", "/api/v1/objects/users/alice2/data.csv").status, 404);
  EXPECT_EQ(CallServer(*bob, "GET", "/api/v1/objects/../alice2/data.csv").status, 400);
  // The admin addresses the whole store.
  EXPECT_EQ(CallServer(*admin, "GET", "/api/v1/objects/users/alice2/data.csv").status, 200);

  // A task: alice's to see, list and cancel; to bob it does not exist.
  auto submitted = CallServer(*alice, "POST", "/api/v1/ml/utilities/dataset/stats",
                              json{{"dataset", {{"path", "data.csv"}}}}.dump());
  ASSERT_EQ(submitted.status, 202) << submitted.text;
  const std::string id = submitted.body["task_id"];
  auto seen = CallServer(*alice, "GET", "/api/v1/tasks/" + id);
  ASSERT_EQ(seen.status, 200) << seen.text;
  EXPECT_EQ(seen.text.find("users/alice2"), std::string::npos) << "her paths as she wrote them: " << seen.text;
  EXPECT_EQ(CallServer(*bob, "GET", "/api/v1/tasks/" + id).status, 404);
  EXPECT_EQ(CallServer(*bob, "POST", "/api/v1/tasks/" + id + "/cancel").status, 404);
  EXPECT_EQ(CallServer(*bob, "GET", "/api/v1/tasks/" + id + "/logs").status, 404);
  EXPECT_EQ(CallServer(*bob, "GET", "/api/v1/tasks/" + id + "/events").status, 404);
  EXPECT_EQ(CallServer(*bob, "GET", "/api/v1/tasks").text.find(id), std::string::npos);
  EXPECT_NE(CallServer(*alice, "GET", "/api/v1/tasks").text.find(id), std::string::npos);
  EXPECT_NE(CallServer(*admin, "GET", "/api/v1/tasks").text.find(id), std::string::npos);
  EXPECT_EQ(CallServer(*alice, "POST", "/api/v1/tasks/" + id + "/cancel").status, 200);
  // Bob's request for a dataset only alice has is refused: his data.csv is his own, and
  // alice's other files are not in his home.
  auto missing = CallServer(*bob, "POST", "/api/v1/ml/utilities/dataset/stats",
                            json{{"dataset", {{"path", "only-alice.csv"}}}}.dump());
  EXPECT_EQ(missing.status, 400) << missing.text;
  EXPECT_EQ(missing.text.find("users/"), std::string::npos) << missing.text;
}

// Every operation of the route table, with every kind of caller.
TEST_F(AuthE2eTest, EveryRouteHasAnAccessRuleAndEnforcesIt) {
  auto spec = CallServer(*client_, "GET", "/openapi.json");
  ASSERT_EQ(spec.status, 200);
  std::string revoked_id;
  const std::string revoked = Issue("dave", {"admin"}, 0, &revoked_id);
  ASSERT_EQ(CallServer(*As(kAdminToken), "DELETE", "/api/v1/tokens/" + revoked_id).status, 200);
  const std::string expired = Issue("erin", {"admin"}, 1);
  const std::map<std::string, std::string> callers = {
      {"anonymous", ""},       {"garbage", "mlaas_0123456789abcdef_00"}, {"expired", expired},
      {"revoked", revoked},    {"read", Issue("rita", {"read"})},       {"write", Issue("will", {"write"})},
      {"admin", kAdminToken}};
  std::this_thread::sleep_for(1100ms);  // the expiring token expires
  const std::regex param(R"(\{[^}]+\})");
  int operations = 0;
  for (const auto& [path, methods] : spec.body["paths"].items()) {
    for (const auto& [method, op] : methods.items()) {
      ++operations;
      const std::string access = op.value("x-access", "");
      ASSERT_TRUE(access == "public" || access == "read" || access == "write" || access == "admin")
          << method << " " << path << " has no access rule (" << access << ")";
      const std::string url = std::regex_replace(path, param, "zz-none");
      std::string upper = method;
      for (auto& ch : upper) ch = static_cast<char>(std::toupper(ch));
      if (upper == "GET" && path.find("/events") != std::string::npos) continue;  // a stream; its 404 is checked below
      for (const auto& [who, token] : callers) {
        auto r = CallServer(*As(token), upper, url, upper == "GET" || upper == "DELETE" ? "" : "{}");
        const std::string what = who + " " + upper + " " + url + " (" + access + "): " + std::to_string(r.status) + " " + r.text.substr(0, 200);
        const bool invalid = who == "garbage" || who == "expired" || who == "revoked";
        if (invalid) {
          EXPECT_EQ(r.status, 401) << what;  // a bad token is refused even on public routes
        } else if (access == "public" || who == "admin") {
          EXPECT_TRUE(r.status != 401 && r.status != 403) << what;
        } else if (who == "anonymous") {
          EXPECT_EQ(r.status, 401) << what;
          EXPECT_FALSE(r.headers["www-authenticate"].empty()) << what;
        } else {
          const bool allowed = access == "read" || (access == "write" && who == "write");
          if (allowed) {
            EXPECT_TRUE(r.status != 401 && r.status != 403) << what;
          } else {
            EXPECT_EQ(r.status, 403) << what;
          }
        }
      }
    }
  }
  EXPECT_GT(operations, 40);
  EXPECT_EQ(CallServer(*As(kAdminToken), "GET", "/api/v1/tasks/zz-none/events").status, 404);
  EXPECT_EQ(CallServer(*client_, "GET", "/api/v1/tasks/zz-none/events").status, 401);
}

TEST_F(AuthE2eTest, TheCliLogsInShowsTheUserAndRevokesTokens) {
  TempDir home;
  ::setenv("XDG_CONFIG_HOME", home.path().c_str(), 1);
  const std::string server = server_->url();
  const std::string token = Issue("carol", {"read", "write"});
  auto no_token = RunMlaas({"whoami", "--server", server});
  EXPECT_EQ(no_token.exit_code, 1) << no_token.out;
  EXPECT_NE(no_token.out.find("token"), std::string::npos) << no_token.out;
  auto login = RunMlaas({"login", "--server", server, "--token", token});
  ASSERT_EQ(login.exit_code, 0) << login.out;
  EXPECT_NE(login.out.find("as carol"), std::string::npos) << login.out;
  EXPECT_EQ(login.out.find(token), std::string::npos) << "the token is not echoed";
  struct stat st {};
  ASSERT_EQ(::stat((home.path() / "mlaas" / "credentials").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto who = RunMlaas({"whoami", "--server", server});
  ASSERT_EQ(who.exit_code, 0) << who.out;
  EXPECT_NE(who.out.find("carol (read,write; auth on)"), std::string::npos) << who.out;
  auto ls = RunMlaas({"tokens", "ls", "--server", server, "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  const json listed = json::parse(ls.out.substr(ls.out.find('{')));
  ASSERT_EQ(listed["tokens"].size(), 1u) << ls.out;
  const std::string id = listed["tokens"][0]["id"];
  // An admin makes a token from the CLI; carol may not.
  auto made = RunMlaas({"tokens", "create", "frank", "--scopes", "read", "--server", server, "--token", kAdminToken});
  ASSERT_EQ(made.exit_code, 0) << made.out;
  EXPECT_NE(made.out.find("mlaas_"), std::string::npos) << made.out;
  EXPECT_EQ(RunMlaas({"tokens", "create", "frank", "--server", server}).exit_code, 1);
  auto revoke = RunMlaas({"tokens", "revoke", id, "--server", server});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.out;
  EXPECT_EQ(RunMlaas({"whoami", "--server", server}).exit_code, 1) << "the stored token was revoked";
  ASSERT_EQ(RunMlaas({"logout", "--server", server}).exit_code, 0);
  ::unsetenv("XDG_CONFIG_HOME");
}

// Bound to every address with --auth left to its default (auto), the server checks tokens.
class ExposedServerE2eTest : public ServerSuite<ExposedServerE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--host", "0.0.0.0", "--workers", "0"});
    StartServer();
  }
};

TEST_F(ExposedServerE2eTest, AuthIsOnByDefaultAndTheAdminTokenIsInAPrivateFile) {
  EXPECT_EQ(CallServer(*client_, "GET", "/api/v1/tasks").status, 401);
  const auto file = dir_->path() / "data" / "admin-token";
  std::string token;
  std::getline(std::ifstream(file), token);
  ASSERT_FALSE(token.empty());
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto admin = std::move(client::ApiClient::Create(server_->url(), 30, token)).value();
  EXPECT_EQ(CallServer(*admin, "GET", "/api/v1/tasks").status, 200);
  EXPECT_EQ(server_->Log().find(token), std::string::npos) << "the log names the file, never the token";
  EXPECT_NE(server_->Log().find("auth on"), std::string::npos);
}

}  // namespace
}  // namespace mlaas::testing
