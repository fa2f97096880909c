#include "metadata/account_store.h"
#include "metadata/catalog_store.h"

#include <gtest/gtest.h>

#include "metadata/sqlite_db.h"
#include "metadata/sqlite_schema.h"
#include "testutil/postgres_server.h"
#include "testutil/temp_dir.h"

namespace mlaas::metadata {
namespace {

using mlaas::testing::TempDir;

StoreOptions At(const TempDir& dir) {
  StoreOptions o;
  o.url = (dir / "mlaas.db").string();
  o.now_ms = [] { return int64_t{5000}; };
  return o;
}

TokenRecord Token(const std::string& id, const std::string& user) {
  TokenRecord t;
  t.id = id;
  t.user = user;
  t.scopes = {"read", "write"};
  t.secret_sha256 = std::string(64, 'a');
  t.created_ms = 1000;
  return t;
}

// A data directory made by the release before accounts (schema 1: tasks only) opens, keeps its
// tasks, and gains the account tables.
TEST(AccountStoreTest, ADatabaseOfTheReleaseBeforeAccountsIsMigratedInPlace) {
  TempDir dir;
  {
    auto db = SqliteDb::Open((dir / "mlaas.db").string());
    ASSERT_TRUE(db.has_value());
    ASSERT_TRUE(db->Exec(R"sql(
CREATE TABLE tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, status TEXT NOT NULL,
  params TEXT NOT NULL, progress TEXT NOT NULL DEFAULT '{}', result TEXT, error TEXT, submitted_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0, finished_ms INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, cancel_requested INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT, lease_expires_ms INTEGER NOT NULL DEFAULT 0, revision INTEGER NOT NULL DEFAULT 0);
CREATE INDEX tasks_status_seq ON tasks(status, seq);
CREATE INDEX tasks_type_seq ON tasks(type, seq);
CREATE TABLE task_logs (task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (task_id, seq));
INSERT INTO tasks (id, type, status, params, submitted_ms, updated_ms, max_attempts)
  VALUES ('6f1c0c52-0000-4000-8000-000000000001', 'dataset_stats', 'queued', '{"n": 1}', 10, 10, 3);
PRAGMA user_version=1;
)sql")
                    .ok());
  }
  auto accounts = OpenAccountStore(At(dir));
  ASSERT_TRUE(accounts.has_value()) << accounts.error().ToString();
  auto tasks = OpenTaskStore(At(dir));
  ASSERT_TRUE(tasks.has_value()) << tasks.error().ToString();
  auto old = (*tasks)->Get("6f1c0c52-0000-4000-8000-000000000001");
  ASSERT_TRUE(old.has_value()) << old.error().ToString();
  EXPECT_EQ(old->params["n"], 1);
  ASSERT_TRUE((*accounts)->EnsureUser("alice").has_value());
  ASSERT_TRUE((*accounts)->InsertToken(Token("t1", "alice")).ok());
  EXPECT_EQ((*accounts)->GetToken("t1")->user, "alice");
  // And the catalog's tables (schema 4).
  auto catalog = OpenCatalogStore(At(dir));
  ASSERT_TRUE(catalog.has_value()) << catalog.error().ToString();
  ASSERT_TRUE((*catalog)->CreateEntry({.kind = "model", .name = "m", .owner = "alice", .visibility = "private"}).ok());
  EXPECT_EQ((*catalog)->GetEntry("model", "m")->owner, "alice");
  auto db = SqliteDb::Open((dir / "mlaas.db").string());
  auto version = db->Prepare("PRAGMA user_version");
  ASSERT_TRUE(version->Step().value());
  EXPECT_EQ(version->Int(0), SqliteSchemaVersion());
}

TEST(AccountStoreTest, ANewerDatabaseIsRefused) {
  TempDir dir;
  {
    auto db = SqliteDb::Open((dir / "mlaas.db").string());
    ASSERT_TRUE(db->Exec("PRAGMA user_version=" + std::to_string(SqliteSchemaVersion() + 1)).ok());
  }
  auto accounts = OpenAccountStore(At(dir));
  ASSERT_FALSE(accounts.has_value());
  EXPECT_EQ(accounts.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(accounts.error().message().find("newer"), std::string::npos);
}

// On both backends: SQLite in a temporary file, PostgreSQL 15 started for the suite.
class AccountBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  StoreOptions Options() {
    StoreOptions o = At(dir_);
    if (GetParam() == "postgresql") {
      auto url = testing::FreshTestDatabase();
      EXPECT_TRUE(url.has_value()) << url.error().ToString();
      o.url = url.has_value() ? *url : "";
    }
    return o;
  }
  TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(Backends, AccountBackendTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_P(AccountBackendTest, TokensAreKeptListedRevokedAndTouched) {
  auto opened = OpenAccountStore(Options());
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  auto store = std::move(opened).value();
  ASSERT_TRUE(store->EnsureUser("alice").has_value());
  ASSERT_TRUE(store->EnsureUser("alice").has_value()) << "a second EnsureUser is a no-op";
  ASSERT_TRUE(store->EnsureUser("bob").has_value());
  ASSERT_TRUE(store->InsertToken(Token("a1", "alice")).ok());
  auto later = Token("b1", "bob");
  later.created_ms = 2000;
  ASSERT_TRUE(store->InsertToken(later).ok());
  EXPECT_EQ(store->InsertToken(Token("a1", "bob")).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(store->InsertToken(Token("x1", "nobody")).ok()) << "a token's user must exist";

  auto all = store->ListTokens("");
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "b1") << "newest first";
  auto mine = store->ListTokens("alice");
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].scopes, (std::vector<std::string>{"read", "write"}));

  ASSERT_TRUE(store->TouchToken("a1", 7000).ok());
  ASSERT_TRUE(store->RevokeToken("a1", 8000).ok());
  ASSERT_TRUE(store->RevokeToken("a1", 9000).ok());
  auto a1 = store->GetToken("a1");
  EXPECT_EQ(a1->last_used_ms, 7000);
  EXPECT_EQ(a1->revoked_ms, 8000) << "revoking twice keeps the first time";
  EXPECT_EQ(store->RevokeToken("zz", 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetToken("zz").error().code(), StatusCode::kNotFound);

  auto reset = Token("a1", "alice");
  reset.secret_sha256 = std::string(64, 'b');
  ASSERT_TRUE(store->ResetToken(reset).ok());
  EXPECT_EQ(store->GetToken("a1")->revoked_ms, 0);
  EXPECT_EQ(store->GetToken("a1")->secret_sha256, std::string(64, 'b'));
}

}  // namespace
}  // namespace mlaas::metadata
