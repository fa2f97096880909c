// Data-parallel training end to end (issue 24): two `mlaas worker` processes started as
// torchrun or a PyTorchJob would start them (WORLD_SIZE=2, RANK, MASTER_ADDR, MASTER_PORT on
// loopback) form one group; a task asking resources.workers = 2 trains across both (each on
// half of every batch, gradients averaged over Gloo) and reaches the weights one process
// reaches with the same global batch, which the group's rank 0 computes for comparison.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "e2e/fixtures.h"
#include "e2e/server_process.h"
#include "testutil/free_port.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(DataParallelE2eTest, TwoProcessesTrainToTheWeightsOfOneWithTheSameGlobalBatch) {
  TempDir dir;
  const auto data = dir.path() / "data";
  ServerProcess server(data, {"--workers", "0"});
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto c = server.Client();
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
  ASSERT_EQ(CallServer(*c, "PUT", "/api/v1/objects/tok/vocab.txt", vocab).status, 201);
  ASSERT_EQ(CallServer(*c, "PUT", "/api/v1/objects/data/reviews.csv", rows(71, 0)).status, 201);
  ASSERT_EQ(CallServer(*c, "PUT", "/api/v1/objects/data/held-out.csv", rows(12, 1)).status, 201);

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

  // No dropout: the only randomness left is the shuffling, the same in every process.
  json request = {{"tokenizer", {{"path", "tok/vocab.txt"}}},
                  {"model", {{"objective", "text-classification"},
                             {"config", {{"model_type", "bert"}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                                         {"num_attention_heads", 2}, {"intermediate_size", 64},
                                         {"max_position_embeddings", 32}, {"hidden_dropout_prob", 0.0},
                                         {"attention_probs_dropout_prob", 0.0}}}}},
                  {"dataset", {{"path", "data/reviews.csv"}, {"eval_dataset", {{"path", "data/held-out.csv"}}}}},
                  // Two batches per optimizer step: the gradients of both are averaged at the second.
                  {"model_train", {{"epochs", 6}, {"batch_size", 5}, {"gradient_accumulation_steps", 2}, {"threads", 1},
                                   {"seed", 3}, {"optimizer", {{"name", "AdamW"}, {"init_lr", 0.003}}}}}};
  const auto train = [&](int workers, const std::string& save) {
    json r = request;
    r["model_save"] = {{"path", save}};
    r["resources"] = {{"workers", workers}};
    auto t = CallServer(*c, "POST", "/api/v1/ml/nlp/train/model", r.dump());
    EXPECT_EQ(t.status, 202) << t.text;
    json done = WaitForTaskEnd(*c, t.body.value("task_id", ""), 300s);
    EXPECT_EQ(done["task_status"], "succeeded") << done.dump(1) << logs();
    return done;
  };
  json two = train(2, "models/ddp");
  ASSERT_EQ(two["task_status"], "succeeded");
  EXPECT_EQ(two["stats"]["data_parallel"]["world_size"], 2) << two["stats"].dump();
  EXPECT_NE(group[1]->Log().find("training as rank 1 of 2"), std::string::npos) << logs();
  json one = train(1, "models/single");  // rank 0 alone
  ASSERT_EQ(one["task_status"], "succeeded");
  EXPECT_FALSE(one["stats"].contains("data_parallel"));

  // The same losses epoch by epoch (the group's sums over both halves) ...
  const json& l2 = two["history"]["loss"];
  const json& l1 = one["history"]["loss"];
  ASSERT_EQ(l2.size(), 6u);
  ASSERT_EQ(l1.size(), 6u);
  for (size_t e = 0; e < 6; ++e) EXPECT_NEAR(l2[e].get<double>(), l1[e].get<double>(), 1e-4) << "epoch " << e;
  // ... and the same model: its predictions agree within floating-point tolerance.
  const json texts = {"good movie", "bad plot", "great dull movie", "plot"};
  const auto predict = [&](const std::string& path) {
    auto r = CallServer(*c, "POST", "/api/v1/ml/nlp/predict",
                        json{{"model", {{"path", path}, {"objective", "text-classification"}}},
                             {"predict_input", {{"input_text", texts}}}}
                            .dump());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body["predictions"];
  };
  json p2 = predict("models/ddp"), p1 = predict("models/single");
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
