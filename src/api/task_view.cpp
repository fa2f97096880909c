#include "api/task_view.h"

#include "common/time_util.h"

namespace mlaas::api {

using nlohmann::json;

json TaskToJson(const metadata::TaskRecord& t, int64_t now_ms, bool detail) {
  json stats = {{"submitted", FormatIsoUtc(t.submitted_ms)},
                {"attempts", t.attempts},
                {"max_attempts", t.max_attempts}};
  if (t.started_ms > 0) stats["started"] = FormatIsoUtc(t.started_ms);
  if (t.finished_ms > 0) stats["finished"] = FormatIsoUtc(t.finished_ms);
  // The worker holding a running task (host:pid:start), e.g. to find its host's logs.
  if (t.state == metadata::TaskState::kRunning && !t.lease_owner.empty()) stats["worker"] = t.lease_owner;
  int64_t end = t.finished_ms > 0 ? t.finished_ms : now_ms;
  stats["elapsed"] = FormatElapsed(t.started_ms > 0 ? end - t.started_ms : 0);

  json out = {{"task_id", t.id},
              {"task_type", t.type},
              {"task_status", metadata::TaskStateName(t.state)}};
  if (t.cancel_requested && !metadata::IsTerminal(t.state)) out["cancel_requested"] = true;
  // A task's result fields sit at the top level, as in SPEC.md's training output; result
  // stats (tokens/s, device, ...) join the task's own stats.
  if (t.result.is_object()) {
    for (auto it = t.result.begin(); it != t.result.end(); ++it) {
      if (it.key() == "stats" && it.value().is_object()) {
        for (auto s = it.value().begin(); s != it.value().end(); ++s) {
          if (!stats.contains(s.key())) stats[s.key()] = s.value();
        }
      } else if (!out.contains(it.key()) && it.key() != "progress" && it.key() != "error" &&
                 it.key() != "request") {
        out[it.key()] = it.value();
      }
    }
  }
  out["stats"] = stats;
  out["progress"] = t.progress;
  if (!t.error.is_null()) out["error"] = t.error;
  if (detail) out["request"] = t.params;
  return out;
}

}  // namespace mlaas::api
