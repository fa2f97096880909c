// Thin RAII wrapper over libpq (PostgreSQL's C client), private to the metadata module: one
// connection, text-format parameters ($1, $2, ...) so values never become SQL, and errors that
// never show the URL's password.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mlaas::metadata {

// The rows of a query.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PgResult& operator=(PgResult&&) = delete;
  ~PgResult() { PQclear(r_); }

  int rows() const { return PQntuples(r_); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;

 private:
  PGresult* r_;
};

using PgParam = std::optional<std::string>;  // nullopt: NULL

class PgDb {
 public:
  // Connects to a postgresql:// (or postgres://) URL (libpq's URI form) within 10 s.
  // Unavailable for a server that cannot be reached, naming host and database, never the password.
  static Result<PgDb> Connect(const std::string& url);
  PgDb(PgDb&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
  PgDb(const PgDb&) = delete;
  PgDb& operator=(const PgDb&) = delete;
  PgDb& operator=(PgDb&&) = delete;
  ~PgDb() { PQfinish(conn_); }

  // One or more statements without parameters (DDL, BEGIN/COMMIT).
  Status Exec(const std::string& sql);
  // One statement with text parameters.
  Result<PgResult> Query(const std::string& sql, const std::vector<PgParam>& params = {});

 private:
  explicit PgDb(PGconn* conn) : conn_(conn) {}
  Status Error(std::string_view what, const PGresult* r) const;
  PGconn* conn_;
};

// `url` with its password (if any) replaced by "***", for logs and messages.
std::string RedactDatabaseUrl(const std::string& url);

}  // namespace mlaas::metadata
