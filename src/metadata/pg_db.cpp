#include "metadata/pg_db.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace mlaas::metadata {

std::string PgResult::Text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t PgResult::Int(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }

std::string RedactDatabaseUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t at = url.find('@', scheme + 3);
  const size_t slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

Result<PgDb> PgDb::Connect(const std::string& url) {
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {url.c_str(), "10", "mlaas", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return ResourceExhausted("cannot allocate a PostgreSQL connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    // libpq's messages name host and port, not the password; the URL is shown redacted.
    return Unavailable("cannot connect to PostgreSQL at " + RedactDatabaseUrl(url) + ": " + why);
  }
  return PgDb(conn);
}

Status PgDb::Error(std::string_view what, const PGresult* r) const {
  std::string msg = std::string(what) + ": " + (r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (PQstatus(conn_) != CONNECTION_OK) return Unavailable(msg);
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (state != nullptr && std::string_view(state) == "23505") return AlreadyExists(msg);  // unique_violation
  if (state != nullptr && std::string_view(state) == "23503") return NotFound(msg);       // foreign_key_violation
  if (state != nullptr && (std::string_view(state) == "40001" || std::string_view(state) == "40P01"))
    return Unavailable(msg);  // serialization failure, deadlock: retry
  return Internal(msg);
}

Status PgDb::Exec(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  const ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  Status st = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? Status::Ok() : Error("PostgreSQL", r);
  PQclear(r);
  return st;
}

Result<PgResult> PgDb::Query(const std::string& sql, const std::vector<PgParam>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr,
                             nullptr, /*resultFormat=*/0);
  const ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Status st = Error("PostgreSQL", r);
    PQclear(r);
    return st;
  }
  return PgResult(r);
}

Result<std::unique_ptr<PgDb>> PgPool::Take() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto db = std::move(idle_.back());
      idle_.pop_back();
      return db;
    }
  }
  MLAAS_ASSIGN_OR_RETURN(PgDb db, PgDb::Connect(url_));
  return std::make_unique<PgDb>(std::move(db));
}

void PgPool::Give(std::unique_ptr<PgDb> db) {
  // A burst of threads may open more; only kMaxIdle stay open between calls.
  constexpr size_t kMaxIdle = 8;
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(db));
}

bool PgPool::Retry(const Status& st, std::chrono::steady_clock::time_point started, int attempt) const {
  if (st.code() != StatusCode::kUnavailable) return false;
  const auto delay = std::chrono::milliseconds(std::min<int64_t>(int64_t{100} << std::min(attempt, 5), 3000));
  if (std::chrono::steady_clock::now() + delay - started > std::chrono::milliseconds(retry_for_ms_)) return false;
  std::this_thread::sleep_for(delay);
  return true;
}

Status PgPool::RunStatus(const std::function<Status(PgDb&)>& fn) {
  Result<bool> r = Run<bool>([&](PgDb& db) -> Result<bool> {
    MLAAS_RETURN_IF_ERROR(fn(db));
    return true;
  });
  return r.has_value() ? Status::Ok() : r.error();
}

}  // namespace mlaas::metadata
