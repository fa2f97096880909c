// The sweep block, its search space, the trials' points and requests, and ASHA's rungs.
#include <algorithm>
#include <cmath>
#include <random>

#include "sweep/sweep.h"

namespace mlaas::sweep {

using json = nlohmann::json;

namespace {

constexpr int64_t kMaxTrials = 1000;
constexpr int64_t kMaxParallel = 64;
constexpr size_t kMaxParams = 32;
constexpr size_t kMaxChoices = 1000;

Status Bad(const std::string& field, const std::string& message) { return InvalidArgument(message, field); }

Result<int64_t> IntField(const json& block, const std::string& key, const std::string& field, int64_t lo, int64_t hi,
                         int64_t fallback) {
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) return fallback;
  if (!it->is_number() || (it->is_number_float() && std::trunc(it->get<double>()) != it->get<double>()))
    return Bad(field + "." + key, key + " must be an integer");
  const double v = it->get<double>();
  if (v < static_cast<double>(lo) || v > static_cast<double>(hi))
    return Bad(field + "." + key, key + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return static_cast<int64_t>(v);
}

Result<std::string> StringField(const json& block, const std::string& key, const std::string& field,
                                const std::string& fallback) {
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) return fallback;
  if (!it->is_string()) return Bad(field + "." + key, key + " must be a string");
  return it->get<std::string>();
}

Result<Param> ParseParam(const std::string& path, const json& p, const std::string& field) {
  if (!p.is_object()) return Bad(field, "a parameter is an object with a type: choice, uniform, log_uniform or int");
  Param param;
  param.path = path;
  MLAAS_ASSIGN_OR_RETURN(std::string type, StringField(p, "type", field, ""));
  std::replace(type.begin(), type.end(), '-', '_');
  if (type == "choice" || type == "categorical") {
    param.kind = ParamKind::kChoice;
  } else if (type == "uniform") {
    param.kind = ParamKind::kUniform;
  } else if (type == "log_uniform" || type == "loguniform") {
    param.kind = ParamKind::kLogUniform;
  } else if (type == "int" || type == "integer") {
    param.kind = ParamKind::kInt;
  } else {
    return Bad(field + ".type", "type must be choice, uniform, log_uniform or int");
  }
  if (param.kind == ParamKind::kChoice) {
    auto v = p.find("values");
    if (v == p.end() || !v->is_array() || v->empty() || v->size() > kMaxChoices)
      return Bad(field + ".values", "a choice needs values: a list of 1 to " + std::to_string(kMaxChoices) + " values");
    for (const auto& x : *v) {
      if (!x.is_number() && !x.is_string() && !x.is_boolean())
        return Bad(field + ".values", "a choice's values are numbers, strings or booleans");
    }
    param.values.assign(v->begin(), v->end());
    for (const char* k : {"min", "max"}) {
      if (p.contains(k)) return Bad(field + "." + k, "a choice takes values, not min and max");
    }
    return param;
  }
  if (p.contains("values")) return Bad(field + ".values", "values belong to a choice; this parameter takes min and max");
  for (const char* k : {"min", "max"}) {
    auto it = p.find(k);
    if (it == p.end() || !it->is_number() || !std::isfinite(it->get<double>()))
      return Bad(field + "." + k, std::string(k) + " must be a number");
  }
  param.min = p["min"].get<double>();
  param.max = p["max"].get<double>();
  if (param.min > param.max) return Bad(field + ".max", "max must not be below min");
  if (param.kind == ParamKind::kLogUniform && param.min <= 0)
    return Bad(field + ".min", "a log_uniform parameter's min must be above 0");
  if (param.kind == ParamKind::kInt) {
    if (std::trunc(param.min) != param.min || std::trunc(param.max) != param.max)
      return Bad(field + ".min", "an int parameter's min and max are integers");
    if (std::abs(param.min) > 1e15 || std::abs(param.max) > 1e15) return Bad(field + ".max", "min and max must be within ±1e15");
  }
  return param;
}

// A uniform double in [0, 1) from the generator's 53 high bits (the same on every platform).
double Unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

json Draw(const Param& p, std::mt19937_64& rng) {
  switch (p.kind) {
    case ParamKind::kChoice: return p.values[static_cast<size_t>(rng() % p.values.size())];
    case ParamKind::kUniform: return p.min + Unit(rng) * (p.max - p.min);
    case ParamKind::kLogUniform:
      return std::exp(std::log(p.min) + Unit(rng) * (std::log(p.max) - std::log(p.min)));
    case ParamKind::kInt: {
      const auto span = static_cast<uint64_t>(p.max - p.min) + 1;
      return static_cast<int64_t>(p.min) + static_cast<int64_t>(rng() % span);
    }
  }
  return nullptr;
}

// The number of grid values of a choice or int parameter.
uint64_t GridSize(const Param& p) {
  return p.kind == ParamKind::kChoice ? p.values.size() : static_cast<uint64_t>(p.max - p.min) + 1;
}

json GridValue(const Param& p, uint64_t i) {
  return p.kind == ParamKind::kChoice ? p.values[i] : json(static_cast<int64_t>(p.min) + static_cast<int64_t>(i));
}

// Writes `value` at the dotted `path` inside `obj`, creating objects on the way.
void SetPath(json& obj, const std::string& path, const json& value) {
  json* at = &obj;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      (*at)[key] = value;
      return;
    }
    if (!at->contains(key) || !(*at)[key].is_object()) (*at)[key] = json::object();
    at = &(*at)[key];
    start = dot + 1;
  }
}

