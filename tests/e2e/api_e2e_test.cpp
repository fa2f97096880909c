// End-to-end: the real `mlaas serve` binary on a free port, driven over HTTP.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/text.h"
#include "common/time_util.h"
#include "e2e/fixtures.h"
#include "e2e/server_process.h"
#include "testutil/raw_socket.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

using client::ApiClient;
using client::Response;
using nlohmann::json;

class ApiE2eTest : public ServerSuite<ApiE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--max-body-bytes", "65536"});
    StartServer();
  }
  void TearDown() override {
    // Whatever the test did, the server must still be alive and answering.
    ASSERT_TRUE(server_->Running()) << server_->Log();
    EXPECT_TRUE(client_->Get("/healthz").has_value());
  }

  Response Call(const std::string& method, const std::string& path, const std::string& body = "") {
    return CallServer(*client_, method, path, body);
  }

  json WaitTerminal(const std::string& id) {
    json t;
    EXPECT_TRUE(WaitFor([&] {
      t = Call("GET", "/api/v1/tasks/" + id).body;
      std::string s = t.value("task_status", "");
      return s == "succeeded" || s == "failed" || s == "cancelled";
    })) << t.dump();
    return t;
  }
};


const char* kTrainBody = R"({
  "tokenizer": {"path": "models/tok", "storage_type": "local"},
  "model": {"path": "models/bert", "storage_type": "local", "objective": "text-classification"},
  "model_train": {"epochs": 10, "batch_size": 32,
                  "optimizer": {"name": "AdamW", "init_lr": 2e-5, "num_warm_steps": 1000,
                                "weight_decay_rate": 0.01}},
  "dataset": {"path": "datasets/aff.csv", "storage_type": "local", "train_test_split": 0.1},
  "model_save": {"path": "models/out", "storage_type": "local"}
})";

