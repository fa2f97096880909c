// End-to-end: NLP training as a task on the real server — the SPEC training output, the model
// directory it saves (predicted with right away), bad requests named by field, cancel, resume
// after kill -9, and `mlaas train --wait`.
#include <gtest/gtest.h>

#include <fstream>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;

class TrainE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    objects_ = dir_.path() / "data" / "objects";
    WriteSentimentVocab(objects_ / "tok" / "vocab.txt");
    Put("data/sentiment.csv", SentimentCsv(200, 1));
    Put("data/one_class.csv", "text,label\ngood movie,pos\ngreat movie,pos\nnice plot,pos\n");
    Put("data/header_only.csv", "text,label\n");
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", std::vector<std::string>{"--threads", "1"});
    ASSERT_TRUE(server_->Start().ok());
  }

  void Put(const std::string& key, const std::string& content) {
    std::filesystem::create_directories((objects_ / key).parent_path());
    std::ofstream(objects_ / key) << content;
  }

  static json Request(int epochs = 3) {
    return {{"tokenizer", {{"path", "tok/vocab.txt"}}},
            {"model",
             {{"objective", "text-classification"},
              {"config",
               {{"model_type", "bert"},
                {"hidden_size", 32},
                {"num_hidden_layers", 2},
                {"num_attention_heads", 4},
                {"intermediate_size", 64},
                {"max_position_embeddings", 64}}}}},
            {"dataset", {{"path", "data/sentiment.csv"}, {"train_test_split", 0.2}}},
            {"model_train",
             {{"epochs", epochs},
              {"batch_size", 8},
              {"seed", 3},
              {"threads", 1},
              {"optimizer", {{"name", "AdamW"}, {"init_lr", 3e-3}, {"num_warm_steps", 2}, {"weight_decay_rate", 0.01}}}}},
            {"model_save", {{"path", "models/sentiment"}}}};
  }

  static json WaitForEnd(client::ApiClient& c, const std::string& id, int seconds = 300) {
    return WaitForTaskEnd(c, id, std::chrono::seconds(seconds));
  }

  TempDir dir_;
  std::filesystem::path objects_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(TrainE2eTest, TrainsReportsTheSpecOutputAndPredicts) {
  auto c = server_->Client();
  auto accepted = c->Post("/api/v1/ml/nlp/train/model", Request());
  ASSERT_TRUE(accepted.has_value()) << accepted.error().ToString();
  EXPECT_EQ((*accepted)["task_status"], "queued");
  json t = WaitForEnd(*c, (*accepted)["task_id"]);
  ASSERT_EQ(t["task_status"], "succeeded") << t.dump(2) << server_->Log();
  // SPEC.md's training output.
  EXPECT_TRUE(t["stats"].contains("submitted"));
  EXPECT_TRUE(t["stats"].contains("elapsed"));
  EXPECT_GT(t["stats"]["tokens_per_s"].get<double>(), 0);
  EXPECT_EQ(t["stats"]["device"], "cpu");
  EXPECT_EQ(t["stats"]["threads"], 1);
  ASSERT_EQ(t["history"]["loss"].size(), 3u);
  ASSERT_EQ(t["history"]["accuracy"].size(), 3u);
  EXPECT_EQ(t["history"]["eval_accuracy"].size(), 3u);
  EXPECT_LT(t["history"]["loss"][2].get<double>(), t["history"]["loss"][0].get<double>());
  EXPECT_GE(t["evaluation"]["accuracy"].get<double>(), 0.9) << t["evaluation"].dump();
  EXPECT_TRUE(t["evaluation"].contains("macro_f1"));
  EXPECT_TRUE(t["evaluation"].contains("confusion_matrix"));
  EXPECT_EQ(t["dataset"]["samples_train"], 160);
  EXPECT_EQ(t["dataset"]["samples_test"], 40);
  EXPECT_GT(t["dataset"]["tokens"].get<int64_t>(), 160 * 5);
  EXPECT_EQ(t["dataset"]["labels"], json({"neg", "pos"}));
  EXPECT_EQ(t["progress"]["epoch"], 3);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "README.md"}) {
    EXPECT_TRUE(std::filesystem::exists(objects_ / "models" / "sentiment" / f)) << f;
  }
  std::ifstream card(objects_ / "models" / "sentiment" / "README.md");
  std::string card_text((std::istreambuf_iterator<char>(card)), {});
  EXPECT_NE(card_text.find("BertForSequenceClassification"), std::string::npos);
  EXPECT_NE(card_text.find("## Training history"), std::string::npos);

  // The saved model serves predictions at once.
  auto p = c->Post("/api/v1/ml/nlp/predict",
                   {{"model", {{"path", "models/sentiment"}, {"objective", "text-classification"}}},
                    {"predict_input", {{"input_text", {"the movie was really great", "the plot was awful"}}}}});
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ((*p)["predictions"][0]["label"], "pos") << p->dump();
  EXPECT_EQ((*p)["predictions"][1]["label"], "neg") << p->dump();

  // The CLI follows a run with a progress bar and prints the held-out metrics.
  json req = Request(1);
  req["model_save"]["path"] = "models/cli";
  dir_.Write("request.json", req.dump());
  auto cli = RunMlaas({"train", "--server", server_->url(), "--request", (dir_.path() / "request.json").string(),
                       "--epochs", "2", "--load-best", "--best-metric", "eval_accuracy", "--classifier-pooling", "mean",
                       "--wait"});
  EXPECT_EQ(cli.exit_code, 0) << cli.out;
  EXPECT_NE(cli.out.find("succeeded"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("kept epoch "), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find(", the best by eval_accuracy"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("accuracy"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("model saved to models/cli"), std::string::npos) << cli.out;
  std::ifstream saved_config(objects_ / "models" / "cli" / "config.json");
  EXPECT_EQ(json::parse(saved_config, nullptr, false).value("classifier_pooling", ""), "mean");
}

// Issue 23: a training task on a CUDA device, through the server, end to end (on a wheel's
// libtorch this crashed the server). Skipped with a notice where the server has no CUDA;
// scripts/device-check.sh runs it on a GPU machine.
TEST_F(TrainE2eTest, TrainsOnCudaThroughTheServer) {
  auto c = server_->Client();
  json r = Request();
  r["model_train"]["device"] = "cuda";
  r["model_save"]["path"] = "models/sentiment-cuda";
  auto accepted = c->Post("/api/v1/ml/nlp/train/model", r);
  ASSERT_TRUE(accepted.has_value()) << accepted.error().ToString();
  json t = WaitForEnd(*c, (*accepted)["task_id"]);
  if (t["task_status"] == "failed" && t.dump().find("has no CUDA") != std::string::npos)
    GTEST_SKIP() << "this server has no CUDA device: run scripts/device-check.sh on a GPU machine";
  ASSERT_EQ(t["task_status"], "succeeded") << t.dump(2) << server_->Log();
  EXPECT_EQ(t["stats"]["device"], "cuda");
  EXPECT_GE(t["evaluation"]["accuracy"].get<double>(), 0.9) << t["evaluation"].dump();
  auto p = c->Post("/api/v1/ml/nlp/predict",
                   {{"model", {{"path", "models/sentiment-cuda"}, {"objective", "text-classification"}}},
                    {"predict_input", {{"input_text", {"the movie was really great", "the plot was awful"}}}}});
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ((*p)["predictions"][0]["label"], "pos") << p->dump();
  EXPECT_TRUE(c->Get("/healthz").has_value());
}

TEST_F(TrainE2eTest, BadRequestsNameTheField) {
  auto c = server_->Client();
  struct Case {
    std::function<void(json&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](json& r) { r["dataset"]["loader_kwargs"] = {{"text_column", "abstract"}}; }, "dataset.loader_kwargs.text_column"},
      {[](json& r) { r["dataset"]["loader_kwargs"] = {{"label_column", "site"}}; }, "dataset.loader_kwargs.label_column"},
      {[](json& r) { r.erase("tokenizer"); }, "tokenizer"},
      {[](json& r) { r["tokenizer"]["path"] = "tok/missing.txt"; }, "tokenizer.path"},
      {[](json& r) { r["model_train"]["optimizer"]["name"] = "Adagrad"; }, "model_train.optimizer.name"},
      {[](json& r) { r["model_train"]["batch_size"] = 0; }, "model_train.batch_size"},
      {[](json& r) { r["model_train"]["epochs"] = 0; }, "model_train.epochs"},
      {[](json& r) { r["dataset"]["train_test_split"] = 1.5; }, "dataset.train_test_split"},
      {[](json& r) { r["dataset"]["path"] = "data/missing.csv"; }, "dataset.path"},
      {[](json& r) { r["model"]["preset"] = "bert-huge"; r["model"].erase("config"); }, "model.preset"},
      {[](json& r) { r["model"] = {{"path", "models/none"}, {"objective", "text-classification"}}; }, "model.path"},
      {[](json& r) { r["model"]["classifier_pooling"] = "max"; }, "model.classifier_pooling"},
      {[](json& r) { r["model_train"]["device"] = "bogus"; }, "model_train.device"},
      {[](json& r) { r["model"]["labels"] = {"pos", "neg"}; }, "model.labels"},  // the data's classes, never a list
      {[](json& r) { r["model_train"]["device"] = "cuda:x"; }, "model_train.device"},
      {[](json& r) { r["model"]["config"] = {{"model_type", "static-embedding"}, {"hidden_size", 16}}; }, "model.objective"},
      {[](json& r) { r["model"]["config"] = {{"model_type", "static-embedding"}}; }, "model.config.hidden_size"},
      {[](json& r) {
         r["model"]["config"] = {{"model_type", "static-embedding"}, {"hidden_size", 16}};
         r["model"]["objective"] = "sentence-embedding";
         r["model_train"]["whitening"] = 0.5;
       },
       "model_train.whitening"},
  };
  for (const auto& k : cases) {
    json r = Request();
    k.edit(r);
    auto res = c->Call("POST", "/api/v1/ml/nlp/train/model", r.dump());
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->status, 400) << k.field << ": " << res->text;
    EXPECT_EQ(res->body["error"]["field"], k.field) << res->text;
  }
  // Problems only the data shows fail the task, naming the field: 1,000 typo copies asked of the
  // ~700 KB of text in the training split of 900 KB (700 MB, over the 512 MiB bound; it once grew
  // the server by 1.3 GB from 228 KB).
  std::string big = "text,label\n";
  for (int i = 0; big.size() < 900'000; ++i) big += "a review of some length number " + std::to_string(i) + std::string(60, 'x') + "," + (i % 2 ? "pos" : "neg") + "\n";
  Put("data/big.csv", big);
  for (const auto& [path, field] : std::vector<std::pair<std::string, std::string>>{
           {"data/one_class.csv", "dataset.loader_kwargs.label_column"}, {"data/header_only.csv", "dataset.path"},
           {"data/big.csv", "dataset.augment.typos.copies"}}) {
    json r = Request();
    r["dataset"]["path"] = path;
    if (path == "data/big.csv") r["dataset"]["augment"] = {{"typos", {{"copies", 1000}}}};
    auto t = c->Post("/api/v1/ml/nlp/train/model", r);
    ASSERT_TRUE(t.has_value()) << t.error().ToString();
    json done = WaitForEnd(*c, (*t)["task_id"]);
    EXPECT_EQ(done["task_status"], "failed");
    EXPECT_EQ(done["error"]["field"], field) << done.dump();
  }
}

TEST_F(TrainE2eTest, CancelStopsWithinAStep) {
  auto c = server_->Client();
  auto t = c->Post("/api/v1/ml/nlp/train/model", Request(500));
  ASSERT_TRUE(t.has_value());
  const std::string id = (*t)["task_id"];
  ASSERT_TRUE(WaitFor([&] {
    auto r = c->Get("/api/v1/tasks/" + id);
    return r.has_value() && r->value("progress", json::object()).value("step", 0) > 3;
  }, std::chrono::seconds(120)));
  ASSERT_TRUE(c->Post("/api/v1/tasks/" + id + "/cancel", json::object()).has_value());
  json done = WaitForEnd(*c, id, 30);
  EXPECT_EQ(done["task_status"], "cancelled") << done.dump();
  EXPECT_FALSE(std::filesystem::exists(objects_ / "models" / "sentiment" / "config.json"));
}

TEST_F(TrainE2eTest, AKilledServerResumesFromTheLastCheckpoint) {
  auto c = server_->Client();
  json r = Request(40);
  r["model_train"]["checkpoint_steps"] = 5;
  auto t = c->Post("/api/v1/ml/nlp/train/model", r);
  ASSERT_TRUE(t.has_value());
  const std::string id = (*t)["task_id"];
  ASSERT_TRUE(WaitFor([&] {
    auto v = c->Get("/api/v1/tasks/" + id);
    return v.has_value() && v->value("progress", json::object()).value("step", 0) >= 12;
  }, std::chrono::seconds(120)));
  server_->Kill(SIGKILL);
  ASSERT_TRUE(std::filesystem::exists(dir_.path() / "data" / "checkpoints" / id / "current" / "state.json"));

  ServerProcess again(dir_.path() / "data", {"--threads", "1"});
  ASSERT_TRUE(again.Start().ok());
  auto c2 = again.Client();
  json done = WaitForEnd(*c2, id);
  ASSERT_EQ(done["task_status"], "succeeded") << done.dump(2) << again.Log();
  EXPECT_GE(done["stats"]["resumed_from_step"].get<int64_t>(), 10) << done["stats"].dump();
  EXPECT_EQ(done["stats"]["attempts"], 2);
  EXPECT_EQ(done["history"]["loss"].size(), 40u);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "data" / "checkpoints" / id)) << "removed once done";

  // The same request run without interruption ends with the same history and the same model.
  r["model_save"]["path"] = "models/uninterrupted";
  auto t2 = c2->Post("/api/v1/ml/nlp/train/model", r);
  ASSERT_TRUE(t2.has_value());
  json whole = WaitForEnd(*c2, (*t2)["task_id"]);
  ASSERT_EQ(whole["task_status"], "succeeded") << whole.dump();
  ASSERT_EQ(whole["history"]["loss"].size(), done["history"]["loss"].size());
  for (size_t e = 0; e < whole["history"]["loss"].size(); ++e) {
    EXPECT_NEAR(whole["history"]["loss"][e].get<double>(), done["history"]["loss"][e].get<double>(), 1e-4) << e;
  }
  const json texts = {"the movie was really great", "the plot was awful", "a very sad movie"};
  json scores[2];
  int k = 0;
  for (const char* path : {"models/sentiment", "models/uninterrupted"}) {
    auto p = c2->Post("/api/v1/ml/nlp/predict", {{"model", {{"path", path}, {"objective", "text-classification"}}},
                                                 {"predict_input", {{"input_text", texts}, {"top_k", 2}}}});
    ASSERT_TRUE(p.has_value()) << p.error().ToString();
    scores[k++] = (*p)["predictions"];
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(scores[0][i]["label"], scores[1][i]["label"]);
    EXPECT_NEAR(scores[0][i]["score"].get<double>(), scores[1][i]["score"].get<double>(), 1e-4) << i;
  }
}

}  // namespace
}  // namespace mlaas::testing
