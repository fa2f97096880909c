#include "tasks/task_manager.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/text.h"
#include "common/time_util.h"
#include "tasks/resources.h"

namespace mlaas::tasks {
namespace {

using nlohmann::json;

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); empty
// when the process does not exist.
std::string ProcessStartTicks(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return {};
}

std::string MakeOwnerId() {
  long pid = static_cast<long>(::getpid());
  return HostName() + ":" + std::to_string(pid) + ":" + ProcessStartTicks(pid);
}

// The status an exception escaping a task becomes. A filesystem error's text carries server
// paths, so only its reason is kept; other messages are cut to their first line (a libtorch
// error appends a backtrace).
Status ExceptionStatus(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::filesystem::filesystem_error& e) {
    spdlog::warn("task error: {}", e.what());
    return Internal("unexpected file system error: " + e.code().message());
  } catch (const std::exception& e) {
    std::string what = e.what();
    spdlog::warn("task error: {}", what);
    what = what.substr(0, std::min(what.find('\n'), size_t{500}));
    return Internal("unexpected error: " + what);
  } catch (...) {
    return Internal("unexpected error of unknown type");
  }
}

// The params' bounds (TaskManagerOptions): InvalidArgument naming the offending field.
Status CheckParamsSize(const json& params, const TaskManagerOptions& o) {
  auto bytes = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace).size(); };
  if (!params.is_object()) return Status::Ok();
  for (const auto& [block, value] : params.items()) {
    if (!value.is_object()) continue;
    for (const auto& [name, inner] : value.items()) {
      if (inner.is_object() && bytes(inner) > o.max_object_field_bytes) {
        return InvalidArgument(block + "." + name + " is larger than the " +
                                   FormatBytes(o.max_object_field_bytes) + " accepted",
                               block + "." + name);
      }
    }
  }
  if (size_t total = bytes(params); total > o.max_params_bytes) {
    std::string largest;
    size_t largest_bytes = 0;
    for (const auto& [name, value] : params.items()) {
      if (size_t b = bytes(value); b > largest_bytes) largest = name, largest_bytes = b;
    }
    return InvalidArgument("the request is " + FormatBytes(total) + ", more than the " +
                               FormatBytes(o.max_params_bytes) + " a task may hold (" + largest +
                               " is " + FormatBytes(largest_bytes) + ")",
                           largest);
  }
  return Status::Ok();
}

}  // namespace

Status TaskContext::CheckCancelled() const {
  if (cancel_requested_) return Cancelled("the task was cancelled");
  if (shutting_down_) return Cancelled("the worker is shutting down");
  if (lease_lost_) return Cancelled("the worker lost its lease on the task");
  return Status::Ok();
}

TaskContext::TaskContext(TaskManager& manager, TaskRecord record)
    : manager_(manager), record_(std::move(record)), started_ms_(NowMs()) {
  cancel_requested_ = record_.cancel_requested;
}

void TaskContext::ReportProgress(const Progress& progress) {
  json p = progress.extra.is_object() ? progress.extra : json::object();
  if (progress.fraction) p["fraction"] = std::clamp(*progress.fraction, 0.0, 1.0);
  if (progress.epoch) p["epoch"] = *progress.epoch;
  if (progress.total_epochs) p["total_epochs"] = *progress.total_epochs;
  if (progress.step) p["step"] = *progress.step;
  if (progress.total_steps) p["total_steps"] = *progress.total_steps;
  if (!progress.message.empty()) p["message"] = progress.message;
  double elapsed = static_cast<double>(NowMs() - started_ms_) / 1000.0;
  p["elapsed_seconds"] = elapsed;
  if (progress.fraction && *progress.fraction > 0 && *progress.fraction < 1) {
    p["eta_seconds"] = elapsed * (1.0 - *progress.fraction) / *progress.fraction;
  }
  {
    std::lock_guard lock(progress_mu_);
    last_progress_ = p;
    pending_progress_ = std::move(p);
  }
  Flush(false);
}