TEST_F(ApiE2eTest, HealthReadinessAndLandingPage) {
  auto h = Call("GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body["status"], "ok");
  auto r = Call("GET", "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["checks"]["metadata"], "ok");
  EXPECT_EQ(r.body["checks"]["storage"], "ok");
  EXPECT_EQ(r.body["checks"]["tasks"], "ok");
  // The web app (or, in a build without it, a page of links), with its security headers.
  auto page = Call("GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page.headers["x-frame-options"], "DENY");
  const size_t script = page.text.find("/assets/");
  if (script != std::string::npos) {
    const std::string asset = page.text.substr(script, page.text.find('"', script) - script);
    auto js = Call("GET", asset);
    EXPECT_EQ(js.status, 200) << asset;
    EXPECT_EQ(js.headers["content-type"].rfind("text/javascript", 0), 0u) << asset;
    EXPECT_EQ(Call("GET", "/assets/../mlaas.db").status, 404);
  } else {
    EXPECT_NE(page.text.find("openapi.json"), std::string::npos);
  }
  EXPECT_FALSE(h.headers["x-request-id"].empty());
}

TEST_F(ApiE2eTest, OpenApiListsEverySpecRoute) {
  auto r = Call("GET", "/openapi.json");
  ASSERT_EQ(r.status, 200);
  const json& paths = r.body["paths"];
  EXPECT_EQ(r.body["openapi"], "3.0.3");
  const std::vector<std::pair<std::string, std::string>> spec = {
      {"post", "/api/v1/ml/cv/train/model"},     {"post", "/api/v1/ml/cv/predict"},
      {"post", "/api/v1/ml/nlp/train/model"},    {"post", "/api/v1/ml/nlp/train/tokenizer"},
      {"post", "/api/v1/ml/nlp/train/sweep"},
      {"post", "/api/v1/ml/nlp/predict"},        {"post", "/api/v1/ml/nlp/search"},
      {"post", "/api/v1/ml/nlp/vector/search"},  {"post", "/api/v1/ml/nlp/vector/index"},
      {"get", "/api/v1/ml/utilities/s3/object"}, {"get", "/api/v1/tasks"},
      {"get", "/api/v1/tasks/{id}"},             {"post", "/api/v1/tasks/{id}/cancel"},
      {"get", "/api/v1/tasks/{id}/events"},      {"get", "/api/v1/tasks/{id}/logs"},
      {"put", "/api/v1/objects/{key}"},          {"get", "/api/v1/objects/{key}"},
      {"delete", "/api/v1/objects/{key}"},       {"get", "/healthz"},
      {"get", "/readyz"},                        {"get", "/metrics"},
      {"get", "/openapi.json"}};
  for (const auto& [method, path] : spec) {
    ASSERT_TRUE(paths.contains(path)) << path;
    ASSERT_TRUE(paths[path].contains(method)) << method << " " << path;
  }
  // Request schemas are the ones the server validates with.
  const json& train = paths["/api/v1/ml/nlp/train/model"]["post"]["requestBody"]["content"]
                           ["application/json"]["schema"];
  EXPECT_EQ(train["properties"]["model"]["properties"]["storage_type"]["enum"],
            json({"local", "s3", "hugging_face_hub"}));
  EXPECT_EQ(train["required"], json({"model", "dataset", "model_save"}));
}

struct BadRequest {
  std::string method, path, body;
  int status;
  std::string code, field;
};

TEST_F(ApiE2eTest, RejectsBadRequestsNamingTheField) {
  const std::string train = "/api/v1/ml/nlp/train/model";
  const std::string predict = "/api/v1/ml/nlp/predict";
  auto with = [](const std::string& base, const std::string& pointer, const json& value) {
    json j = json::parse(base);
    j[json::json_pointer(pointer)] = value;
    return j.dump();
  };
  auto without = [](const std::string& base, const std::string& pointer) {
    json j = json::parse(base);
    json::json_pointer p(pointer);
    j[p.parent_pointer()].erase(p.back());
    return j.dump();
  };
  const std::string pred =
      R"({"model": {"path": "m", "objective": "text-classification"},
          "predict_input": {"input_text": ["a"]}})";
  std::string deep(200, '[');
  deep += std::string(200, ']');
  const std::vector<BadRequest> cases = {
      {"POST", train, "{not json", 400, "invalid_json", ""},
      {"POST", train, "", 400, "invalid_argument", ""},
      {"POST", train, "[]", 400, "invalid_argument", ""},
      {"POST", train, "null", 400, "invalid_argument", ""},
      {"POST", train, "{\"a\": 1,}", 400, "invalid_json", ""},
      {"POST", train, deep, 400, "invalid_json", ""},
      {"POST", train, std::string("{\"model\": \"\xff\xfe\"}"), 400, "invalid_json", ""},
      {"POST", train, with(kTrainBody, "/model", "bert"), 400, "invalid_argument", "model"},
      {"POST", train, without(kTrainBody, "/model"), 400, "invalid_argument", "model"},
      {"POST", train, without(kTrainBody, "/dataset"), 400, "invalid_argument", "dataset"},
      {"POST", train, without(kTrainBody, "/model_save"), 400, "invalid_argument", "model_save"},
      {"POST", train, with(kTrainBody, "/model/objective", "regression"), 400, "invalid_argument",
       "model.objective"},
      {"POST", train, without(kTrainBody, "/model/objective"), 400, "invalid_argument",
       "model.objective"},
      {"POST", train, with(kTrainBody, "/model/storage_type", "ftp"), 400, "invalid_argument",
       "model.storage_type"},
      {"POST", train, with(kTrainBody, "/model", json{{"objective", "masked-lm"}}), 400,
       "invalid_argument", "model"},
      {"POST", train, with(kTrainBody, "/model/path", ""), 400, "invalid_argument", "model.path"},
      {"POST", train, with(kTrainBody, "/model/config", "x"), 400, "invalid_argument",
       "model.config"},
      {"POST", train, with(kTrainBody, "/dataset/path", "../../etc/passwd"), 400,
       "invalid_argument", "dataset.path"},
      {"POST", train, with(kTrainBody, "/dataset/path", "/etc/passwd"), 400, "invalid_argument",
       "dataset.path"},
      {"POST", train, with(kTrainBody, "/model_save/path", "a/../../b"), 400, "invalid_argument",
       "model_save.path"},
      {"POST", train, with(kTrainBody, "/tokenizer/path", "x/../../../y"), 400,
       "invalid_argument", "tokenizer.path"},
      {"POST", train, with(kTrainBody, "/model_train/epochs", 0), 400, "invalid_argument",
       "model_train.epochs"},
      {"POST", train, with(kTrainBody, "/model_train/epochs", "ten"), 400, "invalid_argument",
       "model_train.epochs"},
      {"POST", train, with(kTrainBody, "/model_train/epochs", 2.5), 400, "invalid_argument",
       "model_train.epochs"},
      {"POST", train, with(kTrainBody, "/model_train/batch_size", -1), 400, "invalid_argument",
       "model_train.batch_size"},
      {"POST", train, with(kTrainBody, "/model_train/optimizer/name", "Adagrad"), 400,
       "invalid_argument", "model_train.optimizer.name"},
      {"POST", train, with(kTrainBody, "/model_train/optimizer/init_lr", 0), 400,
       "invalid_argument", "model_train.optimizer.init_lr"},
      {"POST", train, with(kTrainBody, "/model_train/optimizer/weight_decay_rate", 2), 400,
       "invalid_argument", "model_train.optimizer.weight_decay_rate"},
      {"POST", train, with(kTrainBody, "/model_train/optimizer/num_warm_steps", -5), 400,
       "invalid_argument", "model_train.optimizer.num_warm_steps"},
      {"POST", train, with(kTrainBody, "/dataset/train_test_split", 1.5), 400, "invalid_argument",
       "dataset.train_test_split"},
      {"POST", train, with(kTrainBody, "/dataset/storage_type", "hugging_face_hub"), 400,
       "invalid_argument", "dataset.storage_type"},
      {"POST", train, with(kTrainBody, "/epochs", 3), 400, "invalid_argument", "epochs"},
      {"POST", train, with(kTrainBody, "/dataset/storage_type", "s3"), 501, "not_implemented",
       "dataset.storage_type"},
      {"POST", predict, with(pred, "/predict_input/input_text", json::array()), 400,
       "invalid_argument", "predict_input.input_text"},
      {"POST", predict, with(pred, "/predict_input/input_text", json{"ok", 5}), 400,
       "invalid_argument", "predict_input.input_text[1]"},
      {"POST", predict, with(pred, "/predict_input/input_text", "a string"), 400,
       "invalid_argument", "predict_input.input_text"},
      {"POST", predict, with(pred, "/model/labels", json::array()), 400, "invalid_argument",
       "model.labels"},
      {"POST", "/api/v1/ml/nlp/vector/search",
       R"({"model": {"path": "m"}, "dataset": {"path": "i", "format": "csv"},
           "search_input": {"input_text": ["q"]}})",
       400, "invalid_argument", "dataset.format"},
      {"POST", "/api/v1/ml/nlp/vector/index",
       R"({"model": {"path": "m"}, "dataset": {"path": "d.csv"}})", 400, "invalid_argument",
       "vector_store_save"},
      {"POST", "/api/v1/ml/nlp/train/tokenizer",
       R"({"tokenizer_train": {"model": "sentencepiece"}, "dataset": {"path": "d.csv"},
           "model_save": {"path": "t"}})",
       400, "invalid_argument", "tokenizer_train.model"},
      {"POST", "/api/v1/ml/nlp/train/tokenizer",
       R"({"tokenizer_train": {"vocab_size": 0}, "dataset": {"path": "d.csv"},
           "model_save": {"path": "t"}})",
       400, "invalid_argument", "tokenizer_train.vocab_size"},
      {"POST", "/api/v1/ml/cv/predict", R"({"model": {"path": "m"}, "predict_input": {}})", 400,
       "invalid_argument", "predict_input"},
      {"POST", "/api/v1/ml/cv/train/model",
       R"({"model": {"preset": "x", "objective": "text-classification"},
           "dataset": {"path": "d.csv"}, "model_save": {"path": "o"}})",
       400, "invalid_argument", "model.objective"},
      {"POST", "/api/v1/ml/utilities/dataset/stats", R"({"dataset": {"path": "missing.csv"}})",
       400, "invalid_argument", "dataset.path"},
      {"POST", "/api/v1/ml/utilities/dataset/stats",
       R"({"dataset": {"path": "d.csv", "format": "parquet"}})", 400, "invalid_argument",
       "dataset.format"},
      {"GET", "/api/v1/tasks?status=bogus", "", 400, "invalid_argument", "status"},
      {"GET", "/api/v1/tasks?limit=0", "", 400, "invalid_argument", "limit"},
      {"GET", "/api/v1/tasks?limit=abc", "", 400, "invalid_argument", "limit"},
      {"GET", "/api/v1/tasks?cursor=%21%21", "", 400, "invalid_argument", "cursor"},
      {"GET", "/api/v1/tasks/" + NewUuid() + "/logs?after=-1", "", 400, "invalid_argument",
       "after"},
      {"GET", "/api/v1/ml/utilities/s3/object?max_keys=5000", "", 400, "invalid_argument",
       "max_keys"},
      {"GET", "/api/v1/ml/utilities/s3/object?prefix=..%2Fx", "", 400, "invalid_argument",
       "prefix"},
      {"GET", "/api/v1/ml/utilities/s3/object?continuation_token=%40%40", "", 400,
       "invalid_argument", "continuation_token"},
      {"PUT", "/api/v1/objects/a//b", "x", 400, "invalid_argument", "key"},
      {"PUT", "/api/v1/objects/a/%2E%2E/b", "x", 400, "invalid_argument", "key"},
      {"PUT", "/api/v1/objects/a%00b", "x", 400, "invalid_argument", "key"},
      {"PUT", "/api/v1/objects/bad%FFkey", "x", 400, "invalid_argument", "key"},
      {"GET", "/api/v1/objects/missing/object.csv", "", 404, "not_found", ""},
      {"DELETE", "/api/v1/objects/missing.csv", "", 404, "not_found", ""},
      {"GET", "/api/v1/nothing/here", "", 404, "not_found", ""},
      {"DELETE", "/api/v1/tasks", "", 405, "method_not_allowed", ""},
      {"GET", "/api/v1/ml/nlp/predict", "", 405, "method_not_allowed", ""},
      {"GET", "/api/v1/tasks/not-a-task", "", 404, "not_found", ""},
      {"POST", "/api/v1/tasks/" + NewUuid() + "/cancel", "", 404, "not_found", ""},
      {"POST", train, "{\"pad\": \"" + std::string(70000, 'x') + "\"}", 413, "payload_too_large",
       ""},
  };
  ASSERT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    auto r = Call(c.method, c.path, c.body);
    SCOPED_TRACE(c.method + " " + c.path + " " + c.body.substr(0, 200));
    EXPECT_EQ(r.status, c.status) << r.text;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.text;
    EXPECT_EQ(r.body["error"]["code"], c.code) << r.text;
    if (!c.field.empty()) {
      EXPECT_EQ(r.body["error"].value("field", ""), c.field) << r.text;
    }
    EXPECT_FALSE(r.body["error"]["message"].get<std::string>().empty());
  }
  // 405 names what is allowed.
  auto r = Call("GET", "/api/v1/ml/nlp/predict");
  EXPECT_EQ(r.headers["allow"], "POST");
}

