// The PostgreSQL schema of the metadata database (issue 24), private to the metadata module:
// the migrations SQLite gets (migrations.h), in PostgreSQL's dialect, their number recorded in
// the table mlaas_schema. Every server applies the missing ones at start in one transaction
// under an advisory lock, so several servers starting at once migrate once.
#pragma once

#include "common/result.h"
#include "metadata/pg_db.h"

namespace mlaas::metadata {

// The schema version this build writes (the same as SQLite's).
int PgSchemaVersion();

// Brings the database to PgSchemaVersion(); FailedPrecondition for a newer database.
Status MigratePg(PgDb& db);

}  // namespace mlaas::metadata
