// The sweep task: its submit-time checks and the controller that runs its trials.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <thread>

#include "common/json_schema.h"
#include "common/text.h"
#include "sweep/sweep.h"

namespace mlaas::sweep {

using json = nlohmann::json;
using metadata::TaskState;

namespace {

// The first path component of a training error's field inside model_train, if it is a searched
// one: the field to name in the sweep's error.
const Param* SearchedParam(const SweepSpec& spec, const std::string& field) {
  for (const auto& p : spec.params) {
    const std::string full = "model_train." + p.path;
    // The field is the parameter, inside it, or a member on its path that the request may not
    // have ("optimizer.foo" of a searched "optimizer.foo.bar").
    if (field == full || field.rfind(full + ".", 0) == 0) return &p;
    if (field.rfind("model_train.", 0) == 0 && full.rfind(field + ".", 0) == 0) return &p;
  }
  return nullptr;
}

std::string Describe(const json& point) {
  std::string out;
  for (auto it = point.begin(); it != point.end(); ++it) out += (out.empty() ? "" : ", ") + it.key() + "=" + it.value().dump();
  return out;
}

// One trial, as the sweep follows it.
struct Trial {
  int64_t index = 0;
  std::string task_id{};
  json point = json::object();
  std::string state = "pending";  // then queued, running, succeeded, failed, cancelled, pruned, stopped
  std::map<int64_t, double> rung_values{};
  int64_t judged = 0;              // the last rung epoch judged (the trial waits for it)
  int64_t pruned_at = 0;
  bool stopping = false;           // cancelled by the sweep (pruned, or the time budget)
  bool cancel_sent = false;        // ...and the store has the cancel request
  std::optional<double> metric{};  // the last (or final) value of the sweep's metric
  int64_t epochs = 0;
  json result = nullptr;
  std::string error{};

  bool active() const { return state == "queued" || state == "running"; }
  bool finished() const { return !task_id.empty() && !active(); }

  json ToJson() const {
    json j = {{"trial", index + 1}, {"task_id", task_id}, {"state", state}, {"params", point}, {"epochs", epochs}};
    j["metric"] = metric ? json(*metric) : json(nullptr);
    json rungs = json::object();
    for (const auto& [r, v] : rung_values) rungs[std::to_string(r)] = v;
    j["rung_metrics"] = rungs;
    j["judged"] = judged;
    if (pruned_at > 0) j["pruned_at"] = pruned_at;
    if (stopping) j["stopping"] = true;
    if (!error.empty()) j["error"] = error;
    return j;
  }
};

class Controller {
 public:
  Controller(tasks::TaskManager& manager, const std::string& train_type, tasks::TaskContext& ctx, SweepSpec spec)
      : manager_(manager), train_type_(train_type), ctx_(ctx), spec_(std::move(spec)), asha_(spec_) {
    plan_ = PlanTrials(spec_);
    rungs_ = Rungs(spec_);
    key_ = spec_.metric.substr(5);  // the evaluation's key (the history's is eval_<key>)
  }

