// PostgreSQL implementation of TaskStore (issue 24): connections from a pool shared by
// threads, several processes (API servers and workers on other hosts) on one database. A claim
// is one UPDATE whose subquery takes the oldest queued task FOR UPDATE SKIP LOCKED, so
// concurrent claimers never wait on or take the same row; every other change is one statement
// guarded by the task's state and owner, so a statement retried after a lost connection
// (PgPool) cannot apply twice.
#include <mutex>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/text.h"
#include "common/time_util.h"
#include "metadata/pg_db.h"
#include "metadata/pg_schema.h"
#include "metadata/pg_stores.h"
#include "metadata/task_rows.h"
#include "metadata/task_store.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;

// One row of a result, as ReadTaskRecord reads rows.
struct PgRow {
  const PgResult& r;
  int row;
  std::string Text(int col) const { return r.Text(row, col); }
  bool IsNull(int col) const { return r.IsNull(row, col); }
  int64_t Int(int col) const { return r.Int(row, col); }
};

TaskRecord ReadRecord(const PgResult& r, int row, int64_t* seq = nullptr) { return ReadTaskRecord(PgRow{r, row}, seq); }

std::string Num(int64_t v) { return std::to_string(v); }

// Appends `values` to `params`; the placeholders they take ("$7,$8").
std::string AppendParams(std::vector<PgParam>& params, const std::vector<std::string>& values) {
  std::string in;
  for (const auto& v : values) {
    params.emplace_back(v);
    in += (in.empty() ? "$" : ",$") + std::to_string(params.size());
  }
  return in;
}

// The condition that the task row `row` (a table or its alias) asks no label missing from
// `labels` (appended to `params`).
std::string LabelsMet(std::vector<PgParam>& params, const std::vector<std::string>& labels, const std::string& row) {
  if (labels.empty()) return row + ".req_labels='[]'";
  return "NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(" + row + ".req_labels::jsonb) AS l(v) WHERE l.v NOT IN (" +
         AppendParams(params, labels) + "))";
}

// The payloads of NOTIFY mlaas_tasks: a task became claimable, or a task changed otherwise.
constexpr const char* kQueuedNote = "queued";
constexpr const char* kChangedNote = "changed";

// PostgreSQL's text holds valid UTF-8 without NUL bytes; anything else is escaped (\xNN).
std::string Storable(std::string_view s, size_t max_bytes) {
  s = Utf8Prefix(s, max_bytes);  // whole characters
  if (IsValidUtf8(s) && s.find('\0') == std::string_view::npos) return std::string(s);
  return EscapeForLog(s, max_bytes);
}

class PgTaskStore final : public TaskStore {
 public:
  // `now`: an injected clock (tests), or null for the database's (Now()).
  PgTaskStore(std::string url, std::function<int64_t()> now, std::function<int64_t()> host_clock)
      : url_(url), pool_(std::move(url)), now_(std::move(now)), host_clock_(std::move(host_clock)) {}

  // At start a database that cannot be reached is an error at once (no retries).
  Status Migrate(const std::string& url) {
    MLAAS_ASSIGN_OR_RETURN(PgDb db, PgDb::Connect(url));
    return MigratePg(db);
  }

  std::unique_ptr<ChangeFeed> Subscribe(std::function<void(bool queued)> on_change) override {
    // `queued` when a note says a task became claimable, or after a lost connection came back
    // (no notes: what happened meanwhile was not heard).
    return std::make_unique<PgListener>(url_, "mlaas_tasks",
                                        [on_change = std::move(on_change)](const std::vector<std::string>& notes) {
                                          bool queued = notes.empty();
                                          for (const auto& note : notes) queued = queued || note == kQueuedNote;
                                          on_change(queued);
                                        });
  }

  Result<TaskRecord> Create(const NewTask& task) override {
    if (task.type.empty()) return InvalidArgument("task type must not be empty");
    if (task.max_attempts < 1) return InvalidArgument("max_attempts must be >= 1");
    const int64_t now = Now();
    const std::string id = NewUuid();  // chosen once: a retried insert finds its own row
    Status inserted = pool_.RunStatus([&](PgDb& db) {
      return db.Query("INSERT INTO tasks (id, type, status, params, submitted_ms, updated_ms, max_attempts, "
                      "submitted_by, req_gpus, req_labels, req_workers) VALUES ($1, $2, 'queued', $3, $4, $4, $5, $6, $7, $8, $9)",
                      {id, task.type, DumpJson(task.params), Num(now), Num(task.max_attempts), task.submitted_by,
                       Num(task.requirements.gpus), LabelsJson(task.requirements.labels), Num(task.requirements.workers)})
          .status();
    });
    if (!inserted.ok() && inserted.code() != StatusCode::kAlreadyExists) return inserted;
    Notify(kQueuedNote);
    return Get(id);
  }