TEST_F(ApiE2eTest, ObjectsUploadListDownloadDelete) {
  std::string csv = "text,label\nhello world,1\nfoo,2\n";
  auto put = Call("PUT", "/api/v1/objects/datasets/small.csv", csv);
  ASSERT_EQ(put.status, 201) << put.text;
  EXPECT_EQ(put.body["key"], "datasets/small.csv");
  EXPECT_EQ(put.body["size"], csv.size());
  Call("PUT", "/api/v1/objects/datasets/nested/x.jsonl", "{\"a\": 1}\n");
  Call("PUT", "/api/v1/objects/readme.txt", "hi");

  auto get = Call("GET", "/api/v1/objects/datasets/small.csv");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.text, csv);
  EXPECT_EQ(get.headers["etag"], "\"" + put.body["etag"].get<std::string>() + "\"");

  auto top = Call("GET", "/api/v1/ml/utilities/s3/object?delimiter=%2F");
  ASSERT_EQ(top.status, 200);
  EXPECT_EQ(top.body["common_prefixes"], json({"datasets/"}));
  ASSERT_EQ(top.body["objects"].size(), 1u);
  EXPECT_EQ(top.body["objects"][0]["key"], "readme.txt");
  EXPECT_EQ(top.body["objects"][0]["size"], 2);
  for (const char* field : {"key", "size", "last_modified", "etag"}) {
    EXPECT_TRUE(top.body["objects"][0].contains(field)) << field;
  }

  auto page1 = Call("GET", "/api/v1/ml/utilities/s3/object?prefix=datasets%2F&max_keys=1");
  EXPECT_TRUE(page1.body["is_truncated"]);
  ASSERT_EQ(page1.body["objects"].size(), 1u);
  auto page2 = Call("GET", "/api/v1/ml/utilities/s3/object?prefix=datasets%2F&max_keys=1&"
                           "continuation_token=" +
                               page1.body["next_continuation_token"].get<std::string>());
  ASSERT_EQ(page2.body["objects"].size(), 1u);
  EXPECT_NE(page2.body["objects"][0]["key"], page1.body["objects"][0]["key"]);
  EXPECT_FALSE(page2.body["is_truncated"]);

  EXPECT_EQ(Call("DELETE", "/api/v1/objects/datasets/nested/x.jsonl").status, 204);
  EXPECT_EQ(Call("GET", "/api/v1/objects/datasets/nested/x.jsonl").status, 404);
}

