// Data-parallel training end to end (issue 24): two `mlaas worker` processes started as
// torchrun or a PyTorchJob would start them (WORLD_SIZE=2, RANK, MASTER_ADDR, MASTER_PORT on
// loopback) form one group; a task asking resources.workers = 2 trains across both (each on
// half of every batch, gradients averaged over Gloo) and reaches the weights one process
// reaches with the same global batch, which the group's rank 0 computes for comparison.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>

#include "common/text.h"
#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "e2e/server_process.h"
#include "testutil/free_port.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The data both tests train on, uploaded through `c`, and their training request.
json UploadTrainingData(client::ApiClient& c) {
  std::string vocab;
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "plot", "great", "dull"})
    vocab += std::string(t) + "\n";
  // 71 training examples in batches of 5: the members' shares are 2 and 3 examples, and the
  // last batch (1 example) leaves rank 0 with none.
  const char* pos[] = {"good movie", "great plot", "good great movie"};
  const char* neg[] = {"bad movie plot", "dull plot", "bad dull movie"};
  const auto rows = [&](int n, int from) {
    std::string csv = "text,label\n";
    for (int i = from; i < from + n; ++i) csv += std::string(i % 2 ? neg[i % 3] : pos[i % 3]) + (i % 2 ? ",neg\n" : ",pos\n");
    return csv;
  };
  EXPECT_EQ(CallServer(c, "PUT", "/api/v1/objects/tok/vocab.txt", vocab).status, 201);
  EXPECT_EQ(CallServer(c, "PUT", "/api/v1/objects/data/reviews.csv", rows(71, 0)).status, 201);
  EXPECT_EQ(CallServer(c, "PUT", "/api/v1/objects/data/held-out.csv", rows(12, 1)).status, 201);
  // No dropout: the only randomness left is the shuffling, the same in every process.
  return {{"tokenizer", {{"path", "tok/vocab.txt"}}},
          {"model", {{"objective", "text-classification"},
                     {"config", {{"model_type", "bert"}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                                 {"num_attention_heads", 2}, {"intermediate_size", 64},
                                 {"max_position_embeddings", 32}, {"hidden_dropout_prob", 0.0},
                                 {"attention_probs_dropout_prob", 0.0}}}}},
          {"dataset", {{"path", "data/reviews.csv"}, {"eval_dataset", {{"path", "data/held-out.csv"}}}}},
          // Two batches per optimizer step: the gradients of both are averaged at the second.
          {"model_train", {{"epochs", 6}, {"batch_size", 5}, {"gradient_accumulation_steps", 2}, {"threads", 1},
                           {"seed", 3}, {"optimizer", {{"name", "AdamW"}, {"init_lr", 0.003}}}}}};
}

// Trains `request` on `workers` processes into `save`; the finished task.
json Train(client::ApiClient& c, json request, int workers, const std::string& save, const std::function<std::string()>& logs) {
  request["model_save"] = {{"path", save}};
  request["resources"] = {{"workers", workers}};
  auto t = CallServer(c, "POST", "/api/v1/ml/nlp/train/model", request.dump());
  EXPECT_EQ(t.status, 202) << t.text;
  json done = WaitForTaskEnd(c, t.body.value("task_id", ""), 300s);
  EXPECT_EQ(done["task_status"], "succeeded") << done.dump(1) << logs();
  return done;
}

// The group's run and one process's run of the same request end with the same losses and the
// same model.
void ExpectTheSameTraining(client::ApiClient& c, const json& two, const json& one, const std::string& two_path,
                           const std::string& one_path) {
  const json& l2 = two["history"]["loss"];
  const json& l1 = one["history"]["loss"];
  ASSERT_EQ(l2.size(), 6u);
  ASSERT_EQ(l1.size(), 6u);
  for (size_t e = 0; e < 6; ++e) EXPECT_NEAR(l2[e].get<double>(), l1[e].get<double>(), 1e-4) << "epoch " << e;
  // ... and the same model: its predictions agree within floating-point tolerance.
  const json texts = {"good movie", "bad plot", "great dull movie", "plot"};
  const auto predict = [&](const std::string& path) {
    auto r = CallServer(c, "POST", "/api/v1/ml/nlp/predict",
                        json{{"model", {{"path", path}, {"objective", "text-classification"}}},
                             {"predict_input", {{"input_text", texts}}}}
                            .dump());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body["predictions"];
  };
  json p2 = predict(two_path), p1 = predict(one_path);
  ASSERT_EQ(p2.size(), texts.size());
  ASSERT_EQ(p1.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(p2[i]["label"], p1[i]["label"]) << texts[i];
    EXPECT_NEAR(p2[i]["score"].get<double>(), p1[i]["score"].get<double>(), 1e-4) << texts[i];
  }
  // The group learned the task.
  EXPECT_EQ(p2[0]["label"], "pos");
  EXPECT_EQ(p2[1]["label"], "neg");
}

