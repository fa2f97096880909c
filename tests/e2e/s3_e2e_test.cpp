// End-to-end: the real server with S3 storage (s3rver on loopback, started here). A classifier
// fine-tuned from a PyTorch-format checkpoint that sits in a bucket, on a dataset in the bucket,
// written back to the bucket, and listed there.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "storage/s3_object_store.h"
#include "testutil/temp_dir.h"

extern char** environ;

namespace mlaas::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

TEST(S3E2eTest, FineTunesFromACheckpointInABucketAndWritesTheModelBack) {
  const fs::path s3rver = fs::path(MLAAS_SOURCE_DIR) / "tests/storage/s3/node_modules/s3rver/bin/s3rver.js";
  if (!fs::exists(s3rver)) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
  TempDir dir;
  // s3rver on a free port.
  int port = 0;
  {
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t n = sizeof(a);
    getsockname(sock, reinterpret_cast<sockaddr*>(&a), &n);
    port = ntohs(a.sin_port);
    close(sock);
  }
  std::vector<std::string> args = {"/usr/bin/node", "--openssl-legacy-provider", s3rver.string(), "-d", (dir.path() / "s3").string(),
                                   "-a", "127.0.0.1", "-p", std::to_string(port), "-s", "--configure-bucket", "lab"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  struct Stop {
    pid_t pid;
    ~Stop() {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  } stop{pid};
  storage::S3Options o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port);
  o.access_key = o.secret_key = "S3RVER";
  o.retries = 0;
  storage::S3ObjectStore bucket(o);
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    storage::ListOptions l;
    l.prefix = "lab/";
    up = bucket.List(l).has_value();
    if (!up) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(up) << "s3rver did not start";

  // A BERT checkpoint in PyTorch's format and a dataset, in the bucket.
  ASSERT_EQ(TrainWordPieceTokenizer(dir, (dir.path() / "tok").string()).exit_code, 0);
  ASSERT_EQ(InitSmallModel(dir, (dir.path() / "tok").string(), (dir.path() / "base").string(), "masked-lm").exit_code, 0);
  const std::string cmd = "/usr/bin/python3 " MLAAS_SOURCE_DIR "/tests/checkpoint/to_pytorch_bin.py " + (dir.path() / "base").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(bucket.PutDirectory("lab/models/base", dir.path() / "base", "config.json").has_value());
  std::string csv = "text,label\n";
  for (int i = 0; i < 24; ++i) csv += std::string(i % 2 ? "Bari INFN Italy" : "Milano INAF Italy") + "," + (i % 2 ? "BA" : "MI") + "\n";
  ASSERT_TRUE(bucket.PutString("lab/data/affiliations.csv", csv).has_value());

  ::setenv("MLAAS_S3_ENDPOINT", o.endpoint.c_str(), 1);
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  ServerProcess server(dir.path() / "data", {"--threads", "1", "--workers", "1"});
  Status started = server.Start();
  ::unsetenv("MLAAS_S3_ENDPOINT");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto c = server.Client();
  auto t = CallServer(*c, "POST", "/api/v1/ml/nlp/train/model",
                      json{{"model", {{"path", "s3://lab/models/base"}, {"storage_type", "s3"}, {"objective", "text-classification"}}},
                           {"dataset", {{"path", "s3://lab/data/affiliations.csv"}, {"storage_type", "s3"}}},
                           {"model_train", {{"epochs", 2}, {"batch_size", 4}, {"threads", 1}}},
                           {"model_save", {{"path", "s3://lab/models/tuned"}, {"storage_type", "s3"}}}}
                          .dump());
  ASSERT_EQ(t.status, 202) << t.text;
  json task = WaitForTaskEnd(*c, t.body["task_id"], 300s);
  ASSERT_EQ(task["task_status"], "succeeded") << task.dump(2) << server.Log();
  EXPECT_FALSE(task["model"].value("from_scratch", true)) << "started from the bucket's pretrained encoder";
  // The model is in the bucket, listed through the server, and predicts from there.
  storage::ListOptions l;
  l.prefix = "lab/models/tuned/";
  auto files = bucket.List(l);
  ASSERT_TRUE(files.has_value());
  std::set<std::string> names;
  for (const auto& f : files->objects) names.insert(f.key.substr(l.prefix.size()));
  EXPECT_TRUE(names.count("config.json") && names.count("model.safetensors")) << names.size();
  auto p = CallServer(*c, "POST", "/api/v1/ml/nlp/predict",
                      json{{"model", {{"path", "s3://lab/models/tuned"}, {"storage_type", "s3"}}},
                           {"predict_input", {{"input_text", {"Bari INFN"}}}}}
                          .dump());
  ASSERT_EQ(p.status, 200) << p.text;
  EXPECT_EQ(p.body["predictions"].size(), 1u);
  EXPECT_EQ(server.Log().find("S3RVER"), std::string::npos) << "credentials never logged";
}

}  // namespace
}  // namespace mlaas::testing