TEST_F(ApiE2eTest, DownloadsSupportRangesAndConditionalRequests) {
  Call("PUT", "/api/v1/objects/range.bin", "0123456789");
  auto c = server_->Client();
  httplib::Client raw("127.0.0.1", server_->port());
  auto ranged = raw.Get("/api/v1/objects/range.bin", {{"Range", "bytes=2-5"}});
  ASSERT_TRUE(ranged);
  EXPECT_EQ(ranged->status, 206);
  EXPECT_EQ(ranged->body, "2345");
  std::string etag = ranged->get_header_value("ETag");
  auto cached = raw.Get("/api/v1/objects/range.bin", {{"If-None-Match", etag}});
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->status, 304);
}

TEST_F(ApiE2eTest, UploadsLargerThanTheLimitAre413) {
  TempDir dir;
  ServerProcess small(dir.path() / "data", {"--max-upload-bytes", "1000"});
  ASSERT_TRUE(small.Start().ok());
  auto c = small.Client();
  auto r = c->Call("PUT", "/api/v1/objects/big.bin", std::string(5000, 'x'),
                   "application/octet-stream");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body["error"]["code"], "payload_too_large");
  EXPECT_EQ(c->Call("GET", "/api/v1/objects/big.bin")->status, 404);
  auto ok = c->Call("PUT", "/api/v1/objects/ok.bin", std::string(1000, 'x'));
  EXPECT_EQ(ok->status, 201);
}