TEST(DataParallelE2eTest, TwoProcessesTrainToTheWeightsOfOneWithTheSameGlobalBatch) {
  TempDir dir;
  const auto data = dir.path() / "data";
  ServerProcess server(data, {"--workers", "0"});
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto c = server.Client();
  const json request = UploadTrainingData(*c);

  // The group: rank 0 and rank 1, sharing the server's data directory and database.
  const std::string port = std::to_string(FreeLoopbackPort());
  std::vector<std::unique_ptr<WorkerProcess>> group;
  for (int rank = 0; rank < 2; ++rank) {
    ::setenv("WORLD_SIZE", "2", 1);
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", port.c_str(), 1);
    ::setenv("MLAAS_GROUP_BUCKET_BYTES", "8192", 1);  // many buckets, launched as backward goes
    group.push_back(std::make_unique<WorkerProcess>(data, std::vector<std::string>{"--workers", "1", "--threads", "1"},
                                                    "rank" + std::to_string(rank)));
    ASSERT_TRUE(group.back()->Start().ok());
  }
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "MLAAS_GROUP_BUCKET_BYTES"}) ::unsetenv(v);
  const auto logs = [&] { return "--- rank 0\n" + group[0]->Log() + "\n--- rank 1\n" + group[1]->Log(); };

  json two = Train(*c, request, 2, "models/ddp", logs);
  ASSERT_EQ(two["task_status"], "succeeded");
  EXPECT_EQ(two["stats"]["data_parallel"]["world_size"], 2) << two["stats"].dump();
  EXPECT_NE(group[1]->Log().find("training as rank 1 of 2"), std::string::npos) << logs();
  json one = Train(*c, request, 1, "models/single", logs);  // rank 0 alone
  ASSERT_EQ(one["task_status"], "succeeded");
  EXPECT_FALSE(one["stats"].contains("data_parallel"));
  ExpectTheSameTraining(*c, two, one, "models/ddp", "models/single");
}

