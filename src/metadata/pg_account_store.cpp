// PostgreSQL implementation of AccountStore (issue 24), over the same pool as the task store:
// each change is one statement, so a retry after a lost connection cannot apply twice.
#include <utility>

#include "common/text.h"
#include "common/time_util.h"
#include "metadata/account_store.h"
#include "metadata/pg_db.h"
#include "metadata/pg_schema.h"
#include "metadata/pg_stores.h"

namespace mlaas::metadata {
namespace {

// "user" is a reserved word in PostgreSQL: the column is quoted (migrations.h spells it $USER).
constexpr const char* kTokenColumns =
    "id, \"user\", scopes, description, secret_sha256, created_ms, expires_ms, last_used_ms, revoked_ms";

TokenRecord ReadToken(const PgResult& r, int row) {
  TokenRecord t;
  t.id = r.Text(row, 0);
  t.user = r.Text(row, 1);
  for (const auto& scope : Split(r.Text(row, 2), ',')) {
    if (!scope.empty()) t.scopes.push_back(scope);
  }
  t.description = r.Text(row, 3);
  t.secret_sha256 = r.Text(row, 4);
  t.created_ms = r.Int(row, 5);
  t.expires_ms = r.Int(row, 6);
  t.last_used_ms = r.Int(row, 7);
  t.revoked_ms = r.Int(row, 8);
  return t;
}

std::string Num(int64_t v) { return std::to_string(v); }

class PgAccountStore final : public AccountStore {
 public:
  PgAccountStore(std::string url, std::function<int64_t()> now) : pool_(std::move(url)), now_(std::move(now)) {}

  Result<UserRecord> EnsureUser(const std::string& name) override {
    const int64_t now = now_();
    return pool_.Run<UserRecord>([&](PgDb& db) -> Result<UserRecord> {
      MLAAS_RETURN_IF_ERROR(
          db.Query("INSERT INTO users (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", {name, Num(now)})
              .status());
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT name, created_ms FROM users WHERE name = $1", {name}));
      if (r.rows() == 0) return Internal("user '" + name + "' vanished");
      return UserRecord{r.Text(0, 0), r.Int(0, 1)};
    });
  }

  Status InsertToken(const TokenRecord& t) override {
    bool retried = false;
    Result<int> inserted = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      const bool again = std::exchange(retried, true);
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r, db.Query("INSERT INTO tokens (" + std::string(kTokenColumns) +
                                   ") VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0) ON CONFLICT (id) DO NOTHING RETURNING id",
                               {t.id, t.user, Join(t.scopes, ","), t.description, t.secret_sha256, Num(t.created_ms),
                                Num(t.expires_ms)}));
      if (r.rows() > 0 || !again) return r.rows();
      // A retry after a lost connection: the first try may have inserted this very token.
      MLAAS_ASSIGN_OR_RETURN(PgResult same, db.Query("SELECT 1 FROM tokens WHERE id = $1 AND secret_sha256 = $2",
                                                     {t.id, t.secret_sha256}));
      return same.rows();
    });
    if (!inserted.has_value()) return inserted.error();
    if (*inserted == 0) return AlreadyExists("token id '" + t.id + "' is in use");
    return Status::Ok();
  }

  Status ResetToken(const TokenRecord& t) override {
    return Changed("UPDATE tokens SET secret_sha256 = $1, scopes = $2, expires_ms = $3, revoked_ms = 0 "
                   "WHERE id = $4 RETURNING id",
                   {t.secret_sha256, Join(t.scopes, ","), Num(t.expires_ms), t.id}, "no token '" + t.id + "'");
  }

  Result<TokenRecord> GetToken(const std::string& id) override {
    return pool_.Run<TokenRecord>([&](PgDb& db) -> Result<TokenRecord> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r,
                             db.Query("SELECT " + std::string(kTokenColumns) + " FROM tokens WHERE id = $1", {id}));
      if (r.rows() == 0) return NotFound("no token '" + id + "'");
      return ReadToken(r, 0);
    });
  }

  Result<std::vector<TokenRecord>> ListTokens(const std::string& user) override {
    std::string sql = "SELECT " + std::string(kTokenColumns) + " FROM tokens";
    std::vector<PgParam> params;
    if (!user.empty()) {
      sql += " WHERE \"user\" = $1";
      params.emplace_back(user);
    }
    sql += " ORDER BY created_ms DESC, id";
    return pool_.Run<std::vector<TokenRecord>>([&](PgDb& db) -> Result<std::vector<TokenRecord>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(sql, params));
      std::vector<TokenRecord> out;
      for (int row = 0; row < r.rows(); ++row) out.push_back(ReadToken(r, row));
      return out;
    });
  }

  Status RevokeToken(const std::string& id, int64_t now_ms) override {
    return Changed("UPDATE tokens SET revoked_ms = CASE WHEN revoked_ms = 0 THEN $1::bigint ELSE revoked_ms END "
                   "WHERE id = $2 RETURNING id",
                   {Num(now_ms), id}, "no token '" + id + "'");
  }

  Status TouchToken(const std::string& id, int64_t now_ms) override {
    return pool_.RunStatus([&](PgDb& db) {
      return db.Query("UPDATE tokens SET last_used_ms = $1 WHERE id = $2", {Num(now_ms), id}).status();
    });
  }

 private:
  // Runs an UPDATE ... RETURNING; NotFound(`missing`) when it changed no row.
  Status Changed(const std::string& sql, const std::vector<PgParam>& params, const std::string& missing) {
    Result<int> changed = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(sql, params));
      return r.rows();
    });
    if (!changed.has_value()) return changed.error();
    return *changed == 0 ? NotFound(missing) : Status::Ok();
  }

  PgPool pool_;
  std::function<int64_t()> now_;
};

}  // namespace

Result<std::unique_ptr<AccountStore>> OpenPgAccountStore(const StoreOptions& options) {
  MLAAS_ASSIGN_OR_RETURN(PgDb db, PgDb::Connect(options.url));
  MLAAS_RETURN_IF_ERROR(MigratePg(db));
  return std::unique_ptr<AccountStore>(std::make_unique<PgAccountStore>(
      options.url, options.now_ms ? options.now_ms : std::function<int64_t()>(NowMs)));
}

}  // namespace mlaas::metadata