TEST_F(ApiE2eTest, DatasetStatsTaskLifecycle) {
  Call("PUT", "/api/v1/objects/datasets/aff.csv",
       "text,label\n\"Bari INFN, Via E Orabona 4, I-70125 Bari, Italy\",BA\n"
       "\"INAF IASF Milano, Italy\",[NoSite]\n");
  auto submitted = Call("POST", "/api/v1/ml/utilities/dataset/stats",
                        R"({"dataset": {"path": "datasets/aff.csv", "storage_type": "local"}})");
  ASSERT_EQ(submitted.status, 202) << submitted.text;
  EXPECT_EQ(submitted.body["task_status"], "queued");
  std::string id = submitted.body["task_id"];
  EXPECT_TRUE(IsUuid(id));
  EXPECT_EQ(submitted.headers["location"], "/api/v1/tasks/" + id);

  json t = WaitTerminal(id);
  EXPECT_EQ(t["task_status"], "succeeded") << t.dump();
  EXPECT_EQ(t["task_id"], id);
  EXPECT_EQ(t["task_type"], "dataset_stats");
  EXPECT_TRUE(ParseIsoUtc(t["stats"]["submitted"]).has_value());
  EXPECT_TRUE(ParseIsoUtc(t["stats"]["finished"]).has_value());
  EXPECT_EQ(t["stats"]["elapsed"], "0:00:00");
  EXPECT_EQ(t["stats"]["attempts"], 1);
  EXPECT_EQ(t["dataset"]["rows"], 2);
  EXPECT_EQ(t["dataset"]["columns"][1]["distinct"], 2);
  EXPECT_EQ(t["request"]["dataset"]["path"], "datasets/aff.csv");

  auto logs = Call("GET", "/api/v1/tasks/" + id + "/logs");
  ASSERT_EQ(logs.status, 200);
  ASSERT_GE(logs.body["logs"].size(), 3u);
  EXPECT_EQ(logs.body["logs"].back()["message"], "succeeded");
  auto later = Call("GET", "/api/v1/tasks/" + id + "/logs?after=" +
                               std::to_string(logs.body["next_after"].get<int64_t>()));
  EXPECT_TRUE(later.body["logs"].empty());

  // Listing and filters.
  auto list = Call("GET", "/api/v1/tasks?type=dataset_stats&status=succeeded&limit=1000");
  ASSERT_EQ(list.status, 200);
  bool found = false;
  for (const auto& x : list.body["tasks"]) found |= x["task_id"] == id;
  EXPECT_TRUE(found);

  // The events of a finished task: one "end" event.
  std::vector<std::string> events;
  ASSERT_TRUE(client_->FollowTask(id, [&](const std::string& e, const json& d) {
    events.push_back(e);
    EXPECT_EQ(d["task_id"], id);
    return true;
  }).ok());
  EXPECT_EQ(events, std::vector<std::string>{"end"});

  // Cancelling a finished task is a conflict.
  auto cancel = Call("POST", "/api/v1/tasks/" + id + "/cancel");
  EXPECT_EQ(cancel.status, 409);
  EXPECT_EQ(cancel.body["error"]["code"], "failed_precondition");
}

TEST_F(ApiE2eTest, FailedTasksReportTheError) {
  Call("PUT", "/api/v1/objects/datasets/broken.csv", "a,b\n1,2\n3\n");
  auto submitted = Call("POST", "/api/v1/ml/utilities/dataset/stats",
                        R"({"dataset": {"path": "datasets/broken.csv"}})");
  ASSERT_EQ(submitted.status, 202);
  json t = WaitTerminal(submitted.body["task_id"]);
  EXPECT_EQ(t["task_status"], "failed");
  EXPECT_EQ(t["error"]["code"], "invalid_argument");
  EXPECT_EQ(t["error"]["field"], "dataset.path");
  EXPECT_NE(t["error"]["message"].get<std::string>().find("line 3"), std::string::npos);
}

TEST_F(ApiE2eTest, CancelARunningTaskAndFollowItsEvents) {
  WriteBigCsv(server_->data_dir() / "objects/datasets/big.csv", 3'000'000);
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto submitted = Call("POST", "/api/v1/ml/utilities/dataset/stats",
                          R"({"dataset": {"path": "datasets/big.csv"}})");
    ASSERT_EQ(submitted.status, 202);
    std::string id = submitted.body["task_id"];
    // Follow the events in the background while we cancel.
    std::mutex mu;
    std::vector<std::string> events;
    std::thread follower([&] {
      auto c = server_->Client();
      (void)c->FollowTask(id, [&](const std::string& e, const json&) {
        std::lock_guard lock(mu);
        events.push_back(e);
        return true;
      });
    });
    ASSERT_TRUE(WaitFor([&] {
      std::lock_guard lock(mu);
      return !events.empty();
    }));
    ASSERT_TRUE(WaitFor([&] {
      auto s = Call("GET", "/api/v1/tasks/" + id).body["task_status"];
      return s != "queued";
    }));
    auto cancel = Call("POST", "/api/v1/tasks/" + id + "/cancel");
    follower.join();
    if (cancel.status == 409) continue;  // finished before we could cancel: try again
    EXPECT_EQ(cancel.status, 202) << cancel.text;
    EXPECT_TRUE(cancel.body["cancel_requested"]);
    json t = WaitTerminal(id);
    EXPECT_EQ(t["task_status"], "cancelled");
    EXPECT_EQ(t["error"]["code"], "cancelled");
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "end");
    EXPECT_GE(events.size(), 2u);  // progress while running, then the end
    return;
  }
  FAIL() << "the task always finished before it could be cancelled";
}

TEST_F(ApiE2eTest, CancelAQueuedTask) {
  TempDir dir;
  ServerProcess no_workers(dir.path() / "data", {"--workers", "0"});
  ASSERT_TRUE(no_workers.Start().ok());
  auto c = no_workers.Client();
  ASSERT_EQ(c->Call("PUT", "/api/v1/objects/d.csv", "a\n1\n")->status, 201);
  auto t = c->Post("/api/v1/ml/utilities/dataset/stats", {{"dataset", {{"path", "d.csv"}}}});
  ASSERT_TRUE(t.has_value());
  std::string id = (*t)["task_id"];
  EXPECT_EQ((*c->Get("/api/v1/tasks/" + id))["task_status"], "queued");
  auto ready = c->Get("/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_NE((*ready)["checks"]["tasks"].get<std::string>().find("no workers"), std::string::npos);
  auto r = c->Call("POST", "/api/v1/tasks/" + id + "/cancel");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body["task_status"], "cancelled");
}

