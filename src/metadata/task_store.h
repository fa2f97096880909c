// mlaas::metadata — durable task records (the job status store).
//
// A task moves queued -> running -> succeeded | failed | cancelled. A running task is held
// by one worker ("owner") under a lease that the worker renews; a task whose lease runs out,
// or whose owner is known to be dead, goes back to the queue until it has used
// max_attempts, so a crash never loses work. Implementations: SQLite (embedded default);
// PostgreSQL (pg_task_store.cpp, several hosts). All methods are thread-safe, and
// several processes may share one database.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "metadata/change_feed.h"

namespace mlaas::metadata {

enum class TaskState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };

// "queued", "running", "succeeded", "failed", "cancelled".
std::string_view TaskStateName(TaskState state);
std::optional<TaskState> ParseTaskState(std::string_view name);
bool IsTerminal(TaskState state);
inline constexpr TaskState kAllTaskStates[] = {TaskState::kQueued, TaskState::kRunning,
                                               TaskState::kSucceeded, TaskState::kFailed,
                                               TaskState::kCancelled};

// What a task needs of the worker that runs it (the request's `resources` block, parsed by
// tasks/resources.h): at least `gpus` GPUs, every one of `labels`, and a data-parallel group of
// `workers` processes when that is more than 1.
struct TaskRequirements {
  int gpus = 0;
  std::vector<std::string> labels{};  // sorted, without duplicates
  int workers = 1;
  bool operator==(const TaskRequirements&) const = default;
};

// What a worker offers: its GPUs, its capability labels ("cpu", "gpu", free-form), and the size
// of the torchrun group it leads (1: none). ClaimNext gives it tasks asking one worker, and
// tasks asking exactly `workers`; tasks asking more are otherwise gathered for (JoinGroup).
struct WorkerCapabilities {
  int gpus = 0;
  std::vector<std::string> labels{};
  int workers = 1;
};

// A worker's seat in the group gathering for a task that asks resources.workers > 1 (the
// rendezvous through the database, docs/deploy.md): idle workers take the lowest free rank of
// the oldest such task they can run; when every rank is seated the holder of rank 0 claims the
// task, which turns the seats of that moment into its attempt's group.
struct GroupSeat {
  std::string id{};       // the seat's own id (UUID v4)
  std::string task_id{};
  int rank = 0;
  int world = 0;          // the task's resources.workers
  int attempt = 0;        // 0 while gathering; the task's attempt once rank 0 claimed it
};

// What a seat's holder learns when it renews the seat.
struct GroupState {
  TaskState state = TaskState::kQueued;  // the task's
  bool cancel_requested = false;
  int seated = 0;        // live seats gathering for the task (attempt 0)
  int attempt = 0;       // this seat's attempt: 0 until rank 0 claimed the task with it
  int members = 0;       // once claimed: the live seats of that attempt's group (this one included)
  std::string address{}; // "host:port" of rank 0's rendezvous store for that attempt ("" until set)
};

struct TaskRecord {
  std::string id;  // UUID v4
  std::string type;
  TaskState state = TaskState::kQueued;
  nlohmann::json params = nlohmann::json::object();
  nlohmann::json progress = nlohmann::json::object();  // {fraction, epoch, step, message, ...}
  nlohmann::json result;                               // null until succeeded
  nlohmann::json error;                                // null unless failed/cancelled
  int64_t submitted_ms = 0;
  int64_t started_ms = 0;   // 0 until first started; the latest attempt's start
  int64_t finished_ms = 0;  // 0 until terminal
  int64_t updated_ms = 0;   // time of the last change
  int64_t revision = 0;     // bumped by every change: lets watchers detect updates
  int attempts = 0;         // how many times a worker started it
  int max_attempts = 1;
  bool cancel_requested = false;
  std::string lease_owner;  // the worker holding a running task
  int64_t lease_expires_ms = 0;
  std::string submitted_by{};  // the user who submitted it (empty: a server without accounts)
  TaskRequirements requirements{};
};

struct NewTask {
  std::string type;
  nlohmann::json params = nlohmann::json::object();
  int max_attempts = 3;
  std::string submitted_by{};
  TaskRequirements requirements{};
};

struct TaskQuery {
  std::optional<TaskState> state;
  std::string type;        // empty: any
  std::string submitted_by{};  // empty: anyone's
  size_t limit = 50;       // 1..1000
  std::string cursor;      // next_cursor of the previous page
};

struct TaskPage {
  std::vector<TaskRecord> tasks;  // newest first
  std::string next_cursor;        // empty on the last page
};

struct TaskLogEntry {
  int64_t seq = 0;  // 1, 2, ... per task
  int64_t time_ms = 0;
  std::string level;
  std::string message;
};

class TaskStore {
 public:
  virtual ~TaskStore() = default;

  virtual Result<TaskRecord> Create(const NewTask& task) = 0;
  // NotFound for an unknown id.
  virtual Result<TaskRecord> Get(const std::string& id) = 0;
  // InvalidArgument (field "cursor" or "limit") for a bad page request.
  virtual Result<TaskPage> List(const TaskQuery& query) = 0;

