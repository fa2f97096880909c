// End-to-end: the catalog's story with accounts on (docs/catalog.md). Alice registers a
// dataset, trains on catalog://datasets/reviews and registers the result as a private model
// with alias champion; bob cannot see it; alice makes it public, bob finds it, pulls it with
// the CLI and deploys catalog://sentiment@champion; alice registers version 2 and moves
// champion, and bob's deployment follows while he sends requests, none failing.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kAdminToken = "e2e-catalog-admin-token-0123456789";

std::string SentimentCsv() {
  const char* good[] = {"great", "good", "wonderful", "nice"};
  const char* bad[] = {"awful", "bad", "boring", "poor"};
  std::string csv = "text,label\n";
  for (int i = 0; i < 120; ++i) {
    const bool pos = i % 2 == 0;
    csv += std::string("the movie was ") + (pos ? good[i % 4] : bad[i % 4]) + " really," + (pos ? "pos" : "neg") + "\n";
  }
  return csv;
}

class CatalogE2eTest : public ServerSuite<CatalogE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--auth", "on", "--workers", "1", "--threads", "1"});
    ::setenv("MLAAS_ADMIN_TOKEN", kAdminToken, 1);
    StartServer();
    ::unsetenv("MLAAS_ADMIN_TOKEN");
  }

  std::unique_ptr<client::ApiClient> As(const std::string& token) {
    return std::move(client::ApiClient::Create(server_->url(), 60, token)).value();
  }
  std::string Issue(const std::string& user, json scopes) {
    auto r = CallServer(*As(kAdminToken), "POST", "/api/v1/tokens", json{{"user", user}, {"scopes", scopes}}.dump());
    EXPECT_EQ(r.status, 201) << r.text;
    return r.body.value("token", "");
  }
  static json TrainRequest() {
    return {{"tokenizer", {{"path", "tok/vocab.txt"}}},
            {"model",
             {{"objective", "text-classification"},
              {"config", {{"model_type", "bert"}, {"hidden_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
                          {"intermediate_size", 64}, {"max_position_embeddings", 64}}}}},
            {"dataset", {{"path", "catalog://datasets/reviews"}, {"train_test_split", 0.2}}},
            {"model_train", {{"epochs", 2}, {"batch_size", 8}, {"seed", 3}, {"threads", 1}}},
            {"model_save", {{"path", "models/sentiment"}}},
            {"catalog", {{"model", "sentiment"}, {"alias", "champion"}, {"description", "movie review sentiment"}}}};
  }
};

