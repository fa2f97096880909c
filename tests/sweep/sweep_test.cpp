#include "sweep/sweep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <thread>

#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::sweep {
namespace {

using metadata::TaskState;
using mlaas::testing::TempDir;
using mlaas::testing::WaitFor;
using nlohmann::json;

json Request(json sweep, json model_train = {{"epochs", 4}}) {
  return {{"model", {{"path", "models/base"}, {"objective", "text-classification"}}},
          {"dataset", {{"path", "datasets/d.csv"}}},
          {"model_train", std::move(model_train)},
          {"model_save", {{"path", "models/sw"}}},
          {"catalog", {{"model", "best"}}},
          {"sweep", std::move(sweep)}};
}

std::string FieldOf(const json& params) {
  auto spec = ParseSweepSpec(params);
  EXPECT_FALSE(spec.has_value()) << params.dump();
  return spec.has_value() ? "" : spec.error().field();
}

TEST(SweepSpecTest, ParsesTheSpaceAndItsDefaults) {
  auto spec = ParseSweepSpec(Request({{"parameters",
                                       {{"optimizer.init_lr", {{"type", "log_uniform"}, {"min", 1e-5}, {"max", 1e-2}}},
                                        {"model_train.batch_size", {{"type", "choice"}, {"values", {8, 16}}}},
                                        {"optimizer.weight_decay_rate", {{"type", "uniform"}, {"min", 0}, {"max", 0.1}}},
                                        {"optimizer.num_warm_steps", {{"type", "int"}, {"min", 0}, {"max", 10}}}}}}));
  ASSERT_TRUE(spec.has_value()) << spec.error().ToString();
  ASSERT_EQ(spec->params.size(), 4u);
  std::set<std::string> paths;
  for (const auto& p : spec->params) paths.insert(p.path);
  EXPECT_EQ(paths, (std::set<std::string>{"optimizer.init_lr", "batch_size", "optimizer.weight_decay_rate",
                                          "optimizer.num_warm_steps"}));
  EXPECT_EQ(spec->algorithm, Algorithm::kRandom);
  EXPECT_EQ(spec->metric, "eval_loss");
  EXPECT_EQ(spec->direction, Direction::kMinimize);
  EXPECT_EQ(spec->max_trials, 10);
  EXPECT_EQ(spec->parallel_trials, 1);
  EXPECT_TRUE(spec->asha.enabled);
  EXPECT_EQ(spec->epochs, 4);

  // A metric without its eval_ prefix, maximised by default; the request's early-stopping metric.
  auto acc = ParseSweepSpec(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 4}}}}},
                                     {"metric", "accuracy"}}));
  ASSERT_TRUE(acc.has_value());
  EXPECT_EQ(acc->metric, "eval_accuracy");
  EXPECT_EQ(acc->direction, Direction::kMaximize);
  auto es = ParseSweepSpec(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 4}}}}}},
                                   {{"epochs", 3}, {"early_stopping", {{"metric", "eval_macro_f1"}}}}));
  ASSERT_TRUE(es.has_value());
  EXPECT_EQ(es->metric, "eval_macro_f1");
  EXPECT_EQ(es->direction, Direction::kMaximize);
}