  // Atomically moves the oldest queued task whose type is in `types` and whose requirements
  // `offers` meets to running, held by `owner` for `lease_ms`, and counts an attempt. nullopt
  // when nothing such is queued.
  virtual Result<std::optional<TaskRecord>> ClaimNext(const std::string& owner,
                                                      const std::vector<std::string>& types,
                                                      int64_t lease_ms,
                                                      const WorkerCapabilities& offers = {}) = 0;
  // Renews the lease of a running task and, when `progress` is given, stores it. Returns
  // whether cancellation has been requested. FailedPrecondition when `owner` lost the task.
  virtual Result<bool> Heartbeat(const std::string& id, const std::string& owner,
                                 int64_t lease_ms, const nlohmann::json* progress) = 0;
  // Ends a task held by `owner` in terminal `state`, storing `result` or `error`.
  // FailedPrecondition when `owner` no longer holds it.
  virtual Status Finish(const std::string& id, const std::string& owner, TaskState state,
                        const nlohmann::json& result, const nlohmann::json& error) = 0;
  // Hands a running task back to the queue without using up an attempt (graceful stop); a task
  // whose cancel was asked meanwhile ends cancelled instead.
  virtual Status Release(const std::string& id, const std::string& owner) = 0;
  // Ends this attempt of a running task held by `owner` without ending the task, as a crash
  // would: back to the queue with the attempt counted (its checkpoints resume it), failed
  // with `error` when it used max_attempts, or cancelled when a cancel was asked meanwhile.
  // Returns the state it went to. FailedPrecondition
  // when `owner` no longer holds it.
  virtual Result<TaskState> Requeue(const std::string& id, const std::string& owner, const nlohmann::json& error) = 0;

  // Queued: cancelled at once. Running: flags it, the worker stops at its next check.
  // FailedPrecondition when the task has already ended; NotFound for an unknown id.
  virtual Result<TaskRecord> RequestCancel(const std::string& id) = 0;

  // Running tasks whose lease expired, or whose owner `owner_is_dead`, return to the queue,
  // or fail when they used up max_attempts. Returns how many tasks were recovered.
  virtual Result<int> RecoverAbandoned(
      const std::function<bool(const std::string& owner)>& owner_is_dead) = 0;

  virtual Status AppendLog(const std::string& id, std::string_view level,
                           std::string_view message) = 0;
  // Log lines with seq > after_seq, oldest first, at most `limit`.
  virtual Result<std::vector<TaskLogEntry>> Logs(const std::string& id, int64_t after_seq,
                                                 size_t limit) = 0;

  // Group rendezvous (GroupSeat). JoinGroup seats `owner` at the lowest free rank of the
  // oldest queued task asking workers > 1 whose type is in `types` and whose gpus and labels
  // `offers` meets, unless its group is complete; nullopt when there is none. A seat lives for
  // `lease_ms` unless renewed; seats that expired are dropped.
  // Tasks in `skip` are passed over (a worker that gave up waiting for one).
  virtual Result<std::optional<GroupSeat>> JoinGroup(const std::string& owner, const std::vector<std::string>& types,
                                                     int64_t lease_ms, const WorkerCapabilities& offers,
                                                     const std::vector<std::string>& skip = {}) = 0;
  // Renews the seat and says where its task and group stand. FailedPrecondition when the seat
  // is gone (it expired, or its holder left).
  virtual Result<GroupState> RenewSeat(const std::string& seat_id, const std::string& owner, int64_t lease_ms) = 0;
  // Rank 0, once every rank is seated: claims the task (as ClaimNext does) and gives the seats
  // gathered its attempt (the seats of earlier attempts' groups go). nullopt when the group is no longer complete or the task was taken,
  // cancelled or ended.
  virtual Result<std::optional<TaskRecord>> ClaimGathered(const GroupSeat& seat, const std::string& owner,
                                                          int64_t lease_ms) = 0;
  // Rank 0: where the others reach its rendezvous store ("host:port").
  virtual Status SetGroupAddress(const std::string& seat_id, const std::string& owner, const std::string& address) = 0;
  // Gives the seat up (its holder is done with it); with `only_while_gathering`, only when rank
  // 0 has not claimed the task with it. Whether a seat was given up (false: already gone, or
  // claimed).
  virtual Result<bool> LeaveGroup(const std::string& seat_id, const std::string& owner,
                                  bool only_while_gathering = false) = 0;

  virtual Result<std::map<TaskState, int64_t>> CountByState() = 0;
  // How many tasks are in `state` (cheap: one index range).
  virtual Result<int64_t> Count(TaskState state) = 0;
  // Deletes succeeded, failed and cancelled tasks that finished before `cutoff_ms`, with
  // their logs. Returns how many were deleted.
  virtual Result<int64_t> DeleteFinishedBefore(int64_t cutoff_ms) = 0;
  // OK when the database answers.
  virtual Status Ping() = 0;

  // Calls `on_change`, from a thread of the store's, whenever a process (this one or another)
  // has changed a task (PostgreSQL: LISTEN mlaas_tasks), with `queued` true when a task became
  // claimable (submitted, handed back, re-queued): idle workers wake at once and progress
  // streams cross API servers. Changes heard together make one call. After a lost connection
  // comes back it is called once with `queued` true (what happened meanwhile was not heard).
  // The feed stops when the returned handle is destroyed. nullptr when the store cannot tell:
  // callers poll.
  virtual std::unique_ptr<ChangeFeed> Subscribe(std::function<void(bool queued)> on_change) {
    (void)on_change;
    return nullptr;
  }
};

struct StoreOptions {
  // "sqlite:///abs/path.db", "sqlite://relative.db" or a plain file path.
  std::string url;
  // Clock for leases and timestamps; tests inject their own. Unset on PostgreSQL: the database
  // server's clock (this host's, corrected by its offset from the server's, sampled every 30 s),
  // so that hosts whose clocks disagree still agree on when a lease runs out.
  std::function<int64_t()> now_ms;
  // PostgreSQL with now_ms unset: this host's clock (tests skew it; default: the system clock).
  std::function<int64_t()> host_clock_ms{};
};

// Opens (creating and migrating when needed) the task store named by options.url.
// postgres:// and postgresql:// URLs open the PostgreSQL store (connecting, migrating).
Result<std::unique_ptr<TaskStore>> OpenTaskStore(const StoreOptions& options);

}  // namespace mlaas::metadata
