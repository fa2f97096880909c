#include "metadata/sqlite_schema.h"

#include "common/text.h"
#include "metadata/migrations.h"

namespace mlaas::metadata {

int SqliteSchemaVersion() { return SchemaVersion(); }

Status MigrateSqlite(SqliteDb& db) {
  MLAAS_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status st = [&]() -> Status {
    MLAAS_ASSIGN_OR_RETURN(auto q, db.Prepare("PRAGMA user_version"));
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    const int64_t version = row ? q.Int(0) : 0;
    if (version > SqliteSchemaVersion()) {
      return FailedPrecondition("the database was written by a newer mlaas (schema " + std::to_string(version) +
                                ", this build knows " + std::to_string(SqliteSchemaVersion()) + ")");
    }
    for (int64_t v = version; v < SqliteSchemaVersion(); ++v)
      MLAAS_RETURN_IF_ERROR(db.Exec(MigrationSql(static_cast<int>(v), SqlDialect::kSqlite)));
    if (version == SqliteSchemaVersion()) return Status::Ok();
    return db.Exec("PRAGMA user_version=" + std::to_string(SqliteSchemaVersion()));
  }();
  if (!st.ok()) {
    (void)db.Exec("ROLLBACK");
    return st;
  }
  return db.Exec("COMMIT");
}

Result<std::string> SqlitePath(const std::string& url) {
  std::string path;
  if (StartsWith(url, "sqlite://")) {
    path = url.substr(9);
  } else if (StartsWith(url, "postgres://") || StartsWith(url, "postgresql://")) {
    return Unimplemented("the PostgreSQL metadata store is not available in this build yet; use a SQLite path",
                         "database");
  } else if (url.find("://") != std::string::npos) {
    return InvalidArgument("unsupported database URL '" + url + "' (use a file path or sqlite:///path)", "database");
  } else {
    path = url;
  }
  if (path.empty()) return InvalidArgument("database path must not be empty", "database");
  return path;
}

}  // namespace mlaas::metadata
