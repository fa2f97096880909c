#include "metadata/sqlite_schema.h"

#include <iterator>

#include "common/text.h"

namespace mlaas::metadata {
namespace {

// Migration i brings the schema from version i to i + 1. Never edit one that has shipped:
// add the next.
constexpr const char* kMigrations[] = {
    // 1: tasks and their logs.
    R"sql(
CREATE TABLE IF NOT EXISTS tasks (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  id               TEXT NOT NULL UNIQUE,
  type             TEXT NOT NULL,
  status           TEXT NOT NULL,
  params           TEXT NOT NULL,
  progress         TEXT NOT NULL DEFAULT '{}',
  result           TEXT,
  error            TEXT,
  submitted_ms     INTEGER NOT NULL,
  started_ms       INTEGER NOT NULL DEFAULT 0,
  finished_ms      INTEGER NOT NULL DEFAULT 0,
  updated_ms       INTEGER NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_expires_ms INTEGER NOT NULL DEFAULT 0,
  revision         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_status_seq ON tasks(status, seq);
CREATE INDEX IF NOT EXISTS tasks_type_seq ON tasks(type, seq);
CREATE TABLE IF NOT EXISTS task_logs (
  task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  seq     INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  level   TEXT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (task_id, seq)
);
)sql",
    // 2: accounts (users and API tokens; a token's secret is kept as its SHA-256 only).
    R"sql(
CREATE TABLE users (
  name       TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL
);
CREATE TABLE tokens (
  id            TEXT PRIMARY KEY,
  user          TEXT NOT NULL REFERENCES users(name),
  scopes        TEXT NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  secret_sha256 TEXT NOT NULL,
  created_ms    INTEGER NOT NULL,
  expires_ms    INTEGER NOT NULL DEFAULT 0,
  last_used_ms  INTEGER NOT NULL DEFAULT 0,
  revoked_ms    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_user ON tokens(user);
)sql",
    // 3: who submitted each task (empty: a server without accounts).
    R"sql(
ALTER TABLE tasks ADD COLUMN submitted_by TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_submitted_by_seq ON tasks(submitted_by, seq);
)sql",
    // 4: the catalog (registered models and datasets, versions, aliases and their audit trail).
    R"sql(
CREATE TABLE catalog_entries (
  kind           TEXT NOT NULL,
  name           TEXT NOT NULL,
  owner          TEXT NOT NULL,
  visibility     TEXT NOT NULL,
  description    TEXT NOT NULL DEFAULT '',
  card           TEXT NOT NULL DEFAULT '',
  objective      TEXT NOT NULL DEFAULT '',
  model_type     TEXT NOT NULL DEFAULT '',
  license        TEXT NOT NULL DEFAULT '',
  labels         TEXT NOT NULL DEFAULT '[]',
  tags           TEXT NOT NULL DEFAULT '[]',
  latest_version INTEGER NOT NULL DEFAULT 0,
  downloads      INTEGER NOT NULL DEFAULT 0,
  predictions    INTEGER NOT NULL DEFAULT 0,
  deployments    INTEGER NOT NULL DEFAULT 0,
  popularity     INTEGER NOT NULL DEFAULT 0,
  created_ms     INTEGER NOT NULL,
  updated_ms     INTEGER NOT NULL,
  PRIMARY KEY (kind, name)
);
CREATE INDEX catalog_entries_recent ON catalog_entries(kind, updated_ms);
CREATE INDEX catalog_entries_popular ON catalog_entries(kind, popularity);
CREATE TABLE catalog_versions (
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  ready      INTEGER NOT NULL DEFAULT 0,
  digest     TEXT NOT NULL DEFAULT '',
  files      TEXT NOT NULL DEFAULT '[]',
  size       INTEGER NOT NULL DEFAULT 0,
  facts      TEXT NOT NULL DEFAULT '{}',
  lineage    TEXT NOT NULL DEFAULT '{}',
  created_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (kind, name, version),
  FOREIGN KEY (kind, name) REFERENCES catalog_entries(kind, name) ON DELETE CASCADE
);
CREATE TABLE catalog_aliases (
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  alias      TEXT NOT NULL,
  version    INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (kind, name, alias),
  FOREIGN KEY (kind, name) REFERENCES catalog_entries(kind, name) ON DELETE CASCADE
);
CREATE TABLE catalog_alias_events (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  kind         TEXT NOT NULL,
  name         TEXT NOT NULL,
  alias        TEXT NOT NULL,
  from_version INTEGER NOT NULL,
  to_version   INTEGER NOT NULL,
  by_user      TEXT NOT NULL,
  time_ms      INTEGER NOT NULL,
  FOREIGN KEY (kind, name) REFERENCES catalog_entries(kind, name) ON DELETE CASCADE
);
CREATE INDEX catalog_alias_events_entry ON catalog_alias_events(kind, name, seq);
-- The last version number of deleted entries: a name registered again continues after it, so
-- a version's storage path (catalog/<kind>s/<name>/<n>) never names two different contents.
CREATE TABLE catalog_retired (
  kind         TEXT NOT NULL,
  name         TEXT NOT NULL,
  last_version INTEGER NOT NULL,
  PRIMARY KEY (kind, name)
);
)sql",
};

}  // namespace

int SqliteSchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

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
    for (int64_t v = version; v < SqliteSchemaVersion(); ++v) MLAAS_RETURN_IF_ERROR(db.Exec(kMigrations[v]));
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