TEST_F(ApiE2eTest, TrainsATokenizerOnADatasetColumn) {
  std::string csv = "id,abstract\n";
  std::ifstream corpus(std::string(MLAAS_TOKENIZER_TEST_DATA) + "/corpus.txt");
  std::string line;
  for (int i = 0; i < 400 && std::getline(corpus, line); ++i) {
    std::string quoted;
    for (char c : line) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    csv += std::to_string(i) + ",\"" + quoted + "\"\n";
  }
  ASSERT_EQ(Call("PUT", "/api/v1/objects/datasets/abstracts.csv", csv).status, 201);
  auto submitted = Call("POST", "/api/v1/ml/nlp/train/tokenizer", R"({
      "tokenizer_train": {"model": "wordpiece", "vocab_size": 600, "min_frequency": 2,
                          "special_tokens": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                          "lowercase": true},
      "dataset": {"path": "datasets/abstracts.csv", "loader_kwargs": {"page_content_column": "abstract"}},
      "model_save": {"path": "tokenizers/abstracts-wp", "storage_type": "local"}})");
  ASSERT_EQ(submitted.status, 202) << submitted.text;
  json t = WaitTerminal(submitted.body["task_id"]);
  ASSERT_EQ(t["task_status"], "succeeded") << t.dump();
  EXPECT_EQ(t["tokenizer"]["vocab_size"], 600);
  EXPECT_EQ(t["tokenizer"]["files"], json({"tokenizers/abstracts-wp/tokenizer.json",
                                           "tokenizers/abstracts-wp/vocab.txt"}));
  EXPECT_EQ(t["dataset"]["rows"], 400);
  EXPECT_GT(t["dataset"]["characters"].get<int64_t>(), 10000);
  EXPECT_GT(t["dataset"]["corpus_tokens"].get<int64_t>(), t["dataset"]["words"].get<int64_t>());
  EXPECT_GT(t["coverage"].get<double>(), 0.99);
  EXPECT_GT(t["progress"]["fraction"].get<double>(), 0.9);

  auto saved = Call("GET", "/api/v1/objects/tokenizers/abstracts-wp/tokenizer.json");
  ASSERT_EQ(saved.status, 200);
  json tok = json::parse(saved.text);
  EXPECT_EQ(tok["model"]["type"], "WordPiece");
  EXPECT_EQ(tok["model"]["vocab"]["[UNK]"], 1);
  EXPECT_EQ(tok["post_processor"]["type"], "BertProcessing");
  auto vocab = Call("GET", "/api/v1/objects/tokenizers/abstracts-wp/vocab.txt");
  EXPECT_EQ(vocab.text.substr(0, 12), "[PAD]\n[UNK]\n");

  // A missing column fails the task and names the field.
  auto bad = Call("POST", "/api/v1/ml/nlp/train/tokenizer",
                  R"({"dataset": {"path": "datasets/abstracts.csv", "loader_kwargs": {"page_content_column": "text"}},
                      "model_save": {"path": "tokenizers/x"}})");
  ASSERT_EQ(bad.status, 202);
  json failed = WaitTerminal(bad.body["task_id"]);
  EXPECT_EQ(failed["task_status"], "failed");
  EXPECT_EQ(failed["error"]["field"], "dataset.loader_kwargs.page_content_column");
  // text_column (the SDK's train_tokenizer sends it) names the column as well: a missing one is
  // the same error under its own name, a present one is trained on; both naming two columns is an
  // error.
  auto by_text_column = [&](const std::string& loader_kwargs) {
    auto r = Call("POST", "/api/v1/ml/nlp/train/tokenizer",
                  R"({"tokenizer_train": {"vocab_size": 300}, "dataset": {"path": "datasets/abstracts.csv", "loader_kwargs": )" +
                      loader_kwargs + R"(}, "model_save": {"path": "tokenizers/by-text-column"}})");
    EXPECT_EQ(r.status, 202) << r.text;
    return WaitTerminal(r.body["task_id"]);
  };
  json absent = by_text_column(R"({"text_column": "nope"})");
  EXPECT_EQ(absent["task_status"], "failed");
  EXPECT_EQ(absent["error"]["field"], "dataset.loader_kwargs.text_column");
  json both = by_text_column(R"({"text_column": "abstract", "page_content_column": "id"})");
  EXPECT_EQ(both["task_status"], "failed");
  EXPECT_EQ(both["error"]["field"], "dataset.loader_kwargs.text_column");
  json trained = by_text_column(R"({"text_column": "abstract"})");
  ASSERT_EQ(trained["task_status"], "succeeded") << trained.dump();
  EXPECT_EQ(trained["dataset"]["column"], "abstract");
  // A missing dataset is refused before a task exists.
  auto missing = Call("POST", "/api/v1/ml/nlp/train/tokenizer",
                      R"({"dataset": {"path": "datasets/none.csv"}, "model_save": {"path": "t"}})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["error"]["field"], "dataset.path");
}

