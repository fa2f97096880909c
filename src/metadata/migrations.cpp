#include "metadata/migrations.h"

#include <iterator>

namespace mlaas::metadata {
namespace {

// Migration i brings the schema from version i to i + 1, for both databases: $SERIAL, $INT and
// $USER stand for what each dialect spells differently (MigrationSql). Never edit one that has
// shipped: add the next.
constexpr const char* kMigrations[] = {
    // 1: tasks and their logs.
    R"sql(
CREATE TABLE IF NOT EXISTS tasks (
  seq              $SERIAL,
  id               TEXT NOT NULL UNIQUE,
  type             TEXT NOT NULL,
  status           TEXT NOT NULL,
  params           TEXT NOT NULL,
  progress         TEXT NOT NULL DEFAULT '{}',
  result           TEXT,
  error            TEXT,
  submitted_ms     $INT NOT NULL,
  started_ms       $INT NOT NULL DEFAULT 0,
  finished_ms      $INT NOT NULL DEFAULT 0,
  updated_ms       $INT NOT NULL,
  attempts         $INT NOT NULL DEFAULT 0,
  max_attempts     $INT NOT NULL,
  cancel_requested $INT NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_expires_ms $INT NOT NULL DEFAULT 0,
  revision         $INT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_status_seq ON tasks(status, seq);
CREATE INDEX IF NOT EXISTS tasks_type_seq ON tasks(type, seq);
CREATE TABLE IF NOT EXISTS task_logs (
  task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  seq     $INT NOT NULL,
  time_ms $INT NOT NULL,
  level   TEXT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (task_id, seq)
);
)sql",
    // 2: accounts (users and API tokens; a token's secret is kept as its SHA-256 only).
    R"sql(
CREATE TABLE users (
  name       TEXT PRIMARY KEY,
  created_ms $INT NOT NULL
);
CREATE TABLE tokens (
  id            TEXT PRIMARY KEY,
  $USER          TEXT NOT NULL REFERENCES users(name),
  scopes        TEXT NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  secret_sha256 TEXT NOT NULL,
  created_ms    $INT NOT NULL,
  expires_ms    $INT NOT NULL DEFAULT 0,
  last_used_ms  $INT NOT NULL DEFAULT 0,
  revoked_ms    $INT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_user ON tokens($USER);
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
  latest_version $INT NOT NULL DEFAULT 0,
  downloads      $INT NOT NULL DEFAULT 0,
  predictions    $INT NOT NULL DEFAULT 0,
  deployments    $INT NOT NULL DEFAULT 0,
  popularity     $INT NOT NULL DEFAULT 0,
  created_ms     $INT NOT NULL,
  updated_ms     $INT NOT NULL,
  PRIMARY KEY (kind, name)
);
CREATE INDEX catalog_entries_recent ON catalog_entries(kind, updated_ms);
CREATE INDEX catalog_entries_popular ON catalog_entries(kind, popularity);
CREATE TABLE catalog_versions (
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  version    $INT NOT NULL,
  ready      $INT NOT NULL DEFAULT 0,
  digest     TEXT NOT NULL DEFAULT '',
  files      TEXT NOT NULL DEFAULT '[]',
  size       $INT NOT NULL DEFAULT 0,
  facts      TEXT NOT NULL DEFAULT '{}',
  lineage    TEXT NOT NULL DEFAULT '{}',
  created_by TEXT NOT NULL,
  created_ms $INT NOT NULL,
  PRIMARY KEY (kind, name, version),
  FOREIGN KEY (kind, name) REFERENCES catalog_entries(kind, name) ON DELETE CASCADE
);
CREATE TABLE catalog_aliases (
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  alias      TEXT NOT NULL,
  version    $INT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_ms $INT NOT NULL,
  PRIMARY KEY (kind, name, alias),
  FOREIGN KEY (kind, name) REFERENCES catalog_entries(kind, name) ON DELETE CASCADE
);
CREATE TABLE catalog_alias_events (
  seq          $SERIAL,
  kind         TEXT NOT NULL,
  name         TEXT NOT NULL,
  alias        TEXT NOT NULL,
  from_version $INT NOT NULL,
  to_version   $INT NOT NULL,
  by_user      TEXT NOT NULL,
  time_ms      $INT NOT NULL,
  FOREIGN KEY (kind, name) REFERENCES catalog_entries(kind, name) ON DELETE CASCADE
);
CREATE INDEX catalog_alias_events_entry ON catalog_alias_events(kind, name, seq);
-- The last version number of deleted entries: a name registered again continues after it, so
-- a version's storage path (catalog/<kind>s/<name>/<n>) never names two different contents.
CREATE TABLE catalog_retired (
  kind         TEXT NOT NULL,
  name         TEXT NOT NULL,
  last_version $INT NOT NULL,
  PRIMARY KEY (kind, name)
);
)sql",
    // 5: a token per claim, so that a claim retried after a lost connection finds its own
    // earlier success instead of taking a second task (PostgreSQL's store).
    R"sql(
ALTER TABLE tasks ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';
)sql",
    // 6: what a task needs of its worker (the request's resources block): GPUs, capability
    // labels (a JSON array of strings) and the size of a data-parallel group.
    R"sql(
ALTER TABLE tasks ADD COLUMN req_gpus $INT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN req_labels TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN req_workers $INT NOT NULL DEFAULT 1;
)sql",
    // 7: deployments shared by every API server (their records, written by compare-and-swap on
    // their revision; one database-wide revision that every write bumps) and the servers that
    // host them (heartbeats with their URL and what they hold).
    R"sql(