  Result<json> Run() {
    Resume();
    Follow();  // where the resumed trials stand, before anything is decided
    const auto start = std::chrono::steady_clock::now();
    const json& at_start = ctx_.progress_at_start();
    const double before = at_start.is_object() && at_start.contains("sweep_seconds") && at_start["sweep_seconds"].is_number()
                              ? at_start["sweep_seconds"].get<double>()
                              : 0.0;
    auto seconds = [&] { return before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    bool over_time = false;
    while (true) {
      const uint64_t seen = manager_.version();
      if (ctx_.cancelled()) {
        // A sweep handed back (shutdown, lost lease) leaves its trials to the next attempt.
        if (!ctx_.handed_back()) StopActive("the sweep was cancelled");
        return ctx_.CheckCancelled();
      }
      if (!over_time && spec_.max_seconds > 0 && seconds() >= spec_.max_seconds) {
        over_time = true;
        ctx_.Log("info", "the time budget of " + std::to_string(spec_.max_seconds) + " s is spent: stopping the trials");
        StopActive("the sweep's time budget is spent");
      }
      if (!over_time) MLAAS_RETURN_IF_ERROR(SubmitMore());
      Follow();
      Report(seconds());
      const bool all_started = over_time || next_ >= static_cast<int64_t>(plan_.size());
      if (all_started && std::none_of(trials_.begin(), trials_.end(), [](const Trial& t) { return t.active(); })) break;
      manager_.WaitForChange(seen, std::chrono::milliseconds(250));
    }
    return Finish(seconds());
  }

 private:
  // The trials an earlier attempt started (its last progress report).
  static int64_t IntOf(const json& j, const char* key) {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : 0;
  }

  void Resume() {
    const json& before = ctx_.progress_at_start();
    if (!before.is_object() || !before.contains("trials") || !before["trials"].is_array()) return;
    std::set<int64_t> seen;
    for (const auto& j : before["trials"]) {
      if (!j.is_object()) continue;
      Trial t;
      t.index = IntOf(j, "trial") - 1;
      if (t.index < 0 || t.index >= static_cast<int64_t>(plan_.size()) || !seen.insert(t.index).second) continue;
      t.point = plan_[static_cast<size_t>(t.index)];
      const bool submitted = j.contains("task_id") && j["task_id"].is_string() && !j["task_id"].get<std::string>().empty();
      if (!submitted) {  // refused when it was submitted
        t.state = "failed";
        t.error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "refused";
      } else {
        t.task_id = j["task_id"].get<std::string>();
        t.state = "queued";  // Follow reads where it stands
      }
      t.judged = IntOf(j, "judged");
      t.pruned_at = IntOf(j, "pruned_at");
      t.stopping = t.pruned_at > 0 || (j.contains("stopping") && j["stopping"] == true);
      if (j.contains("rung_metrics") && j["rung_metrics"].is_object()) {
        for (auto it = j["rung_metrics"].begin(); it != j["rung_metrics"].end(); ++it) {
          const std::optional<int64_t> rung = ParseInt(it.key());
          if (!it.value().is_number() || !rung) continue;
          t.rung_values[*rung] = it.value().get<double>();
          asha_.Judge(*rung, t.index, it.value().get<double>());
        }
      }
      next_ = std::max(next_, t.index + 1);
      trials_.push_back(std::move(t));
    }
    std::sort(trials_.begin(), trials_.end(), [](const Trial& a, const Trial& b) { return a.index < b.index; });
    if (!trials_.empty()) ctx_.Log("info", "resuming with the " + std::to_string(trials_.size()) + " trial(s) started before");
  }

  Status SubmitMore() {
    int64_t active = std::count_if(trials_.begin(), trials_.end(), [](const Trial& t) { return t.active(); });
    while (active < spec_.parallel_trials && next_ < static_cast<int64_t>(plan_.size())) {
      Trial t;
      t.index = next_;
      t.point = plan_[static_cast<size_t>(next_)];
      const json request = TrialRequest(ctx_.params(), spec_, t.point, t.index, ctx_.id());
      auto r = manager_.Submit(train_type_, request, ctx_.submitted_by());
      if (!r.has_value()) {
        if (r.error().code() == StatusCode::kResourceExhausted) return Status::Ok();  // the queue is full: later
        t.state = "failed";
        t.error = r.error().message();
        ctx_.Log("warning", "trial " + std::to_string(t.index + 1) + " (" + Describe(t.point) + ") was refused: " + t.error);
      } else {
        t.task_id = r->id;
        t.state = "queued";
        ++active;
        ctx_.Log("info", "trial " + std::to_string(t.index + 1) + " (" + Describe(t.point) + "): task " + t.task_id);
      }
      trials_.push_back(std::move(t));
      ++next_;
      // Stored at once: a sweep that restarts finds this trial instead of starting it again.
      Report(0, /*force=*/true);
      ctx_.FlushProgress();
    }
    return Status::Ok();
  }

  void StopActive(const std::string& why, std::string_view level = "info") {
    for (auto& t : trials_) {
      if (!t.active()) continue;
      t.stopping = true;
      SendCancel(t);
    }
    ctx_.Log(level, why);
  }

  // Cancels a trial the sweep stops (pruned, or out of time); retried by Follow until the store
  // has it.
  void SendCancel(Trial& t) {
    if (t.cancel_sent || t.task_id.empty()) return;
    if (auto r = manager_.Cancel(t.task_id); r.has_value()) {
      t.cancel_sent = true;
    } else {
      ctx_.Log("warning", "cannot cancel trial " + std::to_string(t.index + 1) + " (will retry): " + r.error().message());
    }
  }

 public:
  // Whatever ended the sweep (an error, an exception): its trials stop with it.
  void Abandon(const std::string& why) {
    StopActive("the sweep ended (" + why + "): its running trials are cancelled", "warning");
  }

 private:

  void Follow() {
    for (auto& t : trials_) {
      if (!t.active()) continue;
      auto rec = ctx_.ReadTask(t.task_id);
      if (!rec.has_value()) {
        if (rec.error().code() == StatusCode::kNotFound) {
          t.state = "failed";
          t.error = "the trial's task is gone";
        }
        continue;
      }
      const bool succeeded = rec->state == TaskState::kSucceeded;
      const json empty = json::object();
      const json& progress = rec->progress.is_object() ? rec->progress : empty;
      const json& from = succeeded && rec->result.is_object() && rec->result.contains("history") ? rec->result["history"]
                         : progress.contains("history")                                          ? progress["history"]
                                                                                                 : empty;
      const json& history = from.is_object() ? from : empty;
      const json values = history.contains(spec_.metric) && history[spec_.metric].is_array() ? history[spec_.metric] : json::array();
      const int64_t epochs_done =
          history.contains("epoch") && history["epoch"].is_array() ? static_cast<int64_t>(history["epoch"].size()) : 0;
      t.epochs = epochs_done;
      // The last value reached; none when it is not a number (a diverged run's NaN is stored as null).
      if (!values.empty()) t.metric = values.back().is_number() ? std::optional<double>(values.back().get<double>()) : std::nullopt;
      // A trial the sweep stops is cancelled until the store has it. A pruned one reads why in the
      // sweep's table: the report that says so (buffered, progress_interval) is stored first.
      if (t.stopping && !metadata::IsTerminal(rec->state)) {
        if (t.pruned_at > 0 && !t.cancel_sent) ctx_.FlushProgress();
        SendCancel(t);
      }
      // The rungs it reached, in order: a pruned trial is cancelled at the next pass, and its
      // verdict (judged) published only once the store has the cancel. An epoch without the metric
      // (no evaluation split) is judged too, so that the trial does not wait for it.
      for (int64_t rung : rungs_) {
        if (rung <= t.judged || t.stopping) continue;
        if (epochs_done < rung) break;
        const bool has = static_cast<int64_t>(values.size()) >= rung;
        if (!has && !history.contains(spec_.metric)) {
          t.judged = rung;
          continue;
        }
        const json& at = has ? values[static_cast<size_t>(rung - 1)] : json();
        const double v = at.is_number() ? at.get<double>() : std::numeric_limits<double>::quiet_NaN();
        if (std::isfinite(v)) t.rung_values[rung] = v;
        if (asha_.Judge(rung, t.index, v) || metadata::IsTerminal(rec->state)) {
          t.judged = rung;
          continue;
        }
        t.pruned_at = rung;
        t.stopping = true;
        ctx_.Log("info", "trial " + std::to_string(t.index + 1) + " pruned at epoch " + std::to_string(rung) + ": " +
                             spec_.metric + " " + (std::isfinite(v) ? std::to_string(v) : "not a number") +
                             " is not among the best 1/" + std::to_string(spec_.asha.reduction_factor) + " at that rung");
        // Cancelled at the next pass, after the table that says so (pruned_at) is reported and
        // stored: the trial, cancelled, reads there why.
      }
      if (t.pruned_at > 0 && t.cancel_sent) t.judged = std::max(t.judged, t.pruned_at);
      switch (rec->state) {
        case TaskState::kQueued: t.state = "queued"; break;
        case TaskState::kRunning: t.state = "running"; break;
        case TaskState::kSucceeded: {
          t.state = "succeeded";
          t.result = rec->result.is_object() ? rec->result : json::object();
          const json& ev = t.result.contains("evaluation") ? t.result["evaluation"] : empty;
          if (ev.is_object() && ev.contains(key_)) t.metric = ev[key_].is_number() ? std::optional<double>(ev[key_].get<double>()) : std::nullopt;
          break;
        }
        case TaskState::kFailed:
          t.state = "failed";
          t.error = rec->error.is_object() && rec->error.contains("message") && rec->error["message"].is_string()
                        ? rec->error["message"].get<std::string>()
                        : "failed";
          break;
        case TaskState::kCancelled:
          t.state = t.pruned_at > 0 ? "pruned" : t.stopping ? "stopped" : "cancelled";
          break;
      }
      if (t.finished()) {
        ctx_.Log("info", "trial " + std::to_string(t.index + 1) + " " + t.state +
                             (t.metric ? ": " + spec_.metric + " " + std::to_string(*t.metric) : ""));
      }
    }
  }

  bool Better(double a, double b) const { return spec_.direction == Direction::kMaximize ? a > b : a < b; }

  const Trial* Best() const {
    const Trial* best = nullptr;
    for (const auto& t : trials_) {
      if (t.state != "succeeded" || !t.metric || !std::isfinite(*t.metric)) continue;
      if (best == nullptr || Better(*t.metric, *best->metric)) best = &t;
    }
    return best;
  }

  json TrialsJson() const {
    json out = json::array();
    for (const auto& t : trials_) out.push_back(t.ToJson());
    return out;
  }

  // Stores the trials' table when it changed (or every 5 s, for the elapsed time).
  void Report(double seconds, bool force = false) {
    int64_t finished = 0, pruned = 0;
    json verdicts = json::object();
    for (const auto& t : trials_) {
      if (t.finished()) ++finished;
      if (t.state == "pruned") ++pruned;
      if (!t.task_id.empty()) verdicts[t.task_id] = t.judged;
    }
    const double planned = static_cast<double>(std::max<size_t>(1, plan_.size()));
    double fraction = static_cast<double>(finished) / planned;
    if (spec_.max_seconds > 0) fraction = std::max(fraction, std::min(1.0, seconds / spec_.max_seconds));
    tasks::Progress p;
    p.fraction = std::min(0.99, fraction);
    p.message = std::to_string(finished) + " of " + std::to_string(plan_.size()) + " trials finished" +
                (pruned > 0 ? " (" + std::to_string(pruned) + " pruned)" : "");
    p.extra = {{"trials", TrialsJson()}, {"verdicts", verdicts}, {"metric", spec_.metric}};
    if (const Trial* b = Best()) p.extra["best"] = {{"trial", b->index + 1}, {"metric", *b->metric}, {"params", b->point}};
    const auto now = std::chrono::steady_clock::now();
    if (!force && p.extra == last_reported_ && now - last_report_ < std::chrono::seconds(5)) return;
    last_reported_ = p.extra;
    last_report_ = now;
    if (seconds > 0) last_seconds_ = seconds;
    p.extra["sweep_seconds"] = last_seconds_;
    ctx_.ReportProgress(p);
  }

  Result<json> Finish(double seconds) {
    const Trial* best = Best();
    if (best == nullptr) {
      std::string why;
      for (const auto& t : trials_) {
        if (!t.error.empty()) {
          why = ": trial " + std::to_string(t.index + 1) + " failed: " + t.error;
          break;
        }
      }
      return FailedPrecondition("no trial finished with a value of " + spec_.metric + why);
    }
    json columns = json::array({"trial"});
    for (const auto& p : spec_.params) columns.push_back(p.path);
    columns.push_back(spec_.metric);
    columns.push_back("epochs");
    columns.push_back("state");
    json rows = json::array();
    int64_t succeeded = 0, pruned = 0, failed = 0, stopped = 0;
    for (const auto& t : trials_) {
      json row = json::array({t.index + 1});
      for (const auto& p : spec_.params) row.push_back(t.point.value(p.path, json()));
      row.push_back(t.metric ? json(*t.metric) : json(nullptr));
      row.push_back(t.epochs);
      row.push_back(t.state);
      rows.push_back(std::move(row));
      succeeded += t.state == "succeeded";
      pruned += t.state == "pruned";
      failed += t.state == "failed";
      stopped += t.state == "stopped" || t.state == "cancelled";
    }
    const json& r = best->result;
    json out = {{"metric", spec_.metric},
                {"direction", spec_.direction == Direction::kMaximize ? "maximize" : "minimize"},
                {"algorithm", spec_.algorithm == Algorithm::kGrid ? "grid" : "random"},
                {"scheduler", {{"type", spec_.asha.enabled ? "asha" : "none"}, {"rungs", rungs_}}},
                {"trials", TrialsJson()},
                {"best", {{"trial", best->index + 1}, {"task_id", best->task_id}, {"params", best->point},
                          {"metric", *best->metric}, {"model", r.value("model", json::object())}}},
                {"table", {{"columns", columns}, {"rows", rows}}},
                {"evaluation", r.value("evaluation", json::object())},
                {"history", r.value("history", json::object())},
                {"stats", {{"trials", trials_.size()}, {"succeeded", succeeded}, {"pruned", pruned}, {"failed", failed},
                           {"stopped", stopped}, {"seconds", seconds}}}};
    // Where the best model is: the catalog registers it from here (catalog::RegisteringTrainedModels).
    const json model = r.value("model", json::object());
    if (model.is_object() && model.contains("path")) {
      out["model_save"] = {{"path", model["path"]}, {"storage_type", model.value("storage_type", "local")}};
    }
    ctx_.Log("info", "best: trial " + std::to_string(best->index + 1) + " (" + Describe(best->point) + "), " + spec_.metric +
                         " " + std::to_string(*best->metric));
    return out;
  }

  tasks::TaskManager& manager_;
  const std::string& train_type_;
  tasks::TaskContext& ctx_;
  SweepSpec spec_;
  Asha asha_;
  std::vector<json> plan_;
  std::vector<int64_t> rungs_;
  std::string key_;
  std::vector<Trial> trials_;
  int64_t next_ = 0;
  json last_reported_;
  std::chrono::steady_clock::time_point last_report_{};
  double last_seconds_ = 0;
};

// The epoch at which a sweep's progress says it pruned the trial `task_id`; 0 when it did not.
int64_t PrunedAt(const json& progress, const std::string& task_id) {
  if (!progress.is_object() || !progress.contains("trials") || !progress["trials"].is_array()) return 0;
  for (const auto& t : progress["trials"]) {
    if (t.is_object() && t.value("task_id", json()) == task_id && t.contains("pruned_at") && t["pruned_at"].is_number_integer())
      return t["pruned_at"].get<int64_t>();
  }
  return 0;
}

}  // namespace

bool IsRung(const json& sweep_block, int64_t epoch) {
  if (!sweep_block.is_object() || !sweep_block.contains("rungs") || !sweep_block["rungs"].is_array()) return false;
  for (const auto& r : sweep_block["rungs"]) {
    if (r.is_number_integer() && r.get<int64_t>() == epoch) return true;
  }
  return false;
}

Status AwaitVerdict(tasks::TaskContext& ctx, const json& sweep_block, int64_t epoch, std::chrono::milliseconds timeout) {
  const std::string sweep_id = sweep_block.is_object() && sweep_block.contains("task_id") && sweep_block["task_id"].is_string()
                                   ? sweep_block["task_id"].get<std::string>()
                                   : "";
  if (sweep_id.empty()) return Status::Ok();
  const bool rung = IsRung(sweep_block, epoch);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto last_flush = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (rung && now - last_flush >= std::chrono::seconds(2)) {
      ctx.FlushProgress();  // the history reaches the store; a cancel (pruned) reaches us
      last_flush = now;
    }
    if (ctx.cancelled()) {
      // Pruned: said as such (the trial's last progress message), not as a bare cancel.
      if (auto s = ctx.ReadTask(sweep_id); s.has_value()) {
        if (const int64_t at = PrunedAt(s->progress, ctx.id()); at > 0)
          return Cancelled("pruned by the sweep " + sweep_id + " at epoch " + std::to_string(at));
      }
      return ctx.CheckCancelled();
    }
    auto s = ctx.ReadTask(sweep_id);
    if (!s.has_value()) return Status::Ok();
    if (s->state == TaskState::kCancelled || s->state == TaskState::kFailed)
      return Cancelled("the sweep " + sweep_id + " ended " + std::string(metadata::TaskStateName(s->state)) +
                       ": its trials stop with it");
    if (!rung || metadata::IsTerminal(s->state)) return Status::Ok();
    const json& p = s->progress;
    const json verdict = p.is_object() && p.contains("verdicts") && p["verdicts"].is_object() && p["verdicts"].contains(ctx.id())
                             ? p["verdicts"][ctx.id()]
                             : json();
    if (verdict.is_number_integer() && verdict.get<int64_t>() >= epoch) return Status::Ok();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ctx.Log("warning", "the sweep " + sweep_id + " did not judge epoch " + std::to_string(epoch) + " in time: going on");
  return Status::Ok();
}

tasks::TaskValidator MakeSweepValidator(tasks::TaskValidator train_validator, tasks::TaskValidator spec_validator,
                                        json model_train_schema) {
  return [train_validator = std::move(train_validator), spec_validator = std::move(spec_validator),
          schema = std::move(model_train_schema)](const json& params) -> Status {
    try {
      MLAAS_ASSIGN_OR_RETURN(SweepSpec spec, ParseSweepSpec(params));
      const json save = params.contains("model_save") ? params["model_save"] : json();
      if (!save.is_object() || !save.contains("path") || !save["path"].is_string() || save["path"].get<std::string>().empty())
        return InvalidArgument("a sweep saves each trial's model under model_save.path", "model_save.path");
      const std::vector<json> edges = EdgePoints(spec);
      // The first trial, checked whole (files, columns), with the sweep's metric as the
      // early-stopping metric: the training validator's rule says which metrics the objective has.
      json probe = TrialRequest(params, spec, edges.front(), 0, "");
      json& mt = probe["model_train"];
      if (!mt.contains("early_stopping") || !mt["early_stopping"].is_object()) mt["early_stopping"] = json::object();
      mt["early_stopping"]["metric"] = spec.metric;
      auto named = [&](const Status& st, const json& point) -> Status {
        const Param* searched = SearchedParam(spec, st.field());
        if (searched == nullptr) return st;  // the request's own error, named as it is
        // A uniform draw is a real number: an integer field is searched with int (or choice).
        const bool real = searched->kind == ParamKind::kUniform || searched->kind == ParamKind::kLogUniform;
        const bool integer = real && st.message().find("integer") != std::string::npos;
        return InvalidArgument("at " + Describe(point) + ": " + st.message() +
                                   (integer ? "; search an integer field with type int or choice" : ""),
                               "sweep.parameters." + searched->path);
      };
      if (Status st = train_validator ? train_validator(probe) : Status::Ok(); !st.ok()) {
        if (st.field() == "model_train.early_stopping.metric") return InvalidArgument("metric: " + st.message(), "sweep.metric");
        return named(st, edges.front());
      }
      for (const json& point : edges) {
        const json trial = TrialRequest(params, spec, point, 0, "");
        Status st = schema.is_null() ? Status::Ok() : ValidateJson(trial["model_train"], schema, "model_train");
        if (st.ok() && spec_validator) st = spec_validator(trial);
        if (!st.ok()) return named(st, point);
      }
      return Status::Ok();
    } catch (const json::exception& e) {
      return InvalidArgument(std::string("a malformed sweep request: ") + e.what(), "sweep");
    }
  };
}

tasks::TaskHandler MakeSweepHandler(tasks::TaskManager& manager, std::string train_type) {
  return [&manager, train_type](tasks::TaskContext& ctx) -> Result<json> {
    MLAAS_ASSIGN_OR_RETURN(SweepSpec spec, ParseSweepSpec(ctx.params()));
    Controller controller(manager, train_type, ctx, std::move(spec));
    Result<json> result = [&]() -> Result<json> {
      try {
        return controller.Run();
      } catch (const std::exception& e) {
        return Internal(std::string("the sweep stopped: ") + e.what());
      }
    }();
    // A failed sweep takes its trials with it; one handed back (shutdown) leaves them to its
    // next attempt, and a cancelled one has stopped them already.
    if (!result.has_value() && !ctx.handed_back() && result.error().code() != StatusCode::kCancelled)
      controller.Abandon(result.error().message());
    return result;
  };
}

}  // namespace mlaas::sweep
