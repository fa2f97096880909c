// SQLite implementation of TaskStore: one connection guarded by a mutex (SQLite serialises
// writers anyway), WAL journal so readers never block the writer, and single-statement
// UPDATE ... RETURNING for claims so that several processes can share the file safely.
#include <mutex>

#include "common/text.h"
#include "common/time_util.h"
#include "metadata/pg_stores.h"
#include "metadata/sqlite_db.h"
#include "metadata/sqlite_schema.h"
#include "metadata/task_rows.h"
#include "metadata/task_store.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;

TaskRecord ReadRecord(const SqliteStatement& s, int64_t* seq = nullptr) { return ReadTaskRecord(s, seq); }

// "?,?,?": `n` positional parameters.
std::string Placeholders(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i ? ",?" : "?";
  return out;
}

// The condition that the task row `row` (a table or its alias) asks no label missing from the
// `n` labels bound after the statement's other parameters.
std::string LabelsMet(size_t n, const std::string& row) {
  if (n == 0) return row + ".req_labels='[]'";
  return "NOT EXISTS (SELECT 1 FROM json_each(" + row + ".req_labels) WHERE value NOT IN (" + Placeholders(n) + "))";
}


class SqliteTaskStore final : public TaskStore {
 public:
  SqliteTaskStore(SqliteDb db, std::function<int64_t()> now)
      : db_(std::move(db)), now_(std::move(now)) {}

  Status Migrate() {
    std::lock_guard lock(mu_);
    return MigrateSqlite(db_);
  }

  Result<TaskRecord> Create(const NewTask& task) override {
    if (task.type.empty()) return InvalidArgument("task type must not be empty");
    if (task.max_attempts < 1) return InvalidArgument("max_attempts must be >= 1");
    std::lock_guard lock(mu_);
    int64_t now = now_();
    std::string id = NewUuid();
    MLAAS_ASSIGN_OR_RETURN(
        auto ins, db_.Prepare("INSERT INTO tasks (id, type, status, params, submitted_ms, updated_ms, max_attempts, "
                              "submitted_by, req_gpus, req_labels, req_workers) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)"));
    ins.Bind(1, id).Bind(2, task.type).Bind(3, DumpJson(task.params)).Bind(4, now).Bind(5, now);
    ins.Bind(6, static_cast<int64_t>(task.max_attempts)).Bind(7, task.submitted_by);
    ins.Bind(8, static_cast<int64_t>(task.requirements.gpus)).Bind(9, LabelsJson(task.requirements.labels));
    ins.Bind(10, static_cast<int64_t>(task.requirements.workers));
    MLAAS_RETURN_IF_ERROR(ins.Run());
    return GetLocked(id);
  }

  Result<TaskRecord> Get(const std::string& id) override {
    std::lock_guard lock(mu_);
    return GetLocked(id);
  }