TEST(SweepSpecTest, ErrorsNameTheField) {
  EXPECT_EQ(FieldOf(Request(json::object())), "sweep.parameters");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"x", {{"type", "gaussian"}}}}}})), "sweep.parameters.x.type");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"optimizer.init_lr", {{"type", "log_uniform"}, {"min", 0}, {"max", 1}}}}}})),
            "sweep.parameters.optimizer.init_lr.min");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"optimizer.init_lr", {{"type", "uniform"}, {"min", 2}, {"max", 1}}}}}})),
            "sweep.parameters.optimizer.init_lr.max");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"batch_size", {{"type", "choice"}, {"values", json::array()}}}}}})),
            "sweep.parameters.batch_size.values");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1.5}, {"max", 4}}}}}})),
            "sweep.parameters.batch_size.min");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"optimizer..x", {{"type", "int"}, {"min", 1}, {"max", 4}}}}}})),
            "sweep.parameters.optimizer..x");
  EXPECT_EQ(FieldOf(Request({{"parameters",
                              {{"optimizer", {{"type", "choice"}, {"values", {1}}}},
                               {"optimizer.init_lr", {{"type", "uniform"}, {"min", 0.1}, {"max", 1}}}}}})),
            "sweep.parameters.optimizer.init_lr");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"optimizer.init_lr", {{"type", "uniform"}, {"min", 0.1}, {"max", 1}}}}},
                             {"algorithm", "grid"}})),
            "sweep.parameters.optimizer.init_lr");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"epochs", {{"type", "int"}, {"min", 1}, {"max", 4}}}}}})),
            "sweep.parameters.epochs");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 4}}}}},
                             {"budget", {{"max_trials", 0}}}})),
            "sweep.budget.max_trials");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 4}}}}},
                             {"scheduler", {{"reduction_factor", 1}}}})),
            "sweep.scheduler.reduction_factor");
  EXPECT_EQ(FieldOf(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 4}}}}},
                             {"direction", "up"}})),
            "sweep.direction");
  // Searching epochs is fine without ASHA.
  EXPECT_TRUE(ParseSweepSpec(Request({{"parameters", {{"epochs", {{"type", "int"}, {"min", 1}, {"max", 4}}}}},
                                      {"scheduler", {{"type", "none"}}}}))
                  .has_value());
}

TEST(SweepSpecTest, GridWalksTheProductInOrderUpToTheBudget) {
  auto spec = ParseSweepSpec(Request({{"parameters",
                                       {{"batch_size", {{"type", "choice"}, {"values", {8, 16}}}},
                                        {"optimizer.num_warm_steps", {{"type", "int"}, {"min", 0}, {"max", 2}}}}},
                                      {"algorithm", "grid"}}));
  ASSERT_TRUE(spec.has_value());
  auto points = PlanTrials(*spec);  // max_trials 10 > the grid's 6
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0], (json{{"batch_size", 8}, {"optimizer.num_warm_steps", 0}}));
  EXPECT_EQ(points[1], (json{{"batch_size", 8}, {"optimizer.num_warm_steps", 1}}));
  EXPECT_EQ(points[3], (json{{"batch_size", 16}, {"optimizer.num_warm_steps", 0}}));
  EXPECT_EQ(points[5], (json{{"batch_size", 16}, {"optimizer.num_warm_steps", 2}}));
  spec->max_trials = 4;
  EXPECT_EQ(PlanTrials(*spec).size(), 4u);
}