TEST_F(CatalogE2eTest, AliceSharesAModelAndBobsDeploymentFollowsHerChampion) {
  const std::string alice_token = Issue("alice", {"read", "write"});
  const std::string bob_token = Issue("bob", {"read", "write"});
  auto alice = As(alice_token);
  auto bob = As(bob_token);
  auto anonymous = As("");

  // Alice's files, in her home.
  std::string vocab;
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "really", "great", "good",
                        "wonderful", "nice", "awful", "bad", "boring", "poor"})
    vocab += std::string(t) + "\n";
  ASSERT_EQ(CallServer(*alice, "PUT", "/api/v1/objects/tok/vocab.txt", vocab).status, 201);
  ASSERT_EQ(CallServer(*alice, "PUT", "/api/v1/objects/data/reviews.csv", SentimentCsv()).status, 201);
  auto dataset = CallServer(*alice, "POST", "/api/v1/catalog/datasets/reviews/versions",
                            json{{"dataset", {{"path", "data/reviews.csv"}}}, {"license", "cc0-1.0"}}.dump());
  ASSERT_EQ(dataset.status, 201) << dataset.text;
  EXPECT_EQ(dataset.body["facts"]["rows"], 120);
  EXPECT_EQ(dataset.body["facts"]["columns"], json({"text", "label"}));
  EXPECT_EQ(dataset.body["facts"]["preview"].size(), 20u);
  EXPECT_EQ(dataset.text.find("users/alice"), std::string::npos) << "her paths as she wrote them";

  // Alice trains on the registered dataset; the task registers its model as sentiment@champion.
  auto accepted = CallServer(*alice, "POST", "/api/v1/ml/nlp/train/model", TrainRequest().dump());
  ASSERT_EQ(accepted.status, 202) << accepted.text;
  json task = WaitForTaskEnd(*alice, accepted.body["task_id"], 300s);
  ASSERT_EQ(task["task_status"], "succeeded") << task.dump(2) << server_->Log();
  ASSERT_TRUE(task.contains("catalog")) << task.dump(2);
  EXPECT_EQ(task["catalog"]["reference"], "catalog://sentiment/1");
  EXPECT_EQ(task["catalog"]["alias"], "champion");
  auto v1 = CallServer(*alice, "GET", "/api/v1/catalog/models/sentiment/versions/1");
  ASSERT_EQ(v1.status, 200) << v1.text;
  EXPECT_EQ(v1.body["lineage"]["source_task"], accepted.body["task_id"]);
  EXPECT_EQ(v1.body["lineage"]["dataset"]["catalog"]["reference"], "catalog://datasets/reviews");
  EXPECT_EQ(v1.body["lineage"]["dataset"]["catalog"]["digest"], dataset.body["digest"]);
  EXPECT_TRUE(v1.body["lineage"]["metrics"]["evaluation"].contains("accuracy")) << v1.text;
  EXPECT_GT(v1.body["facts"]["parameters"].get<int64_t>(), 1000);
  auto entry = CallServer(*alice, "GET", "/api/v1/catalog/models/sentiment");
  ASSERT_EQ(entry.status, 200);
  EXPECT_EQ(entry.body["visibility"], "private");
  EXPECT_EQ(entry.body["objective"], "text-classification");
  EXPECT_EQ(entry.body["aliases"]["champion"], 1);
  EXPECT_NE(entry.body["card"].get<std::string>().find("BertForSequenceClassification"), std::string::npos)
      << "the card is the model's README.md";

  // Private: bob and anonymous callers cannot see it, in any way.
  for (auto* other : {bob.get(), anonymous.get()}) {
    EXPECT_EQ(CallServer(*other, "GET", "/api/v1/catalog/models/sentiment").status, 404);
    EXPECT_EQ(CallServer(*other, "GET", "/api/v1/catalog/models/sentiment/versions/1/files/config.json").status, 404);
    EXPECT_EQ(CallServer(*other, "GET", "/api/v1/catalog/models?q=sentiment").body["models"].size(), 0u);
  }
  auto hidden = CallServer(*bob, "POST", "/api/v1/deployments",
                           json{{"name", "bob-sentiment"},
                                {"model", {{"path", "catalog://sentiment@champion"}, {"objective", "text-classification"}}}}
                               .dump());
  EXPECT_EQ(hidden.status, 404) << hidden.text;
  EXPECT_EQ(hidden.body["error"]["field"], "model.path");
  EXPECT_EQ(CallServer(*bob, "PATCH", "/api/v1/catalog/models/sentiment", R"({"visibility": "public"})").status, 404);

  // Alice publishes it; anyone finds it.
  ASSERT_EQ(CallServer(*alice, "PATCH", "/api/v1/catalog/models/sentiment", R"({"visibility": "public", "tags": ["demo"]})").status,
            200);
  auto found = CallServer(*anonymous, "GET", "/api/v1/catalog/models?q=review&tag=demo");
  ASSERT_EQ(found.status, 200) << found.text;
  ASSERT_EQ(found.body["models"].size(), 1u) << found.text;
  EXPECT_EQ(found.body["models"][0]["owner"], "alice");
  auto lineage = CallServer(*bob, "GET", "/api/v1/catalog/models/sentiment/versions/1");
  ASSERT_EQ(lineage.status, 200);
  EXPECT_EQ(lineage.text.find("users/"), std::string::npos) << "alice's paths as she wrote them: " << lineage.text;
  EXPECT_EQ(lineage.body["lineage"]["dataset"]["catalog"]["reference"], "catalog://datasets/reviews");
  // The model card (the training's README.md, a file of the version) tells readers the request,
  // as alice wrote it: not where her home is, nor the API's own registration flags.
  auto public_entry = CallServer(*bob, "GET", "/api/v1/catalog/models/sentiment");
  ASSERT_EQ(public_entry.status, 200);
  const std::string card = public_entry.body["card"].get<std::string>();
  EXPECT_NE(card.find("catalog://datasets/reviews"), std::string::npos) << card;
  EXPECT_EQ(card.find("users/"), std::string::npos) << card;
  EXPECT_EQ(card.find("as_admin"), std::string::npos) << card;
  auto readme = CallServer(*bob, "GET", "/api/v1/catalog/models/sentiment/versions/1/files/README.md");
  ASSERT_EQ(readme.status, 200);
  EXPECT_EQ(readme.text, card);
  EXPECT_EQ(CallServer(*bob, "PATCH", "/api/v1/catalog/models/sentiment", R"({"visibility": "private"})").status, 403);
  EXPECT_EQ(CallServer(*bob, "PUT", "/api/v1/catalog/models/sentiment/aliases/champion", R"({"version": 1})").status, 403);

  // Bob pulls it with the CLI: a Hugging Face model directory, every file checked.
  TempDir pulled;
  auto pull = RunMlaas({"catalog", "pull", "catalog://sentiment@champion", (pulled.path() / "m").string(), "--server",
                        server_->url(), "--token", bob_token});
  ASSERT_EQ(pull.exit_code, 0) << pull.out << pull.err;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "README.md"})
    EXPECT_TRUE(std::filesystem::exists(pulled.path() / "m" / f)) << f;
  auto ranged = CallServer(*bob, "GET", "/api/v1/catalog/models/sentiment/versions/1/files/config.json");
  ASSERT_EQ(ranged.status, 200);
  EXPECT_EQ(json::parse(ranged.text)["model_type"], "bert");

  // Bob deploys alice's champion and sends requests while she moves it to a new version.
  auto deployed = CallServer(*bob, "POST", "/api/v1/deployments",
                             json{{"name", "bob-sentiment"},
                                  {"model", {{"path", "catalog://sentiment@champion"}, {"objective", "text-classification"}}}}
                                 .dump());
  ASSERT_EQ(deployed.status, 202) << deployed.text;
  EXPECT_EQ(deployed.body["owner"], "bob");
  const auto serving_version = [&](client::ApiClient& c) -> int64_t {
    auto d = CallServer(c, "GET", "/api/v1/deployments/bob-sentiment");
    if (d.status != 200 || !d.body.contains("active_version")) return 0;
    for (const auto& v : d.body["versions"]) {
      if (v["version"] == d.body["active_version"]) return v["model"]["catalog"].value("version", int64_t{0});
    }
    return 0;
  };
  ASSERT_TRUE(WaitFor([&] { return serving_version(*bob) == 1; }, 120s)) << server_->Log();
  EXPECT_EQ(CallServer(*alice, "GET", "/api/v1/deployments/bob-sentiment").status, 404) << "bob's, not alice's";
  EXPECT_EQ(CallServer(*alice, "DELETE", "/api/v1/deployments/bob-sentiment").status, 404);
  EXPECT_EQ(CallServer(*alice, "GET", "/api/v1/deployments").body["deployments"].size(), 0u);

  auto v2 = CallServer(*alice, "POST", "/api/v1/catalog/models/sentiment/versions",
                       json{{"model", {{"path", "models/sentiment"}}}}.dump());
  ASSERT_EQ(v2.status, 201) << v2.text;
  EXPECT_EQ(v2.body["version"], 2);
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  std::string failure;
  std::thread load([&] {
    auto c = As(bob_token);
    const std::string body = json{{"inputs", {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {"the movie was great"}}}}}}.dump();
    while (!stop) {
      auto r = c->Call("POST", "/v2/models/bob-sentiment/infer", body);
      if (r.has_value() && r->status == 200) {
        ++answered;
      } else {
        if (failed++ == 0) failure = r.has_value() ? r->text : r.error().ToString();
      }
    }
  });
  std::this_thread::sleep_for(200ms);
  auto moved = CallServer(*alice, "PUT", "/api/v1/catalog/models/sentiment/aliases/champion", R"({"version": 2})");
  ASSERT_EQ(moved.status, 200) << moved.text;
  EXPECT_EQ(moved.body["from_version"], 1);
  EXPECT_EQ(moved.body["to_version"], 2);
  const bool followed = WaitFor([&] { return serving_version(*bob) == 2; }, 120s);
  std::this_thread::sleep_for(200ms);
  stop = true;
  load.join();
  EXPECT_TRUE(followed) << server_->Log();
  EXPECT_GT(answered.load(), 0);
  EXPECT_EQ(failed.load(), 0) << failure;

  // The audit trail: who moved champion, from which version to which.
  auto history = CallServer(*bob, "GET", "/api/v1/catalog/models/sentiment/alias-history");
  ASSERT_EQ(history.status, 200) << history.text;
  ASSERT_EQ(history.body["events"].size(), 2u) << history.text;
  EXPECT_EQ(history.body["events"][0]["to_version"], 1);
  EXPECT_EQ(history.body["events"][1]["from_version"], 1);
  EXPECT_EQ(history.body["events"][1]["by"], "alice");
  auto popular = CallServer(*anonymous, "GET", "/api/v1/catalog/models/sentiment");
  EXPECT_GE(popular.body["popularity"]["downloads"].get<int64_t>(), 1) << popular.text;
  EXPECT_GE(popular.body["popularity"]["deployments"].get<int64_t>(), 1) << popular.text;
}

