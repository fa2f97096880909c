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