TEST(SweepSpecTest, RandomSearchIsSeededAndStaysInTheSpace) {
  json sweep = {{"parameters",
                 {{"optimizer.init_lr", {{"type", "log_uniform"}, {"min", 1e-5}, {"max", 1e-1}}},
                  {"optimizer.weight_decay_rate", {{"type", "uniform"}, {"min", 0.0}, {"max", 0.5}}},
                  {"batch_size", {{"type", "int"}, {"min", 2}, {"max", 5}}},
                  {"optimizer.name", {{"type", "choice"}, {"values", {"AdamW", "SGD"}}}}}},
                {"budget", {{"max_trials", 200}}},
                {"seed", 7}};
  auto spec = ParseSweepSpec(Request(sweep));
  ASSERT_TRUE(spec.has_value());
  const auto a = PlanTrials(*spec);
  EXPECT_EQ(a, PlanTrials(*spec));
  sweep["seed"] = 8;
  EXPECT_NE(a, PlanTrials(*ParseSweepSpec(Request(sweep))));
  ASSERT_EQ(a.size(), 200u);
  int below_1e3 = 0;
  std::set<int64_t> sizes;
  std::set<std::string> names;
  for (const auto& p : a) {
    const double lr = p["optimizer.init_lr"];
    EXPECT_GE(lr, 1e-5);
    EXPECT_LE(lr, 1e-1);
    below_1e3 += lr < 1e-3;
    const double wd = p["optimizer.weight_decay_rate"];
    EXPECT_GE(wd, 0.0);
    EXPECT_LE(wd, 0.5);
    ASSERT_TRUE(p["batch_size"].is_number_integer());
    sizes.insert(p["batch_size"].get<int64_t>());
    names.insert(p["optimizer.name"].get<std::string>());
  }
  // Log-uniform: half the draws below the geometric middle (1e-3), not 1% as uniform would give.
  EXPECT_GT(below_1e3, 70);
  EXPECT_LT(below_1e3, 130);
  EXPECT_EQ(sizes, (std::set<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(names.size(), 2u);
}

TEST(SweepSpecTest, TrialRequestsWriteThePointIntoModelTrain) {
  auto spec = ParseSweepSpec(Request({{"parameters", {{"optimizer.init_lr", {{"type", "choice"}, {"values", {0.1}}}}}},
                                      {"scheduler", {{"min_epochs", 1}, {"reduction_factor", 2}}}},
                                     {{"epochs", 4}, {"optimizer", {{"name", "SGD"}}}}));
  ASSERT_TRUE(spec.has_value());
  const json params = Request({{"parameters", json::object()}}, {{"epochs", 4}, {"optimizer", {{"name", "SGD"}}}});
  const json r = TrialRequest(params, *spec, {{"optimizer.init_lr", 0.1}}, 2, "sweep-id");
  EXPECT_EQ(r["model_train"]["optimizer"], (json{{"name", "SGD"}, {"init_lr", 0.1}}));
  EXPECT_EQ(r["model_train"]["epochs"], 4);
  EXPECT_EQ(r["model_save"]["path"], "models/sw/trial-3");
  EXPECT_FALSE(r.contains("catalog"));
  EXPECT_EQ(r["sweep"], (json{{"task_id", "sweep-id"}, {"trial", 3}, {"rungs", {1, 2}}}));
  EXPECT_EQ(r["dataset"], params["dataset"]);
  EXPECT_TRUE(IsRung(r["sweep"], 2));
  EXPECT_FALSE(IsRung(r["sweep"], 3));
}

TEST(AshaTest, RungsGrowByTheReductionFactor) {
  SweepSpec spec;
  spec.asha = {.enabled = true, .min_epochs = 1, .reduction_factor = 3};
  spec.epochs = 10;
  EXPECT_EQ(Rungs(spec), (std::vector<int64_t>{1, 3, 9}));
  spec.asha.min_epochs = 2;
  spec.asha.reduction_factor = 2;
  spec.epochs = 8;
  EXPECT_EQ(Rungs(spec), (std::vector<int64_t>{2, 4}));
  spec.asha.enabled = false;
  EXPECT_TRUE(Rungs(spec).empty());
}

TEST(AshaTest, KeepsTheBestFractionOfEachRung) {
  SweepSpec spec;
  spec.direction = Direction::kMaximize;
  spec.asha = {.enabled = true, .min_epochs = 1, .reduction_factor = 2};
  Asha asha(spec);
  EXPECT_TRUE(asha.Judge(1, 0, 0.50));   // the first at a rung goes on
  EXPECT_FALSE(asha.Judge(1, 1, 0.40));  // below the median of {0.50}
  // Recorded: {0.5, 0.4}: the median is 0.45; a tie goes on.
  EXPECT_TRUE(asha.Judge(1, 2, 0.45));
  EXPECT_TRUE(asha.Judge(1, 3, 0.90));
  // Recorded before it: {0.5, 0.4, 0.45, 0.9}: the median is 0.475.
  EXPECT_FALSE(asha.Judge(1, 4, 0.47));
  EXPECT_TRUE(asha.Judge(1, 5, 0.48));
  EXPECT_TRUE(asha.Judge(2, 1, 0.10));  // rungs are separate
  EXPECT_FALSE(asha.Judge(3, 7, std::nan("")));  // a diverged run stops even first at its rung

  spec.direction = Direction::kMinimize;
  spec.asha.reduction_factor = 4;
  Asha low(spec);
  EXPECT_TRUE(low.Judge(3, 0, 4.0));  // each better than all before it
  EXPECT_TRUE(low.Judge(3, 1, 3.0));
  EXPECT_TRUE(low.Judge(3, 2, 2.0));
  EXPECT_TRUE(low.Judge(3, 3, 1.0));
  // Losses {1, 2, 3, 4}: the best quarter is at most 1.75 (numpy's percentile of the negated
  // values, interpolated linearly).
  EXPECT_TRUE(low.Judge(3, 4, 1.7));
  // Now {1, 1.7, 2, 3, 4}: the cutoff is 1.7, and 1.8 is worse.
  EXPECT_FALSE(low.Judge(3, 5, 1.8));
  EXPECT_FALSE(low.Judge(3, 6, std::nan("")));
}

// The checks run at submit: the train validator's and the model_train schema's errors at the
// space's edges name the searched field.
TEST(SweepValidatorTest, EdgeErrorsNameTheSearchedField) {
  const json schema = {{"type", "object"},
                       {"additionalProperties", false},
                       {"properties",
                        {{"epochs", {{"type", "integer"}}},
                         {"batch_size", {{"type", "integer"}, {"minimum", 1}}},
                         {"early_stopping", {{"type", "object"}}},
                         {"optimizer", {{"type", "object"}, {"properties", {{"init_lr", {{"type", "number"}, {"maximum", 10}}}}},
                                        {"additionalProperties", false}}}}}};
  const tasks::TaskValidator train = [](const json& p) -> Status {
    const std::string metric = p["model_train"].value("early_stopping", json::object()).value("metric", "eval_loss");
    if (metric != "eval_loss" && metric != "eval_accuracy")
      return InvalidArgument("early_stopping.metric must be one of eval_loss, eval_accuracy",
                             "model_train.early_stopping.metric");
    if (p["model_train"].value("batch_size", 1) > 64) return InvalidArgument("too large for this model", "model_train.batch_size");
    if (!p.contains("dataset")) return InvalidArgument("dataset is required", "dataset");
    return Status::Ok();
  };
  const auto validate = MakeSweepValidator(train, train, schema);
  auto field = [&](const json& params) {
    Status st = validate(params);
    EXPECT_FALSE(st.ok()) << params.dump();
    return st.field();
  };
  EXPECT_TRUE(validate(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 64}}}}}})).ok());
  EXPECT_EQ(field(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 65}}}}}})),
            "sweep.parameters.batch_size");
  EXPECT_EQ(field(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 0}, {"max", 8}}}}}})),
            "sweep.parameters.batch_size");
  EXPECT_EQ(field(Request({{"parameters", {{"optimizer.init_lr", {{"type", "choice"}, {"values", {0.1, 20}}}}}}})),
            "sweep.parameters.optimizer.init_lr");
  // A real-valued draw for an integer field says how to search it (the training request's
  // schema refuses the number).
  const tasks::TaskValidator integral = [](const json& p) -> Status {
    if (!p["model_train"]["batch_size"].is_number_integer())
      return InvalidArgument("'model_train.batch_size' must be an integer (got number)", "model_train.batch_size");
    return Status::Ok();
  };
  Status real = MakeSweepValidator(integral, integral, schema)(
      Request({{"parameters", {{"batch_size", {{"type", "uniform"}, {"min", 2}, {"max", 8}}}}}}));
  EXPECT_EQ(real.field(), "sweep.parameters.batch_size") << real.ToString();
  EXPECT_NE(real.message().find("search an integer field with type int or choice"), std::string::npos) << real.message();
  EXPECT_EQ(field(Request({{"parameters", {{"learning_rate", {{"type", "uniform"}, {"min", 0.1}, {"max", 1}}}}}})),
            "sweep.parameters.learning_rate");
  EXPECT_EQ(field(Request({{"parameters", {{"optimizer.lr", {{"type", "uniform"}, {"min", 0.1}, {"max", 1}}}}}})),
            "sweep.parameters.optimizer.lr");
  // A path through a member the request may not have: the schema names the member, the error the
  // searched parameter.
  EXPECT_EQ(field(Request({{"parameters", {{"optimizer.foo.bar", {{"type", "uniform"}, {"min", 0.1}, {"max", 1}}}}}})),
            "sweep.parameters.optimizer.foo.bar");
  EXPECT_EQ(field(Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 8}}}}},
                           {"metric", "eval_perplexity"}})),
            "sweep.metric");
  json no_save = Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 8}}}}}});
  no_save.erase("model_save");
  EXPECT_EQ(field(no_save), "model_save.path");
  json no_data = Request({{"parameters", {{"batch_size", {{"type", "int"}, {"min", 1}, {"max", 8}}}}}});
  no_data.erase("dataset");
  EXPECT_EQ(field(no_data), "dataset");  // the request's own error, as the training task names it
}

