// Scale-out reliability (issue 24), end to end on loopback: two API servers (--workers 0) and
// two standalone workers with no shared disk, on one PostgreSQL and one S3 server (s3rver),
// all started by the test. Fifty tasks submitted through both servers run exactly once across
// a database restart; a worker killed with -9 in the middle of a training task loses it to the
// other, which resumes from the checkpoint in the bucket; the S3 server stopped during an upload
// or a task leaves nothing partial, and the platform carries on when it is back. Deployments are
// shared by the API servers, and one pinned to a labelled server is served through every server
// (with accounts on, the caller's token goes along).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "e2e/fixtures.h"
#include "e2e/server_process.h"
#include "storage/s3_object_store.h"
#include "testutil/free_port.h"
#include "testutil/postgres_server.h"
#include "testutil/s3rver.h"
#include "testutil/temp_dir.h"
#include "testutil/tiny_model.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
    ASSERT_TRUE(postgres_.Start().ok());
    auto url = postgres_.FreshDatabase("mlaas");
    ASSERT_TRUE(url.has_value()) << url.error().ToString();
    url_ = *url;
    ASSERT_TRUE(s3_.Start(dir_.path(), {"lab"}).ok());
    bucket_ = std::make_unique<storage::S3ObjectStore>(s3_.options());
    // Every process spawned from here on reaches the bucket with these.
    ::setenv("MLAAS_S3_ENDPOINT", s3_.endpoint().c_str(), 1);
    ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    const std::vector<std::string> shared = {"--database", url_, "--storage", "s3://lab/p", "--task-lease-seconds", "6"};
    for (const char* name : {"api-a", "api-b"}) {
      std::vector<std::string> args = {"--workers", "0"};
      args.insert(args.end(), shared.begin(), shared.end());
      servers_.push_back(std::make_unique<ServerProcess>(dir_.path() / name, args));
      ASSERT_TRUE(servers_.back()->Start().ok()) << servers_.back()->Log();
    }
    for (const char* name : {"worker-1", "worker-2"}) {
      const int health = FreeLoopbackPort();
      std::vector<std::string> args = {"--workers", "1", "--threads", "1", "--health-port", std::to_string(health)};
      args.insert(args.end(), shared.begin(), shared.end());
      workers_.push_back(std::make_unique<WorkerProcess>(dir_.path() / name, args));
      ASSERT_TRUE(workers_.back()->Start().ok());
      // Ready: connected to the database and running (its probe says so).
      auto probe = std::move(client::ApiClient::Create("http://127.0.0.1:" + std::to_string(health), 5)).value();
      ASSERT_TRUE(WaitFor([&] {
        auto r = probe->Call("GET", "/readyz", "");
        return r.has_value() && r->status == 200;
      }, 60s)) << WorkerLogs();
    }
  }

  void TearDown() override {
    ::unsetenv("MLAAS_S3_ENDPOINT");
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
  }

  std::string WorkerLogs() const {
    std::string all;
    for (const auto& w : workers_) all += "--- worker " + std::to_string(w->pid()) + "\n" + w->Log();
    return all;
  }

  // The pid in a task's stats.worker ("host:pid:start"); 0 when not running.
  static pid_t WorkerPid(const json& task) {
    const std::string owner = task["stats"].value("worker", "");
    const size_t a = owner.find(':'), b = owner.rfind(':');
    if (a == std::string::npos || b == a) return 0;
    return static_cast<pid_t>(std::stol(owner.substr(a + 1, b - a - 1)));
  }

  TempDir dir_;
  PostgresServer postgres_;
  std::string url_;
  S3rver s3_;
  std::unique_ptr<storage::S3ObjectStore> bucket_;
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  std::vector<std::unique_ptr<WorkerProcess>> workers_;
};

