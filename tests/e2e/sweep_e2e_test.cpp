// End-to-end: a hyperparameter sweep on the real server — four trials of a tiny BERT as ordinary
// training tasks, one pruned by ASHA after its first epoch, the best registered in the catalog;
// bad sweep requests named by field; `mlaas sweep --wait`.
#include <gtest/gtest.h>

#include <fstream>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;

class SweepE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    objects_ = dir_.path() / "data" / "objects";
    WriteSentimentVocab(objects_ / "tok" / "vocab.txt");
    std::filesystem::create_directories(objects_ / "data");
    std::ofstream(objects_ / "data" / "sentiment.csv") << SentimentCsv(160, 1);
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", std::vector<std::string>{"--threads", "1"});
    ASSERT_TRUE(server_->Start().ok());
  }

  // Four learning rates on a grid: 3e-3 learns, 1e-7 does not move (pruned after epoch 1).
  static json Request() {
    return {{"tokenizer", {{"path", "tok/vocab.txt"}}},
            {"model",
             {{"objective", "text-classification"},
              {"config",
               {{"model_type", "bert"},
                {"hidden_size", 32},
                {"num_hidden_layers", 1},
                {"num_attention_heads", 4},
                {"intermediate_size", 64},
                {"max_position_embeddings", 64}}}}},
            {"dataset", {{"path", "data/sentiment.csv"}, {"train_test_split", 0.25}}},
            {"model_train",
             {{"epochs", 3}, {"batch_size", 8}, {"seed", 3}, {"threads", 1}, {"optimizer", {{"num_warm_steps", 2}}}}},
            {"model_save", {{"path", "models/sweep"}}},
            {"sweep",
             {{"parameters", {{"optimizer.init_lr", {{"type", "choice"}, {"values", {3e-3, 1e-7, 1e-2, 1e-6}}}}}},
              {"algorithm", "grid"},
              {"metric", "eval_loss"},
              {"scheduler", {{"type", "asha"}, {"min_epochs", 1}, {"reduction_factor", 2}}}}},
            {"catalog", {{"model", "sweep-best"}, {"alias", "champion"}}}};
  }

  TempDir dir_;
  std::filesystem::path objects_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(SweepE2eTest, FourTrialsOnePrunedEarlyTheBestRegistered) {
  auto c = server_->Client();
  auto accepted = c->Post("/api/v1/ml/nlp/train/sweep", Request());
  ASSERT_TRUE(accepted.has_value()) << accepted.error().ToString();
  const std::string id = (*accepted)["task_id"];
  json t = WaitForTaskEnd(*c, id, std::chrono::seconds(600));
  ASSERT_EQ(t["task_status"], "succeeded") << t.dump(2) << server_->Log();

  ASSERT_EQ(t["trials"].size(), 4u) << t.dump(2);
  const json& trials = t["trials"];
  EXPECT_EQ(trials[0]["state"], "succeeded") << trials.dump(2);
  EXPECT_EQ(trials[0]["epochs"], 3);
  // 1e-7 leaves the model where it started: worse than 3e-3 at epoch 1, pruned there.
  EXPECT_EQ(trials[1]["state"], "pruned") << trials.dump(2);
  EXPECT_EQ(trials[1]["pruned_at"], 1);
  EXPECT_EQ(trials[1]["epochs"], 1);
  EXPECT_GE(t["stats"]["pruned"].get<int>(), 1);
  EXPECT_EQ(t["scheduler"]["rungs"], json({1, 2}));

  // The best is the succeeded trial with the lowest held-out loss, and its model is saved.
  double best = 1e9;
  for (const auto& trial : trials) {
    if (trial["state"] == "succeeded") best = std::min(best, trial["metric"].get<double>());
  }
  EXPECT_DOUBLE_EQ(t["best"]["metric"].get<double>(), best);
  const int n = t["best"]["trial"];
  EXPECT_EQ(t["best"]["model"]["path"], "models/sweep/trial-" + std::to_string(n));
  EXPECT_TRUE(std::filesystem::exists(objects_ / "models" / "sweep" / ("trial-" + std::to_string(n)) / "config.json"));
  EXPECT_FALSE(std::filesystem::exists(objects_ / "models" / "sweep" / "trial-2" / "config.json"));  // pruned
  EXPECT_EQ(t["evaluation"]["loss"].get<double>(), best);
  EXPECT_EQ(t["table"]["columns"], json({"trial", "optimizer.init_lr", "eval_loss", "epochs", "state"}));
  EXPECT_EQ(t["table"]["rows"].size(), 4u);

  // Registered in the catalog, the alias on it.
  ASSERT_TRUE(t.contains("catalog")) << t.dump(2);
  EXPECT_EQ(t["catalog"]["reference"], "catalog://sweep-best/1");
  EXPECT_EQ(t["catalog"]["alias"], "champion");
  auto p = c->Post("/api/v1/ml/nlp/predict", {{"model", {{"path", "catalog://sweep-best@champion"}}},
                                              {"predict_input", {{"input_text", {"the movie was great"}}}}});
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ((*p)["predictions"].size(), 1u);

  // Each trial is an ordinary training task: listed, with its own request and state.
  for (const auto& trial : trials) {
    auto task = c->Get("/api/v1/tasks/" + trial["task_id"].get<std::string>());
    ASSERT_TRUE(task.has_value());
    EXPECT_EQ((*task)["task_type"], "nlp_train_model") << task->dump();
    EXPECT_EQ((*task)["task_status"], trial["state"] == "pruned" ? "cancelled" : "succeeded") << task->dump();
    if (trial["state"] == "pruned") {  // its last message says why it stopped
      EXPECT_NE((*task)["progress"].value("message", "").find("evaluated: pruned by the sweep"), std::string::npos)
          << task->dump();
    }
  }
}