void TaskContext::ReportStage(double fraction, const std::string& message) {
  json p;
  {
    std::lock_guard lock(progress_mu_);
    p = last_progress_;
  }
  p["fraction"] = std::clamp(fraction, 0.0, 1.0);
  p["message"] = message;
  p["elapsed_seconds"] = static_cast<double>(NowMs() - started_ms_) / 1000.0;
  p.erase("eta_seconds");
  {
    std::lock_guard lock(progress_mu_);
    pending_progress_ = std::move(p);
  }
  Flush(false);
}

Result<TaskRecord> TaskContext::ReadTask(const std::string& id) const { return manager_.store_.Get(id); }

void TaskContext::Log(std::string_view level, const std::string& message) {
  if (detached_) {
    spdlog::info("task {} [{}] {}", record_.id, level, message);
    return;
  }
  spdlog::debug("task {} [{}] {}", record_.id, level, message);
  if (Status st = manager_.store_.AppendLog(record_.id, level, message); !st.ok()) {
    spdlog::warn("task {}: cannot store log line: {}", record_.id, st.ToString());
  }
}

Status TaskContext::PublishGroupAddress(const std::string& address) {
  if (!seat_) return FailedPrecondition("task " + record_.id + " was not gathered through the store");
  return manager_.store_.SetGroupAddress(seat_->id, manager_.owner_, address);
}

Result<metadata::GroupState> TaskContext::CheckGroup() {
  if (!seat_) return FailedPrecondition("task " + record_.id + " was not gathered through the store");
  auto g = manager_.store_.RenewSeat(seat_->id, manager_.owner_, manager_.options_.lease_ms);
  if (g.has_value() && g->cancel_requested) cancel_requested_ = true;
  return g;
}

void TaskContext::Flush(bool force) {
  if (detached_) return;
  // One writer at a time, so an older progress report never overwrites a newer one.
  std::lock_guard flush_lock(flush_mu_);
  std::optional<json> progress;
  {
    std::lock_guard lock(progress_mu_);
    int64_t now = NowMs();
    if (!force && now - last_write_ms_ < manager_.options_.progress_interval_ms) return;
    progress = std::move(pending_progress_);
    pending_progress_.reset();
    last_write_ms_ = now;
  }
  auto r = manager_.store_.Heartbeat(record_.id, manager_.owner_, manager_.options_.lease_ms,
                                     progress ? &*progress : nullptr);
  if (!r.has_value()) {
    if (r.error().code() == StatusCode::kFailedPrecondition) {
      lease_lost_ = true;
    } else {
      spdlog::warn("task {}: heartbeat failed: {}", record_.id, r.error().ToString());
    }
    return;
  }
  if (*r) cancel_requested_ = true;
  if (progress) manager_.NotifyChange();
}

TaskManager::TaskManager(metadata::TaskStore& store, TaskManagerOptions options)
    : store_(store), options_(options), owner_(MakeOwnerId()) {}

TaskManager::~TaskManager() { Stop(); }

void TaskManager::Register(const std::string& type, TaskHandler handler, TaskValidator validator) {
  handlers_[type] = std::move(handler);
  if (validator) validators_[type] = std::move(validator);
  types_.clear();
  for (const auto& [name, h] : handlers_) types_.push_back(name);
}

bool TaskManager::HasType(const std::string& type) const { return handlers_.count(type) > 0; }

std::vector<std::string> TaskManager::Types() const { return types_; }

bool TaskManager::OwnerIsDead(const std::string& owner) {
  auto parts = Split(owner, ':');
  if (parts.size() != 3 || parts[0] != HostName()) return false;  // only the lease can tell
  auto pid = ParseInt(parts[1]);
  if (!pid) return false;
  std::string ticks = ProcessStartTicks(static_cast<long>(*pid));
  return ticks.empty() || ticks != parts[2];
}

Status TaskManager::Start() {
  if (started_) return FailedPrecondition("task manager already started");
  auto recovered = store_.RecoverAbandoned(&TaskManager::OwnerIsDead);
  if (!recovered.has_value()) return recovered.error().WithContext("recovering tasks");
  if (*recovered > 0) spdlog::warn("re-queued {} task(s) left by a stopped process", *recovered);
  stopping_ = false;
  // Another process's changes: idle workers wake when a task is queued, watchers of any task
  // see its progress at once.
  feed_ = store_.Subscribe([this](bool queued) {
    if (queued) {
      {
        std::lock_guard lock(mu_);
        ++submitted_;
      }
      wake_.notify_all();
    }
    NotifyChange();
  });
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(false); });
  if (options_.workers > 0 && !coordinator_types_.empty()) {
    for (int i = 0; i < options_.coordinators; ++i) workers_.emplace_back([this] { WorkerLoop(true); });
  }
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  started_ = true;
  return Status::Ok();
}