bool LowerIsBetter(const std::string& metric) {
  return metric.find("loss") != std::string::npos || metric.find("perplexity") != std::string::npos;
}

}  // namespace

Result<SweepSpec> ParseSweepSpec(const json& params) {
  if (!params.is_object() || !params.contains("sweep") || !params["sweep"].is_object())
    return Bad("sweep", "a sweep request needs a sweep block: parameters, metric, budget, scheduler");
  const json& s = params["sweep"];
  SweepSpec spec;
  const json mt = params.contains("model_train") && params["model_train"].is_object() ? params["model_train"] : json::object();
  MLAAS_ASSIGN_OR_RETURN(spec.epochs, IntField(mt, "epochs", "model_train", 1, 100000, 10));

  auto ps = s.find("parameters");
  if (ps == s.end() || !ps->is_object() || ps->empty())
    return Bad("sweep.parameters", "parameters name at least one model_train field to search");
  if (ps->size() > kMaxParams) return Bad("sweep.parameters", "at most " + std::to_string(kMaxParams) + " parameters");
  for (auto it = ps->begin(); it != ps->end(); ++it) {
    const std::string field = "sweep.parameters." + it.key();
    std::string path = it.key();
    if (path.rfind("model_train.", 0) == 0) path = path.substr(12);
    if (path.empty() || path.front() == '.' || path.back() == '.' || path.find("..") != std::string::npos)
      return Bad(field, "a parameter is a dotted path inside model_train, such as optimizer.init_lr");
    for (const auto& p : spec.params) {
      if (p.path == path || path.rfind(p.path + ".", 0) == 0 || p.path.rfind(path + ".", 0) == 0)
        return Bad(field, "model_train." + path + " is searched twice");
    }
    MLAAS_ASSIGN_OR_RETURN(Param p, ParseParam(path, it.value(), field));
    spec.params.push_back(std::move(p));
  }

  MLAAS_ASSIGN_OR_RETURN(std::string algorithm, StringField(s, "algorithm", "sweep", "random"));
  if (algorithm == "random") {
    spec.algorithm = Algorithm::kRandom;
  } else if (algorithm == "grid") {
    spec.algorithm = Algorithm::kGrid;
    for (const auto& p : spec.params) {
      if (p.kind == ParamKind::kUniform || p.kind == ParamKind::kLogUniform)
        return Bad("sweep.parameters." + p.path, "grid search takes choice and int parameters only");
      if (p.kind == ParamKind::kInt && p.max - p.min >= 1e6)
        return Bad("sweep.parameters." + p.path, "a grid's int parameter spans at most a million values");
    }
  } else {
    return Bad("sweep.algorithm", "algorithm must be random or grid");
  }
  MLAAS_ASSIGN_OR_RETURN(int64_t seed, IntField(s, "seed", "sweep", 0, 4294967295LL, 0));
  spec.seed = static_cast<uint64_t>(seed);

  // The metric: the sweep's, else the request's early-stopping metric, else eval_loss.
  std::string fallback = "eval_loss";
  if (mt.contains("early_stopping") && mt["early_stopping"].is_object() && mt["early_stopping"].contains("metric") &&
      mt["early_stopping"]["metric"].is_string())
    fallback = mt["early_stopping"]["metric"].get<std::string>();
  MLAAS_ASSIGN_OR_RETURN(spec.metric, StringField(s, "metric", "sweep", fallback));
  if (spec.metric.rfind("eval_", 0) != 0) spec.metric = "eval_" + spec.metric;
  MLAAS_ASSIGN_OR_RETURN(std::string direction,
                         StringField(s, "direction", "sweep", LowerIsBetter(spec.metric) ? "minimize" : "maximize"));
  if (direction == "minimize") {
    spec.direction = Direction::kMinimize;
  } else if (direction == "maximize") {
    spec.direction = Direction::kMaximize;
  } else {
    return Bad("sweep.direction", "direction must be minimize or maximize");
  }

  json budget = s.value("budget", json::object());
  if (!budget.is_object()) return Bad("sweep.budget", "budget is an object: max_trials, max_seconds, parallel_trials");
  MLAAS_ASSIGN_OR_RETURN(spec.max_trials, IntField(budget, "max_trials", "sweep.budget", 1, kMaxTrials, 10));
  MLAAS_ASSIGN_OR_RETURN(spec.parallel_trials, IntField(budget, "parallel_trials", "sweep.budget", 1, kMaxParallel, 1));
  if (auto t = budget.find("max_seconds"); t != budget.end() && !t->is_null()) {
    if (!t->is_number() || t->get<double>() < 0 || t->get<double>() > 1e9)
      return Bad("sweep.budget.max_seconds", "max_seconds is a number of seconds (0: no limit)");
    spec.max_seconds = t->get<double>();
  }

  json scheduler = s.value("scheduler", json::object());
  if (!scheduler.is_object()) return Bad("sweep.scheduler", "scheduler is an object: type, min_epochs, reduction_factor");
  MLAAS_ASSIGN_OR_RETURN(std::string type, StringField(scheduler, "type", "sweep.scheduler", "asha"));
  if (type == "asha") {
    spec.asha.enabled = true;
  } else if (type != "none") {
    return Bad("sweep.scheduler.type", "scheduler type must be asha or none");
  }
  MLAAS_ASSIGN_OR_RETURN(spec.asha.min_epochs, IntField(scheduler, "min_epochs", "sweep.scheduler", 1, 100000, 1));
  MLAAS_ASSIGN_OR_RETURN(spec.asha.reduction_factor,
                         IntField(scheduler, "reduction_factor", "sweep.scheduler", 2, 100, 3));
  if (spec.asha.enabled) {
    for (const auto& p : spec.params) {
      if (p.path == "epochs")
        return Bad("sweep.parameters.epochs",
                   "ASHA's rungs are epochs: set model_train.epochs, or search epochs with scheduler type none");
    }
  }
  return spec;
}

