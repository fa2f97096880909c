// mlaas::tasks — runs durable tasks on a pool of worker threads.
//
// Handlers are registered per task type. Workers claim queued tasks from the TaskStore
// (oldest first), run the handler with a TaskContext and record the outcome. While a task
// runs, its lease is renewed by progress reports and by a heartbeat thread; tasks left
// running by a dead process are recovered (re-queued) at start and periodically, so a
// crash loses nothing. Several processes (servers or `mlaas worker`) may share one store.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "metadata/task_store.h"

namespace mlaas::tasks {

using metadata::TaskRecord;
using metadata::TaskState;

// What a handler reports while it works; unset fields are left out of the task's progress.
struct Progress {
  std::optional<double> fraction{};  // 0..1 of the whole task
  std::optional<int64_t> epoch{};
  std::optional<int64_t> total_epochs{};
  std::optional<int64_t> step{};
  std::optional<int64_t> total_steps{};
  std::string message{};
  nlohmann::json extra = nlohmann::json::object();  // e.g. {"loss": 1.2}
};

// The handler's view of its task. Thread-compatible: used by the handler's thread, while
// cancellation is signalled from others.
class TaskContext {
 public:
  const std::string& id() const { return record_.id; }
  const std::string& type() const { return record_.type; }
  const nlohmann::json& params() const { return record_.params; }
  // Who submitted the task ("" on a server without accounts).
  const std::string& submitted_by() const { return record_.submitted_by; }
  int attempt() const { return record_.attempts; }

  // True once the user cancelled the task, the server is shutting down or the lease was
  // lost. Handlers check it between units of work and then return CheckCancelled().
  bool cancelled() const { return cancel_requested_ || shutting_down_ || lease_lost_; }
  // True when this attempt stops without ending the task: the worker is shutting down (and
  // nobody cancelled the task) or lost its lease. The task will run again, so what it keeps
  // to resume (checkpoints) must stay; otherwise a failed attempt ends the task.
  bool handed_back() const {
    return lease_lost_ || ((shutting_down_ || retry_) && !cancel_requested_);
  }
  // The handler's failure is this attempt's, not the task's (a data-parallel group lost a
  // member): the task goes back to the queue with the attempt counted (TaskStore::Requeue), or,
  // with `count_attempt` false (a member stopped gracefully), handed back without counting it,
  // and resumes from its checkpoints in a later attempt. Call before returning the error;
  // handed_back() is then true. On the last attempt a counted retry does nothing: the error
  // fails the task (and its checkpoints go).
  void RetryLater(bool count_attempt = true) {
    if (count_attempt && record_.attempts >= record_.max_attempts) return;
    retry_counts_ = count_attempt;
    retry_ = true;
  }
  bool retrying() const { return retry_; }
  // Cancelled status when cancelled(), OK otherwise.
  Status CheckCancelled() const;

  // Stores progress (at most every progress_interval_ms; the last report is always kept)
  // and renews the lease. Adds elapsed_seconds and, when fraction > 0, eta_seconds.
  void ReportProgress(const Progress& progress);
  // A new stage of the task (`fraction`, `message`) that keeps the figures of the last report
  // (a sweep's trials stay in its progress while its best model is registered).
  void ReportStage(double fraction, const std::string& message);
  // Writes the last progress report now (ReportProgress writes at most every
  // progress_interval_ms) and renews the lease; learns of cancellation.
  void FlushProgress() { Flush(true); }
  // Appends a line to the task's log (GET /api/v1/tasks/{id}/logs).
  void Log(std::string_view level, const std::string& message);
  // The task's progress when this attempt began: what an earlier attempt reported (a sweep
  // finds the trials it had started), or {}.
  const nlohmann::json& progress_at_start() const { return record_.progress; }
  // Another task's record, as the store has it now (a sweep's trial reads its sweep's verdicts).
  Result<TaskRecord> ReadTask(const std::string& id) const;

  // A task asking resources.workers > 1 that workers gathered for through the store
  // (TaskManagerOptions::gather_groups): this process's seat in its group (rank, world,
  // attempt); nullopt otherwise. Rank 0 runs the task and hosts the group's rendezvous store,
  // telling the others where (PublishGroupAddress); the others run it detached and get that
  // address in group_address().
  const std::optional<metadata::GroupSeat>& group() const { return seat_; }
  const std::string& group_address() const { return group_address_; }
  Status PublishGroupAddress(const std::string& address);
  // Rank 0 while its group gathers: renews its seat and says where the group stands (members:
  // the live seats of this attempt's group; fewer than the world means one went away).
  Result<metadata::GroupState> CheckGroup();

