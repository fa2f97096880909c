// The metadata database's schema as numbered migrations, one list for both backends (SQLite by
// default, PostgreSQL for several servers): migration i brings a database from version i to
// i + 1, written once with the few words the dialects spell differently left as tokens.
// Private to the metadata module.
#pragma once

#include <string>

namespace mlaas::metadata {

enum class SqlDialect { kSqlite, kPostgres };

// The schema version this build writes (the number of migrations).
int SchemaVersion();

// Migration `index` (0-based: it brings version index to index + 1) in `dialect`.
std::string MigrationSql(int index, SqlDialect dialect);

}  // namespace mlaas::metadata