// The access matrix over resources: {owner, the owner's read-only token, another user, admin,
// anonymous, expired token, revoked token} x {object, task, deployment, catalog model, catalog
// dataset} x {read, list, write, delete}, through HTTP.
TEST_F(CatalogE2eTest, EveryKindOfResourceIsItsOwnersAcrossTheAccessMatrix) {
  auto admin = As(kAdminToken);
  const std::string owner_token = Issue("olga", {"read", "write"});
  auto owner = As(owner_token);
  const std::string home = (dir_->path() / "data" / "objects" / "users" / "olga").string();
  ASSERT_EQ(TrainWordPieceTokenizer(*dir_, home + "/tok").exit_code, 0);
  ASSERT_EQ(InitSmallModel(*dir_, home + "/tok", home + "/models/m", "text-classification", "a,b").exit_code, 0);
  ASSERT_EQ(CallServer(*owner, "PUT", "/api/v1/objects/d.csv", "text,label\nx,a\ny,b\n").status, 201);
  auto task = CallServer(*owner, "POST", "/api/v1/ml/utilities/dataset/stats", R"({"dataset": {"path": "d.csv"}})");
  ASSERT_EQ(task.status, 202) << task.text;
  const std::string task_id = task.body["task_id"];
  ASSERT_EQ(CallServer(*owner, "POST", "/api/v1/deployments",
                       R"({"name": "olga-dep", "model": {"path": "models/m", "objective": "text-classification"}})")
                .status,
            202);
  ASSERT_EQ(CallServer(*owner, "POST", "/api/v1/catalog/models/olga-model/versions", R"({"model": {"path": "models/m"}})").status,
            201);
  ASSERT_EQ(CallServer(*owner, "POST", "/api/v1/catalog/datasets/olga-data/versions", R"({"dataset": {"path": "d.csv"}})").status,
            201);

  std::string revoked_id;
  {
    auto made = CallServer(*admin, "POST", "/api/v1/tokens", R"({"user": "olga", "scopes": ["read", "write"]})");
    revoked_id = made.body["id"];
    ASSERT_EQ(CallServer(*admin, "DELETE", "/api/v1/tokens/" + revoked_id).status, 200);
    const std::string revoked = made.body["token"];
    auto e = CallServer(*admin, "POST", "/api/v1/tokens", R"({"user": "olga", "scopes": ["read", "write"], "expires_in": 1})");
    const std::string expired = e.body["token"];
    std::this_thread::sleep_for(1100ms);
    struct Caller {
      std::string who, token;
    };
    const std::vector<Caller> callers = {{"owner", owner_token},
                                         {"reader", Issue("olga", {"read"})},
                                         {"other", Issue("oscar", {"read", "write"})},
                                         {"admin", kAdminToken},
                                         {"anonymous", ""},
                                         {"expired", expired},
                                         {"revoked", revoked}};
    struct Resource {
      std::string kind;
      std::string read, admin_read;  // the owner's path / the admin's (the whole store)
      std::string list, listed;      // the list route and what shows the resource in it
      std::string write_method, write, write_body;
      std::string remove;            // DELETE path ("" when none)
      bool public_routes = false;    // read and list are public routes (the catalog)
    };
    const std::vector<Resource> resources = {
        {"object", "/api/v1/objects/d.csv", "/api/v1/objects/users/olga/d.csv", "/api/v1/ml/utilities/s3/object?max_keys=1000",
         "d.csv\"", "PUT", "/api/v1/objects/d.csv", "text,label\nz,a\n", "/api/v1/objects/d.csv"},
        {"task", "/api/v1/tasks/" + task_id, "", "/api/v1/tasks", task_id, "POST", "/api/v1/tasks/" + task_id + "/cancel", "",
         ""},
        {"deployment", "/api/v1/deployments/olga-dep", "", "/api/v1/deployments", "olga-dep", "POST",
         "/api/v1/deployments/olga-dep/rollback", "", "/api/v1/deployments/olga-dep"},
        {"catalog model", "/api/v1/catalog/models/olga-model", "", "/api/v1/catalog/models", "olga-model", "PATCH",
         "/api/v1/catalog/models/olga-model", R"({"description": "d"})", "/api/v1/catalog/models/olga-model", true},
        {"catalog dataset", "/api/v1/catalog/datasets/olga-data", "", "/api/v1/catalog/datasets", "olga-data", "PATCH",
         "/api/v1/catalog/datasets/olga-data", R"({"license": "mit"})", "/api/v1/catalog/datasets/olga-data", true},
    };
    for (const auto& r : resources) {
      for (const auto& c : callers) {
        auto client = As(c.token);
        const std::string what = c.who + " on the " + r.kind + ": ";
        const bool bad_token = c.who == "expired" || c.who == "revoked";
        const bool sees = c.who == "owner" || c.who == "reader" || c.who == "admin";
        // read
        auto read = CallServer(*client, "GET", c.who == "admin" && !r.admin_read.empty() ? r.admin_read : r.read);
        if (bad_token || (c.who == "anonymous" && !r.public_routes)) {
          EXPECT_EQ(read.status, 401) << what << read.text;
        } else {
          EXPECT_EQ(read.status, sees ? 200 : 404) << what << read.text;
        }
        // list
        auto list = CallServer(*client, "GET", c.who == "admin" && r.kind == "object" ? r.list + "&prefix=users/olga/d" : r.list);
        if (bad_token || (c.who == "anonymous" && !r.public_routes)) {
          EXPECT_EQ(list.status, 401) << what << list.text;
        } else {
          EXPECT_EQ(list.status, 200) << what << list.text;
          EXPECT_EQ(list.text.find(r.listed) != std::string::npos, sees) << what << list.text;
        }
        // write: others are answered 404 (for objects, a write lands in their own home)
        if (c.who == "admin") continue;
        auto write = CallServer(*client, r.write_method, r.write, r.write_body);
        if (bad_token || c.who == "anonymous") {
          EXPECT_EQ(write.status, 401) << what << write.text;
        } else if (c.who == "reader") {
          EXPECT_EQ(write.status, 403) << what << write.text;
        } else if (c.who == "other") {
          if (r.kind == "object") {
            EXPECT_EQ(write.status, 201) << what << write.text;
            EXPECT_EQ(CallServer(*owner, "GET", r.read).text, r.write_body) << "the owner's object (as she wrote it) is untouched";
          } else {
            EXPECT_EQ(write.status, 404) << what << write.text;
          }
        } else {
          EXPECT_TRUE(write.status < 400 || write.status == 409) << what << write.text;  // rollback: no canary (409)
        }
        // delete (the owner's last: it removes the resource)
        if (r.remove.empty() || c.who == "owner") continue;
        auto remove = CallServer(*client, "DELETE", r.remove);
        if (bad_token || c.who == "anonymous") {
          EXPECT_EQ(remove.status, 401) << what << remove.text;
        } else if (c.who == "reader") {
          EXPECT_EQ(remove.status, 403) << what << remove.text;
        } else {
          EXPECT_EQ(remove.status, r.kind == "object" ? 204 : 404) << what << remove.text;  // other: their own home / not found
        }
        if (r.kind == "object") {
          EXPECT_EQ(CallServer(*owner, "GET", r.read).status, 200) << "the owner's object is still there";
        }
      }
      if (!r.remove.empty()) {
        auto removed = CallServer(*owner, "DELETE", r.remove);
        EXPECT_LT(removed.status, 300) << r.kind << ": " << removed.text;
        EXPECT_EQ(CallServer(*owner, "GET", r.read).status, 404) << r.kind;
      }
    }
  }
  // Public catalog entries: anyone reads them, still only the owner changes them.
  ASSERT_EQ(CallServer(*owner, "POST", "/api/v1/catalog/models/olga-public/versions",
                       R"({"model": {"path": "models/m"}, "visibility": "public"})")
                .status,
            201);
  EXPECT_EQ(CallServer(*As(""), "GET", "/api/v1/catalog/models/olga-public/versions/1/files").status, 200);
  EXPECT_EQ(CallServer(*As(Issue("oscar", {"read", "write"})), "DELETE", "/api/v1/catalog/models/olga-public").status, 403);
  EXPECT_EQ(CallServer(*As(""), "DELETE", "/api/v1/catalog/models/olga-public").status, 401);
}