std::vector<json> PlanTrials(const SweepSpec& spec) {
  std::vector<json> points;
  if (spec.algorithm == Algorithm::kGrid) {
    // A mixed-radix counter over the parameters, the last one fastest.
    std::vector<uint64_t> at(spec.params.size(), 0);
    while (static_cast<int64_t>(points.size()) < spec.max_trials) {
      json point = json::object();
      for (size_t i = 0; i < spec.params.size(); ++i) point[spec.params[i].path] = GridValue(spec.params[i], at[i]);
      points.push_back(std::move(point));
      size_t i = spec.params.size();
      while (i > 0) {
        --i;
        if (++at[i] < GridSize(spec.params[i])) break;
        at[i] = 0;
        if (i == 0) return points;  // the whole grid
      }
      if (spec.params.empty()) return points;
    }
    return points;
  }
  std::mt19937_64 rng(spec.seed);
  for (int64_t t = 0; t < spec.max_trials; ++t) {
    json point = json::object();
    for (const auto& p : spec.params) point[p.path] = Draw(p, rng);
    points.push_back(std::move(point));
  }
  return points;
}

std::vector<json> EdgePoints(const SweepSpec& spec) {
  // Every parameter at its low end, then each bound and choice of one parameter with the
  // others at their low ends: each error is one parameter's.
  json low = json::object();
  for (const auto& p : spec.params) {
    low[p.path] = p.kind == ParamKind::kChoice ? p.values.front()
                  : p.kind == ParamKind::kInt  ? json(static_cast<int64_t>(p.min))
                                               : json(p.min);
  }
  std::vector<json> points = {low};
  for (const auto& p : spec.params) {
    std::vector<json> values;
    if (p.kind == ParamKind::kChoice) {
      // Numbers: the smallest and the largest (the checks are ranges); others each, up to 64.
      const json* lo = nullptr;
      const json* hi = nullptr;
      for (const auto& v : p.values) {
        if (v.is_number() && !v.is_boolean()) {
          if (lo == nullptr || v.get<double>() < lo->get<double>()) lo = &v;
          if (hi == nullptr || v.get<double>() > hi->get<double>()) hi = &v;
        } else if (values.size() < 64 && std::find(values.begin(), values.end(), v) == values.end()) {
          values.push_back(v);
        }
      }
      if (lo != nullptr) values.push_back(*lo);
      if (hi != nullptr && hi != lo) values.push_back(*hi);
    } else {
      values.push_back(p.kind == ParamKind::kInt ? json(static_cast<int64_t>(p.max)) : json(p.max));
    }
    for (const auto& v : values) {
      json point = low;
      point[p.path] = v;
      points.push_back(std::move(point));
    }
  }
  return points;
}