// The controller, with a stand-in training task: epoch e of a trial at learning rate lr has
// eval_loss 1 / (1 + lr * e), so higher rates are better at every rung; it waits at its rungs
// as the real trainer does (IsRung, AwaitVerdict).
class SweepTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = metadata::OpenTaskStore({(dir_ / "mlaas.db").string(), nullptr});
    ASSERT_TRUE(s.has_value());
    store_ = std::move(s).value();
  }

  std::unique_ptr<tasks::TaskManager> Make() {
    tasks::TaskManagerOptions o;
    o.workers = 1;  // one training worker: the sweep runs on a coordinator thread of its own
    o.poll_interval_ms = 20;
    o.progress_interval_ms = 0;
    o.lease_ms = 3000;
    auto m = std::make_unique<tasks::TaskManager>(*store_, o);
    m->Register("train", [](tasks::TaskContext& ctx) -> Result<json> {
      const json& p = ctx.params();
      const double lr = p["model_train"]["optimizer"]["init_lr"];
      const int64_t epochs = p["model_train"].value("epochs", int64_t{4});
      // Trials at rates from slow_from on take sleep_ms an epoch.
      const int sleep_ms = lr >= p.value("slow_from", 1e9) ? p.value("sleep_ms", 0) : 0;
      json history = {{"epoch", json::array()}, {"eval_loss", json::array()}};
      for (int64_t e = 1; e <= epochs; ++e) {
        for (int i = 0; i < sleep_ms / 10; ++i) {
          if (ctx.cancelled()) return ctx.CheckCancelled();
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (ctx.cancelled()) return ctx.CheckCancelled();
        history["epoch"].push_back(e);
        history["eval_loss"].push_back(1.0 / (1.0 + lr * static_cast<double>(e)));
        ctx.ReportProgress({.epoch = e, .extra = {{"history", history}}});
        if (e < epochs && p.contains("sweep") && IsRung(p["sweep"], e)) {
          if (Status v = AwaitVerdict(ctx, p["sweep"], e); !v.ok()) {
            ctx.ReportProgress({.epoch = e, .message = v.message(), .extra = {{"history", history}}});
            return v;
          }
        }
      }
      return json{{"history", history},
                  {"evaluation", {{"loss", history["eval_loss"].back()}}},
                  {"model", {{"path", p["model_save"]["path"]}, {"storage_type", "local"}}}};
    });
    m->Register(kSweepTask, MakeSweepHandler(*m, "train"), MakeSweepValidator(nullptr, nullptr, nullptr));
    m->RunOnCoordinators(kSweepTask);
    return m;
  }

  json Grid(std::vector<double> rates, json extra = json::object()) {
    json params = Request({{"parameters", {{"optimizer.init_lr", {{"type", "choice"}, {"values", rates}}}}},
                           {"algorithm", "grid"},
                           {"scheduler", {{"type", "asha"}, {"min_epochs", 1}, {"reduction_factor", 2}}}});
    params.merge_patch(extra);
    return params;
  }

  bool Ends(const std::string& id) {
    return WaitFor([&] { return metadata::IsTerminal(store_->Get(id)->state); }, std::chrono::seconds(60));
  }

  TempDir dir_;
  std::unique_ptr<metadata::TaskStore> store_;
};