TEST_F(CatalogE2eTest, BadInputGetsClearErrorsNamingTheField) {
  auto carol = As(Issue("carol", {"read", "write"}));
  auto reader = As(Issue("rick", {"read"}));
  const auto expect = [&](client::ApiClient& c, const std::string& method, const std::string& path, const std::string& body,
                          int status, const std::string& field) {
    auto r = CallServer(c, method, path, body);
    EXPECT_EQ(r.status, status) << method << " " << path << ": " << r.text;
    if (!field.empty()) {
      EXPECT_EQ(r.body["error"].value("field", ""), field) << r.text;
    }
  };
  expect(*carol, "POST", "/api/v1/catalog/models", R"({"name": "Bad Name"})", 400, "name");
  expect(*carol, "POST", "/api/v1/catalog/models", R"({"name": "-x"})", 400, "name");
  expect(*carol, "POST", "/api/v1/catalog/models", json{{"name", "ok"}, {"description", std::string(5000, 'x')}}.dump(), 400,
         "description");
  expect(*carol, "POST", "/api/v1/catalog/models", R"({"name": "ok", "visibility": "everyone"})", 400, "visibility");
  expect(*carol, "POST", "/api/v1/catalog/models", R"({"name": "carols"})", 201, "");
  expect(*carol, "POST", "/api/v1/catalog/models", R"({"name": "carols"})", 409, "name");
  expect(*reader, "POST", "/api/v1/catalog/models", R"({"name": "ricks"})", 403, "");
  expect(*carol, "GET", "/api/v1/catalog/models/carols/versions/7", "", 404, "version");
  expect(*carol, "GET", "/api/v1/catalog/models/carols/versions/x", "", 400, "version");
  expect(*carol, "PUT", "/api/v1/catalog/models/carols/aliases/champion", R"({"version": 1})", 404, "version");
  expect(*carol, "PUT", "/api/v1/catalog/models/carols/aliases/Not_Ok", R"({"version": 1})", 400, "alias");
  expect(*carol, "DELETE", "/api/v1/catalog/models/carols/aliases/champion", "", 404, "alias");
  expect(*carol, "POST", "/api/v1/catalog/models/carols/versions", R"({"model": {"path": "models/none"}})", 400, "model.path");
  expect(*carol, "GET", "/api/v1/catalog/models?sort=best", "", 400, "sort");
  expect(*carol, "GET", "/api/v1/catalog/models?cursor=zzz", "", 400, "cursor");
  expect(*carol, "GET", "/api/v1/catalog/models?limit=0", "", 400, "limit");
  expect(*carol, "GET", "/api/v1/catalog/resolve?ref=models/x", "", 400, "ref");
  expect(*carol, "GET", "/api/v1/catalog/resolve?ref=catalog://carols", "", 404, "version");
  expect(*carol, "GET", "/api/v1/catalog/models?access_token=x", "", 400, "access_token");
  expect(*carol, "POST", "/api/v1/ml/nlp/predict",
         R"({"model": {"path": "catalog://nope@champion", "objective": "text-classification"}, "predict_input": {"input_text": ["x"]}})",
         404, "model.path");
  expect(*carol, "POST", "/api/v1/ml/nlp/predict",
         R"({"model": {"path": "catalog://a/b/c", "objective": "text-classification"}, "predict_input": {"input_text": ["x"]}})",
         400, "model.path");
  expect(*carol, "POST", "/api/v1/ml/nlp/predict",
         R"({"model": {"path": "catalog://datasets/x", "objective": "text-classification"}, "predict_input": {"input_text": ["x"]}})",
         400, "model.path");
  // Only the catalog writes its storage.
  auto admin = As(kAdminToken);
  expect(*admin, "PUT", "/api/v1/objects/catalog/models/carols/1/config.json", "{}", 403, "key");
  expect(*admin, "POST", "/api/v1/ml/nlp/train/model",
         json{{"model", {{"objective", "text-classification"}, {"preset", "bert-tiny"}}},
              {"dataset", {{"path", "d.csv"}}},
              {"model_save", {{"path", "catalog/models/x/1"}}}}
             .dump(),
         400, "model_save.path");
  expect(*carol, "POST", "/api/v1/ml/nlp/train/model",
         json{{"model", {{"objective", "text-classification"}, {"preset", "bert-tiny"}}},
              {"dataset", {{"path", "d.csv"}}},
              {"model_save", {{"path", "out"}}},
              {"catalog", {{"model", "Bad Name"}}}}
             .dump(),
         400, "catalog.model");
  // However the path is spelled, outputs never land in catalog/, and nested paths stay home.
  expect(*admin, "POST", "/api/v1/ml/nlp/train/model",
         json{{"model", {{"objective", "text-classification"}, {"preset", "bert-tiny"}}},
              {"dataset", {{"path", "d.csv"}}},
              {"model_save", {{"path", "./catalog/models/x/1"}}}}
             .dump(),
         400, "model_save.path");
  expect(*carol, "POST", "/api/v1/ml/nlp/train/model",
         json{{"model", {{"objective", "text-classification"}, {"preset", "bert-tiny"}}},
              {"dataset", {{"path", "d.csv"}, {"eval_dataset", {{"path", "../alice/x.csv"}}}}},
              {"model_save", {{"path", "out"}}}}
             .dump(),
         400, "dataset.eval_dataset.path");
  expect(*carol, "POST", "/api/v1/catalog/models/carols/versions", R"({"model": {"path": "catalog://carols"}})", 400,
         "model.path");
}

