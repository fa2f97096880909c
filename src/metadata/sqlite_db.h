// Thin RAII wrapper over the SQLite C API, private to the metadata module.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mlaas::metadata {

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteStatement(SqliteStatement&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  SqliteStatement& operator=(SqliteStatement&&) = delete;
  ~SqliteStatement() { sqlite3_finalize(stmt_); }

  // Binds are 1-based, as in SQLite.
  SqliteStatement& Bind(int i, int64_t v);
  SqliteStatement& Bind(int i, std::string_view v);
  SqliteStatement& BindNull(int i);

  // True when a row is available, false when done.
  Result<bool> Step();
  // Runs to completion, ignoring rows.
  Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDb {
 public:
  // Opens or creates the file, in WAL mode with a busy timeout so that several processes
  // can share it.
  static Result<SqliteDb> Open(const std::string& path);
  SqliteDb(SqliteDb&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  SqliteDb& operator=(SqliteDb&&) = delete;
  ~SqliteDb() { sqlite3_close_v2(db_); }

  Status Exec(const std::string& sql);
  Result<SqliteStatement> Prepare(std::string_view sql);
  int64_t Changes() const { return sqlite3_changes64(db_); }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Runs `body` in a BEGIN IMMEDIATE transaction of `db` (so that writers from several processes
// queue up): committed when it succeeds, rolled back otherwise.
template <typename T>
Result<T> InTransaction(SqliteDb& db, const std::function<Result<T>()>& body) {
  MLAAS_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Result<T> r = body();
  if (!r.has_value()) {
    (void)db.Exec("ROLLBACK");
    return r;
  }
  if (Status st = db.Exec("COMMIT"); !st.ok()) {
    (void)db.Exec("ROLLBACK");
    return st;
  }
  return r;
}

}  // namespace mlaas::metadata