 private:
  friend class TaskManager;
  TaskContext(class TaskManager& manager, TaskRecord record);
  // Renews the lease and writes the pending progress, if any (unless `force` is false and
  // the last write was less than progress_interval_ms ago). Learns of cancellation.
  void Flush(bool force);

  class TaskManager& manager_;
  TaskRecord record_;
  int64_t started_ms_;
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> lease_lost_{false};
  std::atomic<bool> retry_{false};
  bool retry_counts_ = true;
  bool detached_ = false;   // RunDetached: nothing goes to the store
  std::optional<metadata::GroupSeat> seat_{};
  std::string group_address_{};
  std::mutex flush_mu_;     // serialises store writes of this task
  std::mutex progress_mu_;  // guards the three fields below
  std::optional<nlohmann::json> pending_progress_;
  nlohmann::json last_progress_ = nlohmann::json::object();  // what ReportProgress was last given
  int64_t last_write_ms_ = 0;
};

// Returns the task's result JSON; an error Status fails the task (Cancelled: cancelled).
using TaskHandler = std::function<Result<nlohmann::json>(TaskContext&)>;
// Checks a task's params when it is submitted (cheap checks only: the request's fields, that
// named files exist); an error refuses the submission, so bad requests fail at once.
using TaskValidator = std::function<Status(const nlohmann::json& params)>;

struct TaskManagerOptions {
  int workers = 2;
  int64_t lease_ms = 30'000;             // a silent worker loses its task after this
  // Idle workers look for work queued elsewhere this often; with a store that tells of changes
  // (PostgreSQL's LISTEN/NOTIFY, TaskStore::Subscribe) they wake at once and poll only every
  // max(this, 5 s) as a safety net.
  int64_t poll_interval_ms = 500;
  int64_t progress_interval_ms = 250;    // minimum spacing of progress writes
  int64_t recover_interval_ms = 5'000;   // how often abandoned tasks are looked for
  int max_attempts = 3;                  // per task, counting crash recoveries
  // What this process's workers offer: they claim only tasks whose `resources` it meets
  // (tasks/resources.h).
  metadata::WorkerCapabilities capabilities{.gpus = 0, .labels = {"cpu"}};
  // Idle workers take seats in the groups gathering for tasks that ask resources.workers > 1
  // (of the types AllowDataParallel named; TaskStore::JoinGroup): one seat per process at a time,
  // and never while a task of those types runs here, since such tasks run one at a time in a
  // process (the training lock). Off in a process that is a member of a torchrun group.
  bool gather_groups = false;
  // Threads that run only the coordinator types (RunOnCoordinators: tasks that submit other tasks
  // and wait for them, such as a hyperparameter sweep), so that waiting coordinators never hold
  // the workers their tasks need. Started only where workers > 0.
  int coordinators = 2;
  // How long a member waits for rank 0 to say where its rendezvous store is, once rank 0
  // claimed the task (it does so first thing).
  int64_t group_address_wait_ms = 60'000;
  // How long a seat waits for its group to fill up before its worker goes back to other work
  // (and passes over that task for as long again); 0: for ever.
  int64_t group_gather_timeout_ms = 300'000;
  // Bounds. Submit refuses a task beyond them: ResourceExhausted (HTTP 429) when
  // max_queued_tasks tasks already wait (0: no limit); InvalidArgument naming the field when
  // the params are larger than max_params_bytes, or when an object inside one of the
  // request's blocks (dataset.loader_kwargs, model.config, ...) is larger than
  // max_object_field_bytes (both as compact JSON).
  int64_t max_queued_tasks = 1000;
  size_t max_params_bytes = 4u << 20;
  size_t max_object_field_bytes = 64u << 10;
  // Succeeded, failed and cancelled tasks older than this are deleted, with their logs, by a
  // sweep every retention_interval_ms (0: kept forever).
  int64_t finished_retention_ms = 30LL * 24 * 3600 * 1000;
  int64_t retention_interval_ms = 3600'000;
};

class TaskManager {
 public:
  TaskManager(metadata::TaskStore& store, TaskManagerOptions options);
  ~TaskManager();
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Registers the handler (and optional submit-time validator) of a task type. Call before Start.
  void Register(const std::string& type, TaskHandler handler, TaskValidator validator = {});
  bool HasType(const std::string& type) const;
  // Tasks of `type` may ask resources.workers > 1 (data-parallel training); Submit refuses that
  // for the other types.
  void AllowDataParallel(const std::string& type) { data_parallel_types_.push_back(type); }
  std::vector<std::string> Types() const;
  // Tasks of `type` run on the coordinator threads (TaskManagerOptions::coordinators), never on
  // the workers, and any coordinator claims them: their `resources` are what the tasks they
  // submit ask. Call after Register, before Start and Submit.
  void RunOnCoordinators(const std::string& type) { coordinator_types_.push_back(type); }