// Workers started apart, with no group environment, gather through the database for a task
// asking resources.workers = 2: the first to come takes rank 0, claims the task once the other
// sat down, serves the group's store on a free port and says where; the group trains as a
// torchrun group would. A task asking more workers than there are waits, queued, until it is
// cancelled, and the workers go back to other work.
TEST(DataParallelE2eTest, WorkersStartedApartGatherThroughTheDatabase) {
  TempDir dir;
  const auto data = dir.path() / "data";
  ServerProcess server(data, {"--workers", "0"});
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto c = server.Client();
  const json request = UploadTrainingData(*c);
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  ::setenv("MLAAS_GROUP_BUCKET_BYTES", "8192", 1);
  for (int i = 0; i < 2; ++i) {
    workers.push_back(std::make_unique<WorkerProcess>(
        data, std::vector<std::string>{"--workers", "1", "--threads", "1", "--group-host", "127.0.0.1"},
        "worker" + std::to_string(i)));
    ASSERT_TRUE(workers.back()->Start().ok());
  }
  ::unsetenv("MLAAS_GROUP_BUCKET_BYTES");
  const auto logs = [&] { return "--- worker 0\n" + workers[0]->Log() + "\n--- worker 1\n" + workers[1]->Log(); };

  // More than there are (asked through the CLI): it waits with the two seated, and cancelling
  // it frees them.
  std::ofstream(dir.path() / "request.json") << request.dump();
  auto three = RunMlaas({"train", "--server", server.url(), "--request", (dir.path() / "request.json").string(),
                         "--save", "models/three", "--workers", "3"});
  ASSERT_EQ(three.exit_code, 0) << three.out;
  const std::string three_id = std::string(Trim(three.out));
  auto asked = CallServer(*c, "GET", "/api/v1/tasks/" + three_id);
  ASSERT_EQ(asked.status, 200) << asked.text << three.out;
  EXPECT_EQ(asked.body["request"]["resources"]["workers"], 3) << asked.text;
  std::string three_logs;
  EXPECT_TRUE(WaitFor(
      [&] {
        three_logs = CallServer(*c, "GET", "/api/v1/tasks/" + three_id + "/logs").text;
        return three_logs.find("took rank 1 of the 3") != std::string::npos;
      },
      30s))
      << three_logs << logs();
  EXPECT_EQ(CallServer(*c, "GET", "/api/v1/tasks/" + three_id).body["task_status"], "queued");
  ASSERT_EQ(CallServer(*c, "POST", "/api/v1/tasks/" + three_id + "/cancel").status, 200);

  json registered = request;
  registered["catalog"] = {{"model", "gathered"}};
  json two = Train(*c, registered, 2, "models/gathered", logs);
  ASSERT_EQ(two["task_status"], "succeeded");
  EXPECT_EQ(two["stats"]["data_parallel"]["world_size"], 2) << two["stats"].dump();
  const std::string all = logs();
  EXPECT_NE(all.find("running as rank 1 of 2"), std::string::npos) << all;
  // Both on this host: local ranks 0 and 1 (on a GPU host, cuda:0 and cuda:1), as torchrun gives
  // (rank 0's in the task's log, the other's in its worker's).
  const int local = two["stats"]["data_parallel"].value("local_rank", -1);
  ASSERT_TRUE(local == 0 || local == 1) << two["stats"].dump();
  EXPECT_NE(all.find("rank 1 of 2 (local rank " + std::to_string(1 - local) + ", on cpu)"), std::string::npos) << all;
  json one = Train(*c, request, 1, "models/alone", logs);
  ASSERT_EQ(one["task_status"], "succeeded");
  ExpectTheSameTraining(*c, two, one, "models/gathered", "models/alone");
  // The model was registered once, by rank 0.
  auto versions = CallServer(*c, "GET", "/api/v1/catalog/models/gathered/versions");
  ASSERT_EQ(versions.status, 200) << versions.text;
  EXPECT_EQ(versions.text.find("\"version\":2"), std::string::npos) << versions.text;
  EXPECT_NE(versions.text.find("\"version\":1"), std::string::npos) << versions.text;
}

// A request for two members long enough to lose one in the middle of the run: 150 epochs, a
// checkpoint every 8 steps.
json LongGroupRequest(client::ApiClient& c, const std::string& save) {
  json request = UploadTrainingData(c);
  request["model_train"]["epochs"] = 150;
  request["model_train"]["checkpoint_steps"] = 8;
  request["model_save"] = {{"path", save}};
  request["resources"] = {{"workers", 2}};
  return request;
}

// Whether rank 0 has written the task's first checkpoint.
bool Checkpointed(const fs::path& data, const std::string& id) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(data / "checkpoints" / id, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename() == "state.json") return true;
  return false;
}

// The task ended well in its second attempt, resumed from the first one's checkpoint.
void ExpectResumedInTheSecondAttempt(client::ApiClient& c, const fs::path& data, const std::string& id,
                                     const std::function<std::string()>& logs) {
  json done = WaitForTaskEnd(c, id, 300s);
  ASSERT_EQ(done["task_status"], "succeeded") << done.dump(1) << logs();
  EXPECT_EQ(done["stats"]["attempts"], 2) << done["stats"].dump();
  EXPECT_GT(done["stats"].value("resumed_from_step", int64_t{-1}), 0) << done["stats"].dump();
  EXPECT_EQ(done["stats"]["data_parallel"]["world_size"], 2) << done["stats"].dump();
  const std::string task_logs = CallServer(c, "GET", "/api/v1/tasks/" + id + "/logs").text;
  EXPECT_NE(task_logs.find("goes back to the queue"), std::string::npos) << task_logs.substr(0, 4000);
  EXPECT_NE(task_logs.find("resuming from the checkpoint"), std::string::npos) << task_logs.substr(0, 4000);
  EXPECT_FALSE(fs::exists(data / "checkpoints" / id)) << "a finished task leaves no checkpoint";
}

