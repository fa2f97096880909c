#include "metadata/pg_db.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

namespace mlaas::metadata {

std::string PgResult::Text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t PgResult::Int(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }

std::string RedactDatabaseUrl(const std::string& url) {
  // The password of the URI's user part: from the first ':' to the last '@' before the query
  // string (over-redacting rather than showing part of a password holding '@' or '/'), and any
  // "password=" in the query string.
  std::string out = url;
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t authority = scheme + 3;
    const size_t query = out.find('?', authority);
    const size_t at = out.rfind('@', query == std::string::npos ? std::string::npos : query);
    if (at != std::string::npos && at >= authority) {
      const size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out = out.substr(0, colon + 1) + "***" + out.substr(at);
    }
  }
  for (size_t q = out.find('?'); q != std::string::npos;) {
    const size_t key = out.find("password=", q);
    if (key == std::string::npos) break;
    const size_t value = key + 9, end = out.find('&', value);
    out = out.substr(0, value) + "***" + (end == std::string::npos ? "" : out.substr(end));
    q = value + 3;
  }
  return out;
}

namespace {

// `text` with every occurrence of `secret` replaced by "***".
std::string Scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

}  // namespace

Result<std::vector<std::string>> PgDb::WaitForNotifications(std::chrono::milliseconds timeout) {
  std::vector<std::string> payloads;
  const auto drain = [&] {
    while (PGnotify* note = PQnotifies(conn_)) {
      payloads.emplace_back(note->extra != nullptr ? note->extra : "");
      PQfreemem(note);
    }
  };
  drain();
  if (!payloads.empty()) return payloads;
  const int sock = PQsocket(conn_);
  if (sock < 0) return Unavailable("the PostgreSQL connection is closed");
  pollfd p{sock, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR) return Unavailable("waiting for PostgreSQL notifications failed");
  if (ready > 0) {
    if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) {
      std::string why = PQerrorMessage(conn_);
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      return Unavailable("lost the PostgreSQL connection: " + why);
    }
    drain();
  }
  return payloads;
}

PgListener::PgListener(std::string url, std::string channel, std::function<void(const std::vector<std::string>&)> on_notes)
    : url_(std::move(url)), channel_(std::move(channel)), on_notes_(std::move(on_notes)), thread_([this] { Loop(); }) {
  std::unique_lock lock(mu_);
  listening_cv_.wait_for(lock, std::chrono::seconds(2), [this] { return listening_; });
}

PgListener::~PgListener() {
  stop_ = true;
  thread_.join();
}

void PgListener::Loop() {
  int64_t backoff_ms = 100;
  bool lost = false;
  while (!stop_) {
    Status st = Listen(lost, backoff_ms);
    if (stop_) break;
    if (!lost) spdlog::warn("LISTEN {}: {}; reconnecting", channel_, st.ToString());
    lost = true;
    for (int64_t slept = 0; slept < backoff_ms && !stop_; slept += 50)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 3000);
  }
}

// Listens until the connection is lost (the error) or the listener stops (OK). Once listening,
// the backoff starts again from its shortest.
Status PgListener::Listen(bool& lost, int64_t& backoff_ms) {
  MLAAS_ASSIGN_OR_RETURN(PgDb db, PgDb::Connect(url_));
  MLAAS_RETURN_IF_ERROR(db.Exec("LISTEN " + channel_));
  backoff_ms = 100;
  {
    std::lock_guard lock(mu_);
    listening_ = true;
  }
  listening_cv_.notify_all();
  if (std::exchange(lost, false)) {
    spdlog::info("LISTEN {}: listening again", channel_);
    on_notes_({});
  }
  while (!stop_) {
    MLAAS_ASSIGN_OR_RETURN(std::vector<std::string> notes, db.WaitForNotifications(std::chrono::milliseconds(200)));
    if (!notes.empty()) on_notes_(notes);
  }
  return Status::Ok();
}

Result<PgDb> PgDb::Connect(const std::string& url) {
  // The URL is parsed first: libpq's parse errors quote what they could not read, password
  // included, so those get a message of ours.
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &parse_error);
  if (options == nullptr) {
    PQfreemem(parse_error);
    return InvalidArgument("the database URL is not a PostgreSQL connection URI (postgresql://user:password@host:port/db)",
                           "database");
  }
  std::string password;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (std::string_view(o->keyword) == "password" && o->val != nullptr) password = o->val;
  PQconninfoFree(options);
  // Ours first, the URL last (expand_dbname: the URL's own settings win), keepalives so that a
  // silent network cut is noticed in about half a minute instead of hours.
  const char* keys[] = {"connect_timeout",   "application_name",    "keepalives",       "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname", nullptr};
  const char* values[] = {"10", "mlaas", "1", "10", "5", "3", "30000", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return ResourceExhausted("cannot allocate a PostgreSQL connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = Scrub(PQerrorMessage(conn), password);
    PQfinish(conn);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
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
  if (state != nullptr && std::string_view(state) == "22021")  // character_not_in_repertoire: not UTF-8
    return InvalidArgument("a value is not valid UTF-8");
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
  // Text parameters end at a NUL byte, which PostgreSQL's text cannot hold either.
  for (const auto& p : params)
    if (p && p->find('\0') != std::string::npos) return InvalidArgument("a value contains a NUL byte");
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

void PgPool::DropIdle() {
  std::lock_guard lock(mu_);
  idle_.clear();
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

Status PgPool::TryOnce(const std::function<Status(PgDb&)>& fn) {
  MLAAS_ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, Take());
  Status st = fn(*db);
  if (db->Connected()) {
    Give(std::move(db));
  } else {
    DropIdle();
  }
  return st;
}

Status PgPool::RunStatus(const std::function<Status(PgDb&)>& fn) {
  Result<bool> r = Run<bool>([&](PgDb& db) -> Result<bool> {
    MLAAS_RETURN_IF_ERROR(fn(db));
    return true;
  });
  return r.has_value() ? Status::Ok() : r.error();
}

}  // namespace mlaas::metadata