void TaskManager::Stop() {
  stopping_ = true;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, ctx] : running_) ctx->shutting_down_ = true;
  }
  if (!started_) return;
  wake_.notify_all();
  beat_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  heartbeat_.join();
  feed_.reset();
  started_ = false;
}

Result<TaskRecord> TaskManager::Submit(const std::string& type, const json& params,
                                       const std::string& submitted_by) {
  if (!HasType(type)) return Unimplemented("no handler for task type '" + type + "'");
  MLAAS_RETURN_IF_ERROR(CheckParamsSize(params, options_));
  MLAAS_ASSIGN_OR_RETURN(metadata::TaskRequirements requirements, ParseResources(params));
  if (std::find(coordinator_types_.begin(), coordinator_types_.end(), type) != coordinator_types_.end()) {
    requirements = {};  // a coordinator's resources are its tasks': it runs on any coordinator thread
  } else if (requirements.workers > 1 &&
             std::find(data_parallel_types_.begin(), data_parallel_types_.end(), type) == data_parallel_types_.end())
    return InvalidArgument("resources.workers: only training runs on several processes; ask for 1", "resources.workers");
  if (auto v = validators_.find(type); v != validators_.end()) MLAAS_RETURN_IF_ERROR(v->second(params));
  TaskRecord r;
  {
    // Other processes sharing the store may add a few tasks between the count and the
    // insert; within this process the bound is exact.
    std::lock_guard lock(submit_mu_);
    if (options_.max_queued_tasks > 0) {
      MLAAS_ASSIGN_OR_RETURN(int64_t queued, store_.Count(TaskState::kQueued));
      if (queued >= options_.max_queued_tasks) {
        return ResourceExhausted("the task queue is full (" + std::to_string(queued) +
                                 " tasks waiting, the most allowed); retry later");
      }
    }
    MLAAS_ASSIGN_OR_RETURN(r, store_.Create({type, params, options_.max_attempts, submitted_by, requirements}));
  }
  {
    std::lock_guard lock(mu_);
    ++submitted_;
  }
  wake_.notify_all();  // a worker or a coordinator: whichever claims this type
  NotifyChange();
  return r;
}

Result<json> TaskManager::RunDetached(TaskRecord record) { return RunDetached(std::move(record), {}, ""); }

Result<json> TaskManager::RunDetached(TaskRecord record, const metadata::GroupSeat& seat, const std::string& address) {
  auto handler = handlers_.find(record.type);
  if (handler == handlers_.end()) return Unimplemented("no handler for task type '" + record.type + "'");
  std::unique_ptr<TaskContext> ctx(new TaskContext(*this, std::move(record)));
  ctx->detached_ = true;
  if (!seat.id.empty()) {
    ctx->seat_ = seat;
    ctx->group_address_ = address;
  }
  const std::string id = ctx->id();
  {
    std::lock_guard lock(mu_);
    if (running_.count(id) > 0) return FailedPrecondition("task " + id + " already runs here");
    running_[id] = ctx.get();
    if (stopping_) ctx->shutting_down_ = true;
  }
  Result<json> result = Internal("no handler ran");
  // On a thread of its own, as RunTask does (libtorch's thread teams).
  try {
    std::thread([&] {
      try {
        result = handler->second(*ctx);
      } catch (...) {
        result = ExceptionStatus(std::current_exception());
      }
    }).join();
  } catch (...) {
    result = ExceptionStatus(std::current_exception());
  }
  std::lock_guard lock(mu_);
  running_.erase(id);
  return result;
}

Result<TaskRecord> TaskManager::Cancel(const std::string& id) {
  MLAAS_ASSIGN_OR_RETURN(TaskRecord r, store_.RequestCancel(id));
  {
    std::lock_guard lock(mu_);
    if (auto it = running_.find(id); it != running_.end()) it->second->cancel_requested_ = true;
  }
  NotifyChange();
  return r;
}