TEST_F(SweepTaskTest, FourTrialsOnePrunedAtTheFirstRungAndTheBestKept) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  // Rungs at epochs 1 and 2 (reduction factor 2: the better half goes on). Trial 2 (rate 0.1,
  // loss 0.909 at epoch 1) is worse than trial 1's 0.5: pruned there. Trial 3 (2.0) is better at
  // both rungs. Trial 4 (0.5, loss 0.667) is worse than the median of {0.5, 0.909, 0.333}:
  // pruned too.
  auto t = m->Submit(kSweepTask, Grid({1.0, 0.1, 2.0, 0.5}));
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  ASSERT_TRUE(Ends(t->id));
  auto rec = store_->Get(t->id);
  ASSERT_EQ(rec->state, TaskState::kSucceeded) << rec->error.dump();
  const json& r = rec->result;
  ASSERT_EQ(r["trials"].size(), 4u);
  std::vector<std::string> states;
  for (const auto& trial : r["trials"]) states.push_back(trial["state"]);
  EXPECT_EQ(states, (std::vector<std::string>{"succeeded", "pruned", "succeeded", "pruned"}));
  EXPECT_EQ(r["trials"][1]["pruned_at"], 1);
  EXPECT_EQ(r["trials"][1]["epochs"], 1);  // stopped early: one epoch of four
  EXPECT_EQ(r["trials"][0]["epochs"], 4);
  EXPECT_EQ(r["best"]["trial"], 3);
  EXPECT_EQ(r["best"]["params"], (json{{"optimizer.init_lr", 2.0}}));
  EXPECT_NEAR(r["best"]["metric"].get<double>(), 1.0 / 9.0, 1e-12);
  EXPECT_EQ(r["model_save"]["path"], "models/sw/trial-3");
  EXPECT_EQ(r["scheduler"]["rungs"], (json{1, 2}));
  EXPECT_EQ(r["stats"]["pruned"], 2);
  EXPECT_EQ(r["stats"]["succeeded"], 2);
  EXPECT_EQ(r["table"]["columns"], (json{"trial", "optimizer.init_lr", "eval_loss", "epochs", "state"}));
  ASSERT_EQ(r["table"]["rows"].size(), 4u);
  EXPECT_EQ(r["table"]["rows"][2][1], 2.0);
  EXPECT_EQ(r["table"]["rows"][1][4], "pruned");
  // The trials are ordinary tasks: the pruned ones cancelled, each with its own model_save.
  for (const auto& trial : r["trials"]) {
    auto task = store_->Get(trial["task_id"]);
    ASSERT_TRUE(task.has_value());
    EXPECT_EQ(task->type, "train");
    EXPECT_EQ(task->params["sweep"]["task_id"], t->id);
    EXPECT_EQ(task->state, trial["state"] == "pruned" ? TaskState::kCancelled : TaskState::kSucceeded);
    // A pruned trial learns why it stopped (its last progress message), not just "cancelled".
    if (trial["state"] == "pruned") {
      EXPECT_EQ(task->progress.value("message", ""), "pruned by the sweep " + t->id + " at epoch 1") << task->progress.dump();
    }
  }
  m->Stop();
}

