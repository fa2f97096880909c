// End-to-end: a model on a Hugging Face Hub (a hub-shaped server on loopback, written here),
// its weights in PyTorch's pytorch_model.bin, named by repo id: the real server predicts with it,
// fine-tunes a classifier from it into local storage, and keeps the files in the hub's cache.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "common/file_util.h"
#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// Serves one directory as the repo org/tiny at revision main.
class HubServer {
 public:
  explicit HubServer(fs::path repo) : repo_(std::move(repo)) {
    server_.Get("/api/models/org/tiny/revision/main", [this](const httplib::Request&, httplib::Response& res) {
      json siblings = json::array();
      for (const auto& e : fs::directory_iterator(repo_)) siblings.push_back({{"rfilename", e.path().filename().string()}});
      res.set_content(json{{"id", "org/tiny"}, {"sha", std::string(40, 'c')}, {"siblings", siblings}}.dump(), "application/json");
    });
    server_.Get(R"(/org/tiny/resolve/main/([A-Za-z0-9._-]+))", [this](const httplib::Request& req, httplib::Response& res) {
      ++file_requests;
      const fs::path file = repo_ / std::string(req.matches[1]);
      auto bytes = mlaas::ReadFile(file);
      if (!bytes.has_value()) {
        res.status = 404;
        return;
      }
      res.set_header("X-Repo-Commit", std::string(40, 'c'));
      res.set_header("ETag", "\"etag-" + std::string(req.matches[1]) + "-" + std::to_string(bytes->size()) + "\"");
      res.set_content(*bytes, "application/octet-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(5ms);
  }
  ~HubServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> file_requests{0};

 private:
  fs::path repo_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(HubE2eTest, APytorchCheckpointOnTheHubPredictsAndFineTunesByRepoId) {
  TempDir dir;
  ASSERT_EQ(TrainWordPieceTokenizer(dir, (dir.path() / "tok").string()).exit_code, 0);
  ASSERT_EQ(InitSmallModel(dir, (dir.path() / "tok").string(), (dir.path() / "repo").string(), "text-classification", "BA,MI").exit_code, 0);
  const std::string cmd = "/usr/bin/python3 " MLAAS_SOURCE_DIR "/tests/checkpoint/to_pytorch_bin.py " + (dir.path() / "repo").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(fs::exists(dir.path() / "repo" / "pytorch_model.bin"));
  HubServer hub(dir.path() / "repo");

  ::setenv("HF_ENDPOINT", hub.url().c_str(), 1);
  ::setenv("HF_HUB_CACHE", (dir.path() / "hf-cache").c_str(), 1);
  ServerProcess server(dir.path() / "data", {"--threads", "1", "--workers", "1"});
  Status started = server.Start();
  ::unsetenv("HF_ENDPOINT");
  ::unsetenv("HF_HUB_CACHE");
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto c = server.Client();

  const json hub_model = {{"path", "org/tiny"}, {"storage_type", "hugging_face_hub"}, {"revision", "main"}};
  auto p = CallServer(*c, "POST", "/api/v1/ml/nlp/predict",
                      json{{"model", hub_model}, {"predict_input", {{"input_text", {"Bari INFN", "Milano INAF"}}}}}.dump());
  ASSERT_EQ(p.status, 200) << p.text << server.Log();
  EXPECT_EQ(p.body["predictions"].size(), 2u);
  EXPECT_EQ(p.body["model"]["objective"], "text-classification") << "read from the hub model's config.json";
  // The hub's cache layout.
  const fs::path repo = dir.path() / "hf-cache" / "models--org--tiny";
  EXPECT_TRUE(fs::exists(repo / "snapshots" / std::string(40, 'c') / "pytorch_model.bin"));
  EXPECT_TRUE(fs::exists(repo / "refs" / "main"));

  // Fine-tune from it into local storage.
  std::string csv = "text,label\n";
  for (int i = 0; i < 24; ++i) csv += std::string(i % 2 ? "Bari INFN Italy" : "Milano INAF Italy") + "," + (i % 2 ? "BA" : "MI") + "\n";
  ASSERT_EQ(CallServer(*c, "PUT", "/api/v1/objects/data/affiliations.csv", csv).status, 201);
  auto t = CallServer(*c, "POST", "/api/v1/ml/nlp/train/model",
                      json{{"model", {{"path", "org/tiny"}, {"storage_type", "hugging_face_hub"}, {"objective", "text-classification"}}},
                           {"dataset", {{"path", "data/affiliations.csv"}}},
                           {"model_train", {{"epochs", 2}, {"batch_size", 4}, {"threads", 1}}},
                           {"model_save", {{"path", "models/tuned"}}}}
                          .dump());
  ASSERT_EQ(t.status, 202) << t.text;
  json task = WaitForTaskEnd(*c, t.body["task_id"], 300s);
  ASSERT_EQ(task["task_status"], "succeeded") << task.dump(2) << server.Log();
  EXPECT_FALSE(task["model"].value("from_scratch", true)) << "started from the hub's pretrained weights: " << task["model"].dump();
  EXPECT_TRUE(fs::exists(dir.path() / "data" / "objects" / "models" / "tuned" / "model.safetensors"));
  // Imported into the server's store with the CLI: the PyTorch weights become safetensors, the
  // TensorFlow file and the git attributes stay out, and the copy predicts as the hub's does.
  std::ofstream(dir.path() / "repo" / "tf_model.h5") << "not read by mlaas";
  std::ofstream(dir.path() / "repo" / ".gitattributes") << "*.bin filter=lfs";
  auto imported = RunMlaas({"model", "import", "hf://org/tiny@main", "--output", "models/imported", "--wait", "--server", server.url()});
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err << server.Log();
  EXPECT_NE(imported.out.find("converted pytorch_model.bin -> model.safetensors"), std::string::npos) << imported.out;
  const fs::path copy = dir.path() / "data" / "objects" / "models" / "imported";
  EXPECT_TRUE(fs::exists(copy / "model.safetensors"));
  EXPECT_TRUE(fs::exists(copy / "config.json"));
  EXPECT_TRUE(fs::exists(copy / "vocab.txt") || fs::exists(copy / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(copy / "pytorch_model.bin"));
  EXPECT_FALSE(fs::exists(copy / "tf_model.h5"));
  EXPECT_FALSE(fs::exists(copy / ".gitattributes"));
  auto from_copy = CallServer(*c, "POST", "/api/v1/ml/nlp/predict",
                              json{{"model", {{"path", "models/imported"}}}, {"predict_input", {{"input_text", {"Bari INFN", "Milano INAF"}}}}}.dump());
  ASSERT_EQ(from_copy.status, 200) << from_copy.text;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(from_copy.body["predictions"][i]["label"], p.body["predictions"][i]["label"]);
    EXPECT_NEAR(from_copy.body["predictions"][i]["score"].get<double>(), p.body["predictions"][i]["score"].get<double>(), 1e-6);
  }
  // A checkpoint whose pickle calls eval is refused by name, and nothing is written.
  auto config = mlaas::ReadFile(dir.path() / "repo" / "config.json");
  ASSERT_TRUE(config.has_value());
  ASSERT_EQ(CallServer(*c, "PUT", "/api/v1/objects/evil/config.json", *config).status, 201);
  ASSERT_EQ(CallServer(*c, "PUT", "/api/v1/objects/evil/pytorch_model.bin",
                       std::string("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93\x8c\x0bprint('hi')\x85R.", 35)).status,
            201);
  auto evil = CallServer(*c, "POST", "/api/v1/ml/models/import",
                         json{{"model", {{"path", "evil"}}}, {"model_save", {{"path", "models/evil"}}}}.dump());
  ASSERT_EQ(evil.status, 202) << evil.text;
  json refused = WaitForTaskEnd(*c, evil.body["task_id"], 60s);
  EXPECT_EQ(refused["task_status"], "failed") << refused.dump(2);
  EXPECT_NE(refused.dump().find("builtins.eval"), std::string::npos) << refused.dump(2);
  EXPECT_FALSE(fs::exists(dir.path() / "data" / "objects" / "models" / "evil"));
  // Bad requests are named.
  auto no_dir = CallServer(*c, "POST", "/api/v1/ml/models/import",
                           json{{"model", {{"path", "org/none"}, {"storage_type", "hugging_face_hub"}}}, {"model_save", {{"path", "m"}}}}.dump());
  if (no_dir.status == 202) {
    json failed = WaitForTaskEnd(*c, no_dir.body["task_id"], 60s);
    EXPECT_EQ(failed["task_status"], "failed");
    EXPECT_NE(failed.dump().find("org/none"), std::string::npos) << failed.dump(2);
  } else {
    EXPECT_EQ(no_dir.status / 100, 4) << no_dir.text;
  }
  auto to_hub = CallServer(*c, "POST", "/api/v1/ml/models/import",
                           json{{"model", {{"path", "models/imported"}}}, {"model_save", {{"path", "org/x"}, {"storage_type", "hugging_face_hub"}}}}.dump());
  EXPECT_EQ(to_hub.status, 400) << to_hub.text;

  // A missing repository is a clear 4xx naming it.
  auto missing = CallServer(*c, "POST", "/api/v1/ml/nlp/predict",
                            json{{"model", {{"path", "org/none"}, {"storage_type", "hugging_face_hub"}}},
                                 {"predict_input", {{"input_text", {"x"}}}}}
                                .dump());
  EXPECT_EQ(missing.status / 100, 4) << missing.text;
  EXPECT_NE(missing.text.find("org/none"), std::string::npos) << missing.text;
}

}  // namespace
}  // namespace mlaas::testing
