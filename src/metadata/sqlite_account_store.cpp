// SQLite implementation of AccountStore: one connection under a mutex, like the task store.
#include <mutex>

#include "common/text.h"
#include "common/time_util.h"
#include "metadata/account_store.h"
#include "metadata/pg_stores.h"
#include "metadata/sqlite_db.h"
#include "metadata/sqlite_schema.h"

namespace mlaas::metadata {
namespace {

constexpr const char* kTokenColumns =
    "id, user, scopes, description, secret_sha256, created_ms, expires_ms, last_used_ms, revoked_ms";

TokenRecord ReadToken(const SqliteStatement& s) {
  TokenRecord t;
  t.id = s.Text(0);
  t.user = s.Text(1);
  for (const auto& scope : Split(s.Text(2), ',')) {
    if (!scope.empty()) t.scopes.push_back(scope);
  }
  t.description = s.Text(3);
  t.secret_sha256 = s.Text(4);
  t.created_ms = s.Int(5);
  t.expires_ms = s.Int(6);
  t.last_used_ms = s.Int(7);
  t.revoked_ms = s.Int(8);
  return t;
}

class SqliteAccountStore final : public AccountStore {
 public:
  explicit SqliteAccountStore(SqliteDb db, std::function<int64_t()> now) : db_(std::move(db)), now_(std::move(now)) {}

  Status Migrate() {
    std::lock_guard lock(mu_);
    return MigrateSqlite(db_);
  }

  Result<UserRecord> EnsureUser(const std::string& name) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto ins, db_.Prepare("INSERT OR IGNORE INTO users (name, created_ms) VALUES (?, ?)"));
    ins.Bind(1, name).Bind(2, now_());
    MLAAS_RETURN_IF_ERROR(ins.Run());
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT name, created_ms FROM users WHERE name = ?"));
    q.Bind(1, name);
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Internal("user '" + name + "' vanished");
    return UserRecord{q.Text(0), q.Int(1)};
  }

  Status InsertToken(const TokenRecord& t) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto ins, db_.Prepare("INSERT OR IGNORE INTO tokens (" + std::string(kTokenColumns) +
                                                  ") VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0)"));
    ins.Bind(1, t.id).Bind(2, t.user).Bind(3, Join(t.scopes, ",")).Bind(4, t.description).Bind(5, t.secret_sha256);
    ins.Bind(6, t.created_ms).Bind(7, t.expires_ms);
    MLAAS_RETURN_IF_ERROR(ins.Run());
    if (db_.Changes() == 0) return AlreadyExists("token id '" + t.id + "' is in use");
    return Status::Ok();
  }

  Status ResetToken(const TokenRecord& t) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto up, db_.Prepare("UPDATE tokens SET secret_sha256 = ?, scopes = ?, expires_ms = ?, "
                                                 "revoked_ms = 0 WHERE id = ?"));
    up.Bind(1, t.secret_sha256).Bind(2, Join(t.scopes, ",")).Bind(3, t.expires_ms).Bind(4, t.id);
    MLAAS_RETURN_IF_ERROR(up.Run());
    if (db_.Changes() == 0) return NotFound("no token '" + t.id + "'");
    return Status::Ok();
  }

  Result<TokenRecord> GetToken(const std::string& id) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT " + std::string(kTokenColumns) + " FROM tokens WHERE id = ?"));
    q.Bind(1, id);
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return NotFound("no token '" + id + "'");
    return ReadToken(q);
  }

  Result<std::vector<TokenRecord>> ListTokens(const std::string& user) override {
    std::lock_guard lock(mu_);
    std::string sql = "SELECT " + std::string(kTokenColumns) + " FROM tokens";
    if (!user.empty()) sql += " WHERE user = ?";
    sql += " ORDER BY created_ms DESC, id";
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(sql));
    if (!user.empty()) q.Bind(1, user);
    std::vector<TokenRecord> out;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out.push_back(ReadToken(q));
    }
    return out;
  }

  Status RevokeToken(const std::string& id, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto up, db_.Prepare("UPDATE tokens SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ? "
                                                 "ELSE revoked_ms END WHERE id = ?"));
    up.Bind(1, now_ms).Bind(2, id);
    MLAAS_RETURN_IF_ERROR(up.Run());
    if (db_.Changes() == 0) return NotFound("no token '" + id + "'");
    return Status::Ok();
  }

  Status TouchToken(const std::string& id, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto up, db_.Prepare("UPDATE tokens SET last_used_ms = ? WHERE id = ?"));
    up.Bind(1, now_ms).Bind(2, id);
    return up.Run();
  }

 private:
  std::mutex mu_;
  SqliteDb db_;
  std::function<int64_t()> now_;
};

}  // namespace

Result<std::unique_ptr<AccountStore>> OpenAccountStore(const StoreOptions& options) {
  if (IsPostgresUrl(options.url)) return OpenPgAccountStore(options);
  MLAAS_ASSIGN_OR_RETURN(std::string path, SqlitePath(options.url));
  MLAAS_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path));
  auto store = std::make_unique<SqliteAccountStore>(std::move(db), options.now_ms ? options.now_ms : std::function<int64_t()>(NowMs));
  MLAAS_RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<AccountStore>(std::move(store));
}

}  // namespace mlaas::metadata