uint64_t TaskManager::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(change_mu_);
  change_cv_.wait_for(lock, timeout, [&] { return version_.load() != seen; });
  return version_.load();
}

size_t TaskManager::running_count() const {
  std::lock_guard lock(mu_);
  return running_.size();
}

void TaskManager::NotifyChange() {
  {
    std::lock_guard lock(change_mu_);
    ++version_;
  }
  change_cv_.notify_all();
}

bool TaskManager::IsDataParallelType(const std::string& type) const {
  return std::find(data_parallel_types_.begin(), data_parallel_types_.end(), type) != data_parallel_types_.end();
}

std::vector<std::string> TaskManager::ClaimableTypes() const {
  std::vector<std::string> out;
  for (const auto& t : types_) {
    if (std::find(coordinator_types_.begin(), coordinator_types_.end(), t) != coordinator_types_.end()) continue;
    // A training type only while this process trains nothing (a seat in a group, or a training
    // task on another worker thread): one training runs at a time per process, and a second one
    // stays queued (for another process to claim) instead of holding a worker that other types'
    // tasks need.
    if ((seat_id_.empty() && training_running_ == 0) || !IsDataParallelType(t)) out.push_back(t);
  }
  return out;
}

void TaskManager::WorkerLoop(bool coordinator) {
  while (!stopping_) {
    uint64_t seen;
    std::vector<std::string> types;
    // While this thread may claim a task of the data-parallel types, it counts as running one:
    // no other thread takes a seat in a group meanwhile (TryGather).
    bool may_train = false;
    {
      std::lock_guard lock(mu_);
      seen = submitted_;
      types = coordinator ? coordinator_types_ : ClaimableTypes();
      may_train = !coordinator && seat_id_.empty() && training_running_ == 0 && !data_parallel_types_.empty();
      if (may_train) ++training_running_;
    }
    const auto unreserve = [&] {
      if (!std::exchange(may_train, false)) return;
      std::lock_guard lock(mu_);
      --training_running_;
    };
    try {
      auto claimed = store_.ClaimNext(owner_, types, options_.lease_ms, options_.capabilities);
      if (claimed.has_value() && claimed->has_value()) {
        if (!IsDataParallelType((*claimed)->type)) unreserve();
        RunTask(std::move(**claimed));
        unreserve();
        continue;
      }
      unreserve();
      if (!claimed.has_value()) spdlog::error("claiming a task failed: {}", claimed.error().ToString());
      if (!coordinator && options_.gather_groups && TryGather()) continue;
    } catch (...) {
      unreserve();
      // RunTask records every outcome itself; this is the store or memory failing.
      spdlog::error("task worker: {}", ExceptionStatus(std::current_exception()).ToString());
    }
    const int64_t poll_ms = feed_ ? std::max<int64_t>(options_.poll_interval_ms, 5000) : options_.poll_interval_ms;
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(poll_ms),
                   [&] { return stopping_.load() || submitted_ != seen; });
  }
}

bool TaskManager::TryGather() {
  std::vector<std::string> types, skip;
  {
    std::lock_guard lock(mu_);
    if (!seat_id_.empty() || training_running_ > 0 || stopping_) return false;
    seat_id_ = "-";  // this thread's, until it has a seat or gives up
    for (const auto& t : types_)
      if (IsDataParallelType(t)) types.push_back(t);
    const int64_t now = NowMs();
    for (auto it = skip_until_.begin(); it != skip_until_.end();) {
      if (it->second <= now) {
        it = skip_until_.erase(it);
      } else {
        skip.push_back(it->first);
        ++it;
      }
    }
  }
  struct Vacate {
    TaskManager& m;
    ~Vacate() {
      std::lock_guard lock(m.mu_);
      m.seat_id_.clear();
    }
  } vacate{*this};
  auto joined = store_.JoinGroup(owner_, types, options_.lease_ms, options_.capabilities, skip);
  if (!joined.has_value()) {
    spdlog::error("joining a group failed: {}", joined.error().ToString());
    return false;
  }
  if (!joined->has_value()) return false;
  const metadata::GroupSeat seat = **joined;
  {
    std::lock_guard lock(mu_);
    seat_id_ = seat.id;
  }
  // Whatever happens next, the seat is given up on the way out.
  struct Leave {
    TaskManager& m;
    const metadata::GroupSeat& seat;
    ~Leave() {
      if (auto left = m.store_.LeaveGroup(seat.id, m.owner_); !left.has_value())
        spdlog::warn("task {}: cannot give up the seat (it expires): {}", seat.task_id, left.error().ToString());
    }
  } leave{*this, seat};
  try {
    spdlog::info("task {}: took rank {} of the {} it gathers", seat.task_id, seat.rank, seat.world);
    (void)store_.AppendLog(seat.task_id, "info",
                           owner_ + " took rank " + std::to_string(seat.rank) + " of the " + std::to_string(seat.world) +
                               " workers this task gathers");
    StayInGroup(seat);
  } catch (...) {
    spdlog::error("task {}: {}", seat.task_id, ExceptionStatus(std::current_exception()).ToString());
  }
  return true;
}