  Result<TaskRecord> Get(const std::string& id) override {
    return pool_.Run<TaskRecord>([&](PgDb& db) -> Result<TaskRecord> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE id=$1", {id}));
      if (r.rows() == 0) return NotFound("task " + id + " does not exist");
      return ReadRecord(r, 0);
    });
  }

  Result<TaskPage> List(const TaskQuery& query) override {
    if (query.limit < 1 || query.limit > 1000) return InvalidArgument("limit must be between 1 and 1000", "limit");
    int64_t before = 0;
    if (!query.cursor.empty()) {
      auto decoded = Base64UrlDecode(query.cursor);
      auto parsed = decoded ? ParseInt(*decoded) : std::nullopt;
      if (!parsed || *parsed <= 0) return InvalidArgument("cursor is not a cursor this server issued", "cursor");
      before = *parsed;
    }
    std::string sql = std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE TRUE";
    std::vector<PgParam> params;
    const auto param = [&params](std::string v) {
      params.emplace_back(std::move(v));
      return "$" + std::to_string(params.size());
    };
    if (query.state) sql += " AND status = " + param(std::string(TaskStateName(*query.state)));
    if (!query.type.empty()) sql += " AND type = " + param(query.type);
    if (before > 0) sql += " AND seq < " + param(Num(before));
    if (!query.submitted_by.empty()) sql += " AND submitted_by = " + param(query.submitted_by);
    sql += " ORDER BY seq DESC LIMIT " + param(Num(static_cast<int64_t>(query.limit + 1)));
    return pool_.Run<TaskPage>([&](PgDb& db) -> Result<TaskPage> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(sql, params));
      TaskPage page;
      int64_t last_seq = 0;
      for (int row = 0; row < r.rows(); ++row) {
        if (page.tasks.size() == query.limit) {
          page.next_cursor = Base64UrlEncode(std::to_string(last_seq));
          break;
        }
        page.tasks.push_back(ReadRecord(r, row, &last_seq));
      }
      return page;
    });
  }

  Result<std::optional<TaskRecord>> ClaimNext(const std::string& owner, const std::vector<std::string>& types,
                                              int64_t lease_ms, const WorkerCapabilities& offers) override {
    if (types.empty()) return std::optional<TaskRecord>();
    const int64_t now = Now();
    const std::string token = NewUuid();
    std::vector<PgParam> params = {Num(now), owner, Num(now + lease_ms), token, Num(offers.gpus), Num(offers.workers)};
    const std::string types_in = AppendParams(params, types);
    // A task is this worker's when it needs no more GPUs than it has and none of its labels is
    // missing from the worker's.
    const std::string labels_met = LabelsMet(params, offers.labels, "tasks");
    const std::string sql =
        "UPDATE tasks SET status='running', attempts=attempts+1, started_ms=$1, updated_ms=$1, revision=revision+1, "
        "lease_owner=$2, lease_expires_ms=$3, claim_token=$4 WHERE seq = (SELECT seq FROM tasks WHERE status='queued' "
        "AND cancel_requested=0 AND req_gpus <= $5 AND (req_workers = 1 OR req_workers = $6) AND type IN (" + types_in +
        ") AND " + labels_met +
        " ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) AND status='queued' RETURNING " + kTaskColumns;
    bool retried = false;
    auto claimed = pool_.Run<std::optional<TaskRecord>>([&](PgDb& db) -> Result<std::optional<TaskRecord>> {
      if (std::exchange(retried, true)) {
        // The first try may have committed (its reply lost): that claim is this call's.
        MLAAS_ASSIGN_OR_RETURN(std::optional<TaskRecord> mine, FindClaim(db, token));
        if (mine) return mine;
      }
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(sql, params));
      if (r.rows() == 0) return std::optional<TaskRecord>();
      return std::optional<TaskRecord>(ReadRecord(r, 0));
    });
    if (claimed.has_value() && claimed->has_value()) Notify(kChangedNote);
    return claimed;
  }

  Result<bool> Heartbeat(const std::string& id, const std::string& owner, int64_t lease_ms,
                         const json* progress) override {
    const int64_t now = Now();
    PgParam stored_progress = progress ? PgParam(DumpJson(*progress)) : std::nullopt;
    Result<bool> cancel = pool_.Run<bool>([&](PgDb& db) -> Result<bool> {
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r,
          db.Query("UPDATE tasks SET lease_expires_ms=$1, progress=COALESCE($2, progress), "
                   "updated_ms=CASE WHEN $2::text IS NULL THEN updated_ms ELSE $3::bigint END, "
                   "revision=revision + CASE WHEN $2::text IS NULL THEN 0 ELSE 1 END "
                   "WHERE id=$4 AND status='running' AND lease_owner=$5 RETURNING cancel_requested",
                   {Num(now + lease_ms), stored_progress, Num(now), id, owner}));
      if (r.rows() == 0) return FailedPrecondition("task " + id + " is no longer held by " + owner);
      return r.Int(0, 0) != 0;
    });
    if (cancel.has_value() && progress != nullptr) Notify(kChangedNote);
    return cancel;
  }

  Status Finish(const std::string& id, const std::string& owner, TaskState state, const json& result,
                const json& error) override {
    if (!IsTerminal(state)) return InvalidArgument("Finish needs a terminal state");
    const int64_t now = Now();
    PgParam stored_result = result.is_null() ? std::nullopt : PgParam(DumpJson(result));
    PgParam stored_error = error.is_null() ? std::nullopt : PgParam(DumpJson(error));
    bool retried = false;
    Result<int> changed = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      const bool again = std::exchange(retried, true);
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r, db.Query("UPDATE tasks SET status=$1, result=$2, error=$3, finished_ms=$4, updated_ms=$4, "
                               "lease_owner=NULL, lease_expires_ms=0, revision=revision+1 "
                               "WHERE id=$5 AND status='running' AND lease_owner=$6 RETURNING seq",
                               {std::string(TaskStateName(state)), stored_result, stored_error, Num(now), id, owner}));
      if (r.rows() > 0 || !again) return r.rows();
      // A retry after a lost connection: the first try may have committed.
      MLAAS_ASSIGN_OR_RETURN(PgResult done,
                             db.Query("SELECT 1 FROM tasks WHERE id=$1 AND status=$2 AND finished_ms=$3",
                                      {id, std::string(TaskStateName(state)), Num(now)}));
      return done.rows();
    });
    if (!changed.has_value()) return changed.error();
    if (*changed == 0) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    Notify(kChangedNote);
    return Status::Ok();
  }

  Status Release(const std::string& id, const std::string& owner) override {
    // The claim being released, by its token: a retry after a lost reply must not release a
    // later claim of the same task by another thread of this process (the same owner).
    struct Claim {
      std::string token, type;
    };
    Result<std::optional<Claim>> claim = pool_.Run<std::optional<Claim>>([&](PgDb& db) -> Result<std::optional<Claim>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT claim_token, type FROM tasks WHERE id=$1 AND status='running' "
                                                  "AND lease_owner=$2",
                                                  {id, owner}));
      if (r.rows() == 0) return std::optional<Claim>();
      return std::optional<Claim>(Claim{r.Text(0, 0), r.Text(0, 1)});
    });
    if (!claim.has_value()) return claim.error();
    if (!*claim) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    const std::string& token = (*claim)->token;
    bool retried = false;
    Result<int> changed = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      const bool again = std::exchange(retried, true);
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r, db.Query("UPDATE tasks SET status=CASE WHEN cancel_requested<>0 THEN 'cancelled' ELSE 'queued' END, "
                               "attempts=CASE WHEN cancel_requested<>0 THEN attempts ELSE GREATEST(attempts-1, 0) END, "
                               "error=CASE WHEN cancel_requested<>0 THEN $5 ELSE error END, "
                               "finished_ms=CASE WHEN cancel_requested<>0 THEN $1::bigint ELSE finished_ms END, "
                               "lease_owner=NULL, lease_expires_ms=0, updated_ms=$1, revision=revision+1, claim_token='' "
                               "WHERE id=$2 AND status='running' AND lease_owner=$3 AND claim_token=$4 RETURNING seq",
                               {Num(Now()), id, owner, token, DumpJson(kCancelledWhileStopping)}));
      if (r.rows() > 0 || !again) return r.rows();
      // Released by the first try, or re-claimed since (a new token): either way, done.
      MLAAS_ASSIGN_OR_RETURN(PgResult now, db.Query("SELECT 1 FROM tasks WHERE id=$1 AND claim_token<>$2", {id, token}));
      return now.rows();
    });
    if (!changed.has_value()) return changed.error();
    if (*changed == 0) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    Notify(kQueuedNote);
    return Status::Ok();
  }

  Result<TaskState> Requeue(const std::string& id, const std::string& owner, const json& error) override {
    const int64_t now = Now();
    bool retried = false;
    Result<std::optional<TaskState>> moved =
        pool_.Run<std::optional<TaskState>>([&](PgDb& db) -> Result<std::optional<TaskState>> {
          const bool again = std::exchange(retried, true);
          MLAAS_ASSIGN_OR_RETURN(
              PgResult r,
              db.Query("UPDATE tasks SET status=CASE WHEN cancel_requested<>0 THEN 'cancelled' WHEN attempts >= "
                       "max_attempts THEN 'failed' ELSE 'queued' END, "
                       "error=CASE WHEN cancel_requested<>0 THEN $5 WHEN attempts >= max_attempts THEN $1 ELSE NULL END, "
                       "finished_ms=CASE WHEN cancel_requested<>0 OR attempts >= max_attempts THEN $2::bigint ELSE 0 END, "
                       "lease_owner=NULL, lease_expires_ms=0, updated_ms=$2, revision=revision+1, claim_token='' "
                       "WHERE id=$3 AND status='running' AND lease_owner=$4 RETURNING status",
                       {DumpJson(error), Num(now), id, owner, DumpJson(kCancelledWhileStopping)}));
          if (r.rows() > 0) return std::optional<TaskState>(ParseTaskState(r.Text(0, 0)).value_or(TaskState::kFailed));
          if (!again) return std::optional<TaskState>();
          // The first try may have committed (its reply lost): the task's state now says how.
          MLAAS_ASSIGN_OR_RETURN(PgResult now_state, db.Query("SELECT status FROM tasks WHERE id=$1", {id}));
          if (now_state.rows() == 0) return std::optional<TaskState>();
          return std::optional<TaskState>(ParseTaskState(now_state.Text(0, 0)).value_or(TaskState::kFailed));
        });
    if (!moved.has_value()) return moved.error();
    if (!*moved) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    Notify(**moved == TaskState::kQueued ? kQueuedNote : kChangedNote);
    return **moved;
  }

  Result<TaskRecord> RequestCancel(const std::string& id) override {
    const int64_t now = Now();
    const json err = {{"code", "cancelled"}, {"message", "cancelled before it started"}};
    // Both updates are guarded by the current status: a task claimed in between takes the
    // running branch.
    bool retried = false;
    Result<int> changed = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      const bool again = std::exchange(retried, true);
      MLAAS_ASSIGN_OR_RETURN(
          PgResult queued, db.Query("UPDATE tasks SET status='cancelled', cancel_requested=1, finished_ms=$1, "
                                    "updated_ms=$1, error=$2, revision=revision+1 WHERE id=$3 AND status='queued' "
                                    "RETURNING seq",
                                    {Num(now), DumpJson(err), id}));
      if (queued.rows() > 0) return 1;
      MLAAS_ASSIGN_OR_RETURN(
          PgResult running, db.Query("UPDATE tasks SET cancel_requested=1, updated_ms=$1, revision=revision+1 "
                                     "WHERE id=$2 AND status='running' RETURNING seq",
                                     {Num(now), id}));
      if (running.rows() > 0 || !again) return running.rows();
      // A retry after a lost connection: the first try may have cancelled the queued task.
      MLAAS_ASSIGN_OR_RETURN(PgResult done, db.Query("SELECT 1 FROM tasks WHERE id=$1 AND status='cancelled' AND "
                                                     "finished_ms=$2",
                                                     {id, Num(now)}));
      return done.rows();
    });
    if (!changed.has_value()) return changed.error();
    if (*changed > 0) Notify(kChangedNote);
    MLAAS_ASSIGN_OR_RETURN(TaskRecord r, Get(id));
    if (*changed == 0)
      return FailedPrecondition("task " + id + " has already " + std::string(TaskStateName(r.state)) +
                                " and cannot be cancelled");
    return r;
  }

  Result<int> RecoverAbandoned(const std::function<bool(const std::string& owner)>& owner_is_dead) override {
    MLAAS_ASSIGN_OR_RETURN(std::vector<TaskRecord> running,
                           pool_.Run<std::vector<TaskRecord>>([&](PgDb& db) -> Result<std::vector<TaskRecord>> {
                             MLAAS_ASSIGN_OR_RETURN(
                                 PgResult r, db.Query(std::string("SELECT ") + kTaskColumns +
                                                      " FROM tasks WHERE status='running' ORDER BY seq"));
                             std::vector<TaskRecord> out;
                             for (int row = 0; row < r.rows(); ++row) out.push_back(ReadRecord(r, row));
                             return out;
                           }));
    int recovered = 0;
    const int64_t now = Now();
    for (const auto& t : running) {
      const bool expired = t.lease_expires_ms < now;
      if (!expired && !owner_is_dead(t.lease_owner)) continue;
      const Recovery recovery = RecoveryFor(t, expired);
      const TaskState next = recovery.next;
      const json& error = recovery.error;
      PgParam stored_error = error.is_null() ? std::nullopt : PgParam(DumpJson(error));
      // Guarded by the owner and the lease seen above: a renewed or finished task is left alone.
      MLAAS_ASSIGN_OR_RETURN(
          int changed, pool_.Run<int>([&](PgDb& db) -> Result<int> {
            MLAAS_ASSIGN_OR_RETURN(
                PgResult r,
                db.Query("UPDATE tasks SET status=$1::text, error=$2, lease_owner=NULL, lease_expires_ms=0, "
                         "updated_ms=$3::bigint, revision=revision+1, "
                         "finished_ms=CASE WHEN $1::text='queued' THEN 0 ELSE $3::bigint END "
                         "WHERE id=$4 AND status='running' AND lease_owner=$5 AND lease_expires_ms=$6 RETURNING seq",
                         {std::string(TaskStateName(next)), stored_error, Num(now), t.id, t.lease_owner,
                          Num(t.lease_expires_ms)}));
            return r.rows();
          }));
      if (changed == 0) continue;
      ++recovered;
      Notify(next == TaskState::kQueued ? kQueuedNote : kChangedNote);
      MLAAS_RETURN_IF_ERROR(AppendLog(t.id, "warn", recovery.log));
    }
    return recovered;
  }

  Status AppendLog(const std::string& id, std::string_view level, std::string_view message) override {
    const std::string msg = Storable(message, kMaxLogMessageBytes), lvl = Storable(level, 32);
    const int64_t now = Now();
    // Two lines appended at once may pick the same seq: the loser (a unique violation) tries again.
    int runs = 0;
    for (int attempt = 0;; ++attempt) {
      Status st = pool_.RunStatus([&](PgDb& db) -> Status {
        if (runs++ > 0) {
          // An earlier run may have committed the line before its connection was lost (the reply
          // with it): the line is not written twice.
          auto written = db.Query("SELECT 1 FROM task_logs WHERE task_id=$1 AND time_ms=$2 AND level=$3 AND message=$4 "
                                  "LIMIT 1",
                                  {id, Num(now), lvl, msg});
          if (!written.has_value()) return written.error();
          if (written->rows() > 0) return Status::Ok();
        }
        return db.Query("INSERT INTO task_logs (task_id, seq, time_ms, level, message) "
                        "SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM task_logs WHERE task_id=$1",
                        {id, Num(now), lvl, msg})
            .status();
      });
      if (st.code() == StatusCode::kAlreadyExists && attempt < 20) continue;
      if (st.code() == StatusCode::kNotFound) return NotFound("task " + id + " does not exist");
      return st;
    }
  }

  Result<std::vector<TaskLogEntry>> Logs(const std::string& id, int64_t after_seq, size_t limit) override {
    MLAAS_RETURN_IF_ERROR(Get(id).status());
    return pool_.Run<std::vector<TaskLogEntry>>([&](PgDb& db) -> Result<std::vector<TaskLogEntry>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT seq, time_ms, level, message FROM task_logs WHERE "
                                                  "task_id=$1 AND seq>$2 ORDER BY seq LIMIT $3",
                                                  {id, Num(after_seq), Num(static_cast<int64_t>(limit))}));
      std::vector<TaskLogEntry> out;
      for (int row = 0; row < r.rows(); ++row)
        out.push_back({r.Int(row, 0), r.Int(row, 1), r.Text(row, 2), r.Text(row, 3)});
      return out;
    });
  }

  Result<std::optional<GroupSeat>> JoinGroup(const std::string& owner, const std::vector<std::string>& types,
                                             int64_t lease_ms, const WorkerCapabilities& offers,
                                             const std::vector<std::string>& skip) override {
    if (types.empty()) return std::optional<GroupSeat>();
    const int64_t now = Now();
    const std::string seat_id = NewUuid();  // chosen once: a retry finds its own seat
    std::vector<PgParam> params = {Num(offers.gpus)};
    const std::string types_in = AppendParams(params, types);
    const std::string labels_met = LabelsMet(params, offers.labels, "t");
    const std::string skipped = skip.empty() ? "" : " AND t.id NOT IN (" + AppendParams(params, skip) + ")";
    const std::string pick =
        "SELECT t.id, t.req_workers FROM tasks t WHERE t.status='queued' AND t.cancel_requested=0 AND "
        "t.req_workers > 1 AND t.req_gpus <= $1 AND t.type IN (" + types_in + ") AND " + labels_met + skipped +
        " AND (SELECT COUNT(*) FROM task_seats s WHERE s.task_id=t.id AND s.attempt=0) < t.req_workers "
        "ORDER BY t.seq LIMIT 1";
    bool retried = false;
    Result<std::optional<GroupSeat>> joined =
        pool_.Run<std::optional<GroupSeat>>([&](PgDb& db) -> Result<std::optional<GroupSeat>> {
          if (std::exchange(retried, true)) {
            MLAAS_ASSIGN_OR_RETURN(PgResult mine, db.Query("SELECT task_id, seat_rank, world FROM task_seats WHERE id=$1",
                                                           {seat_id}));
            if (mine.rows() > 0)
              return std::optional<GroupSeat>(GroupSeat{.id = seat_id, .task_id = mine.Text(0, 0),
                                                        .rank = static_cast<int>(mine.Int(0, 1)),
                                                        .world = static_cast<int>(mine.Int(0, 2)), .attempt = 0});
          }
          return InTransaction<std::optional<GroupSeat>>(db, [&](PgDb& tx) -> Result<std::optional<GroupSeat>> {
            MLAAS_RETURN_IF_ERROR(tx.Query("DELETE FROM task_seats WHERE expires_ms < $1", {Num(now)}).status());
            MLAAS_ASSIGN_OR_RETURN(PgResult r, tx.Query(pick, params));
            if (r.rows() == 0) return std::optional<GroupSeat>();
            GroupSeat seat{.id = seat_id, .task_id = r.Text(0, 0), .rank = 0, .world = static_cast<int>(r.Int(0, 1)),
                           .attempt = 0};
            MLAAS_ASSIGN_OR_RETURN(PgResult ranks, tx.Query("SELECT seat_rank FROM task_seats WHERE task_id=$1 AND "
                                                            "attempt=0 ORDER BY seat_rank",
                                                            {seat.task_id}));
            std::set<int64_t> taken;
            for (int row = 0; row < ranks.rows(); ++row) taken.insert(ranks.Int(row, 0));
            // The free ranks, lowest first. Another worker may take the same rank at the same
            // moment: the unique key lets one in, and the other tries the next.
            for (; seat.rank < seat.world; ++seat.rank) {
              if (taken.count(seat.rank) > 0) continue;
              MLAAS_ASSIGN_OR_RETURN(
                  PgResult in,
                  tx.Query("INSERT INTO task_seats (id, task_id, attempt, seat_rank, world, owner, expires_ms) "
                           "VALUES ($1, $2, 0, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
                           {seat_id, seat.task_id, Num(seat.rank), Num(seat.world), owner, Num(now + lease_ms)}));
              if (in.rows() > 0) return std::optional<GroupSeat>(seat);
            }
            return std::optional<GroupSeat>();
          });
        });
    return joined;
  }

  Result<GroupState> RenewSeat(const std::string& seat_id, const std::string& owner, int64_t lease_ms) override {
    const int64_t now = Now();
    return pool_.Run<GroupState>([&](PgDb& db) -> Result<GroupState> {
      MLAAS_ASSIGN_OR_RETURN(PgResult seat, db.Query("UPDATE task_seats SET expires_ms=$1 WHERE id=$2 AND owner=$3 AND "
                                                     "expires_ms >= $4 RETURNING task_id, attempt",
                                                     {Num(now + lease_ms), seat_id, owner, Num(now)}));
      if (seat.rows() == 0) return FailedPrecondition("seat " + seat_id + " is gone");
      GroupState g;
      const std::string task_id = seat.Text(0, 0);
      g.attempt = static_cast<int>(seat.Int(0, 1));
      // A statement of its own, with a snapshot taken after the renewal: what a claim that the
      // renewal waited for committed (the task running, the seats stamped) shows together.
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r,
          db.Query("SELECT t.status, t.cancel_requested, "
                   "(SELECT COUNT(*) FROM task_seats s WHERE s.task_id=t.id AND s.attempt=0 AND s.expires_ms >= $2), "
                   "(SELECT address FROM task_seats s WHERE s.task_id=t.id AND s.attempt=$3 AND s.seat_rank=0 AND $3 > 0 "
                   "AND EXISTS (SELECT 1 FROM task_seats m WHERE m.id=$4 AND m.attempt=$3)), "
                   "(SELECT COUNT(*) FROM task_seats s WHERE s.task_id=t.id AND s.attempt=$3 AND s.expires_ms >= $2) "
                   "FROM tasks t WHERE t.id=$1",
                   {task_id, Num(now), Num(g.attempt), seat_id}));
      if (r.rows() == 0) return FailedPrecondition("the task of seat " + seat_id + " is gone");
      g.state = ParseTaskState(r.Text(0, 0)).value_or(TaskState::kFailed);
      g.cancel_requested = r.Int(0, 1) != 0;
      g.seated = static_cast<int>(r.Int(0, 2));
      if (!r.IsNull(0, 3)) g.address = r.Text(0, 3);
      if (g.attempt > 0) g.members = static_cast<int>(r.Int(0, 4));
      return g;
    });
  }

  Result<std::optional<TaskRecord>> ClaimGathered(const GroupSeat& seat, const std::string& owner,
                                                  int64_t lease_ms) override {
    if (seat.rank != 0) return InvalidArgument("only rank 0 claims its group's task");
    const int64_t now = Now();
    const std::string token = NewUuid();
    bool retried = false;
    auto claimed = pool_.Run<std::optional<TaskRecord>>([&](PgDb& db) -> Result<std::optional<TaskRecord>> {
      if (std::exchange(retried, true)) {
        MLAAS_ASSIGN_OR_RETURN(std::optional<TaskRecord> mine, FindClaim(db, token));
        if (mine) return mine;
      }
      return InTransaction<std::optional<TaskRecord>>(db, [&](PgDb& tx) -> Result<std::optional<TaskRecord>> {
        // The seats first (FOR UPDATE): one that leaves or expires meanwhile waits for this claim.
        MLAAS_ASSIGN_OR_RETURN(PgResult seats, tx.Query("SELECT id FROM task_seats WHERE task_id=$1 AND attempt=0 AND "
                                                        "expires_ms >= $2 FOR UPDATE",
                                                        {seat.task_id, Num(now)}));
        (void)seats;
        MLAAS_ASSIGN_OR_RETURN(
            PgResult r,
            tx.Query(std::string("UPDATE tasks SET status='running', attempts=attempts+1, started_ms=$1, updated_ms=$1, "
                                 "revision=revision+1, lease_owner=$2, lease_expires_ms=$3, claim_token=$4 "
                                 "WHERE id=$5 AND status='queued' AND cancel_requested=0 AND "
                                 "(SELECT COUNT(*) FROM task_seats s WHERE s.task_id=$5 AND s.attempt=0 AND "
                                 "s.expires_ms >= $1) = req_workers AND EXISTS (SELECT 1 FROM task_seats s WHERE "
                                 "s.id=$6 AND s.owner=$2 AND s.attempt=0 AND s.seat_rank=0 AND s.expires_ms >= $1) "
                                 "RETURNING ") +
                         kTaskColumns,
                     {Num(now), owner, Num(now + lease_ms), token, seat.task_id, seat.id}));
        if (r.rows() == 0) return std::optional<TaskRecord>();
        TaskRecord record = ReadRecord(r, 0);
        // What earlier groups of the task left (an attempt handed back reuses its number).
        MLAAS_RETURN_IF_ERROR(
            tx.Query("DELETE FROM task_seats WHERE task_id=$1 AND attempt<>0", {seat.task_id}).status());
        MLAAS_RETURN_IF_ERROR(tx.Query("UPDATE task_seats SET attempt=$1 WHERE task_id=$2 AND attempt=0",
                                       {Num(record.attempts), seat.task_id})
                                  .status());
        return std::optional<TaskRecord>(std::move(record));
      });
    });
    if (claimed.has_value() && claimed->has_value()) Notify(kChangedNote);
    return claimed;
  }

  Status SetGroupAddress(const std::string& seat_id, const std::string& owner, const std::string& address) override {
    Result<int> changed = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("UPDATE task_seats SET address=$1 WHERE id=$2 AND owner=$3 RETURNING id",
                                                  {address, seat_id, owner}));
      return r.rows();
    });
    if (!changed.has_value()) return changed.error();
    if (*changed == 0) return FailedPrecondition("seat " + seat_id + " is gone");
    return Status::Ok();
  }

  Result<bool> LeaveGroup(const std::string& seat_id, const std::string& owner, bool only_while_gathering) override {
    return pool_.Run<bool>([&](PgDb& db) -> Result<bool> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(std::string("DELETE FROM task_seats WHERE id=$1 AND owner=$2") +
                                                      (only_while_gathering ? " AND attempt=0" : "") + " RETURNING id",
                                                  {seat_id, owner}));
      return r.rows() > 0;
    });
  }

  Result<std::map<TaskState, int64_t>> CountByState() override {
    return pool_.Run<std::map<TaskState, int64_t>>([&](PgDb& db) -> Result<std::map<TaskState, int64_t>> {
      std::map<TaskState, int64_t> out;
      for (TaskState s : kAllTaskStates) out[s] = 0;
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT status, COUNT(*) FROM tasks GROUP BY status"));
      for (int row = 0; row < r.rows(); ++row)
        if (auto s = ParseTaskState(r.Text(row, 0))) out[*s] = r.Int(row, 1);
      return out;
    });
  }

  Result<int64_t> Count(TaskState state) override {
    return pool_.Run<int64_t>([&](PgDb& db) -> Result<int64_t> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT COUNT(*) FROM tasks WHERE status=$1",
                                                  {std::string(TaskStateName(state))}));
      return r.Int(0, 0);
    });
  }

  Result<int64_t> DeleteFinishedBefore(int64_t cutoff_ms) override {
    return pool_.Run<int64_t>([&](PgDb& db) -> Result<int64_t> {
      // Logs go with their task (ON DELETE CASCADE).
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("DELETE FROM tasks WHERE status IN ('succeeded', 'failed', "
                                                  "'cancelled') AND finished_ms < $1 RETURNING seq",
                                                  {Num(cutoff_ms)}));
      return static_cast<int64_t>(r.rows());
    });
  }

  Status Ping() override {
    return pool_.RunStatus([](PgDb& db) { return db.Query("SELECT 1").status(); });
  }

 private:
  // Tells listeners (Subscribe) of a change; best effort, one try (they also poll).
  void Notify(const char* what) {
    Status st = pool_.TryOnce([&](PgDb& db) { return db.Query("SELECT pg_notify('mlaas_tasks', $1)", {what}).status(); });
    if (!st.ok()) spdlog::warn("NOTIFY mlaas_tasks failed: {}", st.ToString());
  }

  // The time leases and timestamps use: the injected clock, or the database server's, as this
  // host's clock plus its offset from the server's (one query every 30 s; the last offset is
  // kept while the server cannot be reached).
  // The running task a claim with `token` took, if it committed (a retry after a lost reply).
  static Result<std::optional<TaskRecord>> FindClaim(PgDb& db, const std::string& token) {
    MLAAS_ASSIGN_OR_RETURN(PgResult mine, db.Query(std::string("SELECT ") + kTaskColumns +
                                                       " FROM tasks WHERE claim_token=$1 AND status='running'",
                                                   {token}));
    if (mine.rows() == 0) return std::optional<TaskRecord>();
    return std::optional<TaskRecord>(ReadRecord(mine, 0));
  }

  int64_t Now() {
    if (now_) return now_();
    const int64_t host = host_clock_();
    std::lock_guard lock(clock_mu_);
    if (clock_sampled_ms_ == 0 || host - clock_sampled_ms_ > 30'000 || host < clock_sampled_ms_) {
      clock_sampled_ms_ = host;
      (void)pool_.TryOnce([&](PgDb& db) -> Status {
        const int64_t before = host_clock_();
        MLAAS_ASSIGN_OR_RETURN(PgResult r,
                               db.Query("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint"));
        const int64_t after = host_clock_();
        clock_offset_ms_ = r.Int(0, 0) - (before + after) / 2;
        return Status::Ok();
      });
    }
    return host + clock_offset_ms_;
  }

  std::string url_;
  PgPool pool_;
  std::function<int64_t()> now_;
  std::function<int64_t()> host_clock_;
  std::mutex clock_mu_;
  int64_t clock_sampled_ms_ = 0;
  int64_t clock_offset_ms_ = 0;
};

}  // namespace

bool IsPostgresUrl(const std::string& url) {
  return StartsWith(url, "postgres://") || StartsWith(url, "postgresql://");
}

Result<std::unique_ptr<TaskStore>> OpenPgTaskStore(const StoreOptions& options) {
  auto host_clock = options.host_clock_ms ? options.host_clock_ms : std::function<int64_t()>(NowMs);
  auto store = std::make_unique<PgTaskStore>(options.url, options.now_ms, std::move(host_clock));
  MLAAS_RETURN_IF_ERROR(store->Migrate(options.url));
  return std::unique_ptr<TaskStore>(std::move(store));
}

}  // namespace mlaas::metadata