// What a caller cannot grow without bound: a wide file's facts, a version's lineage, the
// versions list (paged); a failed registration leaves its name free; a read-only token does
// not revoke its user's stronger tokens.
TEST_F(CatalogE2eTest, RegistrationsStayBoundedAndAFailedOneLeavesNothing) {
  const std::string token = Issue("fran", {"read", "write"});
  auto fran = As(token);
  // 300 columns of 300-byte names: 256 listed, each cut, the count kept.
  std::string header, row;
  for (int c = 0; c < 300; ++c) {
    header += (c ? "," : "") + std::to_string(1000 + c) + std::string(290, 'h');
    row += (c ? "," : "") + std::string("v");
  }
  ASSERT_EQ(CallServer(*fran, "PUT", "/api/v1/objects/wide.csv", header + "\n" + row + "\n" + row + "\n").status, 201);
  auto wide = CallServer(*fran, "POST", "/api/v1/catalog/datasets/wide/versions", R"({"dataset": {"path": "wide.csv"}})");
  ASSERT_EQ(wide.status, 201) << wide.text.substr(0, 500);
  const json& facts = wide.body["facts"];
  EXPECT_EQ(facts["column_count"], 300);
  ASSERT_EQ(facts["columns"].size(), 256u);
  EXPECT_EQ(facts["columns"][0].get<std::string>(), "1000" + std::string(252, 'h') + "...");
  EXPECT_EQ(facts["rows"], 2);
  EXPECT_EQ(facts["preview"][0].size(), 256u);
  EXPECT_LT(wide.text.size(), 300000u);
  // Repeated names are listed as pandas reads them, each column's value kept in the preview.
  ASSERT_EQ(CallServer(*fran, "PUT", "/api/v1/objects/dup.csv", "a,a,,,a.1\n1,2,3,4,5\n").status, 201);
  auto dup = CallServer(*fran, "POST", "/api/v1/catalog/datasets/dup/versions", R"({"dataset": {"path": "dup.csv"}})");
  ASSERT_EQ(dup.status, 201) << dup.text;
  EXPECT_EQ(dup.body["facts"]["columns"], json({"a", "a.1", "", ".1", "a.1.1"}));
  EXPECT_EQ(dup.body["facts"]["preview"][0], json({{"a", "1"}, {"a.1", "2"}, {"", "3"}, {".1", "4"}, {"a.1.1", "5"}}));

  auto lineage = CallServer(*fran, "POST", "/api/v1/catalog/datasets/wide/versions",
                            json{{"dataset", {{"path", "wide.csv"}}}, {"lineage", {{"n", std::string(70000, 'z')}}}}.dump());
  EXPECT_EQ(lineage.status, 400) << lineage.text.substr(0, 300);
  EXPECT_EQ(lineage.body["error"].value("field", ""), "lineage");

  // Three versions, two a page, newest first.
  ASSERT_EQ(CallServer(*fran, "PUT", "/api/v1/objects/small.csv", "text,label\nx,a\n").status, 201);
  for (int v = 0; v < 3; ++v)
    ASSERT_EQ(CallServer(*fran, "POST", "/api/v1/catalog/datasets/paged/versions", R"({"dataset": {"path": "small.csv"}})").status, 201);
  auto first = CallServer(*fran, "GET", "/api/v1/catalog/datasets/paged/versions?limit=2");
  ASSERT_EQ(first.status, 200) << first.text;
  ASSERT_EQ(first.body["versions"].size(), 2u);
  EXPECT_EQ(first.body["versions"][0]["version"], 3);
  EXPECT_EQ(first.body["versions"][1]["version"], 2);
  ASSERT_TRUE(first.body["next_cursor"].is_string()) << first.text;
  auto second = CallServer(*fran, "GET", "/api/v1/catalog/datasets/paged/versions?limit=2&cursor=" +
                                             first.body["next_cursor"].get<std::string>());
  ASSERT_EQ(second.status, 200) << second.text;
  ASSERT_EQ(second.body["versions"].size(), 1u);
  EXPECT_EQ(second.body["versions"][0]["version"], 1);
  EXPECT_TRUE(second.body["next_cursor"].is_null());
  EXPECT_EQ(CallServer(*fran, "GET", "/api/v1/catalog/datasets/paged/versions?cursor=zz").status, 400);

  // A registration that fails (nothing at the path) creates nothing: the name stays free.
  auto failed = CallServer(*fran, "POST", "/api/v1/catalog/models/squat/versions", R"({"model": {"path": "nope"}})");
  EXPECT_EQ(failed.status, 400) << failed.text;
  EXPECT_EQ(CallServer(*fran, "GET", "/api/v1/catalog/models/squat").status, 404);
  auto gail = As(Issue("gail", {"read", "write"}));
  EXPECT_EQ(CallServer(*gail, "POST", "/api/v1/catalog/models", R"({"name": "squat"})").status, 201);

  // Fran's read-only token revokes neither her write token nor (not hers) anything else.
  auto issued = CallServer(*As(kAdminToken), "POST", "/api/v1/tokens", R"({"user": "fran", "scopes": ["read"]})");
  ASSERT_EQ(issued.status, 201);
  auto read_only = As(issued.body["token"].get<std::string>());
  const std::string write_id = token.substr(6, token.find('_', 6) - 6);  // mlaas_<id>_<secret>
  auto revoke = CallServer(*read_only, "DELETE", "/api/v1/tokens/" + write_id);
  EXPECT_EQ(revoke.status, 403) << revoke.text;
  EXPECT_EQ(revoke.body["error"].value("field", ""), "id");
  EXPECT_EQ(CallServer(*fran, "GET", "/api/v1/whoami").status, 200);
  EXPECT_EQ(CallServer(*fran, "DELETE", "/api/v1/tokens/" + issued.body["id"].get<std::string>()).status, 200);
}