// A gathered group that loses a member in the middle of the run hands the task back: the
// attempt ends with its checkpoint kept, a new group gathers (the surviving worker and the idle
// one) and resumes from it.
TEST(DataParallelE2eTest, AGatheredGroupThatLosesAMemberHandsTheTaskBackAndANewGroupResumes) {
  TempDir dir;
  const auto data = dir.path() / "data";
  ServerProcess server(data, {"--workers", "0"});
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto c = server.Client();
  const json request = LongGroupRequest(*c, "models/regathered");
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<WorkerProcess>(
        data, std::vector<std::string>{"--workers", "1", "--threads", "1", "--group-host", "127.0.0.1"},
        "worker" + std::to_string(i)));
    ASSERT_TRUE(workers.back()->Start().ok());
  }
  const auto logs = [&] {
    std::string all;
    for (size_t i = 0; i < workers.size(); ++i) all += "--- worker " + std::to_string(i) + "\n" + workers[i]->Log() + "\n";
    return all;
  };
  auto t = CallServer(*c, "POST", "/api/v1/ml/nlp/train/model", request.dump());
  ASSERT_EQ(t.status, 202) << t.text;
  const std::string id = t.body.value("task_id", "");
  ASSERT_TRUE(WaitFor([&] { return Checkpointed(data, id); }, 120s)) << logs();
  WorkerProcess* member = nullptr;
  for (auto& w : workers)
    if (w->Log().find("running as rank 1 of 2") != std::string::npos) member = w.get();
  ASSERT_NE(member, nullptr) << logs();
  member->Kill(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  // The figure: from the member's death to the new group's start (its attempt's first line).
  EXPECT_TRUE(WaitFor(
      [&] { return CallServer(*c, "GET", "/api/v1/tasks/" + id + "/logs").text.find("attempt 2 of") != std::string::npos; },
      120s))
      << logs();
  const double regathered_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::cout << "[ figure ] group member death to a new group's attempt: " << regathered_after << " s\n";
  RecordProperty("member_death_to_new_group_seconds", std::to_string(regathered_after));
  ExpectResumedInTheSecondAttempt(*c, data, id, logs);
}

// A member of a group of two on loopback, as torchrun (or a PyTorchJob's restart policy) starts
// one, again after a failure; the group waits 10 s for a member.
std::unique_ptr<WorkerProcess> StartMember(const fs::path& data, int rank, const std::string& port, const std::string& name) {
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", port.c_str(), 1);
  ::setenv("MLAAS_GROUP_TIMEOUT_SECONDS", "10", 1);
  auto w = std::make_unique<WorkerProcess>(data, std::vector<std::string>{"--workers", "1", "--threads", "1"}, name);
  EXPECT_TRUE(w->Start().ok());
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "MLAAS_GROUP_TIMEOUT_SECONDS"}) ::unsetenv(v);
  return w;
}

