// The PostgreSQL side of the metadata database (issue 24) against a real PostgreSQL 15 on
// loopback (tests/testutil/postgres_server.h): migrations applied once however many servers
// start together, a newer database refused, values passed as parameters (never SQL), and
// connection errors that never show the password.
#include "metadata/pg_schema.h"

#include <gtest/gtest.h>

#include <chrono>

#include <atomic>
#include <thread>
#include <vector>

#include "metadata/migrations.h"
#include "metadata/sqlite_schema.h"
#include "testutil/postgres_server.h"

namespace mlaas::metadata {
namespace {

// One list of migrations, each complete in both dialects.
TEST(MigrationsTest, EachDialectGetsItsOwnSpelling) {
  for (int i = 0; i < SchemaVersion(); ++i) {
    const std::string sqlite = MigrationSql(i, SqlDialect::kSqlite), pg = MigrationSql(i, SqlDialect::kPostgres);
    EXPECT_EQ(sqlite.find('$'), std::string::npos) << i;
    EXPECT_EQ(pg.find('$'), std::string::npos) << i;
    EXPECT_EQ(sqlite.find("BIGSERIAL"), std::string::npos) << i;
    EXPECT_EQ(pg.find("AUTOINCREMENT"), std::string::npos) << i;
  }
  EXPECT_NE(MigrationSql(1, SqlDialect::kPostgres).find("\"user\""), std::string::npos);
}

class PgSchemaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new testing::PostgresServer();
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  // A database of its own for each test.
  std::string FreshDatabase(const std::string& name) {
    auto admin = PgDb::Connect(server_->url());
    EXPECT_TRUE(admin.has_value()) << admin.error().ToString();
    if (!admin.has_value()) return "";
    EXPECT_TRUE(admin->Exec("DROP DATABASE IF EXISTS " + name).ok());
    EXPECT_TRUE(admin->Exec("CREATE DATABASE " + name).ok());
    std::string url = server_->url();
    return url.substr(0, url.rfind('/') + 1) + name;
  }
  static testing::PostgresServer* server_;
};
testing::PostgresServer* PgSchemaTest::server_ = nullptr;

TEST_F(PgSchemaTest, ServersStartingTogetherMigrateOnce) {
  const std::string url = FreshDatabase("together");
  std::atomic<int> ok{0};
  std::vector<std::thread> servers;
  for (int i = 0; i < 6; ++i) {
    servers.emplace_back([&] {
      auto db = PgDb::Connect(url);
      if (!db.has_value()) return;
      if (MigratePg(*db).ok()) ++ok;
    });
  }
  for (auto& t : servers) t.join();
  EXPECT_EQ(ok.load(), 6);
  auto db = PgDb::Connect(url);
  ASSERT_TRUE(db.has_value());
  auto version = db->Query("SELECT version FROM mlaas_schema");
  ASSERT_TRUE(version.has_value()) << version.error().ToString();
  ASSERT_EQ(version->rows(), 1) << "one row, whoever migrated";
  EXPECT_EQ(version->Int(0, 0), PgSchemaVersion());
  EXPECT_EQ(PgSchemaVersion(), SqliteSchemaVersion());
  auto tables = db->Query(
      "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1::text[])",
      {"{tasks,task_logs,users,tokens,catalog_entries,catalog_versions,catalog_aliases,catalog_alias_events,"
       "catalog_retired}"});
  ASSERT_TRUE(tables.has_value()) << tables.error().ToString();
  EXPECT_EQ(tables->Int(0, 0), 9);
  EXPECT_TRUE(MigratePg(*db).ok()) << "migrating again changes nothing";
}

TEST_F(PgSchemaTest, ADatabaseOfANewerReleaseIsRefused) {
  const std::string url = FreshDatabase("newer");
  auto db = PgDb::Connect(url);
  ASSERT_TRUE(db.has_value());
  ASSERT_TRUE(MigratePg(*db).ok());
  ASSERT_TRUE(db->Query("UPDATE mlaas_schema SET version = $1", {std::to_string(PgSchemaVersion() + 1)}).has_value());
  Status st = MigratePg(*db);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("newer"), std::string::npos);
}