TEST_F(ScaleOutTest, FiftyTasksThroughTwoServersRunExactlyOnceAcrossADatabaseRestart) {
  auto a = servers_[0]->Client(), b = servers_[1]->Client();
  ASSERT_EQ(CallServer(*a, "PUT", "/api/v1/objects/d.csv", "a\n1\n2\n3\n").status, 201);
  std::vector<std::string> ids;
  const auto submit = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto t = (ids.size() % 2 ? b : a)->Post("/api/v1/ml/utilities/dataset/stats", {{"dataset", {{"path", "d.csv"}}}});
      ASSERT_TRUE(t.has_value()) << t.error().ToString();
      ids.push_back((*t)["task_id"]);
    }
  };
  submit(25);
  // The database goes away for two seconds while both servers take more tasks and the workers
  // run them: calls wait and retry, nothing fails, nothing runs twice.
  ASSERT_TRUE(postgres_.Stop().ok());
  std::thread restart([&] {
    std::this_thread::sleep_for(2s);
    EXPECT_TRUE(postgres_.Resume().ok());
  });
  submit(25);
  restart.join();
  std::map<pid_t, int> ran_by;
  for (const auto& id : ids) {
    json t = WaitForTaskEnd(*a, id, 180s);
    ASSERT_EQ(t["task_status"], "succeeded") << t.dump() << WorkerLogs();
    EXPECT_EQ(t["dataset"]["rows"], 3) << t.dump();
    EXPECT_EQ(t["stats"]["attempts"], 1) << "run once: " << t.dump();
    auto logs = b->Get("/api/v1/tasks/" + id + "/logs");
    ASSERT_TRUE(logs.has_value());
    int starts = 0;
    for (const auto& line : (*logs)["logs"]) {
      const std::string m = line["message"];
      if (m.find("started on") != std::string::npos) {
        ++starts;
        const size_t at = m.find("started on ") + 11;
        const std::string owner = m.substr(at);
        ran_by[static_cast<pid_t>(std::stol(owner.substr(owner.find(':') + 1)))]++;
      }
    }
    EXPECT_EQ(starts, 1) << "one attempt started: " << logs->dump();
  }
  // Both workers took tasks (they wake on NOTIFY and claim with SKIP LOCKED).
  EXPECT_EQ(ran_by.size(), 2u) << WorkerLogs();
  for (const auto& w : workers_) EXPECT_GT(ran_by[w->pid()], 0) << "worker " << w->pid();
  auto listed = b->Get("/api/v1/tasks?limit=100&status=succeeded");
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ((*listed)["tasks"].size(), 50u);
}

