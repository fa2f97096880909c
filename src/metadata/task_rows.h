// What the SQLite and PostgreSQL task stores share, private to the metadata module: the
// columns a task record is read from, how stored JSON is read back, and what becomes of a task
// whose worker was lost.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "metadata/task_store.h"

namespace mlaas::metadata {

inline constexpr size_t kMaxLogMessageBytes = 8192;

// In this order in every SELECT ... / RETURNING of a task record.
inline constexpr const char* kTaskColumns =
    "id, type, status, params, progress, result, error, submitted_ms, started_ms, finished_ms, "
    "updated_ms, attempts, max_attempts, cancel_requested, lease_owner, lease_expires_ms, seq, "
    "revision, submitted_by, req_gpus, req_labels, req_workers";

// A stored JSON column (`fallback` when empty or unreadable).
inline nlohmann::json ParseStoredJson(const std::string& text, const nlohmann::json& fallback) {
  if (text.empty()) return fallback;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? fallback : j;
}

// The record from one row of kTaskColumns: `row` has Text(i), IsNull(i) and Int(i).
template <typename Row>
TaskRecord ReadTaskRecord(const Row& row, int64_t* seq = nullptr) {
  using nlohmann::json;
  TaskRecord r;
  r.id = row.Text(0);
  r.type = row.Text(1);
  r.state = ParseTaskState(row.Text(2)).value_or(TaskState::kFailed);
  r.params = ParseStoredJson(row.Text(3), json::object());
  r.progress = ParseStoredJson(row.Text(4), json::object());
  r.result = row.IsNull(5) ? json() : ParseStoredJson(row.Text(5), json());
  r.error = row.IsNull(6) ? json() : ParseStoredJson(row.Text(6), json());
  r.submitted_ms = row.Int(7);
  r.started_ms = row.Int(8);
  r.finished_ms = row.Int(9);
  r.updated_ms = row.Int(10);
  r.attempts = static_cast<int>(row.Int(11));
  r.max_attempts = static_cast<int>(row.Int(12));
  r.cancel_requested = row.Int(13) != 0;
  r.lease_owner = row.IsNull(14) ? "" : row.Text(14);
  r.lease_expires_ms = row.Int(15);
  if (seq) *seq = row.Int(16);
  r.revision = row.Int(17);
  r.submitted_by = row.Text(18);
  r.requirements.gpus = static_cast<int>(row.Int(19));
  for (const auto& label : ParseStoredJson(row.Text(20), json::array())) {
    if (label.is_string()) r.requirements.labels.push_back(label.template get<std::string>());
  }
  r.requirements.workers = static_cast<int>(row.Int(21));
  return r;
}

inline std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The stored form of TaskRequirements::labels.
inline std::string LabelsJson(const std::vector<std::string>& labels) { return DumpJson(nlohmann::json(labels)); }
// The labels of a stored JSON array (what is not a string is left out).
inline std::vector<std::string> ParseLabels(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& l : ParseStoredJson(text, nlohmann::json::array()))
    if (l.is_string()) out.push_back(l.get<std::string>());
  return out;
}

// A running task whose lease expired (or whose worker is gone): cancelled when that was asked,
// failed when it used its attempts, queued again otherwise; the log line that says so.
struct Recovery {
  TaskState next = TaskState::kQueued;
  nlohmann::json error;  // null when queued again
  std::string log;
};

// The error of a task whose cancel arrived while its attempt was ending otherwise.
inline const nlohmann::json kCancelledWhileStopping = {{"code", "cancelled"},
                                                       {"message", "cancelled; the worker stopped before it"}};

inline Recovery RecoveryFor(const TaskRecord& t, bool expired) {
  const std::string why = expired ? "its lease expired" : "worker " + t.lease_owner + " is gone";
  Recovery r;
  if (t.cancel_requested) {
    r.next = TaskState::kCancelled;
    r.error = kCancelledWhileStopping;
  } else if (t.attempts >= t.max_attempts) {
    r.next = TaskState::kFailed;
    r.error = {{"code", "interrupted"},
               {"message", "the task was interrupted " + std::to_string(t.attempts) + " time(s), the most allowed (" +
                               why + ")"}};
  }
  r.log = "attempt " + std::to_string(t.attempts) + " was interrupted (" + why + "); task " +
          (r.next == TaskState::kQueued ? "re-queued" : std::string(TaskStateName(r.next)));
  return r;
}

}  // namespace mlaas::metadata