TEST_F(SweepTaskTest, WithoutASchedulerEveryTrialRunsToTheEnd) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  json params = Grid({1.0, 0.1, 2.0});
  params["sweep"]["scheduler"] = {{"type", "none"}};
  params["sweep"]["direction"] = "maximize";  // of a loss: the worst rate wins
  auto t = m->Submit(kSweepTask, params);
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(Ends(t->id));
  const json r = store_->Get(t->id)->result;
  for (const auto& trial : r["trials"]) EXPECT_EQ(trial["state"], "succeeded");
  EXPECT_EQ(r["best"]["trial"], 2);
  m->Stop();
}

TEST_F(SweepTaskTest, CancellingTheSweepCancelsItsTrials) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit(kSweepTask, Grid({1.0, 2.0}, {{"sleep_ms", 2000}, {"slow_from", 0}, {"model_train", {{"epochs", 50}}}}));
  ASSERT_TRUE(t.has_value());
  std::string trial;
  ASSERT_TRUE(WaitFor([&] {
    const json p = store_->Get(t->id)->progress;
    if (!p.contains("trials") || p["trials"].empty()) return false;
    trial = p["trials"][0]["task_id"];
    return store_->Get(trial)->state == TaskState::kRunning;
  }));
  ASSERT_TRUE(m->Cancel(t->id).has_value());
  ASSERT_TRUE(Ends(t->id));
  EXPECT_EQ(store_->Get(t->id)->state, TaskState::kCancelled);
  ASSERT_TRUE(Ends(trial));
  EXPECT_EQ(store_->Get(trial)->state, TaskState::kCancelled);
  m->Stop();
}