TEST_F(ApiE2eTest, MetricsCountRequestsAndTasks) {
  Call("GET", "/healthz");
  Call("GET", "/api/v1/does-not-exist");
  auto m = Call("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers["content-type"].find("text/plain"), std::string::npos);
  EXPECT_NE(m.text.find("mlaas_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}"),
            std::string::npos);
  EXPECT_NE(m.text.find("mlaas_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"),
            std::string::npos);
  EXPECT_NE(m.text.find("mlaas_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"+Inf\"}"),
            std::string::npos);
  EXPECT_NE(m.text.find("# TYPE mlaas_http_request_duration_seconds histogram"), std::string::npos);
  for (const char* state : {"queued", "running", "succeeded", "failed", "cancelled"}) {
    EXPECT_NE(m.text.find(std::string("mlaas_tasks{state=\"") + state + "\"}"), std::string::npos)
        << state;
  }
}

TEST_F(ApiE2eTest, ManyConcurrentClientsAndStreamsDoNotStallTheServer) {
  // More open event streams and concurrent clients than a default cpp-httplib pool has.
  WriteBigCsv(server_->data_dir() / "objects/datasets/slow.csv", 2'000'000);
  auto submitted = Call("POST", "/api/v1/ml/utilities/dataset/stats",
                        R"({"dataset": {"path": "datasets/slow.csv"}})");
  std::string id = submitted.body["task_id"];
  std::atomic<int> ended{0};
  std::vector<std::thread> streams;
  for (int i = 0; i < 16; ++i) {
    streams.emplace_back([&] {
      auto c = server_->Client(120);
      (void)c->FollowTask(id, [&](const std::string& e, const json&) {
        if (e == "end") ++ended;
        return true;
      });
    });
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&] {
      auto c = server_->Client(10);
      for (int j = 0; j < 20; ++j) ok += c->Get("/healthz").has_value();
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 16 * 20);
  for (auto& t : streams) t.join();
  EXPECT_EQ(ended.load(), 16);
}

// Opens a raw connection and sends one GET; -1 when the connection fails.
int SendGet(int port, const std::string& path) {
  int fd = ConnectLoopback(port, 30);
  if (fd < 0) return -1;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads a response's status line and headers, and its body when it has a Content-Length
// (a stream's body never ends: only what came with the headers).
std::string ReadHead(int fd) {
  std::string got;
  char buf[4096];
  auto more = [&] {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    return n > 0;
  };
  while (got.find("\r\n\r\n") == std::string::npos && more()) {
  }
  const size_t body = got.find("\r\n\r\n") + 4;
  const size_t length = got.find("Content-Length: ");
  if (length != std::string::npos && length < body) {
    const size_t want = body + std::stoul(got.substr(length + 16));
    while (got.size() < want && more()) {
    }
  }
  return got;
}

// A server of its own that only queues tasks (no workers), holding the dataset d.csv.
std::unique_ptr<ServerProcess> StartQueueOnlyServer(const TempDir& dir) {
  auto s = std::make_unique<ServerProcess>(dir.path() / "data",
                                           std::vector<std::string>{"--workers", "0", "--http-threads", "64"});
  Status started = s->Start();
  EXPECT_TRUE(started.ok()) << started.ToString();
  if (started.ok()) {
    EXPECT_EQ(s->Client()->Call("PUT", "/api/v1/objects/d.csv", "a\n1\n")->status, 201);
  }
  return s;
}

TEST_F(ApiE2eTest, EventStreamsBeyondTheCapAre429AndHealthzKeepsAnswering) {
  // No workers: the task stays queued, so every stream on it stays open.
  TempDir dir;
  auto server = StartQueueOnlyServer(dir);
  ServerProcess& s = *server;
  auto c = s.Client();
  auto t = c->Post("/api/v1/ml/utilities/dataset/stats", {{"dataset", {{"path", "d.csv"}}}});
  ASSERT_TRUE(t.has_value());
  const std::string events = "/api/v1/tasks/" + (*t)["task_id"].get<std::string>() + "/events";

  constexpr int kStreams = 256;
  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) fds.push_back(SendGet(s.port(), events));
  int open = 0, refused = 0;
  std::vector<int> open_fds;
  for (int fd : fds) {
    ASSERT_GE(fd, 0);
    const std::string head = ReadHead(fd);
    if (head.rfind("HTTP/1.1 200", 0) == 0) {
      EXPECT_NE(head.find("text/event-stream"), std::string::npos) << head;
      ++open;
      open_fds.push_back(fd);
      continue;
    }
    EXPECT_EQ(head.rfind("HTTP/1.1 429", 0), 0u) << head;
    EXPECT_NE(head.find("Retry-After: 5"), std::string::npos) << head;
    EXPECT_NE(head.find("\"resource_exhausted\""), std::string::npos) << head;
    ++refused;
    ::close(fd);
  }
  EXPECT_EQ(open, 32) << "half of the 64 HTTP threads";
  EXPECT_EQ(refused, kStreams - 32);

  // The streams hold half the pool; the other half answers at once.
  auto quick = s.Client(5);
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto h = quick->Call("GET", "/healthz");
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  }

  // The task ends: its streams end with it and give their places back.
  ASSERT_EQ(c->Call("POST", "/api/v1/tasks/" + (*t)["task_id"].get<std::string>() + "/cancel")->status, 200);
  for (int fd : open_fds) ::close(fd);
  std::string head;
  EXPECT_TRUE(WaitFor([&] {
    int fd = SendGet(s.port(), events);
    head = ReadHead(fd);
    ::close(fd);
    return head.rfind("HTTP/1.1 200", 0) == 0;
  })) << head;
  EXPECT_TRUE(s.Running()) << s.Log();
}