  Result<TaskPage> List(const TaskQuery& query) override {
    if (query.limit < 1 || query.limit > 1000) {
      return InvalidArgument("limit must be between 1 and 1000", "limit");
    }
    int64_t before = 0;
    if (!query.cursor.empty()) {
      auto decoded = Base64UrlDecode(query.cursor);
      auto parsed = decoded ? ParseInt(*decoded) : std::nullopt;
      if (!parsed || *parsed <= 0) {
        return InvalidArgument("cursor is not a cursor this server issued", "cursor");
      }
      before = *parsed;
    }
    std::lock_guard lock(mu_);
    std::string sql = std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE 1=1";
    if (query.state) sql += " AND status = ?1";
    if (!query.type.empty()) sql += " AND type = ?2";
    if (before > 0) sql += " AND seq < ?3";
    if (!query.submitted_by.empty()) sql += " AND submitted_by = ?5";
    sql += " ORDER BY seq DESC LIMIT ?4";
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(sql));
    if (query.state) q.Bind(1, TaskStateName(*query.state));
    if (!query.type.empty()) q.Bind(2, query.type);
    if (!query.submitted_by.empty()) q.Bind(5, query.submitted_by);
    if (before > 0) q.Bind(3, before);
    q.Bind(4, static_cast<int64_t>(query.limit + 1));
    TaskPage page;
    int64_t last_seq = 0;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (page.tasks.size() == query.limit) {
        page.next_cursor = Base64UrlEncode(std::to_string(last_seq));
        break;
      }
      page.tasks.push_back(ReadRecord(q, &last_seq));
    }
    return page;
  }

  Result<std::optional<TaskRecord>> ClaimNext(const std::string& owner,
                                              const std::vector<std::string>& types,
                                              int64_t lease_ms, const WorkerCapabilities& offers) override {
    if (types.empty()) return std::optional<TaskRecord>();
    std::lock_guard lock(mu_);
    int64_t now = now_();
    // A task is this worker's when it needs no more GPUs than it has and none of its labels is
    // missing from the worker's.
    const std::string labels_met = LabelsMet(offers.labels.size(), "tasks");
    std::string sql =
        "UPDATE tasks SET status='running', attempts=attempts+1, started_ms=?1, updated_ms=?1, "
        "revision=revision+1, "
        "lease_owner=?2, lease_expires_ms=?3 WHERE seq = (SELECT seq FROM tasks WHERE "
        "status='queued' AND cancel_requested=0 AND req_gpus <= ?4 AND (req_workers = 1 OR req_workers = ?5) AND type IN (" +
        Placeholders(types.size()) + ") AND " + labels_met + " ORDER BY seq LIMIT 1) AND status='queued' RETURNING " +
        kTaskColumns;
    // Positional parameters for the IN lists come after the five numbered ones.
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(sql));
    q.Bind(1, now).Bind(2, owner).Bind(3, now + lease_ms).Bind(4, static_cast<int64_t>(offers.gpus));
    q.Bind(5, static_cast<int64_t>(offers.workers));
    int at = 6;
    for (const auto& t : types) q.Bind(at++, t);
    for (const auto& l : offers.labels) q.Bind(at++, l);
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return std::optional<TaskRecord>();
    TaskRecord r = ReadRecord(q);
    MLAAS_RETURN_IF_ERROR(q.Run());
    return std::optional<TaskRecord>(std::move(r));
  }

  Result<bool> Heartbeat(const std::string& id, const std::string& owner, int64_t lease_ms,
                         const json* progress) override {
    std::lock_guard lock(mu_);
    int64_t now = now_();
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("UPDATE tasks SET lease_expires_ms=?1, "
                            "progress=COALESCE(?2, progress), "
                            "updated_ms=CASE WHEN ?2 IS NULL THEN updated_ms ELSE ?3 END, "
                            "revision=revision+(?2 IS NOT NULL) "
                            "WHERE id=?4 AND status='running' AND lease_owner=?5 "
                            "RETURNING cancel_requested"));
    q.Bind(1, now + lease_ms).Bind(3, now).Bind(4, id).Bind(5, owner);
    if (progress) {
      q.Bind(2, DumpJson(*progress));
    } else {
      q.BindNull(2);
    }
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    bool cancel = q.Int(0) != 0;
    MLAAS_RETURN_IF_ERROR(q.Run());
    return cancel;
  }

  Status Finish(const std::string& id, const std::string& owner, TaskState state,
                const json& result, const json& error) override {
    if (!IsTerminal(state)) return InvalidArgument("Finish needs a terminal state");
    std::lock_guard lock(mu_);
    int64_t now = now_();
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("UPDATE tasks SET status=?1, result=?2, error=?3, finished_ms=?4, "
                            "updated_ms=?4, lease_owner=NULL, lease_expires_ms=0, revision=revision+1 "
                            "WHERE id=?5 AND status='running' AND lease_owner=?6"));
    q.Bind(1, TaskStateName(state)).Bind(4, now).Bind(5, id).Bind(6, owner);
    if (result.is_null()) q.BindNull(2); else q.Bind(2, DumpJson(result));
    if (error.is_null()) q.BindNull(3); else q.Bind(3, DumpJson(error));
    MLAAS_RETURN_IF_ERROR(q.Run());
    if (db_.Changes() == 0) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    return Status::Ok();
  }

  Result<TaskState> Requeue(const std::string& id, const std::string& owner, const json& error) override {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("UPDATE tasks SET status=CASE WHEN cancel_requested<>0 THEN 'cancelled' WHEN attempts >= "
                            "max_attempts THEN 'failed' ELSE 'queued' END, "
                            "error=CASE WHEN cancel_requested<>0 THEN ?5 WHEN attempts >= max_attempts THEN ?1 ELSE NULL END, "
                            "finished_ms=CASE WHEN cancel_requested<>0 OR attempts >= max_attempts THEN ?2 ELSE 0 END, "
                            "lease_owner=NULL, lease_expires_ms=0, updated_ms=?2, revision=revision+1 "
                            "WHERE id=?3 AND status='running' AND lease_owner=?4 RETURNING status"));
    q.Bind(1, DumpJson(error)).Bind(2, now).Bind(3, id).Bind(4, owner).Bind(5, DumpJson(kCancelledWhileStopping));
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    const TaskState state = ParseTaskState(q.Text(0)).value_or(TaskState::kFailed);
    MLAAS_RETURN_IF_ERROR(q.Run());
    return state;
  }

  Status Release(const std::string& id, const std::string& owner) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("UPDATE tasks SET status=CASE WHEN cancel_requested<>0 THEN 'cancelled' ELSE 'queued' END, "
                            "attempts=CASE WHEN cancel_requested<>0 THEN attempts ELSE MAX(attempts-1, 0) END, "
                            "error=CASE WHEN cancel_requested<>0 THEN ?4 ELSE error END, "
                            "finished_ms=CASE WHEN cancel_requested<>0 THEN ?1 ELSE finished_ms END, "
                            "lease_owner=NULL, lease_expires_ms=0, updated_ms=?1, "
                            "revision=revision+1 "
                            "WHERE id=?2 AND status='running' AND lease_owner=?3"));
    q.Bind(1, now_()).Bind(2, id).Bind(3, owner).Bind(4, DumpJson(kCancelledWhileStopping));
    MLAAS_RETURN_IF_ERROR(q.Run());
    if (db_.Changes() == 0) return FailedPrecondition("task " + id + " is no longer held by " + owner);
    return Status::Ok();
  }

  Result<TaskRecord> RequestCancel(const std::string& id) override {
    std::lock_guard lock(mu_);
    int64_t now = now_();
    // Both updates are guarded by the current status, so no transaction is needed: a task
    // claimed in between simply takes the running branch.
    MLAAS_ASSIGN_OR_RETURN(
        auto queued, db_.Prepare("UPDATE tasks SET status='cancelled', cancel_requested=1, "
                                 "finished_ms=?1, updated_ms=?1, error=?2, revision=revision+1 "
                                 "WHERE id=?3 AND status='queued'"));
    json err = {{"code", "cancelled"}, {"message", "cancelled before it started"}};
    queued.Bind(1, now).Bind(2, DumpJson(err)).Bind(3, id);
    MLAAS_RETURN_IF_ERROR(queued.Run());
    if (db_.Changes() == 0) {
      MLAAS_ASSIGN_OR_RETURN(
          auto running, db_.Prepare("UPDATE tasks SET cancel_requested=1, updated_ms=?1, "
                                    "revision=revision+1 "
                                    "WHERE id=?2 AND status='running'"));
      running.Bind(1, now).Bind(2, id);
      MLAAS_RETURN_IF_ERROR(running.Run());
      if (db_.Changes() == 0) {
        MLAAS_ASSIGN_OR_RETURN(TaskRecord r, GetLocked(id));
        return FailedPrecondition("task " + id + " has already " +
                                  std::string(TaskStateName(r.state)) + " and cannot be cancelled");
      }
    }
    return GetLocked(id);
  }

  Result<int> RecoverAbandoned(
      const std::function<bool(const std::string& owner)>& owner_is_dead) override {
    std::vector<TaskRecord> running;
    {
      std::lock_guard lock(mu_);
      MLAAS_ASSIGN_OR_RETURN(
          auto q, db_.Prepare(std::string("SELECT ") + kTaskColumns +
                              " FROM tasks WHERE status='running' ORDER BY seq"));
      for (;;) {
        MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        running.push_back(ReadRecord(q));
      }
    }
    int recovered = 0;
    int64_t now = now_();
    for (const auto& t : running) {
      bool expired = t.lease_expires_ms < now;
      if (!expired && !owner_is_dead(t.lease_owner)) continue;
      std::lock_guard lock(mu_);
      const Recovery recovery = RecoveryFor(t, expired);
      const TaskState next = recovery.next;
      const json& error = recovery.error;
      MLAAS_ASSIGN_OR_RETURN(
          auto u, db_.Prepare("UPDATE tasks SET status=?1, error=?2, lease_owner=NULL, "
                              "lease_expires_ms=0, updated_ms=?3, revision=revision+1, "
                              "finished_ms=CASE WHEN ?1='queued' THEN 0 ELSE ?3 END "
                              "WHERE id=?4 AND status='running' AND lease_owner=?5"));
      u.Bind(1, TaskStateName(next)).Bind(3, now).Bind(4, t.id).Bind(5, t.lease_owner);
      if (error.is_null()) u.BindNull(2); else u.Bind(2, DumpJson(error));
      MLAAS_RETURN_IF_ERROR(u.Run());
      if (db_.Changes() == 0) continue;  // finished or renewed meanwhile
      ++recovered;
      MLAAS_RETURN_IF_ERROR(AppendLogLocked(t.id, "warn", recovery.log));
    }
    return recovered;
  }

  Status AppendLog(const std::string& id, std::string_view level,
                   std::string_view message) override {
    std::lock_guard lock(mu_);
    return AppendLogLocked(id, level, message);
  }

  Result<std::vector<TaskLogEntry>> Logs(const std::string& id, int64_t after_seq,
                                         size_t limit) override {
    std::lock_guard lock(mu_);
    MLAAS_RETURN_IF_ERROR(GetLocked(id).status());
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("SELECT seq, time_ms, level, message FROM task_logs WHERE "
                            "task_id=?1 AND seq>?2 ORDER BY seq LIMIT ?3"));
    q.Bind(1, id).Bind(2, after_seq).Bind(3, static_cast<int64_t>(limit));
    std::vector<TaskLogEntry> out;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      out.push_back({q.Int(0), q.Int(1), q.Text(2), q.Text(3)});
    }
    return out;
  }

  Result<std::optional<GroupSeat>> JoinGroup(const std::string& owner, const std::vector<std::string>& types,
                                             int64_t lease_ms, const WorkerCapabilities& offers,
                                             const std::vector<std::string>& skip) override {
    if (types.empty()) return std::optional<GroupSeat>();
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    return InTransaction<std::optional<GroupSeat>>(db_, [&]() -> Result<std::optional<GroupSeat>> {
      MLAAS_ASSIGN_OR_RETURN(auto expired, db_.Prepare("DELETE FROM task_seats WHERE expires_ms < ?1"));
      expired.Bind(1, now);
      MLAAS_RETURN_IF_ERROR(expired.Run());
      const std::string labels_met = LabelsMet(offers.labels.size(), "t");
      MLAAS_ASSIGN_OR_RETURN(
          auto pick, db_.Prepare("SELECT t.id, t.req_workers FROM tasks t WHERE t.status='queued' AND "
                                 "t.cancel_requested=0 AND t.req_workers > 1 AND t.req_gpus <= ?1 AND t.type IN (" +
                                 Placeholders(types.size()) + ") AND " + labels_met +
                                 (skip.empty() ? "" : " AND t.id NOT IN (" + Placeholders(skip.size()) + ")") +
                                 " AND (SELECT COUNT(*) FROM task_seats s WHERE s.task_id=t.id AND s.attempt=0) < "
                                 "t.req_workers ORDER BY t.seq LIMIT 1"));
      pick.Bind(1, static_cast<int64_t>(offers.gpus));
      int at = 2;
      for (const auto& t : types) pick.Bind(at++, t);
      for (const auto& l : offers.labels) pick.Bind(at++, l);
      for (const auto& k : skip) pick.Bind(at++, k);
      MLAAS_ASSIGN_OR_RETURN(bool found, pick.Step());
      if (!found) return std::optional<GroupSeat>();
      GroupSeat seat{.id = NewUuid(), .task_id = pick.Text(0), .rank = 0, .world = static_cast<int>(pick.Int(1)), .attempt = 0};
      MLAAS_ASSIGN_OR_RETURN(auto ranks, db_.Prepare("SELECT seat_rank FROM task_seats WHERE task_id=?1 AND attempt=0 "
                                                     "ORDER BY seat_rank"));
      ranks.Bind(1, seat.task_id);
      for (;;) {
        MLAAS_ASSIGN_OR_RETURN(bool row, ranks.Step());
        if (!row || ranks.Int(0) != seat.rank) break;
        ++seat.rank;
      }
      if (seat.rank >= seat.world) return std::optional<GroupSeat>();
      MLAAS_ASSIGN_OR_RETURN(auto ins, db_.Prepare("INSERT INTO task_seats (id, task_id, attempt, seat_rank, world, owner, "
                                                   "expires_ms) VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6)"));
      ins.Bind(1, seat.id).Bind(2, seat.task_id).Bind(3, static_cast<int64_t>(seat.rank));
      ins.Bind(4, static_cast<int64_t>(seat.world)).Bind(5, owner).Bind(6, now + lease_ms);
      MLAAS_RETURN_IF_ERROR(ins.Run());
      return std::optional<GroupSeat>(seat);
    });
  }

  Result<GroupState> RenewSeat(const std::string& seat_id, const std::string& owner, int64_t lease_ms) override {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    MLAAS_ASSIGN_OR_RETURN(auto renew, db_.Prepare("UPDATE task_seats SET expires_ms=?1 WHERE id=?2 AND owner=?3 AND "
                                                   "expires_ms >= ?4 RETURNING task_id, attempt"));
    renew.Bind(1, now + lease_ms).Bind(2, seat_id).Bind(3, owner).Bind(4, now);
    MLAAS_ASSIGN_OR_RETURN(bool row, renew.Step());
    if (!row) return FailedPrecondition("seat " + seat_id + " is gone");
    const std::string task_id = renew.Text(0);
    GroupState g;
    g.attempt = static_cast<int>(renew.Int(1));
    MLAAS_RETURN_IF_ERROR(renew.Run());
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("SELECT t.status, t.cancel_requested, "
                            "(SELECT COUNT(*) FROM task_seats s WHERE s.task_id=t.id AND s.attempt=0 AND s.expires_ms >= ?2), "
                            "(SELECT address FROM task_seats s WHERE s.task_id=t.id AND s.attempt=?3 AND s.seat_rank=0 "
                            "AND EXISTS (SELECT 1 FROM task_seats m WHERE m.id=?4 AND m.attempt=?3)), "
                            "(SELECT COUNT(*) FROM task_seats s WHERE s.task_id=t.id AND s.attempt=?3 AND s.expires_ms >= ?2) "
                            "FROM tasks t WHERE t.id=?1"));
    q.Bind(1, task_id).Bind(2, now).Bind(3, static_cast<int64_t>(g.attempt)).Bind(4, seat_id);
    MLAAS_ASSIGN_OR_RETURN(bool task, q.Step());
    if (!task) return FailedPrecondition("the task of seat " + seat_id + " is gone");
    g.state = ParseTaskState(q.Text(0)).value_or(TaskState::kFailed);
    g.cancel_requested = q.Int(1) != 0;
    g.seated = static_cast<int>(q.Int(2));
    if (g.attempt > 0 && !q.IsNull(3)) g.address = q.Text(3);
    if (g.attempt > 0) g.members = static_cast<int>(q.Int(4));
    return g;
  }

  Result<std::optional<TaskRecord>> ClaimGathered(const GroupSeat& seat, const std::string& owner,
                                                  int64_t lease_ms) override {
    if (seat.rank != 0) return InvalidArgument("only rank 0 claims its group's task");
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    return InTransaction<std::optional<TaskRecord>>(db_, [&]() -> Result<std::optional<TaskRecord>> {
      MLAAS_ASSIGN_OR_RETURN(
          auto q, db_.Prepare(std::string("UPDATE tasks SET status='running', attempts=attempts+1, started_ms=?1, "
                                          "updated_ms=?1, revision=revision+1, lease_owner=?2, lease_expires_ms=?3 "
                                          "WHERE id=?4 AND status='queued' AND cancel_requested=0 AND "
                                          "(SELECT COUNT(*) FROM task_seats s WHERE s.task_id=?4 AND s.attempt=0 AND "
                                          "s.expires_ms >= ?1) = req_workers AND EXISTS (SELECT 1 FROM task_seats s "
                                          "WHERE s.id=?5 AND s.owner=?2 AND s.attempt=0 AND s.seat_rank=0 AND "
                                          "s.expires_ms >= ?1) RETURNING ") +
                              kTaskColumns));
      q.Bind(1, now).Bind(2, owner).Bind(3, now + lease_ms).Bind(4, seat.task_id).Bind(5, seat.id);
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return std::optional<TaskRecord>();
      TaskRecord r = ReadRecord(q);
      MLAAS_RETURN_IF_ERROR(q.Run());
      // What earlier groups of the task left (an attempt handed back reuses its number).
      MLAAS_ASSIGN_OR_RETURN(auto old, db_.Prepare("DELETE FROM task_seats WHERE task_id=?1 AND attempt<>0"));
      old.Bind(1, seat.task_id);
      MLAAS_RETURN_IF_ERROR(old.Run());
      MLAAS_ASSIGN_OR_RETURN(auto seats, db_.Prepare("UPDATE task_seats SET attempt=?1 WHERE task_id=?2 AND attempt=0"));
      seats.Bind(1, static_cast<int64_t>(r.attempts)).Bind(2, seat.task_id);
      MLAAS_RETURN_IF_ERROR(seats.Run());
      return std::optional<TaskRecord>(std::move(r));
    });
  }

  Status SetGroupAddress(const std::string& seat_id, const std::string& owner, const std::string& address) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("UPDATE task_seats SET address=?1 WHERE id=?2 AND owner=?3"));
    q.Bind(1, address).Bind(2, seat_id).Bind(3, owner);
    MLAAS_RETURN_IF_ERROR(q.Run());
    if (db_.Changes() == 0) return FailedPrecondition("seat " + seat_id + " is gone");
    return Status::Ok();
  }

  Result<bool> LeaveGroup(const std::string& seat_id, const std::string& owner, bool only_while_gathering) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("DELETE FROM task_seats WHERE id=?1 AND owner=?2") +
                                               (only_while_gathering ? " AND attempt=0" : "")));
    q.Bind(1, seat_id).Bind(2, owner);
    MLAAS_RETURN_IF_ERROR(q.Run());
    return db_.Changes() > 0;
  }

  Result<std::map<TaskState, int64_t>> CountByState() override {
    std::lock_guard lock(mu_);
    std::map<TaskState, int64_t> out;
    for (TaskState s : kAllTaskStates) out[s] = 0;
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT status, COUNT(*) FROM tasks GROUP BY status"));
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (auto s = ParseTaskState(q.Text(0))) out[*s] = q.Int(1);
    }
    return out;
  }

  Result<int64_t> Count(TaskState state) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT COUNT(*) FROM tasks WHERE status=?1"));
    q.Bind(1, TaskStateName(state));
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    return row ? q.Int(0) : 0;
  }

  Result<int64_t> DeleteFinishedBefore(int64_t cutoff_ms) override {
    std::lock_guard lock(mu_);
    // Logs go with their task (ON DELETE CASCADE).
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("DELETE FROM tasks WHERE status IN ('succeeded', 'failed', 'cancelled') "
                            "AND finished_ms < ?1"));
    q.Bind(1, cutoff_ms);
    MLAAS_RETURN_IF_ERROR(q.Run());
    return static_cast<int64_t>(db_.Changes());
  }

  Status Ping() override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT 1"));
    return q.Run();
  }

 private:
  Result<TaskRecord> GetLocked(const std::string& id) {
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare(std::string("SELECT ") + kTaskColumns + " FROM tasks WHERE id=?1"));
    q.Bind(1, id);
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return NotFound("task " + id + " does not exist");
    return ReadRecord(q);
  }

  Status AppendLogLocked(const std::string& id, std::string_view level, std::string_view message) {
    std::string msg(message.substr(0, kMaxLogMessageBytes));
    MLAAS_ASSIGN_OR_RETURN(
        auto q, db_.Prepare("INSERT INTO task_logs (task_id, seq, time_ms, level, message) "
                            "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4 FROM task_logs "
                            "WHERE task_id=?1"));
    q.Bind(1, id).Bind(2, now_()).Bind(3, level).Bind(4, msg);
    Status st = q.Run();
    if (!st.ok() && st.message().find("FOREIGN KEY") != std::string::npos) {
      return NotFound("task " + id + " does not exist");
    }
    return st;
  }

  std::mutex mu_;
  SqliteDb db_;
  std::function<int64_t()> now_;
};

}  // namespace

std::string_view TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kQueued: return "queued";
    case TaskState::kRunning: return "running";
    case TaskState::kSucceeded: return "succeeded";
    case TaskState::kFailed: return "failed";
    case TaskState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<TaskState> ParseTaskState(std::string_view name) {
  for (TaskState s : kAllTaskStates) {
    if (TaskStateName(s) == name) return s;
  }
  return std::nullopt;
}

bool IsTerminal(TaskState state) {
  return state == TaskState::kSucceeded || state == TaskState::kFailed ||
         state == TaskState::kCancelled;
}

Result<std::unique_ptr<TaskStore>> OpenTaskStore(const StoreOptions& options) {
  if (IsPostgresUrl(options.url)) return OpenPgTaskStore(options);
  MLAAS_ASSIGN_OR_RETURN(std::string path, SqlitePath(options.url));
  MLAAS_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path));
  auto now = options.now_ms ? options.now_ms : std::function<int64_t()>(NowMs);
  auto store = std::make_unique<SqliteTaskStore>(std::move(db), std::move(now));
  MLAAS_RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<TaskStore>(std::move(store));
}

}  // namespace mlaas::metadata