json TrialRequest(const json& sweep_params, const SweepSpec& spec, const json& point, int64_t index,
                  const std::string& sweep_task_id) {
  json r = sweep_params;
  r.erase("sweep");
  r.erase("catalog");
  if (!r.contains("model_train") || !r["model_train"].is_object()) r["model_train"] = json::object();
  for (auto it = point.begin(); it != point.end(); ++it) SetPath(r["model_train"], it.key(), it.value());
  if (r.contains("model_save") && r["model_save"].is_object()) {
    std::string path = r["model_save"].value("path", "");
    while (!path.empty() && path.back() == '/') path.pop_back();
    r["model_save"]["path"] = path + "/trial-" + std::to_string(index + 1);
  }
  r["sweep"] = {{"task_id", sweep_task_id}, {"trial", index + 1}, {"rungs", Rungs(spec)}};
  return r;
}

std::vector<int64_t> Rungs(const SweepSpec& spec) {
  std::vector<int64_t> rungs;
  if (!spec.asha.enabled) return rungs;
  for (int64_t r = spec.asha.min_epochs; r < spec.epochs; r *= spec.asha.reduction_factor) rungs.push_back(r);
  return rungs;
}

Asha::Asha(const SweepSpec& spec)
    : maximize_(spec.direction == Direction::kMaximize), rf_(spec.asha.reduction_factor) {}

bool Asha::Judge(int64_t rung, int64_t trial, double value) {
  auto& at = recorded_[rung];
  std::vector<double> before;
  for (const auto& [t, v] : at) {
    if (t != trial && std::isfinite(v)) before.push_back(maximize_ ? v : -v);
  }
  at[trial] = value;
  if (!std::isfinite(value)) return false;  // a diverged trial goes no further
  if (before.empty()) return true;
  // The (1 - 1/rf) quantile, interpolated linearly between order statistics (numpy's default).
  std::sort(before.begin(), before.end());
  const double q = (1.0 - 1.0 / static_cast<double>(rf_)) * static_cast<double>(before.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(q));
  const size_t hi = std::min(lo + 1, before.size() - 1);
  const double cutoff = before[lo] + (q - static_cast<double>(lo)) * (before[hi] - before[lo]);
  return (maximize_ ? value : -value) >= cutoff;
}

}  // namespace mlaas::sweep