void TaskManager::StayInGroup(metadata::GroupSeat seat) {
  // While this process trains with the group, no other thread of it takes a seat.
  struct Training {
    TaskManager& m;
    explicit Training(TaskManager& manager) : m(manager) {
      std::lock_guard lock(m.mu_);
      ++m.training_running_;
    }
    ~Training() {
      std::lock_guard lock(m.mu_);
      --m.training_running_;
    }
  };
  const int64_t joined_ms = NowMs();
  int64_t unsettled_since = 0;  // when the task's state and this seat's first disagreed
  const auto settled = [&] { unsettled_since = 0; };
  // What a renewal sees may lag a claim in progress (the task running, the seat not yet stamped,
  // or the reverse): only when that lasts is the seat given up.
  const auto unsettled = [&] {
    if (unsettled_since == 0) unsettled_since = NowMs();
    return NowMs() - unsettled_since > options_.group_address_wait_ms;
  };
  while (!stopping_) {
    auto g = store_.RenewSeat(seat.id, owner_, options_.lease_ms);
    if (!g.has_value()) {
      if (g.error().code() == StatusCode::kFailedPrecondition) {
        spdlog::warn("task {}: {}", seat.task_id, g.error().ToString());
        return;
      }
      spdlog::warn("task {}: renewing the seat failed: {}", seat.task_id, g.error().ToString());
    } else if (metadata::IsTerminal(g->state) || g->cancel_requested) {
      return;
    } else if (g->attempt == 0) {
      if (g->state != TaskState::kQueued) {
        // Taken otherwise (a torchrun group), or claimed by this group a moment ago.
        if (unsettled()) return;
      } else {
        settled();
        if (seat.rank == 0 && g->seated >= seat.world && !stopping_) {
          auto claimed = store_.ClaimGathered(seat, owner_, options_.lease_ms);
          if (!claimed.has_value())
            spdlog::warn("task {}: claiming it failed: {}", seat.task_id, claimed.error().ToString());
          if (claimed.has_value() && claimed->has_value()) {
            seat.attempt = (*claimed)->attempts;
            Training training(*this);
            RunTask(std::move(**claimed), seat);
            return;
          }
        } else if (g->seated < seat.world && options_.group_gather_timeout_ms > 0 &&
                   NowMs() - joined_ms > options_.group_gather_timeout_ms) {
          // The group does not fill up: this worker goes back to other work, and to this task
          // no sooner than after as long again.
          const std::string why = owner_ + " left rank " + std::to_string(seat.rank) + " after waiting " +
                                  std::to_string((NowMs() - joined_ms) / 1000) + " s with " +
                                  std::to_string(g->seated) + " of the " + std::to_string(seat.world) +
                                  " workers seated; it comes back later";
          // Only while still gathering: rank 0 may have just claimed the task with this seat.
          auto left = store_.LeaveGroup(seat.id, owner_, /*only_while_gathering=*/true);
          if (left.has_value() && *left) {
            spdlog::info("task {}: {}", seat.task_id, why);
            (void)store_.AppendLog(seat.task_id, "info", why);
            std::lock_guard lock(mu_);
            skip_until_[seat.task_id] = NowMs() + options_.group_gather_timeout_ms;
            return;
          }
        }
      }
    } else if (seat.rank > 0) {
      // Rank 0 claimed the task with this group: run it once it says where its store is. The
      // seat is read before the task, so a queued task means that attempt has already ended.
      seat.attempt = g->attempt;
      if (g->state == TaskState::kQueued) return;
      if (g->state == TaskState::kRunning && !g->address.empty()) {
        auto record = store_.Get(seat.task_id);
        if (!record.has_value()) {
          spdlog::warn("task {}: {}", seat.task_id, record.error().ToString());
          return;
        }
        record->attempts = seat.attempt;
        spdlog::info("task {}: running as rank {} of {} (attempt {})", seat.task_id, seat.rank, seat.world, seat.attempt);
        Training training(*this);
        auto result = RunDetached(std::move(*record), seat, g->address);
        if (result.has_value()) {
          spdlog::info("task {}: this rank's share is done", seat.task_id);
        } else {
          spdlog::warn("task {}: {}", seat.task_id, result.error().ToString());
        }
        return;
      }
      if (unsettled()) {
        spdlog::warn("task {}: rank 0 did not say where its group meets; leaving the group", seat.task_id);
        return;
      }
    } else {
      // Rank 0's seat stamped by a claim whose reply was lost (PostgreSQL, a dropped connection):
      // the task's lease runs out and it goes back to the queue.
      return;
    }
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(1000, options_.poll_interval_ms * 2)),
                   [&] { return stopping_.load(); });
  }
}