// A torchrun group that loses a member in the middle of a run hands the task back with its
// checkpoint kept. Until the launcher restarts the member, rank 0 hands the task out to no one:
// each wait for the group ends after MLAAS_GROUP_TIMEOUT_SECONDS and gives the task back
// without counting an attempt. Once the member is back, the group resumes from the checkpoint.
TEST(DataParallelE2eTest, ATorchrunGroupThatLosesAMemberResumesOnceItsLauncherRestartsIt) {
  TempDir dir;
  const auto data = dir.path() / "data";
  ServerProcess server(data, {"--workers", "0"});
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto c = server.Client();
  const json request = LongGroupRequest(*c, "models/restarted");
  const std::string port = std::to_string(FreeLoopbackPort());
  const auto start = [&](int rank, const std::string& name) { return StartMember(data, rank, port, name); };
  auto rank0 = start(0, "rank0");
  auto rank1 = start(1, "rank1");
  std::unique_ptr<WorkerProcess> restarted;
  const auto logs = [&] {
    return "--- rank 0\n" + rank0->Log() + "\n--- rank 1\n" + rank1->Log() +
           (restarted ? "\n--- rank 1 restarted\n" + restarted->Log() : std::string());
  };
  auto t = CallServer(*c, "POST", "/api/v1/ml/nlp/train/model", request.dump());
  ASSERT_EQ(t.status, 202) << t.text;
  const std::string id = t.body.value("task_id", "");
  const auto task_logs = [&] { return CallServer(*c, "GET", "/api/v1/tasks/" + id + "/logs").text; };
  ASSERT_TRUE(WaitFor([&] { return Checkpointed(data, id); }, 120s)) << logs();
  ASSERT_NE(rank1->Log().find("training as rank 1 of 2"), std::string::npos) << logs();
  rank1->Kill(SIGKILL);
  // The run fails at its next collective; the attempt goes back to the queue, counted.
  ASSERT_TRUE(WaitFor([&] { return task_logs().find("attempt 1 failed: data-parallel training failed") != std::string::npos; }, 60s))
      << task_logs() << logs();
  // Rank 0 takes it again and waits for the member, in vain: the task goes back, uncounted.
  ASSERT_TRUE(WaitFor([&] { return task_logs().find("did not follow within 10 s") != std::string::npos; }, 60s))
      << task_logs() << logs();
  auto queued = CallServer(*c, "GET", "/api/v1/tasks/" + id);
  EXPECT_NE(queued.body.value("task_status", ""), "failed") << queued.text;
  restarted = start(1, "rank1-restarted");
  ExpectResumedInTheSecondAttempt(*c, data, id, logs);
  EXPECT_NE(restarted->Log().find("training as rank 1 of 2"), std::string::npos) << logs();
}

// A member whose own share fails (here: its data directory lacks the request's files) fails the task
// with its error, in the first attempt: not retried as if the member were lost.
TEST(DataParallelE2eTest, AMembersOwnFailureFailsTheTaskWithItsError) {
  TempDir dir;
  const auto data = dir.path() / "data";
  ServerProcess server(data, {"--workers", "0"});
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto c = server.Client();
  json request = UploadTrainingData(*c);
  request["model_save"] = {{"path", "models/never"}};
  request["resources"] = {{"workers", 2}};
  const std::string port = std::to_string(FreeLoopbackPort());
  auto rank0 = StartMember(data, 0, port, "rank0");
  auto rank1 = StartMember(dir.path() / "elsewhere", 1, port, "rank1");
  const auto logs = [&] { return "--- rank 0\n" + rank0->Log() + "\n--- rank 1\n" + rank1->Log(); };
  auto t = CallServer(*c, "POST", "/api/v1/ml/nlp/train/model", request.dump());
  ASSERT_EQ(t.status, 202) << t.text;
  json done = WaitForTaskEnd(*c, t.body.value("task_id", ""), 120s);
  ASSERT_EQ(done["task_status"], "failed") << done.dump(1) << logs();
  const std::string message = done["error"].value("message", "");
  EXPECT_NE(message.find("a member of the data-parallel group failed: rank 1: "), std::string::npos) << message;
  EXPECT_NE(message.find("in local storage"), std::string::npos) << message;  // what it lacked, named
  EXPECT_EQ(done["stats"]["attempts"], 1) << done.dump(1);
}

// A group member whose environment is incomplete stops at once with a message naming the
// variable.
TEST(DataParallelE2eTest, AnIncompleteGroupEnvironmentIsAClearError) {
  TempDir dir;
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "1", 1);
  ::unsetenv("MASTER_ADDR");
  ::setenv("MASTER_PORT", "29555", 1);
  WorkerProcess worker(dir.path() / "data", {"--workers", "1"});
  ASSERT_TRUE(worker.Start().ok());
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_PORT"}) ::unsetenv(v);
  const int status = worker.WaitExit(30s);
  ASSERT_NE(status, -1) << worker.Log();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  EXPECT_NE(worker.Log().find("MASTER_ADDR"), std::string::npos) << worker.Log();
}

}  // namespace
}  // namespace mlaas::testing
