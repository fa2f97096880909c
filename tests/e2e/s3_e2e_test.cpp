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

#include <algorithm>
#include <cstdlib>
#include <set>
#include <thread>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "storage/s3_object_store.h"
#include "e2e/server_process.h"
#include "testutil/s3rver.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"
#include "vision/image.h"

extern char** environ;

namespace mlaas::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// Starts `server` with `s3` in its environment (and only its).
Status StartWithS3(const S3rver& s3, ServerProcess& server) {
  ::setenv("MLAAS_S3_ENDPOINT", s3.endpoint().c_str(), 1);
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  Status started = server.Start();
  ::unsetenv("MLAAS_S3_ENDPOINT");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  return started;
}

TEST(S3E2eTest, FineTunesFromACheckpointInABucketAndWritesTheModelBack) {
  if (!HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
  TempDir dir;
  S3rver s3;
  ASSERT_TRUE(s3.Start(dir.path(), {"lab"}).ok());
  const storage::S3Options& o = s3.options();
  storage::S3ObjectStore bucket(o);

  // A BERT checkpoint in PyTorch's format and a dataset, in the bucket.
  ASSERT_EQ(TrainWordPieceTokenizer(dir, (dir.path() / "tok").string()).exit_code, 0);
  ASSERT_EQ(InitSmallModel(dir, (dir.path() / "tok").string(), (dir.path() / "base").string(), "masked-lm").exit_code, 0);
  const std::string cmd = "/usr/bin/python3 " MLAAS_SOURCE_DIR "/tests/checkpoint/to_pytorch_bin.py " + (dir.path() / "base").string() +
                          " --pretraining";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(bucket.PutDirectory("lab/models/base", dir.path() / "base", "config.json").has_value());
  std::string csv = "text,label\n";
  for (int i = 0; i < 24; ++i) csv += std::string(i % 2 ? "Bari INFN Italy" : "Milano INAF Italy") + "," + (i % 2 ? "BA" : "MI") + "\n";
  ASSERT_TRUE(bucket.PutString("lab/data/affiliations.csv", csv).has_value());

  ServerProcess server(dir.path() / "data", {"--threads", "1", "--workers", "1"});
  Status started = StartWithS3(s3, server);
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
  // As transformers reports a BertForPreTraining checkpoint loaded into a classifier: the
  // pre-training heads unused, the classifier new.
  const json& unused = task["model"]["unused_checkpoint_weights"];
  const json& fresh = task["model"]["newly_initialized"];
  EXPECT_NE(std::find(unused.begin(), unused.end(), "cls.seq_relationship.weight"), unused.end()) << unused.dump();
  EXPECT_NE(std::find(unused.begin(), unused.end(), "cls.predictions.transform.dense.weight"), unused.end()) << unused.dump();
  EXPECT_NE(std::find(fresh.begin(), fresh.end(), "classifier.weight"), fresh.end()) << fresh.dump();
  auto logs = c->Get("/api/v1/tasks/" + task["task_id"].get<std::string>() + "/logs");
  ASSERT_TRUE(logs.has_value());
  EXPECT_NE(logs->dump().find("were not used when initialising BertForSequenceClassification"), std::string::npos) << logs->dump(1);
  // The model is in the bucket, listed through the server, and predicts from there.
  storage::ListOptions l;
  l.prefix = "lab/models/tuned/";
  auto files = bucket.List(l);
  ASSERT_TRUE(files.has_value());
  std::set<std::string> names;
  for (const auto& f : files->objects) names.insert(f.key.substr(l.prefix.size()));
  EXPECT_TRUE(names.count("config.json") && names.count("model.safetensors")) << names.size();
  // And listed with the bucket's endpoint, through the server.
  auto listed = CallServer(*c, "GET", "/api/v1/ml/utilities/s3/object?bucket=lab&prefix=models/tuned/");
  ASSERT_EQ(listed.status, 200) << listed.text;
  std::set<std::string> listed_keys;
  for (const auto& obj : listed.body["objects"]) listed_keys.insert(obj["key"].get<std::string>());
  EXPECT_TRUE(listed_keys.count("models/tuned/model.safetensors")) << listed.text;
  auto p = CallServer(*c, "POST", "/api/v1/ml/nlp/predict",
                      json{{"model", {{"path", "s3://lab/models/tuned"}, {"storage_type", "s3"}}},
                           {"predict_input", {{"input_text", {"Bari INFN"}}}}}
                          .dump());
  ASSERT_EQ(p.status, 200) << p.text;
  EXPECT_EQ(p.body["predictions"].size(), 1u);
  EXPECT_EQ(server.Log().find("S3RVER"), std::string::npos) << "credentials never logged";
}

// Image classification with everything in a bucket: an image folder (a bad file among the PNGs)
// trained on, the model written back, and images named by their keys in the bucket predicted.
TEST(S3E2eTest, TrainsAnImageClassifierOnAFolderInABucket) {
  if (!HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
  TempDir dir;
  S3rver s3;
  ASSERT_TRUE(s3.Start(dir.path(), {"lab"}).ok());
  storage::S3ObjectStore bucket(s3.options());
  auto shade = [](int value) {
    vision::Image im{12, 12, 1, std::vector<uint8_t>(144, static_cast<uint8_t>(value))};
    return *vision::EncodePng(im);
  };
  for (int i = 0; i < 24; ++i) {
    const bool dark = i % 2 == 0;
    ASSERT_TRUE(bucket.PutString("lab/shades/" + std::string(dark ? "dark/" : "light/") + std::to_string(i) + ".png",
                                 shade(dark ? 20 + i : 200 + i)).has_value());
  }
  ASSERT_TRUE(bucket.PutString("lab/shades/dark/broken.png", "not a png").has_value());
  ASSERT_TRUE(bucket.PutString("lab/probe/light.png", shade(240)).has_value());

  ServerProcess server(dir.path() / "data", {"--threads", "1", "--workers", "1"});
  Status started = StartWithS3(s3, server);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto c = server.Client();
  auto t = CallServer(*c, "POST", "/api/v1/ml/cv/train/model",
                      json{{"model", {{"preset", "cnn-small"}, {"objective", "image-classification"}}},
                           {"dataset", {{"path", "s3://lab/shades"}, {"storage_type", "s3"}, {"format", "image_folder"},
                                        {"train_test_split", 0.25}}},
                           {"model_train", {{"epochs", 6}, {"batch_size", 8}, {"threads", 1}, {"optimizer", {{"init_lr", 3e-3}}}}},
                           {"model_save", {{"path", "s3://lab/models/shades"}, {"storage_type", "s3"}}}}
                          .dump());
  ASSERT_EQ(t.status, 202) << t.text;
  json task = WaitForTaskEnd(*c, t.body["task_id"], 300s);
  ASSERT_EQ(task["task_status"], "succeeded") << task.dump(2) << server.Log();
  EXPECT_EQ(task["dataset"]["skipped_images"], 1);
  EXPECT_EQ(task["dataset"]["labels"], json({"dark", "light"}));
  EXPECT_EQ(task["evaluation"]["accuracy"], 1.0) << task["evaluation"].dump();
  EXPECT_TRUE(bucket.Stat("lab/models/shades/config.json").has_value());
  auto p = CallServer(*c, "POST", "/api/v1/ml/cv/predict",
                      json{{"model", {{"path", "s3://lab/models/shades"}, {"storage_type", "s3"}}},
                           {"predict_input", {{"paths", {"s3://lab/probe/light.png"}}, {"storage_type", "s3"}}}}
                          .dump());
  ASSERT_EQ(p.status, 200) << p.text;
  EXPECT_EQ(p.body["predictions"][0]["label"], "light") << p.text;
}

// `mlaas serve --storage s3://lab/platform`: the server's own store is a bucket prefix. With
// accounts on, alice's uploads, her trained model and its catalog version all land in the
// bucket (none in the data directory), predictions load the model through the bounded local
// cache, listings show her keys, buckets are only hers to name when shared, and a second
// server with an empty data directory serves the same objects.
TEST(S3E2eTest, TheServersOwnStoreIsABucket) {
  if (!HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
  TempDir dir;
  S3rver s3;
  ASSERT_TRUE(s3.Start(dir.path(), {"lab", "shared"}).ok());
  storage::S3ObjectStore bucket(s3.options());
  constexpr const char* kAdmin = "e2e-s3-admin-token-0123456789abcdef";
  ::setenv("MLAAS_ADMIN_TOKEN", kAdmin, 1);
  ServerProcess server(dir.path() / "data", {"--threads", "1", "--workers", "1", "--auth", "on", "--storage", "s3://lab/platform",
                                             "--s3-buckets", "shared"});
  Status started = StartWithS3(s3, server);
  ::unsetenv("MLAAS_ADMIN_TOKEN");
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto as = [&](const std::string& token) { return std::move(client::ApiClient::Create(server.url(), 120, token)).value(); };
  auto admin = as(kAdmin);
  auto issued = CallServer(*admin, "POST", "/api/v1/tokens", json{{"user", "alice"}, {"scopes", {"read", "write"}}}.dump());
  ASSERT_EQ(issued.status, 201) << issued.text;
  auto alice = as(issued.body["token"]);

  // Alice's uploads go to the bucket, under the prefix and her home.
  std::string vocab;
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "good", "awful", "bad"})
    vocab += std::string(t) + "\n";
  std::string csv = "text,label\n";
  for (int i = 0; i < 40; ++i) csv += std::string("the movie was ") + (i % 2 ? "great good" : "awful bad") + "," + (i % 2 ? "pos" : "neg") + "\n";
  ASSERT_EQ(CallServer(*alice, "PUT", "/api/v1/objects/tok/vocab.txt", vocab).status, 201);
  ASSERT_EQ(CallServer(*alice, "PUT", "/api/v1/objects/data/reviews.csv", csv).status, 201);
  auto in_bucket = bucket.GetString("lab/platform/users/alice/data/reviews.csv");
  ASSERT_TRUE(in_bucket.has_value()) << in_bucket.error().ToString();
  EXPECT_EQ(*in_bucket, csv);
  auto back = CallServer(*alice, "GET", "/api/v1/objects/data/reviews.csv");
  ASSERT_EQ(back.status, 200);
  EXPECT_EQ(back.text, csv);

  // Trained, saved and registered: every file in the bucket.
  json train = {{"tokenizer", {{"path", "tok/vocab.txt"}}},
                {"model",
                 {{"objective", "text-classification"},
                  {"config", {{"model_type", "bert"}, {"hidden_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
                              {"intermediate_size", 64}, {"max_position_embeddings", 64}}}}},
                {"dataset", {{"path", "data/reviews.csv"}, {"train_test_split", 0.2}}},
                {"model_train", {{"epochs", 2}, {"batch_size", 8}, {"seed", 3}, {"threads", 1}}},
                {"model_save", {{"path", "models/sentiment"}}},
                {"catalog", {{"model", "sentiment"}}}};
  auto t = CallServer(*alice, "POST", "/api/v1/ml/nlp/train/model", train.dump());
  ASSERT_EQ(t.status, 202) << t.text;
  json task = WaitForTaskEnd(*alice, t.body["task_id"], 300s);
  ASSERT_EQ(task["task_status"], "succeeded") << task.dump(2) << server.Log();
  EXPECT_EQ(task["catalog"]["reference"], "catalog://sentiment/1") << task.dump(2);
  EXPECT_TRUE(bucket.Stat("lab/platform/users/alice/models/sentiment/model.safetensors").has_value());
  storage::ListOptions versions;
  versions.prefix = "lab/platform/catalog/models/sentiment/1/";
  auto registered = bucket.List(versions);
  ASSERT_TRUE(registered.has_value());
  EXPECT_GE(registered->objects.size(), 3u) << "the catalog's immutable copy is in the bucket";
  EXPECT_FALSE(fs::exists(dir.path() / "data" / "objects" / "users")) << "nothing of alice's on the server's disk";

  // Predictions load the model through the local cache: fetched once, then kept.
  for (const char* ref : {"models/sentiment", "models/sentiment", "catalog://sentiment"}) {
    auto p = CallServer(*alice, "POST", "/api/v1/ml/nlp/predict",
                        json{{"model", {{"path", ref}}}, {"predict_input", {{"input_text", {"the movie was great"}}}}}.dump());
    ASSERT_EQ(p.status, 200) << ref << ": " << p.text;
    EXPECT_EQ(p.body["predictions"].size(), 1u);
  }
  size_t cached = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "data" / "cache"))
    if (e.is_regular_file()) ++cached;
  EXPECT_GE(cached, 2u) << "config and weights kept in data/cache";

  // Listings: her keys as she named them; buckets only when shared.
  auto mine = CallServer(*alice, "GET", "/api/v1/ml/utilities/s3/object?prefix=models/sentiment/");
  ASSERT_EQ(mine.status, 200) << mine.text;
  std::set<std::string> keys;
  for (const auto& o : mine.body["objects"]) keys.insert(o["key"].get<std::string>());
  EXPECT_TRUE(keys.count("models/sentiment/config.json")) << mine.text;
  EXPECT_EQ(mine.text.find("platform/"), std::string::npos) << mine.text;
  auto refused = CallServer(*alice, "GET", "/api/v1/ml/utilities/s3/object?bucket=lab");
  EXPECT_EQ(refused.status, 403) << refused.text;
  EXPECT_EQ(refused.body["error"].value("field", ""), "bucket") << refused.text;
  ASSERT_TRUE(bucket.PutString("shared/corpora/a.txt", "a").has_value());
  ASSERT_TRUE(bucket.PutString("shared/corpora/b/c.txt", "c").has_value());
  auto shared = CallServer(*alice, "GET", "/api/v1/ml/utilities/s3/object?bucket=shared&prefix=corpora/&delimiter=/");
  ASSERT_EQ(shared.status, 200) << shared.text;
  EXPECT_EQ(shared.body["storage_type"], "s3");
  ASSERT_EQ(shared.body["objects"].size(), 1u) << shared.text;
  EXPECT_EQ(shared.body["objects"][0]["key"], "corpora/a.txt");
  EXPECT_EQ(shared.body["common_prefixes"], json({"corpora/b/"}));
  auto admins = CallServer(*admin, "GET", "/api/v1/ml/utilities/s3/object?bucket=lab&prefix=platform/users/alice/models/&delimiter=/");
  ASSERT_EQ(admins.status, 200) << admins.text;
  EXPECT_EQ(admins.body["common_prefixes"], json({"platform/users/alice/models/sentiment/"}));
  EXPECT_EQ(CallServer(*alice, "GET", "/api/v1/ml/utilities/s3/object?bucket=Not_A_Bucket").status, 400);
  auto elsewhere = CallServer(*alice, "POST", "/api/v1/ml/nlp/predict",
                              json{{"model", {{"path", "s3://lab/platform/users/alice/models/sentiment"}, {"storage_type", "s3"}}},
                                   {"predict_input", {{"input_text", {"x"}}}}}.dump());
  EXPECT_EQ(elsewhere.status, 403) << elsewhere.text;
  EXPECT_EQ(elsewhere.body["error"].value("field", ""), "model.path") << elsewhere.text;

  // Another server, another (empty) data directory, the same bucket: the same objects.
  server.Kill(SIGTERM);
  ServerProcess second(dir.path() / "data2", {"--threads", "1", "--workers", "0", "--storage", "s3://lab/platform"});
  started = StartWithS3(s3, second);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto c = second.Client();
  auto again = CallServer(*c, "GET", "/api/v1/objects/users/alice/data/reviews.csv");
  ASSERT_EQ(again.status, 200) << again.text;
  EXPECT_EQ(again.text, csv);
  EXPECT_EQ(second.Log().find("S3RVER"), std::string::npos) << "credentials never logged";
}

