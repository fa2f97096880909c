#include "metadata/pg_schema.h"

#include <string>

#include "metadata/migrations.h"

namespace mlaas::metadata {
namespace {

// The key of the advisory lock migrations hold (any constant 64-bit number, ours alone).
constexpr const char* kMigrationLock = "7244931562801310033";

}  // namespace

int PgSchemaVersion() { return SchemaVersion(); }

Status MigratePg(PgDb& db) {
  MLAAS_RETURN_IF_ERROR(db.Exec("BEGIN"));
  Status st = [&]() -> Status {
    // Servers starting together wait here for the first one's migrations, then find them done.
    MLAAS_RETURN_IF_ERROR(db.Query("SELECT pg_advisory_xact_lock($1::bigint)", {kMigrationLock}).status());
    MLAAS_RETURN_IF_ERROR(db.Exec("CREATE TABLE IF NOT EXISTS mlaas_schema (version BIGINT NOT NULL)"));
    MLAAS_ASSIGN_OR_RETURN(PgResult rows, db.Query("SELECT version FROM mlaas_schema"));
    const int64_t version = rows.rows() > 0 ? rows.Int(0, 0) : 0;
    if (version > PgSchemaVersion())
      return FailedPrecondition("the database was written by a newer mlaas (schema " + std::to_string(version) +
                                ", this build knows " + std::to_string(PgSchemaVersion()) + ")");
    for (int64_t v = version; v < PgSchemaVersion(); ++v)
      MLAAS_RETURN_IF_ERROR(db.Exec(MigrationSql(static_cast<int>(v), SqlDialect::kPostgres)));
    if (rows.rows() == 0)
      return db.Query("INSERT INTO mlaas_schema (version) VALUES ($1)", {std::to_string(PgSchemaVersion())}).status();
    return db.Query("UPDATE mlaas_schema SET version = $1", {std::to_string(PgSchemaVersion())}).status();
  }();
  if (!st.ok()) {
    (void)db.Exec("ROLLBACK");
    return st;
  }
  return db.Exec("COMMIT");
}

}  // namespace mlaas::metadata