void TaskManager::HeartbeatLoop() {
  auto tick = std::chrono::milliseconds(
      std::max<int64_t>(10, std::min(options_.lease_ms / 3, options_.recover_interval_ms)));
  int64_t next_beat = NowMs() + options_.lease_ms / 3;
  int64_t next_recover = NowMs() + options_.recover_interval_ms;
  int64_t next_retention = NowMs();
  std::string seat;  // the seat to renew, read under the lock and renewed outside it
  while (!stopping_) {
    try {
      {
        std::unique_lock lock(mu_);
        beat_cv_.wait_for(lock, tick, [&] { return stopping_.load(); });
        if (stopping_) break;
        if (NowMs() >= next_beat) {
          next_beat = NowMs() + options_.lease_ms / 3;
          // Holding mu_ keeps every context alive while we renew its lease.
          for (auto& [id, ctx] : running_) ctx->Flush(true);
          if (seat_id_ != "-") seat = seat_id_;
        }
      }
      // A seat in a group: rank 0's carries the group's address while the others start, and
      // rank 0 counts its members by their live seats.
      if (!seat.empty()) (void)store_.RenewSeat(std::exchange(seat, std::string()), owner_, options_.lease_ms);
      if (NowMs() >= next_recover) {
        next_recover = NowMs() + options_.recover_interval_ms;
        auto n = store_.RecoverAbandoned(&TaskManager::OwnerIsDead);
        if (!n.has_value()) {
          spdlog::warn("task recovery failed: {}", n.error().ToString());
        } else if (*n > 0) {
          spdlog::warn("re-queued {} abandoned task(s)", *n);
          {
            std::lock_guard lock(mu_);
            ++submitted_;
          }
          wake_.notify_all();
          NotifyChange();
        }
      }
      if (options_.finished_retention_ms > 0 && NowMs() >= next_retention) {
        next_retention = NowMs() + std::max<int64_t>(1000, options_.retention_interval_ms);
        SweepFinished();
      }
    } catch (...) {
      spdlog::error("task heartbeat: {}", ExceptionStatus(std::current_exception()).ToString());
    }
  }
}

void TaskManager::SweepFinished() {
  auto n = store_.DeleteFinishedBefore(NowMs() - options_.finished_retention_ms);
  if (!n.has_value()) {
    spdlog::warn("deleting old finished tasks failed: {}", n.error().ToString());
  } else if (*n > 0) {
    spdlog::info("deleted {} task(s) finished more than {} s ago", *n, options_.finished_retention_ms / 1000);
    NotifyChange();
  }
}

