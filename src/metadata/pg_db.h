// Thin RAII wrapper over libpq (PostgreSQL's C client), private to the metadata module: one
// connection, text-format parameters ($1, $2, ...) so values never become SQL, and errors that
// never show the URL's password.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "metadata/change_feed.h"

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
  // Whether the connection is still up (false after the server went away).
  bool Connected() const { return PQstatus(conn_) == CONNECTION_OK; }
  // After LISTEN: waits up to `timeout` for notifications and returns their payloads (none when
  // the time passed); Unavailable once the connection is lost.
  Result<std::vector<std::string>> WaitForNotifications(std::chrono::milliseconds timeout);

 private:
  explicit PgDb(PGconn* conn) : conn_(conn) {}
  Status Error(std::string_view what, const PGresult* r) const;
  PGconn* conn_;
};

// LISTEN `channel` on a connection of its own, on a thread of its own. `on_notes` is called (on
// that thread) with each batch of payloads, and once with an empty batch after a lost connection
// came back (what happened meanwhile was not heard); reconnects with backoff (0.1 s doubling to
// 3 s). The constructor returns once it listens (or after 2 s without a database: it keeps
// trying), so that what is notified after it returns is heard. `channel` is an identifier of
// ours, never user input.
class PgListener final : public ChangeFeed {
 public:
  PgListener(std::string url, std::string channel, std::function<void(const std::vector<std::string>&)> on_notes);
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;
  ~PgListener() override;

 private:
  void Loop();
  Status Listen(bool& lost, int64_t& backoff_ms);

  const std::string url_, channel_;
  const std::function<void(const std::vector<std::string>&)> on_notes_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable listening_cv_;
  bool listening_ = false;  // once, for the constructor
  std::thread thread_;  // last: it starts once the members above exist
};

// Connections to one database, shared by threads: each call borrows an idle connection (or
// opens one) and returns it when done. A statement that fails because the connection dropped
// (a database restart, a network cut) is retried on a fresh connection with backoff (0.1 s,
// doubling, up to `retry_for_ms` in all); other errors are returned at once.
class PgPool {
 public:
  explicit PgPool(std::string url, int64_t retry_for_ms = 30'000) : url_(std::move(url)), retry_for_ms_(retry_for_ms) {}

  // Runs fn(connection). After a lost connection fn runs again, although its first run may have
  // committed (the reply was lost): fn must check for its own earlier effect where that matters.
  template <typename T>
  Result<T> Run(const std::function<Result<T>(PgDb&)>& fn);
  Status RunStatus(const std::function<Status(PgDb&)>& fn);
  // One try, no retry: for what is best effort (NOTIFY).
  Status TryOnce(const std::function<Status(PgDb&)>& fn);

 private:
  Result<std::unique_ptr<PgDb>> Take();
  void Give(std::unique_ptr<PgDb> db);
  void DropIdle();
  // Whether to try again after `st` (sleeping first): a lost connection within retry_for_ms.
  bool Retry(const Status& st, std::chrono::steady_clock::time_point started, int attempt) const;

  std::string url_;
  int64_t retry_for_ms_;
  std::mutex mu_;
  std::vector<std::unique_ptr<PgDb>> idle_;
};

template <typename T>
Result<T> PgPool::Run(const std::function<Result<T>(PgDb&)>& fn) {
  const auto started = std::chrono::steady_clock::now();
  for (int attempt = 0;; ++attempt) {
    auto db = Take();
    if (!db.has_value()) {
      if (Retry(db.error(), started, attempt)) continue;
      return db.error();
    }
    Result<T> out = fn(**db);
    if ((*db)->Connected()) {
      Give(std::move(*db));
    } else {
      DropIdle();  // after a database restart the idle ones are dead too: reconnect at once
    }
    if (!out.has_value() && Retry(out.error(), started, attempt)) continue;
    return out;
  }
}

// Runs body(db) between BEGIN and COMMIT on one connection; ROLLBACK when it fails.
template <typename T>
Result<T> InTransaction(PgDb& db, const std::function<Result<T>(PgDb&)>& body) {
  MLAAS_RETURN_IF_ERROR(db.Exec("BEGIN"));
  Result<T> r = body(db);
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

// `url` with its password (if any) replaced by "***", for logs and messages.
std::string RedactDatabaseUrl(const std::string& url);

}  // namespace mlaas::metadata