// catalog:// references in predict, search, index, vector search and as a training base model,
// each answer or task naming the version it used.
TEST_F(CatalogE2eTest, ReferencesWorkInEveryRequestThatTakesAPath) {
  const std::string token = Issue("erin", {"read", "write"});
  auto erin = As(token);
  const std::string home = (dir_->path() / "data" / "objects" / "users" / "erin").string();
  ASSERT_EQ(TrainWordPieceTokenizer(*dir_, home + "/tok").exit_code, 0);
  ASSERT_EQ(InitSmallModel(*dir_, home + "/tok", home + "/models/emb", "no-objective").exit_code, 0);
  ASSERT_EQ(InitSmallModel(*dir_, home + "/tok", home + "/models/cls", "text-classification", "BA,MI").exit_code, 0);
  std::string csv = "id,abstract\n";
  for (size_t i = 0; i < AffiliationCorpus().size(); ++i) csv += std::to_string(i) + ",\"" + AffiliationCorpus()[i] + "\"\n";
  ASSERT_EQ(CallServer(*erin, "PUT", "/api/v1/objects/docs.csv", csv).status, 201);
  for (const auto& [route, body] : {std::pair{"/api/v1/catalog/models/emb/versions", json{{"model", {{"path", "models/emb"}}}}},
                                    std::pair{"/api/v1/catalog/models/cls/versions", json{{"model", {{"path", "models/cls"}}}}},
                                    std::pair{"/api/v1/catalog/datasets/docs/versions", json{{"dataset", {{"path", "docs.csv"}}}}}}) {
    auto r = CallServer(*erin, "POST", route, body.dump());
    ASSERT_EQ(r.status, 201) << route << ": " << r.text;
  }
  ASSERT_EQ(CallServer(*erin, "PUT", "/api/v1/catalog/models/emb/aliases/prod", R"({"version": 1})").status, 200);
  const json loader = {{"page_content_column", "abstract"}, {"id_column", "id"}};

  auto predicted = CallServer(*erin, "POST", "/api/v1/ml/nlp/predict",
                              json{{"model", {{"path", "catalog://cls/1"}, {"objective", "text-classification"}}},
                                   {"predict_input", {{"input_text", {"Bari INFN"}}}}}
                                  .dump());
  ASSERT_EQ(predicted.status, 200) << predicted.text;
  EXPECT_EQ(predicted.body["catalog"]["model"]["reference"], "catalog://cls/1");
  EXPECT_EQ(predicted.body["catalog"]["model"]["version"], 1);

  auto searched = CallServer(*erin, "POST", "/api/v1/ml/nlp/search",
                             json{{"model", {{"path", "catalog://emb@prod"}, {"objective", "no-objective"}}},
                                  {"dataset", {{"path", "catalog://datasets/docs"}, {"loader_kwargs", loader}}},
                                  {"search_input", {{"input_text", {"Bari"}}, {"top_k", 2}}}}
                                 .dump());
  ASSERT_EQ(searched.status, 200) << searched.text;
  EXPECT_EQ(searched.body["results"][0].size(), 2u);
  EXPECT_EQ(searched.body["catalog"]["dataset"]["reference"], "catalog://datasets/docs");

  auto indexed = CallServer(*erin, "POST", "/api/v1/ml/nlp/vector/index",
                            json{{"model", {{"path", "catalog://emb"}, {"objective", "no-objective"}}},
                                 {"dataset", {{"path", "catalog://datasets/docs/1"}, {"loader_kwargs", loader}}},
                                 {"vector_store_save", {{"path", "stores/docs"}, {"format", "vector_store"}}}}
                                .dump());
  ASSERT_EQ(indexed.status, 202) << indexed.text;
  json index_task = WaitForTaskEnd(*erin, indexed.body["task_id"], 120s);
  ASSERT_EQ(index_task["task_status"], "succeeded") << index_task.dump(2);
  auto vector_search = CallServer(*erin, "POST", "/api/v1/ml/nlp/vector/search",
                                  json{{"model", {{"path", "catalog://emb@prod"}, {"objective", "no-objective"}}},
                                       {"dataset", {{"path", "stores/docs"}, {"format", "vector_store"}}},
                                       {"search_input", {{"input_text", {"Milan"}}, {"top_k", 1}}}}
                                      .dump());
  ASSERT_EQ(vector_search.status, 200) << vector_search.text;
  EXPECT_EQ(vector_search.body["results"][0].size(), 1u);

  // A training task from a catalog base model: its params say which version.
  std::string labelled = "text,label\n";
  for (int i = 0; i < 10; ++i) labelled += std::string(i % 2 ? "Bari INFN Italy" : "Milano INAF Italy") + "," + (i % 2 ? "BA" : "MI") + "\n";
  ASSERT_EQ(CallServer(*erin, "PUT", "/api/v1/objects/labelled.csv", labelled).status, 201);
  auto trained = CallServer(*erin, "POST", "/api/v1/ml/nlp/train/model",
                            json{{"model", {{"path", "catalog://cls"}, {"objective", "text-classification"}}},
                                 {"dataset", {{"path", "labelled.csv"}}},
                                 {"model_train", {{"epochs", 1}, {"batch_size", 4}, {"threads", 1}}},
                                 {"model_save", {{"path", "models/cls-tuned"}}}}
                                .dump());
  ASSERT_EQ(trained.status, 202) << trained.text;
  json train_task = WaitForTaskEnd(*erin, trained.body["task_id"], 300s);
  ASSERT_EQ(train_task["task_status"], "succeeded") << train_task.dump(2);
  auto task = CallServer(*erin, "GET", "/api/v1/tasks/" + trained.body["task_id"].get<std::string>());
  EXPECT_NE(task.text.find("catalog://cls"), std::string::npos) << task.text;
}