TEST_F(PgSchemaTest, ValuesAreParametersNotSql) {
  const std::string url = FreshDatabase("params");
  auto db = PgDb::Connect(url);
  ASSERT_TRUE(db.has_value());
  ASSERT_TRUE(MigratePg(*db).ok());
  const std::string hostile = "x'); DROP TABLE users; --\n\xe2\x82\xac";
  ASSERT_TRUE(db->Query("INSERT INTO users (name, created_ms) VALUES ($1, $2)", {hostile, "5"}).has_value());
  auto back = db->Query("SELECT name, created_ms FROM users WHERE name = $1", {hostile});
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->rows(), 1);
  EXPECT_EQ(back->Text(0, 0), hostile);
  EXPECT_EQ(back->Int(0, 1), 5);
  auto again = db->Query("INSERT INTO users (name, created_ms) VALUES ($1, 1)", {hostile});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), StatusCode::kAlreadyExists) << again.error().ToString();
  auto null = db->Query("SELECT $1::text IS NULL", {std::nullopt});
  ASSERT_TRUE(null.has_value());
  EXPECT_EQ(null->Text(0, 0), "t");
}

TEST_F(PgSchemaTest, ConnectionErrorsNeverShowThePassword) {
  auto refused = PgDb::Connect("postgresql://mlaas:s3cret-pw@127.0.0.1:" + std::to_string(testing::FreeLoopbackPort()) +
                               "/postgres");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(refused.error().message().find("s3cret-pw"), std::string::npos) << refused.error().message();
  EXPECT_NE(refused.error().message().find("mlaas:***@127.0.0.1"), std::string::npos) << refused.error().message();
  EXPECT_EQ(RedactDatabaseUrl("postgresql://u:p@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://h:5432/db"), "postgresql://h:5432/db");
  // A password with '@' or '/' in it, or given as a query parameter.
  EXPECT_EQ(RedactDatabaseUrl("postgresql://u:p@s/s@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(RedactDatabaseUrl("postgresql:///db?user=u&password=x1&sslmode=require"),
            "postgresql:///db?user=u&password=***&sslmode=require");
  EXPECT_EQ(RedactDatabaseUrl("postgresql://h/db?password=x2"), "postgresql://h/db?password=***");
  // A URL libpq cannot parse: its own message would quote the password; ours does not.
  for (const std::string bad : {"postgresql://mlaas:pa%zz-s3cret@127.0.0.1/db", "postgresql://[::1:s3cret"}) {
    auto unparsed = PgDb::Connect(bad);
    ASSERT_FALSE(unparsed.has_value()) << bad;
    EXPECT_EQ(unparsed.error().code(), StatusCode::kInvalidArgument) << unparsed.error().message();
    EXPECT_EQ(unparsed.error().message().find("s3cret"), std::string::npos) << unparsed.error().message();
  }
  // The URL's own settings win over ours: a one-second timeout is a quick failure.
  const auto start = std::chrono::steady_clock::now();
  auto unroutable = PgDb::Connect("postgresql://mlaas:pw@10.255.255.1:5432/db?connect_timeout=1");
  EXPECT_FALSE(unroutable.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
}

TEST_F(PgSchemaTest, ValuesThatTextCannotHoldAreClearErrors) {
  auto db = PgDb::Connect(FreshDatabase("texts"));
  ASSERT_TRUE(db.has_value());
  auto nul = db->Query("SELECT $1::text", {std::string("a\0b", 3)});
  ASSERT_FALSE(nul.has_value());
  EXPECT_EQ(nul.error().code(), StatusCode::kInvalidArgument);
  auto latin1 = db->Query("SELECT $1::text", {std::string("caf\xe9")});
  ASSERT_FALSE(latin1.has_value());
  EXPECT_EQ(latin1.error().code(), StatusCode::kInvalidArgument) << latin1.error().message();
  EXPECT_TRUE(db->Query("SELECT 1").has_value()) << "the connection is still usable";
}

// A restarted server: a new connection works again (the stores reconnect the same way).
TEST_F(PgSchemaTest, ARestartedServerTakesNewConnections) {
  const std::string url = FreshDatabase("restart");
  {
    auto db = PgDb::Connect(url);
    ASSERT_TRUE(db.has_value());
    ASSERT_TRUE(MigratePg(*db).ok());
    ASSERT_TRUE(server_->Stop().ok());
    auto lost = db->Query("SELECT 1");
    ASSERT_FALSE(lost.has_value());
    EXPECT_EQ(lost.error().code(), StatusCode::kUnavailable) << lost.error().ToString();
    ASSERT_TRUE(server_->Resume().ok());
  }
  auto db = PgDb::Connect(url);
  ASSERT_TRUE(db.has_value()) << db.error().ToString();
  auto v = db->Query("SELECT version FROM mlaas_schema");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->Int(0, 0), PgSchemaVersion());
}

}  // namespace
}  // namespace mlaas::metadata