TEST_F(SweepE2eTest, BadSweepsAreRefusedNamingTheField) {
  auto c = server_->Client();
  struct Case {
    std::function<void(json&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](json& r) { r.erase("sweep"); }, "sweep"},
      {[](json& r) { r["sweep"]["parameters"] = json::object(); }, "sweep.parameters"},
      {[](json& r) { r["sweep"]["parameters"] = {{"learning_rate", {{"type", "uniform"}, {"min", 0.1}, {"max", 1}}}}; },
       "sweep.parameters.learning_rate"},
      {[](json& r) { r["sweep"]["parameters"] = {{"batch_size", {{"type", "int"}, {"min", 0}, {"max", 8}}}}; },
       "sweep.parameters.batch_size"},
      {[](json& r) { r["sweep"]["parameters"]["optimizer.init_lr"] = {{"type", "log_uniform"}, {"min", 0}, {"max", 1}}; },
       "sweep.parameters.optimizer.init_lr.min"},
      {[](json& r) { r["sweep"]["metric"] = "eval_perplexity"; }, "sweep.metric"},
      {[](json& r) { r["sweep"]["scheduler"]["type"] = "hyperband"; }, "sweep.scheduler.type"},
      {[](json& r) { r["sweep"]["budget"] = {{"max_trials", 0}}; }, "sweep.budget.max_trials"},
      {[](json& r) { r["dataset"]["path"] = "data/missing.csv"; }, "dataset.path"},
  };
  for (const auto& k : cases) {
    json r = Request();
    k.edit(r);
    auto res = c->Post("/api/v1/ml/nlp/train/sweep", r);
    ASSERT_FALSE(res.has_value()) << r.dump();
    EXPECT_EQ(res.error().code(), StatusCode::kInvalidArgument) << res.error().ToString();
    EXPECT_EQ(res.error().field(), k.field) << res.error().ToString();
  }
}

TEST_F(SweepE2eTest, TheCliRunsASweepAndPrintsItsTrials) {
  json r = Request();
  r.erase("sweep");
  r.erase("catalog");
  r["model_train"]["epochs"] = 2;
  dir_.Write("request.json", r.dump());
  auto cli = RunMlaas({"sweep", "--server", server_->url(), "--request", (dir_.path() / "request.json").string(),
                       "--param", "optimizer.init_lr=choice:3e-3,1e-2", "--param", "batch_size=choice:8,16",
                       "--algorithm", "grid", "--max-trials", "3", "--scheduler", "none", "--save", "models/cli-sweep",
                       "--wait"});
  EXPECT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  EXPECT_NE(cli.out.find("OPTIMIZER.INIT_LR"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("BATCH_SIZE"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("best: trial "), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("model saved to models/cli-sweep/trial-"), std::string::npos) << cli.out;
  auto bad = RunMlaas({"sweep", "--server", server_->url(), "--request", (dir_.path() / "request.json").string(),
                       "--param", "optimizer.init_lr=normal:1,2"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE((bad.out + bad.err).find("choice, uniform, log-uniform or int"), std::string::npos) << bad.out << bad.err;
}

}  // namespace
}  // namespace mlaas::testing
