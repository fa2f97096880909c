// mlaas::sweep — hyperparameter search over a training request's model_train fields.
//
// A sweep (task type nlp_sweep, POST /api/v1/ml/nlp/train/sweep) samples points of a search
// space (choice, uniform, log-uniform, int) by random or grid search, runs each as an ordinary
// training task (a trial: queued, claimed by any worker, visible and cancellable like any
// other), and stops trials early with asynchronous successive halving (ASHA) on epochs: at
// each rung epoch a trial whose metric is not in the best 1/reduction_factor of the trials
// that reached that rung is pruned (cancelled). Its result lists every trial's parameters and
// metrics, the best trial, and a table ready for a parallel-coordinates plot; the best
// trial's model is registered in the catalog when the request has a catalog block
// (catalog::RegisteringTrainedModels reads the result's model_save).
//
// The sweep runs on the task manager's coordinator threads (TaskManager::RunOnCoordinators),
// so waiting for its trials never holds a worker they need. A re-run attempt (crash, restart)
// picks up the trials its earlier attempt started from the progress it stored.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "tasks/task_manager.h"

namespace mlaas::sweep {

inline constexpr char kSweepTask[] = "nlp_sweep";

enum class ParamKind { kChoice, kUniform, kLogUniform, kInt };
enum class Algorithm { kRandom, kGrid };
enum class Direction { kMinimize, kMaximize };

// One searched field: `path` is dotted, relative to model_train ("optimizer.init_lr").
struct Param {
  std::string path;
  ParamKind kind = ParamKind::kChoice;
  double min = 0;  // uniform, log_uniform, int (inclusive)
  double max = 0;
  std::vector<nlohmann::json> values{};  // choice
};

struct AshaSpec {
  bool enabled = false;
  int64_t min_epochs = 1;        // the first rung (the grace period)
  int64_t reduction_factor = 3;  // rungs at min_epochs * rf^k; the best 1/rf of a rung go on
};

struct SweepSpec {
  std::vector<Param> params{};
  Algorithm algorithm = Algorithm::kRandom;
  uint64_t seed = 0;
  std::string metric{};  // a history key: "eval_loss", "eval_accuracy", ...
  Direction direction = Direction::kMinimize;
  int64_t max_trials = 10;
  double max_seconds = 0;  // 0: no limit
  int64_t parallel_trials = 1;
  AshaSpec asha{};
  int64_t epochs = 10;  // every trial's model_train.epochs (the request's; not searched with ASHA)
};

// Parses the request's "sweep" block (and model_train.epochs); errors name the field
// ("sweep.parameters.optimizer.init_lr.max").
Result<SweepSpec> ParseSweepSpec(const nlohmann::json& params);

// The points to try, in order: a grid's product (at most max_trials of it) or max_trials
// random draws from `seed`. A point maps each param's path to its value.
std::vector<nlohmann::json> PlanTrials(const SweepSpec& spec);
// Points at the edges of the space, for checking a request before anything runs: every
// parameter at its first value, then each bound of one parameter — for a choice, its smallest
// and largest numbers and each other value (at most 64 of them).
std::vector<nlohmann::json> EdgePoints(const SweepSpec& spec);
// The training request of trial `index` (from 0) at `point`: the sweep's request without its
// sweep and catalog blocks, the point's values written into model_train, its own model_save
// (<model_save.path>/trial-<index+1>), and params.sweep {task_id, trial, rungs} for the trial's
// rung waits.
nlohmann::json TrialRequest(const nlohmann::json& sweep_params, const SweepSpec& spec, const nlohmann::json& point,
                            int64_t index, const std::string& sweep_task_id);

// A trial's side (params.sweep {task_id, trial, rungs}): whether `epoch` is one of its rungs,
// and, at the end of such an epoch, once its history is reported, the wait until the sweep has
// judged it (the sweep's progress.verdicts[trial task id] reaches `epoch`). Cancelled when the
// sweep prunes it meanwhile; OK when the sweep goes on with it, has succeeded, or has not
// answered within `timeout` (logged: a sweep re-queued after a crash takes a while to resume).
bool IsRung(const nlohmann::json& sweep_block, int64_t epoch);
// Called after every epoch; Cancelled when the sweep was cancelled or failed (its trials stop
// with it).
Status AwaitVerdict(tasks::TaskContext& ctx, const nlohmann::json& sweep_block, int64_t epoch,
                    std::chrono::milliseconds timeout = std::chrono::minutes(2));

// Rung epochs of ASHA: min_epochs * rf^k below `epochs` (empty when disabled).
std::vector<int64_t> Rungs(const SweepSpec& spec);

// Asynchronous successive halving's decision, as each trial reaches a rung.
class Asha {
 public:
  explicit Asha(const SweepSpec& spec);
  // Trial `trial`'s metric at `rung`: true to go on, false to prune. It goes on when it is the
  // first to reach the rung, or when it is not worse than the (1 - 1/rf) quantile of the values
  // recorded there before it (linear interpolation; ties go on). The value is recorded either way.
  bool Judge(int64_t rung, int64_t trial, double value);

 private:
  bool maximize_;
  int64_t rf_;
  std::map<int64_t, std::map<int64_t, double>> recorded_;  // rung -> trial -> value
};

// Submit-time checks of a sweep request: the sweep block; the first trial's request against
// `train_validator` (the training task's: the files, the columns, the metric for the
// objective); then the trial request at each edge point against `model_train_schema` (the
// route's model_train block) and `spec_validator` (a cheap check of the request's values, no
// I/O). Each error names the searched field that causes it.
tasks::TaskValidator MakeSweepValidator(tasks::TaskValidator train_validator, tasks::TaskValidator spec_validator,
                                        nlohmann::json model_train_schema);

// The sweep's handler: submits trials of `train_type` through `manager`.
tasks::TaskHandler MakeSweepHandler(tasks::TaskManager& manager, std::string train_type);

}  // namespace mlaas::sweep