CREATE TABLE deployments (
  name        TEXT PRIMARY KEY,
  incarnation TEXT NOT NULL,
  owner       TEXT NOT NULL,
  labels      TEXT NOT NULL DEFAULT '[]',
  gpus        $INT NOT NULL DEFAULT 0,
  versions    TEXT NOT NULL DEFAULT '[]',
  next_number $INT NOT NULL DEFAULT 1,
  revision    $INT NOT NULL,
  write_token TEXT NOT NULL DEFAULT '',
  updated_ms  $INT NOT NULL
);
CREATE TABLE deployments_revision (
  id       $INT PRIMARY KEY,
  revision $INT NOT NULL
);
INSERT INTO deployments_revision (id, revision) VALUES (1, 0);
CREATE TABLE serving_hosts (
  id           TEXT PRIMARY KEY,
  url          TEXT NOT NULL,
  labels       TEXT NOT NULL DEFAULT '[]',
  gpus         $INT NOT NULL DEFAULT 0,
  replicas     TEXT NOT NULL DEFAULT '{}',
  heartbeat_ms $INT NOT NULL
);
)sql",
    // 8: seats of the groups gathering for data-parallel tasks (TaskStore::JoinGroup): attempt 0
    // while gathering, the task's attempt once rank 0 claimed it; rank 0's seat carries the
    // address of its rendezvous store.
    R"sql(
CREATE TABLE task_seats (
  id         TEXT PRIMARY KEY,
  task_id    TEXT NOT NULL,
  attempt    $INT NOT NULL,
  seat_rank  $INT NOT NULL,
  world      $INT NOT NULL,
  owner      TEXT NOT NULL,
  address    TEXT NOT NULL DEFAULT '',
  expires_ms $INT NOT NULL,
  UNIQUE (task_id, attempt, seat_rank)
);
CREATE INDEX task_seats_expiry ON task_seats(expires_ms);
)sql",
};

}  // namespace

int SchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

std::string MigrationSql(int index, SqlDialect dialect) {
  const bool pg = dialect == SqlDialect::kPostgres;
  std::string sql = kMigrations[index];
  auto replace = [&](const std::string& token, const std::string& with) {
    for (size_t at = sql.find(token); at != std::string::npos; at = sql.find(token, at + with.size()))
      sql.replace(at, token.size(), with);
  };
  // (Longest first: $SERIAL before anything it could contain.)
  replace("$SERIAL", pg ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT");
  replace("$INT", pg ? "BIGINT" : "INTEGER");
  replace("$USER", pg ? "\"user\"" : "user");  // a reserved word in PostgreSQL
  return sql;
}

}  // namespace mlaas::metadata