// With the server's store on S3, a training task's checkpoints are kept in the bucket: killed
// mid-run and restarted without its local checkpoints (as on another host), it resumes from
// the bucket's latest, and once done leaves none there.
TEST(S3E2eTest, TrainingResumesFromItsCheckpointInTheBucket) {
  if (!HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
  TempDir dir;
  S3rver s3;
  ASSERT_TRUE(s3.Start(dir.path(), {"lab"}).ok());
  storage::S3ObjectStore bucket(s3.options());
  std::string vocab;
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "plot"}) vocab += std::string(t) + "\n";
  std::string csv = "text,label\n";
  for (int i = 0; i < 200; ++i) csv += i % 2 ? "bad movie plot,neg\n" : "good movie,pos\n";
  ASSERT_TRUE(bucket.PutString("lab/p/tok/vocab.txt", vocab).has_value());
  ASSERT_TRUE(bucket.PutString("lab/p/data/reviews.csv", csv).has_value());
  const std::vector<std::string> args = {"--threads", "1", "--workers", "1", "--storage", "s3://lab/p"};
  auto server = std::make_unique<ServerProcess>(dir.path() / "data", args);
  ASSERT_TRUE(StartWithS3(s3, *server).ok());
  json request = {{"tokenizer", {{"path", "tok/vocab.txt"}}},
                  {"model", {{"objective", "text-classification"},
                             {"config", {{"model_type", "bert"}, {"hidden_size", 32}, {"num_hidden_layers", 1},
                                         {"num_attention_heads", 2}, {"intermediate_size", 64}, {"max_position_embeddings", 32}}}}},
                  {"dataset", {{"path", "data/reviews.csv"}, {"train_test_split", 0.1}}},
                  {"model_train", {{"epochs", 12}, {"batch_size", 4}, {"threads", 1}, {"checkpoint_steps", 20}, {"seed", 1}}},
                  {"model_save", {{"path", "models/resumed"}}}};
  auto t = CallServer(*server->Client(), "POST", "/api/v1/ml/nlp/train/model", request.dump());
  ASSERT_EQ(t.status, 202) << t.text;
  const std::string id = t.body["task_id"];
  const std::string prefix = "lab/p/.mlaas/checkpoints/" + id + "/";
  ASSERT_TRUE(WaitFor([&] { return HasCompleteCheckpoint(bucket, prefix); }, std::chrono::seconds(120))) << server->Log();
  server->Kill(SIGKILL);
  fs::remove_all(dir.path() / "data" / "checkpoints");  // another host: nothing on its disk
  server = std::make_unique<ServerProcess>(dir.path() / "data", args);
  ASSERT_TRUE(StartWithS3(s3, *server).ok());
  auto c = server->Client();
  json done = WaitForTaskEnd(*c, id, 300s);
  ASSERT_EQ(done["task_status"], "succeeded") << done.dump(2) << server->Log();
  EXPECT_GE(done["stats"].value("resumed_from_step", int64_t{-1}), 20) << done["stats"].dump();
  auto logs = c->Get("/api/v1/tasks/" + id + "/logs");
  ASSERT_TRUE(logs.has_value());
  EXPECT_NE(logs->dump().find("restored the checkpoint of step"), std::string::npos) << logs->dump(1);
  EXPECT_TRUE(bucket.Stat("lab/p/models/resumed/model.safetensors").has_value());
  auto left = bucket.List({.prefix = prefix, .delimiter = "", .max_keys = 10, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(left->objects.empty()) << "a finished task leaves no checkpoint in the bucket";
}

// The server killed (SIGKILL) in the middle of a multipart upload to its bucket: parts went up,
// the upload never completed, so no object is visible, to S3 nor to the restarted server.
TEST(S3E2eTest, AServerKilledMidUploadLeavesNoObject) {
  if (!HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
  TempDir dir;
  S3rver s3;
  ASSERT_TRUE(s3.Start(dir.path(), {"lab"}).ok());
  storage::S3ObjectStore bucket(s3.options());
  const std::vector<std::string> args = {"--workers", "0", "--storage", "s3://lab/p"};
  auto server = std::make_unique<ServerProcess>(dir.path() / "data", args);
  ASSERT_TRUE(StartWithS3(s3, *server).ok());
  // 40 MB announced, 24 MB sent (three 8 MB parts' worth), then nothing.
  const int sock = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(server->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const std::string head = "PUT /api/v1/objects/big/weights.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                           "Content-Length: 40000000\r\n\r\n";
  ASSERT_EQ(send(sock, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  const std::string chunk(1 << 20, 'w');
  for (int i = 0; i < 24; ++i) ASSERT_EQ(send(sock, chunk.data(), chunk.size(), MSG_NOSIGNAL), static_cast<ssize_t>(chunk.size()));
  std::this_thread::sleep_for(1500ms);  // parts in flight or up
  server->Kill(SIGKILL);
  close(sock);
  EXPECT_EQ(bucket.Stat("lab/p/big/weights.bin").error().code(), StatusCode::kNotFound);
  server = std::make_unique<ServerProcess>(dir.path() / "data", args);
  ASSERT_TRUE(StartWithS3(s3, *server).ok());
  auto c = server->Client();
  EXPECT_EQ(CallServer(*c, "GET", "/api/v1/objects/big/weights.bin").status, 404);
  auto listed = CallServer(*c, "GET", "/api/v1/ml/utilities/s3/object?prefix=big/");
  ASSERT_EQ(listed.status, 200);
  EXPECT_TRUE(listed.body["objects"].empty()) << listed.text;
  // And a complete upload of the same key works.
  EXPECT_EQ(CallServer(*c, "PUT", "/api/v1/objects/big/weights.bin", std::string(9'000'000, 'x')).status, 201);
  auto stat = bucket.Stat("lab/p/big/weights.bin");
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->size, 9'000'000u);
}

}  // namespace
}  // namespace mlaas::testing