TEST_F(ApiE2eTest, AFullTaskQueueIs429WithRetryAfterAndOversizedLoaderKwargsAre400) {
  TempDir dir;
  auto server = StartQueueOnlyServer(dir);
  auto c = server->Client();
  const std::string submit = "/api/v1/ml/utilities/dataset/stats";

  json big = {{"dataset", {{"path", "d.csv"}, {"loader_kwargs", {{"junk", std::string(100'000, 'x')}}}}}};
  auto refused = c->Call("POST", submit, big.dump());
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 400) << refused->text;
  EXPECT_EQ(refused->body["error"]["field"], "dataset.loader_kwargs") << refused->text;

  // The default queue holds 1000 tasks.
  const std::string body = json{{"dataset", {{"path", "d.csv"}}}}.dump();
  for (int i = 0; i < 1000; ++i) {
    auto r = c->Call("POST", submit, body);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 202) << i << ": " << r->text;
  }
  auto full = c->Call("POST", submit, body);
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->status, 429) << full->text;
  EXPECT_EQ(full->headers["retry-after"], "30");
  EXPECT_EQ(full->body["error"]["code"], "resource_exhausted");
  EXPECT_NE(full->body["error"]["message"].get<std::string>().find("queue is full"), std::string::npos);
  auto counts = c->Get("/api/v1/tasks?status=queued&limit=1000");
  ASSERT_TRUE(counts.has_value());
  EXPECT_EQ((*counts)["tasks"].size(), 1000u);
  EXPECT_TRUE((*counts)["next_cursor"].is_null()) << "the refused task was not stored";
}

TEST_F(ApiE2eTest, HostileDatasetRowsFailTheTaskWithAClearError) {
  auto fails_with = [&](const std::string& key, const std::string& data) {
    EXPECT_EQ(Call("PUT", "/api/v1/objects/" + key, data).status, 201);
    auto submitted = Call("POST", "/api/v1/ml/utilities/dataset/stats",
                          json{{"dataset", {{"path", key}}}}.dump());
    EXPECT_EQ(submitted.status, 202) << submitted.text;
    json t = WaitTerminal(submitted.body["task_id"]);
    EXPECT_EQ(t["task_status"], "failed") << t.dump();
    EXPECT_EQ(t["error"]["field"], "dataset.path");
    return t["error"]["message"].get<std::string>();
  };
  // A row of 100000 commas would be 100001 strings.
  EXPECT_EQ(fails_with("datasets/commas.csv", "a,b\n1,2\n" + std::string(100'000, ',') + "\n"),
            "line 3: the record has more than 10000 fields (check the delimiter)");
  // A JSON Lines record nested 50000 deep would overflow the stack when copied or dumped.
  EXPECT_EQ(fails_with("datasets/deep.jsonl",
                       "{\"a\": 1}\n{\"a\": " + std::string(50'000, '[') + std::string(50'000, ']') + "}\n"),
            "line 2: the record nests deeper than 64 levels");
  EXPECT_EQ(fails_with("datasets/scalar.jsonl", "{\"a\": 1}\n42\n"), "line 2: expected a JSON object, found number");
}

TEST_F(ApiE2eTest, ObjectKeysWithControlCharactersAre400NamingTheKeyEscaped) {
  for (const char* method : {"PUT", "GET", "DELETE"}) {
    auto r = Call(method, "/api/v1/objects/logs/a%1B[31mb.csv", method == std::string("PUT") ? "x" : "");
    EXPECT_EQ(r.status, 400) << method << " " << r.text;
    EXPECT_EQ(r.body["error"]["field"], "key") << r.text;
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find("'logs/a\\x1b[31mb.csv' contains a control character"),
              std::string::npos)
        << r.text;
    // A decoded newline never reaches a route (cpp-httplib answers it itself).
    auto newline = Call(method, "/api/v1/objects/logs/a%0Ab.csv", method == std::string("PUT") ? "x" : "");
    EXPECT_GE(newline.status, 400) << newline.text;
    EXPECT_LT(newline.status, 500) << newline.text;
  }
  EXPECT_EQ(Call("GET", "/api/v1/objects/logs/a%0Ab.csv").text.find('\n'), std::string::npos);
  // Storage errors name the key, not where the server keeps it.
  auto outside = Call("POST", "/api/v1/ml/utilities/dataset/stats", R"({"dataset": {"path": "/etc/passwd"}})");
  EXPECT_EQ(outside.status, 400);
  EXPECT_EQ(outside.text.find(server_->data_dir().string()), std::string::npos) << outside.text;
}

}  // namespace
}  // namespace mlaas::testing