TEST_F(SweepTaskTest, TheTimeBudgetStopsTheRunningTrialAndKeepsTheFinishedOnes) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  // The first trial is quick; the second would take minutes, the third never starts.
  json params = Grid({1.0, 2.0, 3.0}, {{"sleep_ms", 100000}, {"slow_from", 2.0}});
  params["sweep"]["scheduler"] = {{"type", "none"}};
  params["sweep"]["budget"] = {{"max_seconds", 5}};
  auto t = m->Submit(kSweepTask, params);
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(Ends(t->id));
  auto rec = store_->Get(t->id);
  ASSERT_EQ(rec->state, TaskState::kSucceeded) << rec->error.dump();
  const json& r = rec->result;
  ASSERT_EQ(r["trials"].size(), 2u);
  EXPECT_EQ(r["trials"][0]["state"], "succeeded");
  EXPECT_EQ(r["trials"][1]["state"], "stopped");
  EXPECT_EQ(r["stats"]["stopped"], 1);
  EXPECT_EQ(r["best"]["trial"], 1);
  EXPECT_GE(r["stats"]["seconds"].get<double>(), 5.0);
  EXPECT_EQ(store_->Get(r["trials"][1]["task_id"])->state, TaskState::kCancelled);
  m->Stop();
}

TEST_F(SweepTaskTest, NoFinishedTrialFailsTheSweepWithTheReason) {
  auto m = Make();
  m->Register("train", [](tasks::TaskContext&) -> Result<json> {
    return InvalidArgument("column 'text' does not exist", "dataset.loader_kwargs.text_column");
  });
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit(kSweepTask, Grid({1.0, 2.0}));
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(Ends(t->id));
  auto rec = store_->Get(t->id);
  EXPECT_EQ(rec->state, TaskState::kFailed);
  EXPECT_NE(rec->error.dump().find("column 'text' does not exist"), std::string::npos) << rec->error.dump();
  m->Stop();
}

TEST_F(SweepTaskTest, ASweepAsksNoResourcesOfItsOwn) {
  auto m = Make();
  json params = Grid({1.0});
  params["resources"] = {{"gpus", 1}};
  auto t = m->Submit(kSweepTask, params);
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  EXPECT_EQ(store_->Get(t->id)->requirements.gpus, 0);  // its trials ask for the GPU
}

}  // namespace
}  // namespace mlaas::sweep