TEST_F(CatalogE2eTest, TheCliRegistersListsMovesAliasesAndShowsTheTrail) {
  const std::string token = Issue("dora", {"read", "write"});
  const std::string home = (dir_->path() / "data" / "objects" / "users" / "dora").string();
  auto tok = TrainWordPieceTokenizer(*dir_, home + "/tok");
  ASSERT_EQ(tok.exit_code, 0) << tok.out << tok.err;
  auto init = InitSmallModel(*dir_, home + "/tok", home + "/models/m", "text-classification", "a,b");
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  const std::vector<std::string> as_dora = {"--server", server_->url(), "--token", token};
  const auto run = [&](std::vector<std::string> args) {
    args.insert(args.end(), as_dora.begin(), as_dora.end());
    return RunMlaas(args);
  };
  auto reg = run({"catalog", "register", "dora-model", "models/m", "--alias", "staging", "--visibility", "public",
                  "--tags", "nlp,small", "--description", "a small classifier"});
  ASSERT_EQ(reg.exit_code, 0) << reg.out << reg.err;
  EXPECT_NE(reg.out.find("catalog://dora-model/1"), std::string::npos) << reg.out;
  EXPECT_NE(reg.out.find("@staging -> version 1"), std::string::npos) << reg.out;
  ASSERT_EQ(run({"catalog", "register", "dora-model", "models/m"}).exit_code, 0);
  auto ls = run({"catalog", "ls", "small", "--sort", "name"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("dora-model"), std::string::npos) << ls.out;
  auto versions = run({"catalog", "versions", "dora-model", "--json"});
  ASSERT_EQ(versions.exit_code, 0) << versions.err;
  EXPECT_EQ(json::parse(versions.out)["versions"].size(), 2u);
  ASSERT_EQ(run({"catalog", "alias", "dora-model", "staging", "2"}).exit_code, 0);
  auto missing = run({"catalog", "alias", "dora-model", "staging", "9"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("version"), std::string::npos) << missing.out;
  auto history = run({"catalog", "history", "dora-model"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_NE(history.out.find("staging"), std::string::npos) << history.out;
  auto show = run({"catalog", "show", "dora-model"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("@staging -> version 2"), std::string::npos) << show.out;
  ASSERT_EQ(run({"catalog", "set", "dora-model", "--visibility", "private"}).exit_code, 0);
  EXPECT_EQ(CallServer(*As(""), "GET", "/api/v1/catalog/models/dora-model").status, 404);
  // Datasets through the same commands.
  ASSERT_EQ(CallServer(*As(token), "PUT", "/api/v1/objects/d.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n").status, 201);
  auto ds = run({"datasets", "register", "dora-data", "d.jsonl"});
  ASSERT_EQ(ds.exit_code, 0) << ds.out << ds.err;
  EXPECT_NE(ds.out.find("catalog://datasets/dora-data/1"), std::string::npos) << ds.out;
  TempDir out;
  auto pulled = run({"datasets", "pull", "dora-data", (out.path() / "d").string()});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_TRUE(std::filesystem::exists(out.path() / "d" / "d.jsonl"));
  ASSERT_EQ(run({"datasets", "rm", "dora-data"}).exit_code, 0);
  // `mlaas train --register` fine-tunes a catalog model and registers the result.
  std::string labelled = "text,label\n";
  for (int i = 0; i < 8; ++i) labelled += std::string(i % 2 ? "Bari INFN" : "Milano INAF") + "," + (i % 2 ? "a" : "b") + "\n";
  ASSERT_EQ(CallServer(*As(token), "PUT", "/api/v1/objects/l.csv", labelled).status, 201);
  auto trained = run({"train", "--model", "catalog://dora-model@staging", "--objective", "text-classification", "--dataset",
                      "l.csv", "--save", "models/tuned", "--epochs", "1", "--batch-size", "4", "--register", "dora-tuned",
                      "--alias", "champion", "--wait"});
  ASSERT_EQ(trained.exit_code, 0) << trained.out;
  auto tuned = CallServer(*As(token), "GET", "/api/v1/catalog/models/dora-tuned");
  ASSERT_EQ(tuned.status, 200) << tuned.text;
  EXPECT_EQ(tuned.body["aliases"]["champion"], 1);
  EXPECT_EQ(run({"datasets", "show", "dora-data"}).exit_code, 1);
}

}  // namespace
}  // namespace mlaas::testing