  // Recovers tasks abandoned by dead processes and starts the workers. With workers == 0
  // nothing runs here (a submit-only front-end); tasks wait for another process.
  Status Start();
  // Stops the workers; running tasks are asked to stop and handed back to the queue.
  void Stop();

  Result<TaskRecord> Submit(const std::string& type, const nlohmann::json& params,
                            const std::string& submitted_by = "");
  // Runs the handler of `record.type` here, outside the queue and the store: for a member of a
  // data-parallel group that rank 0 handed a task it claimed (train/data_parallel.h). Progress
  // and log lines go to this process's log only; the handler is asked to stop when Stop is
  // called. Works whether or not Start was.
  Result<nlohmann::json> RunDetached(TaskRecord record);
  // The same for a member of a group gathered through the store: its seat and rank 0's address.
  Result<nlohmann::json> RunDetached(TaskRecord record, const metadata::GroupSeat& seat, const std::string& address);
  // See TaskStore::RequestCancel; a task running here is signalled at once.
  Result<TaskRecord> Cancel(const std::string& id);

  // A counter bumped whenever this process changes a task, and, where the store tells of
  // changes (PostgreSQL), whenever any process does. WaitForChange blocks until it moves past
  // `seen` or `timeout` passes (watchers poll the store after a timeout, as a safety net and
  // for SQLite shared with other processes).
  uint64_t version() const { return version_.load(); }
  uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds timeout);

  // "host:pid:start-ticks" — identifies this process as the holder of running tasks.
  const std::string& owner_id() const { return owner_; }
  size_t running_count() const;
  int workers() const { return options_.workers; }
  bool started() const { return started_.load(); }

  // True when `owner` is a process on this host that no longer exists (or has been
  // replaced by another process with the same pid).
  static bool OwnerIsDead(const std::string& owner);

 private:
  friend class TaskContext;
  // A worker claims the types that are not the coordinators'; a coordinator only those.
  void WorkerLoop(bool coordinator);
  void HeartbeatLoop();
  void RunTask(TaskRecord record, std::optional<metadata::GroupSeat> seat = std::nullopt);
  // WorkerLoop, when no task could be claimed: takes a seat in a gathering group, if this process
  // may, and stays with it until the group's run ends or the seat is given up. False when no
  // seat was taken.
  bool TryGather();
  void StayInGroup(metadata::GroupSeat seat);
  bool IsDataParallelType(const std::string& type) const;
  // The types this process claims now: without the data-parallel (training) ones while it holds a
  // seat or runs one of them.
  std::vector<std::string> ClaimableTypes() const;
  // RunTask's end: records the attempt's outcome in the store.
  void RecordOutcome(TaskContext& ctx, const Result<nlohmann::json>& result);
  void SweepFinished();
  void NotifyChange();

  metadata::TaskStore& store_;
  TaskManagerOptions options_;
  std::string owner_;
  std::map<std::string, TaskHandler> handlers_;
  std::map<std::string, TaskValidator> validators_;
  std::vector<std::string> types_;
  std::vector<std::string> data_parallel_types_;
  std::vector<std::string> coordinator_types_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> started_{false};
  std::vector<std::thread> workers_;
  std::thread heartbeat_;
  std::unique_ptr<metadata::ChangeFeed> feed_;  // null where the store cannot tell

  mutable std::mutex mu_;           // guards running_ and the wake-up condition
  std::condition_variable wake_;    // new work or stop
  std::condition_variable beat_cv_; // heartbeat thread's sleep
  std::map<std::string, TaskContext*> running_;
  std::string seat_id_;             // the seat this process holds ("" none): renewed by the heartbeat
  int training_running_ = 0;        // tasks of the data-parallel types running here
  std::map<std::string, int64_t> skip_until_;  // tasks whose groups a seat here gave up on, until when
  uint64_t submitted_ = 0;          // bumped by Submit so idle workers wake
  std::mutex submit_mu_;            // one queue-length check and insert at a time

  std::atomic<uint64_t> version_{0};
  std::mutex change_mu_;
  std::condition_variable change_cv_;
};

}  // namespace mlaas::tasks