void TaskManager::RunTask(TaskRecord record, std::optional<metadata::GroupSeat> seat) {
  std::unique_ptr<TaskContext> ctx(new TaskContext(*this, std::move(record)));
  ctx->seat_ = std::move(seat);
  const std::string id = ctx->id();
  {
    std::lock_guard lock(mu_);
    running_[id] = ctx.get();
    if (stopping_) ctx->shutting_down_ = true;
  }
  // Whatever happens below, the context leaves running_ before it is destroyed.
  struct Unlist {
    TaskManager& m;
    const std::string& id;
    ~Unlist() {
      std::lock_guard lock(m.mu_);
      m.running_.erase(id);
    }
  };
  Result<json> result = Internal("no handler ran");
  {
    Unlist unlist{*this, id};
    NotifyChange();
    ctx->Log("info", "attempt " + std::to_string(ctx->attempt()) + " of " +
                         std::to_string(ctx->record_.max_attempts) + " started on " + owner_);
    spdlog::info("task {} ({}) started, attempt {}", id, ctx->type(), ctx->attempt());
    // The attempt runs on a thread that ends with it: a thread that has run libtorch
    // operators keeps an OpenMP thread team for its life, and more teams than cores slow
    // every team down (the passes of the models served beside; src/predict/compute_thread.h).
    try {
      std::thread([&] {
        try {
          result = handlers_.at(ctx->type())(*ctx);
        } catch (...) {
          result = ExceptionStatus(std::current_exception());
        }
      }).join();
    } catch (...) {  // no thread could be started
      result = ExceptionStatus(std::current_exception());
    }
  }
  try {
    ctx->Flush(true);  // last progress report; also learns of a late cancel or a lost lease
    RecordOutcome(*ctx, result);
  } catch (...) {
    Status err = ExceptionStatus(std::current_exception());
    spdlog::error("task {}: cannot record the outcome: {}", id, err.ToString());
    (void)store_.Finish(id, owner_, TaskState::kFailed, json(),
                        json{{"code", StatusCodeName(err.code())}, {"message", err.message()}});
  }
  NotifyChange();
}

void TaskManager::RecordOutcome(TaskContext& ctx, const Result<json>& result) {
  const std::string& id = ctx.id();
  Status st;
  if (ctx.lease_lost_) {
    spdlog::warn("task {}: lease lost while running; its new holder decides the outcome", id);
  } else if (!result.has_value() && ctx.cancel_requested_) {
    ctx.Log("info", "cancelled");
    st = store_.Finish(id, owner_, TaskState::kCancelled, json(),
                       json{{"code", "cancelled"}, {"message", "cancelled by request"}});
    spdlog::info("task {} cancelled", id);
  } else if (!result.has_value() && ctx.handed_back() && (!ctx.retry_ || !ctx.retry_counts_)) {
    ctx.Log("info", ctx.retry_ ? "handed back to the queue: " + result.error().message()
                               : "worker shutting down; task handed back to the queue");
    st = store_.Release(id, owner_);
  } else if (!result.has_value() && ctx.handed_back()) {
    const Status& err = result.error();
    json e = {{"code", StatusCodeName(err.code())}, {"message", err.message()}};
    auto next = store_.Requeue(id, owner_, e);
    if (next.has_value()) {
      const std::string what =
          *next == TaskState::kQueued      ? "; the task goes back to the queue and resumes from its checkpoint"
          : *next == TaskState::kCancelled ? "; the task was cancelled meanwhile"
                                           : "; no attempt left (" + std::to_string(ctx.record_.max_attempts) + " made)";
      ctx.Log(*next == TaskState::kFailed ? "error" : "warn",
              "attempt " + std::to_string(ctx.attempt()) + " failed: " + err.message() + what);
      spdlog::warn("task {}: attempt {} failed ({}); {}", id, ctx.attempt(), err.ToString(), TaskStateName(*next));
    }
    st = next.status();
  } else if (result.has_value()) {
    ctx.Log("info", "succeeded");
    st = store_.Finish(id, owner_, TaskState::kSucceeded, *result, json());
    spdlog::info("task {} succeeded", id);
  } else {
    const Status& err = result.error();
    json e = {{"code", StatusCodeName(err.code())}, {"message", err.message()}};
    if (!err.field().empty()) e["field"] = err.field();
    ctx.Log("error", err.ToString());
    st = store_.Finish(id, owner_, TaskState::kFailed, json(), e);
    spdlog::warn("task {} failed: {}", id, err.ToString());
  }
  if (!st.ok()) spdlog::error("task {}: cannot record the outcome: {}", id, st.ToString());
}

}  // namespace mlaas::tasks