TEST_F(ScaleOutTest, AWorkerKilledMidTrainingLosesItsTaskToAnotherThatResumesFromTheCheckpoint) {
  std::string vocab;
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "plot"}) vocab += std::string(t) + "\n";
  std::string csv = "text,label\n";
  for (int i = 0; i < 200; ++i) csv += i % 2 ? "bad movie plot,neg\n" : "good movie,pos\n";
  ASSERT_TRUE(bucket_->PutString("lab/p/tok/vocab.txt", vocab).has_value());
  ASSERT_TRUE(bucket_->PutString("lab/p/data/reviews.csv", csv).has_value());
  json request = {{"tokenizer", {{"path", "tok/vocab.txt"}}},
                  {"model", {{"objective", "text-classification"},
                             {"config", {{"model_type", "bert"}, {"hidden_size", 32}, {"num_hidden_layers", 1},
                                         {"num_attention_heads", 2}, {"intermediate_size", 64}, {"max_position_embeddings", 32}}}}},
                  {"dataset", {{"path", "data/reviews.csv"}, {"train_test_split", 0.1}}},
                  {"model_train", {{"epochs", 30}, {"batch_size", 4}, {"threads", 1}, {"checkpoint_steps", 20}, {"seed", 1}}},
                  {"model_save", {{"path", "models/resumed"}}},
                  {"resources", {{"labels", {"cpu"}}}}};
  auto a = servers_[0]->Client(), b = servers_[1]->Client();
  auto t = CallServer(*a, "POST", "/api/v1/ml/nlp/train/model", request.dump());
  ASSERT_EQ(t.status, 202) << t.text;
  const std::string id = t.body["task_id"];
  const std::string prefix = "lab/p/.mlaas/checkpoints/" + id + "/";
  ASSERT_TRUE(WaitFor([&] { return HasCompleteCheckpoint(*bucket_, prefix); }, 120s)) << WorkerLogs();
  json running = CallServer(*b, "GET", "/api/v1/tasks/" + id).body;
  ASSERT_EQ(running["task_status"], "running") << running.dump();
  const pid_t holder = WorkerPid(running);
  WorkerProcess* victim = nullptr;
  for (const auto& w : workers_) if (w->pid() == holder) victim = w.get();
  ASSERT_NE(victim, nullptr) << "held by " << running["stats"].dump();
  victim->Kill(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  // The other worker takes it: the dead one's lease runs out (or its host sees it is gone).
  pid_t taker = 0;
  ASSERT_TRUE(WaitFor([&] {
    json now = CallServer(*b, "GET", "/api/v1/tasks/" + id).body;
    taker = now["task_status"] == "running" ? WorkerPid(now) : 0;
    return taker != 0 && taker != holder;
  }, 60s)) << WorkerLogs();
  const double resumed_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::cout << "[ figure ] worker death to resumption on another worker: " << resumed_after << " s\n";
  RecordProperty("worker_death_to_resumption_seconds", std::to_string(resumed_after));
  json done = WaitForTaskEnd(*a, id, 300s);
  ASSERT_EQ(done["task_status"], "succeeded") << done.dump(2) << WorkerLogs();
  EXPECT_EQ(done["stats"]["attempts"], 2) << done["stats"].dump();
  EXPECT_GE(done["stats"].value("resumed_from_step", int64_t{-1}), 20) << done["stats"].dump();
  auto logs = a->Get("/api/v1/tasks/" + id + "/logs");
  ASSERT_TRUE(logs.has_value());
  EXPECT_NE(logs->dump().find("restored the checkpoint of step"), std::string::npos) << logs->dump(1);
  EXPECT_TRUE(bucket_->Stat("lab/p/models/resumed/model.safetensors").has_value());
  auto left = bucket_->List({.prefix = prefix, .delimiter = "", .max_keys = 10, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(left->objects.empty()) << "a finished task leaves no checkpoint in the bucket";
}

TEST_F(ScaleOutTest, TheS3ServerStoppedDuringAnUploadLeavesNothingPartialAndServiceResumes) {
  auto a = servers_[0]->Client();
  // An upload of 40 MB through server a; S3 goes away after 16 MB.
  const int sock = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(servers_[0]->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string head = "PUT /api/v1/objects/big/weights.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/octet-stream\r\nContent-Length: 40000000\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(sock, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  const std::string chunk(1 << 20, 'w');
  size_t sent = 0;
  for (int i = 0; i < 16; ++i) sent += std::max<ssize_t>(0, send(sock, chunk.data(), chunk.size(), MSG_NOSIGNAL));
  std::this_thread::sleep_for(1s);  // parts in flight or up
  ASSERT_TRUE(s3_.Stop().ok());
  while (sent < 40'000'000) {
    const ssize_t n = send(sock, chunk.data(), std::min(chunk.size(), 40'000'000 - sent), MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before taking it all
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[4096];
  timeval tv{.tv_sec = 120, .tv_usec = 0};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (ssize_t n; (n = recv(sock, buf, sizeof(buf), 0)) > 0;) reply.append(buf, static_cast<size_t>(n));
  close(sock);
  ASSERT_FALSE(reply.empty()) << "no answer to the upload";
  const int status = std::atoi(reply.substr(reply.find(' ') + 1, 3).c_str());
  EXPECT_GE(status, 500) << reply.substr(0, 400);
  EXPECT_NE(reply.find("\"error\""), std::string::npos) << "a JSON error body: " << reply.substr(0, 400);
  // The server stays up and says what is missing.
  auto ready = CallServer(*a, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.text;
  EXPECT_EQ(CallServer(*a, "GET", "/healthz").status, 200);

  // A task whose storage is gone fails with a clear error (it is not lost, nor left running).
  auto t = CallServer(*a, "POST", "/api/v1/ml/utilities/dataset/stats", json{{"dataset", {{"path", "d.csv"}}}}.dump());
  EXPECT_GE(t.status, 400) << "a dataset that cannot be read is refused at once: " << t.text;

  ASSERT_TRUE(s3_.Resume().ok());
  EXPECT_EQ(bucket_->Stat("lab/p/big/weights.bin").error().code(), StatusCode::kNotFound) << "nothing partial";
  EXPECT_EQ(CallServer(*a, "GET", "/api/v1/objects/big/weights.bin").status, 404);
  EXPECT_TRUE(WaitFor([&] { return CallServer(*a, "GET", "/readyz").status == 200; }, 30s));
  // And work goes on: the upload again, then a task on it run by a worker.
  EXPECT_EQ(CallServer(*a, "PUT", "/api/v1/objects/big/weights.bin", std::string(9'000'000, 'x')).status, 201);
  EXPECT_EQ(bucket_->Stat("lab/p/big/weights.bin")->size, 9'000'000u);
  ASSERT_EQ(CallServer(*a, "PUT", "/api/v1/objects/d.csv", "a\n1\n2\n").status, 201);
  auto stats = a->Post("/api/v1/ml/utilities/dataset/stats", {{"dataset", {{"path", "d.csv"}}}});
  ASSERT_TRUE(stats.has_value()) << stats.error().ToString();
  json done = WaitForTaskEnd(*a, (*stats)["task_id"], 60s);
  EXPECT_EQ(done["task_status"], "succeeded") << done.dump() << WorkerLogs();
}

// Deployments live in the database: one made through server a serves through server b, and one
// pinned to a labelled server (started here) loads only there and is served through every server,
// which hand its requests over; when the labelled server stops, the others say so.
TEST_F(ScaleOutTest, DeploymentsAreSharedAndAPinnedOneIsServedThroughEveryServer) {
  const fs::path local = dir_.path() / "tiny";
  ASSERT_TRUE(WriteTinyModel(local, nn::Architecture::kBert, nn::Objective::kTextClassification));
  ASSERT_TRUE(bucket_->PutDirectory("lab/p/models/tiny", local, "").has_value());
  auto labelled = std::make_unique<ServerProcess>(
      dir_.path() / "api-big", std::vector<std::string>{"--workers", "0", "--database", url_, "--storage", "s3://lab/p",
                                                        "--labels", "big-memory"});
  ASSERT_TRUE(labelled->Start().ok()) << labelled->Log();
  auto a = servers_[0]->Client(), b = servers_[1]->Client(), big = labelled->Client();
  const json infer = {{"inputs", {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {"the cat sat"}}}}}};
  auto label_of = [&](client::ApiClient& c, const std::string& model) {
    auto r = CallServer(c, "POST", "/v2/models/" + model + "/infer", infer.dump());
    return r.status == 200 ? r.body["outputs"][0]["data"][0].get<std::string>() : "status " + std::to_string(r.status) + " " + r.text;
  };

  auto d = CallServer(*a, "POST", "/api/v1/deployments", json{{"name", "shared"}, {"model", {{"path", "models/tiny"}}}}.dump());
  ASSERT_EQ(d.status, 202) << d.text;
  std::string expected;
  ASSERT_TRUE(WaitFor([&] {
    expected = label_of(*a, "shared");
    return expected.rfind("status", 0) != 0;
  }, 60s)) << expected << servers_[0]->Log();
  ASSERT_TRUE(WaitFor([&] { return label_of(*b, "shared") == expected; }, 30s)) << label_of(*b, "shared");
  ASSERT_TRUE(WaitFor([&] { return label_of(*big, "shared") == expected; }, 30s)) << label_of(*big, "shared");

  json pinned = {{"name", "pinned"}, {"model", {{"path", "models/tiny"}}}, {"resources", {{"labels", {"big-memory"}}}}};
  d = CallServer(*b, "POST", "/api/v1/deployments", pinned.dump());
  ASSERT_EQ(d.status, 202) << d.text;
  ASSERT_TRUE(WaitFor([&] { return label_of(*big, "pinned") == expected; }, 60s)) << labelled->Log();
  // a and b hold nothing of it and hand its requests to the labelled server.
  ASSERT_TRUE(WaitFor([&] { return label_of(*a, "pinned") == expected && label_of(*b, "pinned") == expected; }, 30s))
      << label_of(*a, "pinned");
  json view = CallServer(*a, "GET", "/api/v1/deployments/pinned").body;
  EXPECT_EQ(view["status"], "ready") << view.dump();
  ASSERT_EQ(view["hosts"].size(), 1u) << view.dump();
  EXPECT_EQ(view["hosts"][0]["url"], "http://127.0.0.1:" + std::to_string(labelled->port()));
  EXPECT_EQ(CallServer(*a, "GET", "/v2/models/pinned/ready").status, 200);
  auto meta = CallServer(*b, "GET", "/v2/models/pinned");
  EXPECT_EQ(meta.status, 200) << meta.text;
  EXPECT_EQ(meta.body["parameters"]["objective"], "text-classification") << meta.text;
  // A request only the model can judge (token ids beyond its vocabulary): the labelled server's
  // own answer, passed on.
  const json beyond = {{"inputs", {{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", {1, 2}}, {"data", {2, 99999}}}}}};
  auto bad = CallServer(*a, "POST", "/v2/models/pinned/infer", beyond.dump());
  EXPECT_EQ(bad.status, 400) << bad.text;
  EXPECT_NE(bad.text.find("outside the vocabulary"), std::string::npos) << bad.text;

  // The labelled server stops: the others answer 503 naming the label, and the view says why.
  labelled->Kill(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return CallServer(*a, "POST", "/v2/models/pinned/infer", infer.dump()).status == 503; }, 30s));
  auto r = CallServer(*b, "POST", "/v2/models/pinned/infer", infer.dump());
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.text.find("big-memory"), std::string::npos) << r.text;
  ASSERT_TRUE(WaitFor([&] { return CallServer(*a, "GET", "/api/v1/deployments/pinned").body["status"] == "pending"; }, 30s));
  EXPECT_EQ(label_of(*b, "shared"), expected);  // the shared one is unaffected

  // Undeployed through b: gone from a.
  EXPECT_EQ(CallServer(*b, "DELETE", "/api/v1/deployments/shared").status, 200);
  ASSERT_TRUE(WaitFor([&] { return CallServer(*a, "GET", "/api/v1/deployments/shared").status == 404; }, 30s));
}

// With accounts on, a forwarded request carries its caller's token: the server that serves the
// model checks it again, and the one that forwards refuses what it would refuse itself.
TEST_F(ScaleOutTest, WithAccountsAForwardedRequestCarriesItsCallersToken) {
  const fs::path local = dir_.path() / "tiny";
  ASSERT_TRUE(WriteTinyModel(local, nn::Architecture::kBert, nn::Objective::kTextClassification));
  ASSERT_TRUE(bucket_->PutDirectory("lab/p/users/alice/models/tiny", local, "").has_value());  // alice's home
  constexpr const char* kAdmin = "scaleout-admin-token-0123456789";
  ::setenv("MLAAS_ADMIN_TOKEN", kAdmin, 1);
  const std::vector<std::string> common = {"--workers", "0", "--database", url_, "--storage", "s3://lab/p", "--auth", "on"};
  auto args = [&](std::vector<std::string> more) {
    more.insert(more.begin(), common.begin(), common.end());
    return more;
  };
  ServerProcess gate(dir_.path() / "api-gate", args({})), big(dir_.path() / "api-big-auth", args({"--labels", "big-memory"}));
  ASSERT_TRUE(gate.Start().ok()) << gate.Log();
  ASSERT_TRUE(big.Start().ok()) << big.Log();
  ::unsetenv("MLAAS_ADMIN_TOKEN");
  auto as = [&](const std::string& token) { return std::move(client::ApiClient::Create(gate.url(), 30, token)).value(); };
  auto issue = [&](const std::string& user) {
    auto r = CallServer(*as(kAdmin), "POST", "/api/v1/tokens",
                        json{{"user", user}, {"scopes", {"read", "write"}}}.dump());
    EXPECT_EQ(r.status, 201) << r.text;
    return r.body.value("token", "");
  };
  const std::string alice = issue("alice"), bob = issue("bob");
  json pinned = {{"name", "alices"}, {"model", {{"path", "models/tiny"}}}, {"resources", {{"labels", {"big-memory"}}}}};
  auto d = CallServer(*as(alice), "POST", "/api/v1/deployments", pinned.dump());
  ASSERT_EQ(d.status, 202) << d.text;
  const json infer = {{"inputs", {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {"the cat sat"}}}}}};
  client::Response r;
  ASSERT_TRUE(WaitFor([&] {
    r = CallServer(*as(alice), "POST", "/v2/models/alices/infer", infer.dump());
    return r.status == 200;
  }, 60s)) << r.text << big.Log();
  EXPECT_EQ(r.body["model_name"], "alices");
  // The gate refuses a caller without a token, and bob, to whom alice's deployment does not exist.
  EXPECT_EQ(CallServer(*as(""), "POST", "/v2/models/alices/infer", infer.dump()).status, 401);
  EXPECT_EQ(CallServer(*as(bob), "POST", "/v2/models/alices/infer", infer.dump()).status, 404);
  // The labelled server checks tokens itself (so the 200 above came with alice's).
  auto direct = [&](const std::string& token) {
    auto c = std::move(client::ApiClient::Create(big.url(), 30, token)).value();
    return CallServer(*c, "POST", "/v2/models/alices/infer", infer.dump()).status;
  };
  EXPECT_EQ(direct(""), 401);
  EXPECT_EQ(direct(alice), 200);
}

}  // namespace
}  // namespace mlaas::testing
