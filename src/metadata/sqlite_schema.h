// The SQLite schema of the metadata database: the numbered migrations of migrations.h, their
// number in PRAGMA user_version; private to the metadata module. Every store opening the file
// applies the missing ones in one transaction, so a database made by an older release is
// migrated in place.
#pragma once

#include <string>

#include "common/result.h"
#include "metadata/sqlite_db.h"

namespace mlaas::metadata {

// The schema version this build writes.
int SqliteSchemaVersion();

// Brings `db` to SqliteSchemaVersion(); FailedPrecondition for a newer database.
Status MigrateSqlite(SqliteDb& db);

// The SQLite file a database URL names ("sqlite:///abs.db", "sqlite://rel.db" or a plain
// path); errors name the field "database".
Result<std::string> SqlitePath(const std::string& url);

}  // namespace mlaas::metadata
