#include "serve/deployments.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "common/file_util.h"
#include "storage/local_object_store.h"
#include "testutil/postgres_server.h"
#include "testutil/temp_dir.h"
#include "testutil/tiny_model.h"

namespace mlaas::serve {
namespace {

using json = nlohmann::json;
using mlaas::testing::TempDir;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class DeploymentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::LocalObjectStore::Create(dir_ / "objects", dir_ / "tmp");
    ASSERT_TRUE(store.has_value());
    registry_.Add(std::move(*store));
    auto records = metadata::OpenDeploymentStore({.url = (dir_ / "mlaas.db").string(), .now_ms = {}});
    ASSERT_TRUE(records.has_value()) << records.error().ToString();
    records_ = std::move(records).value();
    options_.store = records_.get();
    options_.sync_interval = 50ms;
    manager_ = Start(options_);
  }

  // A server's deployment manager on the test's database (a second one is another server).
  std::unique_ptr<DeploymentManager> Start(ServeOptions options) {
    auto m = std::make_unique<DeploymentManager>(registry_, std::move(options));
    Status st = m->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return m;
  }

  void Model(const std::string& name, uint64_t seed = 3,
             nn::Objective objective = nn::Objective::kTextClassification) {
    ASSERT_TRUE(mlaas::testing::WriteTinyModel(dir_ / "objects" / "models" / name, nn::Architecture::kBert, objective,
                                               {"neg", "pos", "other"}, {}, seed));
  }

  static json Request(const std::string& name, const std::string& path, json extra = json::object()) {
    json r = {{"name", name}, {"model", {{"path", path}, {"objective", "text-classification"}}}};
    r.update(extra);
    return r;
  }

  json WaitFor(const std::string& name, const std::string& status) {
    json view;
    for (int i = 0; i < 1000; ++i) {
      auto v = manager_->Get(name);
      EXPECT_TRUE(v.has_value());
      if (!v.has_value()) return json();
      view = *v;
      if (view["status"] == status && manager_->WaitIdle(0ms)) return view;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "deployment " << name << " never became " << status << ": " << view.dump();
    return view;
  }

  // The prediction of one text run alone, straight through a freshly loaded model.
  json Alone(const std::string& path, const std::string& text) {
    predict::LoadSpec spec;
    spec.model_dir = dir_ / "objects" / path;
    spec.objective = "text-classification";
    auto m = predict::ServableModel::Load(spec);
    EXPECT_TRUE(m.has_value());
    auto enc = (*m)->EncodeTexts({text}, "text");
    EXPECT_TRUE(enc.has_value());
    auto out = (*m)->Run({&(*enc)[0]}, {});
    EXPECT_TRUE(out.has_value());
    return (*out)[0];
  }

  Result<InferResult> Infer(const std::string& name, std::vector<std::string> texts,
                            std::optional<std::string> version = std::nullopt) {
    InferRequest r;
    r.texts = std::move(texts);
    r.version = std::move(version);
    return manager_->Infer(name, std::move(r));
  }

  TempDir dir_;
  storage::StorageRegistry registry_;
  std::unique_ptr<metadata::DeploymentStore> records_;
  ServeOptions options_;
  std::unique_ptr<DeploymentManager> manager_;
};

const std::vector<std::string> kTexts = {"the cat sat", "a dog ran fast", "the big red mat", "cats and dogs",
                                         "the", "a cat sat on the mat , the dog ran .", "red", "dog dog dog"};

TEST_F(DeploymentsTest, LoadsInTheBackgroundThenServesBatchedRequestsCorrectly) {
  Model("m");
  auto created = manager_->Deploy(Request("clf", "models/m", {{"batching", {{"max_delay_us", 20000}}}}));
  ASSERT_TRUE(created.has_value()) << created.error().ToString();
  EXPECT_EQ((*created)["versions"][0]["version"], "1");
  EXPECT_EQ((*created)["versions"][0]["status"], "loading");
  json view = WaitFor("clf", "ready");
  EXPECT_EQ(view["active_version"], "1");
  EXPECT_EQ(view["versions"][0]["model_info"]["labels"], json({"neg", "pos", "other"}));
  // Many concurrent requests, each checked against its text run alone.
  std::vector<json> expected;
  for (const auto& t : kTexts) expected.push_back(Alone("models/m", t));
  std::vector<std::future<bool>> clients;
  for (int c = 0; c < 16; ++c) {
    clients.push_back(std::async(std::launch::async, [&, c] {
      for (int i = 0; i < 10; ++i) {
        const size_t k = static_cast<size_t>(c + i) % kTexts.size();
        auto r = Infer("clf", {kTexts[k]});
        if (!r.has_value()) return false;
        const json& p = r->predictions[0];
        if (p["label"] != expected[k]["label"] ||
            std::abs(p["score"].get<double>() - expected[k]["score"].get<double>()) > 1e-5)
          return false;
      }
      return true;
    }));
  }
  for (auto& c : clients) EXPECT_TRUE(c.get());
  const std::string metrics = manager_->RenderMetrics();
  EXPECT_NE(metrics.find("mlaas_inference_request_success_total{model=\"clf\",version=\"1\"} 160"), std::string::npos)
      << metrics;
}

TEST_F(DeploymentsTest, BadRequestsNameTheField) {
  Model("m");
  struct Case {
    json request;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{{"model", {{"path", "models/m"}, {"objective", "text-classification"}}}}, "name"},
      {Request("bad name!", "models/m"), "name"},
      {{{"name", "x"}}, "model"},
      {Request("x", "models/none"), "model.path"},
      {{{"name", "x"}, {"model", {{"path", "models/m"}, {"objective", "image-segmentation"}}}}, "model.objective"},
      {Request("x", "models/m", {{"batching", {{"max_batch_tokens", 0}}}}), "batching.max_batch_tokens"},
      {Request("x", "models/m", {{"canary_percent", 0}}), "canary_percent"},
      {Request("x", "models/m", {{"device", "tpu"}}), "device"},
      {Request("x", "models/m", {{"version", "a/b"}}), "version"},
  };
  for (const auto& c : cases) {
    auto r = manager_->Deploy(c.request);
    ASSERT_FALSE(r.has_value()) << c.request.dump();
    EXPECT_EQ(r.error().field(), c.field) << c.request.dump() << ": " << r.error().ToString();
  }
  EXPECT_TRUE(manager_->List().empty());
}

TEST_F(DeploymentsTest, InputsOutOfBoundsAreRefusedClearly) {
  Model("m");
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/m", {{"batching", {{"max_inputs", 8}}}})).has_value());
  WaitFor("clf", "ready");
  auto many = Infer("clf", std::vector<std::string>(9, "cat"));
  ASSERT_FALSE(many.has_value());
  EXPECT_EQ(many.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(many.error().message().find("at most 8"), std::string::npos);
  auto none = Infer("clf", {});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), StatusCode::kInvalidArgument);
  auto huge = Infer("clf", {std::string(1 << 20, 'a')});
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.error().code(), StatusCode::kInvalidArgument);
  auto unknown = Infer("nope", {"cat"});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code(), StatusCode::kNotFound);
  InferRequest ids;
  ids.token_ids = {{2, 7, 3}, {2, 99, 3}};
  auto bad_id = manager_->Infer("clf", ids);
  ASSERT_FALSE(bad_id.has_value());
  EXPECT_NE(bad_id.error().message().find("outside the vocabulary"), std::string::npos);
  ids.token_ids = {{2, 7, 9, 3}};  // [CLS] cat sat [SEP]
  auto by_ids = manager_->Infer("clf", ids);
  ASSERT_TRUE(by_ids.has_value()) << by_ids.error().ToString();
  EXPECT_EQ(by_ids->predictions[0], Alone("models/m", "cat sat"));
}

// Question answering and next-sentence prediction served: each answer is what the model gives the
// question (or pair) alone, however the requests are batched and however many windows a long
// context is cut into (16 positions here: a context of 40 words makes several).
TEST_F(DeploymentsTest, QuestionAnsweringAndNextSentenceDeploymentsAnswerAsTheModelAlone) {
  Model("qa", 3, nn::Objective::kQuestionAnswering);
  Model("nsp", 5, nn::Objective::kNextSentencePrediction);
  json qa = {{"name", "qa"},
             {"model", {{"path", "models/qa"}, {"objective", "question-answering"}}},
             {"batching", {{"max_delay_us", 20000}, {"max_batch_tokens", 64}}}};
  ASSERT_TRUE(manager_->Deploy(qa).has_value());
  // No objective: the model's config.json (BertForNextSentencePrediction) names it.
  auto nsp = manager_->Deploy({{"name", "nsp"}, {"model", {{"path", "models/nsp"}}}, {"batching", {{"max_delay_us", 20000}}}});
  ASSERT_TRUE(nsp.has_value()) << nsp.error().ToString();
  WaitFor("qa", "ready");
  json nsp_view = WaitFor("nsp", "ready");
  EXPECT_EQ(nsp_view["versions"][0]["model_info"]["objective"], "next-sentence-prediction");

  std::string long_context;
  for (int i = 0; i < 40; ++i) long_context += kTexts[static_cast<size_t>(i) % kTexts.size()].substr(0, 7 + i % 5) + " ";
  const std::vector<std::pair<std::string, std::string>> questions = {
      {"the cat", "the cat sat on the mat"},
      {"a dog", long_context},
      {"red", "the big red mät , a dög ran fast ."},  // unknown multi-byte words: offsets count code points
      {"cats", "dog dog dog"},
  };
  auto load = [&](const std::string& path, const std::string& objective) {
    predict::LoadSpec spec;
    spec.model_dir = dir_ / "objects" / path;
    spec.objective = objective;
    auto m = predict::ServableModel::Load(spec);
    EXPECT_TRUE(m.has_value()) << m.error().ToString();
    return *m;
  };
  auto qa_model = load("models/qa", "question-answering");
  std::vector<json> expected;
  for (const auto& [q, c] : questions) {
    auto rows = qa_model->EncodeQuestions({q}, {c}, "question");
    ASSERT_TRUE(rows.has_value()) << rows.error().ToString();
    auto out = qa_model->Run({&(*rows)[0]}, {});
    ASSERT_TRUE(out.has_value()) << out.error().ToString();
    expected.push_back((*out)[0]);
  }
  {
    auto rows = qa_model->EncodeQuestions({"a dog"}, {long_context}, "q");
    ASSERT_TRUE(rows.has_value());
    const auto& q = std::get<predict::QuestionRow>((*rows)[0]);
    EXPECT_GT(q.windows.size(), 3u);
  }
  auto same_answer = [](const json& a, const json& b) {
    return a["answer"] == b["answer"] && a["start"] == b["start"] && a["end"] == b["end"] &&
           std::abs(a["score"].get<double>() - b["score"].get<double>()) < 1e-5;
  };
  std::vector<std::future<bool>> clients;
  for (int c = 0; c < 8; ++c) {
    clients.push_back(std::async(std::launch::async, [&, c] {
      for (int i = 0; i < 6; ++i) {
        InferRequest r;  // two questions a request, in varying company
        const size_t a = static_cast<size_t>(c + i) % questions.size(), b = static_cast<size_t>(c * 3 + i) % questions.size();
        r.texts = {questions[a].first, questions[b].first};
        r.contexts = {questions[a].second, questions[b].second};
        auto out = manager_->Infer("qa", std::move(r));
        if (!out.has_value()) {
          ADD_FAILURE() << out.error().ToString();
          return false;
        }
        if (!same_answer(out->predictions[0], expected[a]) || !same_answer(out->predictions[1], expected[b])) {
          ADD_FAILURE() << out->predictions[0].dump() << " vs " << expected[a].dump();
          return false;
        }
      }
      return true;
    }));
  }
  for (auto& c : clients) EXPECT_TRUE(c.get());
  // The multi-byte answer is the context's code points [start, end).
  const std::string& text = questions[2].second;
  auto byte_of = [&](size_t code_point) {  // the byte where a code point starts
    size_t b = 0;
    for (size_t seen = 0; b < text.size(); ++b) {
      if ((static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) continue;
      if (seen++ == code_point) break;
    }
    return b;
  };
  const size_t from = byte_of(expected[2]["start"].get<size_t>()), to = byte_of(expected[2]["end"].get<size_t>());
  EXPECT_EQ(text.substr(from, to - from), expected[2]["answer"]) << expected[2].dump();
  EXPECT_FALSE(expected[2]["answer"].get<std::string>().empty());

  // Next-sentence prediction: pairs, each as the model reads it alone.
  auto nsp_model = load("models/nsp", "next-sentence-prediction");
  InferRequest pairs;
  pairs.texts = {kTexts[0], kTexts[1], kTexts[5]};
  pairs.pairs = {kTexts[1], kTexts[2], kTexts[7]};
  auto served = manager_->Infer("nsp", pairs);
  ASSERT_TRUE(served.has_value()) << served.error().ToString();
  for (size_t i = 0; i < pairs.texts.size(); ++i) {
    auto rows = nsp_model->EncodePairs({pairs.texts[i]}, {pairs.pairs[i]}, "pair_text");
    ASSERT_TRUE(rows.has_value());
    auto alone = nsp_model->Run({&(*rows)[0]}, {});
    ASSERT_TRUE(alone.has_value());
    EXPECT_EQ(served->predictions[i]["is_next"], (*alone)[0]["is_next"]);
    EXPECT_NEAR(served->predictions[i]["score"].get<double>(), (*alone)[0]["score"].get<double>(), 1e-5);
  }
  // The same pair as token ids with its segments answers the same.
  auto pair_rows = nsp_model->EncodePairs({kTexts[0]}, {kTexts[1]}, "p");
  ASSERT_TRUE(pair_rows.has_value());
  const auto& e = std::get<tokenizers::Encoding>((*pair_rows)[0]);
  InferRequest ids;
  ids.token_ids = {std::vector<int64_t>(e.ids.begin(), e.ids.end())};
  ids.token_type_ids = {std::vector<int64_t>(e.type_ids.begin(), e.type_ids.end())};
  auto by_ids = manager_->Infer("nsp", ids);
  ASSERT_TRUE(by_ids.has_value()) << by_ids.error().ToString();
  EXPECT_NEAR((*by_ids).predictions[0]["score"].get<double>(), served->predictions[0]["score"].get<double>(), 1e-5);

  // What each model does not read is refused, naming the field.
  struct Refusal {
    std::string deployment;
    InferRequest request;
    std::string field;
  };
  InferRequest single;
  single.texts = {"the cat"};
  single.field = "inputs[0].data";
  InferRequest question = single;
  question.contexts = {"the cat sat"};
  question.second_field = "inputs[1].data";
  InferRequest uneven = question;
  uneven.texts = {"the cat", "a dog"};
  InferRequest qa_ids;
  qa_ids.token_ids = {{2, 7, 3}};
  qa_ids.field = "inputs[0]";
  const std::vector<Refusal> refusals = {
      {"qa", single, "inputs"},                 // a question without its context
      {"nsp", single, "inputs"},                // a text without its pair
      {"nsp", question, "inputs[1].data"},      // a context for a model that does not answer questions
      {"qa", uneven, "inputs[1].data"},         // contexts and questions do not match
      {"qa", qa_ids, "inputs[0]"},              // token ids carry no context text to point into
  };
  for (const auto& r : refusals) {
    auto out = manager_->Infer(r.deployment, r.request);
    ASSERT_FALSE(out.has_value()) << r.deployment << " " << r.field;
    EXPECT_EQ(out.error().code(), StatusCode::kInvalidArgument) << out.error().ToString();
    EXPECT_EQ(out.error().field(), r.field) << out.error().ToString();
  }
}

TEST_F(DeploymentsTest, AModelThatFailsToLoadReportsWhyAndOthersKeepServing) {
  Model("good");
  Model("broken");
  WriteFileAtomic(dir_ / "objects" / "models" / "broken" / "model.safetensors", "not a safetensors file").ok();
  ASSERT_TRUE(manager_->Deploy(Request("good", "models/good")).has_value());
  ASSERT_TRUE(manager_->Deploy(Request("broken", "models/broken")).has_value());
  json failed = WaitFor("broken", "failed");
  EXPECT_FALSE(failed.value("error", "").empty()) << failed.dump();
  EXPECT_EQ(failed["versions"][0]["status"], "failed");
  WaitFor("good", "ready");
  EXPECT_TRUE(Infer("good", {"cat"}).has_value());
  auto r = Infer("broken", {"cat"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.error().message().find("failed to load"), std::string::npos);
  auto mv = manager_->Model("broken", std::nullopt);
  ASSERT_TRUE(mv.has_value());
  EXPECT_FALSE(mv->ready);
  // A memory budget smaller than the weights fails the load, saying so.
  ASSERT_TRUE(manager_->Deploy(Request("small", "models/good", {{"max_memory_bytes", 1000}})).has_value());
  json small = WaitFor("small", "failed");
  EXPECT_NE(small.value("error", "").find("max_memory_bytes"), std::string::npos) << small.dump();
}

TEST_F(DeploymentsTest, ANewVersionTakesTheTrafficOnlyWhenReadyAndNoRequestFails) {
  Model("v1", 3);
  Model("v2", 11);
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v1")).has_value());
  WaitFor("clf", "ready");
  const json one = Alone("models/v1", "the cat sat"), two = Alone("models/v2", "the cat sat");
  ASSERT_NE(one["score"], two["score"]);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, wrong{0}, served_by_2{0}, total{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        auto r = Infer("clf", {"the cat sat"});
        ++total;
        if (!r.has_value()) {
          ++failures;
          continue;
        }
        const json& expect = r->version == "1" ? one : two;
        if (std::abs(r->predictions[0]["score"].get<double>() - expect["score"].get<double>()) > 1e-5) ++wrong;
        if (r->version == "2") ++served_by_2;
      }
    });
  }
  std::this_thread::sleep_for(100ms);
  auto v2 = manager_->Deploy(Request("clf", "models/v2"));
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ((*v2)["status"], "ready");  // version 1 serves while 2 loads
  EXPECT_EQ((*v2)["versions"][1]["status"], "loading");
  ASSERT_TRUE(manager_->WaitIdle(60s));
  std::this_thread::sleep_for(100ms);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(served_by_2.load(), 0);
  json view = *manager_->Get("clf");
  EXPECT_EQ(view["active_version"], "2");
  EXPECT_EQ(view["versions"].size(), 1u);  // version 1 unloaded
  EXPECT_EQ(Infer("clf", {"the cat sat"})->version, "2");
}

TEST_F(DeploymentsTest, ACanaryTakesItsShareUntilPromotedOrRolledBack) {
  Model("v1", 3);
  Model("v2", 11);
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v1")).has_value());
  WaitFor("clf", "ready");
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v2", {{"canary_percent", 25}})).has_value());
  ASSERT_TRUE(manager_->WaitIdle(60s));
  json view = *manager_->Get("clf");
  EXPECT_EQ(view["active_version"], "1");
  EXPECT_EQ(view["canary"], json({{"version", "2"}, {"percent", 25}}));
  int by_2 = 0;
  for (int i = 0; i < 200; ++i) by_2 += Infer("clf", {"cat"})->version == "2";
  EXPECT_EQ(by_2, 50);  // every fourth request
  EXPECT_EQ(Infer("clf", {"cat"}, "1")->version, "1");  // a version asked for by name
  auto rolled = manager_->Rollback("clf");
  ASSERT_TRUE(rolled.has_value());
  EXPECT_FALSE(rolled->contains("canary"));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Infer("clf", {"cat"})->version, "1");
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v2", {{"canary_percent", 50}, {"version", "canary"}})).has_value());
  ASSERT_TRUE(manager_->WaitIdle(60s));
  auto promoted = manager_->Promote("clf");
  ASSERT_TRUE(promoted.has_value());
  EXPECT_EQ((*promoted)["active_version"], "canary");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Infer("clf", {"cat"})->version, "canary");
  EXPECT_EQ(manager_->Promote("clf").error().code(), StatusCode::kFailedPrecondition);
}

TEST_F(DeploymentsTest, DeploymentsAreRestoredAfterARestartAndUndeployIsRemembered) {
  Model("a");
  Model("b", 5);
  ASSERT_TRUE(manager_->Deploy(Request("first", "models/a")).has_value());
  ASSERT_TRUE(manager_->Deploy(Request("second", "models/b", {{"version", "7"}})).has_value());
  WaitFor("first", "ready");
  WaitFor("second", "ready");
  const json before = Infer("second", {"the dog"})->predictions[0];
  manager_.reset();  // the server stops
  manager_ = Start(options_);
  WaitFor("first", "ready");
  json second = WaitFor("second", "ready");
  EXPECT_EQ(second["active_version"], "7");
  EXPECT_EQ(Infer("second", {"the dog"})->predictions[0], before);
  ASSERT_TRUE(manager_->Undeploy("first").ok());
  EXPECT_EQ(manager_->Undeploy("first").code(), StatusCode::kNotFound);
  manager_ = Start(options_);
  EXPECT_FALSE(manager_->Get("first").has_value());
  WaitFor("second", "ready");
}

// The view of `name` on `m` (null when it cannot be had).
json View(DeploymentManager& m, const std::string& name) {
  auto v = m.Get(name);
  return v.has_value() ? *v : json::object();
}

// Waits up to 30 s for `done`.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 3000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Two servers of one database: whatever is done through one, the other follows.
TEST_F(DeploymentsTest, DeploymentsAreSharedByEveryServerOfOneDatabase) {
  Model("v1", 3);
  Model("v2", 11);
  ServeOptions other = options_;
  other.host_id = "b";
  other.url = "http://b.example:8080";
  auto b = Start(other);
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v1")).has_value());
  auto served_by = [&](DeploymentManager& m, const std::string& version) {
    InferRequest r;
    r.texts = {"the cat sat"};
    auto out = m.Infer("clf", std::move(r));
    return out.has_value() && out->version == version;
  };
  ASSERT_TRUE(Eventually([&] { return served_by(*b, "1"); }));
  {
    InferRequest r;
    r.texts = {"the cat sat"};
    EXPECT_EQ(b->Infer("clf", std::move(r))->predictions[0], Alone("models/v1", "the cat sat"));
  }
  // Each server reports what it holds: the view on one lists both.
  ASSERT_TRUE(Eventually([&] { return View(*manager_, "clf").value("hosts", json::array()).size() == 2; }));

  // A new version deployed through one server takes the traffic on the other.
  ASSERT_TRUE(b->Deploy(Request("clf", "models/v2")).has_value());
  ASSERT_TRUE(Eventually([&] { return served_by(*manager_, "2") && served_by(*b, "2"); }));
  EXPECT_TRUE(Eventually([&] { return View(*manager_, "clf").value("versions", json::array()).size() == 1; }));

  // A canary deployed through one is rolled back through the other.
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v1", {{"canary_percent", 50}, {"version", "c"}})).has_value());
  ASSERT_TRUE(Eventually([&] { return View(*b, "clf").contains("canary") && View(*manager_, "clf").contains("canary"); }));
  ASSERT_TRUE(b->Rollback("clf").has_value());
  ASSERT_TRUE(Eventually([&] { return View(*manager_, "clf").value("versions", json::array()).size() == 1; }));
  EXPECT_FALSE(View(*manager_, "clf").contains("canary"));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(served_by(*manager_, "2"));

  // The name belongs to its owner on every server.
  json theirs = Request("clf", "models/v1");
  theirs["owner"] = "mallory";
  EXPECT_EQ(b->Deploy(theirs).error().code(), StatusCode::kAlreadyExists);

  // Undeployed through one: gone from the other.
  ASSERT_TRUE(b->Undeploy("clf").ok());
  ASSERT_TRUE(Eventually([&] { return !manager_->Get("clf").has_value(); }));
  EXPECT_EQ(manager_->Get("clf").error().code(), StatusCode::kNotFound);
  EXPECT_FALSE(manager_->Locate("clf", std::nullopt).here);
}

// On PostgreSQL a server hears of another's deployment at once (NOTIFY), not at its next poll:
// here the poll comes only every minute.
TEST_F(DeploymentsTest, OnPostgreSQLADeploymentReachesTheOtherServersAtOnce) {
  Model("v1", 3);
  auto url = mlaas::testing::FreshTestDatabase();
  ASSERT_TRUE(url.has_value()) << url.error().ToString();
  auto records = metadata::OpenDeploymentStore({.url = *url, .now_ms = {}});
  ASSERT_TRUE(records.has_value()) << records.error().ToString();
  ServeOptions slow = options_;
  slow.store = records->get();
  slow.sync_interval = 60s;
  slow.host_id = "a";
  auto a = Start(slow);
  slow.host_id = "b";
  auto b = Start(slow);
  ASSERT_TRUE(a->Deploy(Request("clf", "models/v1")).has_value());
  // List shows what b has read (Get would read the store itself for a name b does not know).
  ASSERT_TRUE(Eventually([&] { return b->List().size() == 1; }));  // within 30 s, before any poll
  ASSERT_TRUE(a->Undeploy("clf").ok());
  ASSERT_TRUE(Eventually([&] { return !b->Get("clf").has_value(); }));
}

// A deployment pinned to labelled servers loads only on them; the others say where it is served.
TEST_F(DeploymentsTest, PinnedDeploymentsLoadOnlyOnServersWithTheirLabels) {
  Model("m");
  manager_.reset();
  ServeOptions plain = options_, labelled = options_;
  plain.host_id = "plain";
  plain.url = "http://plain:1";
  plain.labels = {"cpu"};
  labelled.host_id = "labelled";
  labelled.url = "http://labelled:2";
  labelled.labels = {"cpu", "big-memory"};
  manager_ = Start(plain);
  auto b = Start(labelled);

  EXPECT_EQ(manager_->Deploy(Request("x", "models/m", {{"resources", {{"workers", 2}}}})).error().field(),
            "resources.workers");
  EXPECT_EQ(manager_->Deploy(Request("x", "models/m", {{"resources", {{"labels", {"bad label"}}}}})).error().field(),
            "resources.labels[0]");
  EXPECT_EQ(manager_->Deploy(Request("x", "models/m", {{"resources", {{"gpus", -1}}}})).error().field(),
            "resources.gpus");

  auto created = manager_->Deploy(Request("pinned", "models/m", {{"resources", {{"labels", {"big-memory"}}}}}));
  ASSERT_TRUE(created.has_value()) << created.error().ToString();
  EXPECT_EQ((*created)["resources"]["labels"], json({"big-memory"}));
  ASSERT_TRUE(Eventually([&] { return b->Locate("pinned", std::nullopt).here; }));
  // The plain server holds nothing of it, and sends its callers to the labelled one.
  ASSERT_TRUE(Eventually([&] {
    return manager_->Locate("pinned", std::nullopt).urls == std::vector<std::string>{"http://labelled:2"};
  }));
  EXPECT_FALSE(manager_->Locate("pinned", std::nullopt).here);
  EXPECT_EQ(manager_->Locate("pinned", "1").urls, std::vector<std::string>{"http://labelled:2"});
  EXPECT_TRUE(manager_->Locate("pinned", "9").urls.empty());
  json view = *manager_->Get("pinned");
  EXPECT_EQ(view["status"], "ready") << view.dump();
  EXPECT_EQ(view["versions"][0]["status"], "ready");
  ASSERT_EQ(view["hosts"].size(), 1u);
  EXPECT_EQ(view["hosts"][0]["url"], "http://labelled:2");
  InferRequest r;
  r.texts = {"cat"};
  auto here = manager_->Infer("pinned", std::move(r));
  ASSERT_FALSE(here.has_value());
  EXPECT_EQ(here.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(here.error().message().find("big-memory"), std::string::npos) << here.error().message();
  EXPECT_TRUE(manager_->Ready());  // nothing of its own to load

  // The labelled server stops: nobody serves it, and the view says why.
  b.reset();
  ASSERT_TRUE(Eventually([&] { return manager_->Locate("pinned", std::nullopt).urls.empty(); }));
  ASSERT_TRUE(Eventually([&] { return View(*manager_, "pinned").value("status", "") == "pending"; }));
  EXPECT_NE(View(*manager_, "pinned").value("message", "").find("big-memory"), std::string::npos);

  // A new version without resources stays where the deployment is pinned.
  ASSERT_TRUE(manager_->Deploy(Request("pinned", "models/m")).has_value());
  EXPECT_EQ(View(*manager_, "pinned")["resources"]["labels"], json({"big-memory"}));
  EXPECT_FALSE(manager_->Locate("pinned", std::nullopt).here);
}

// A version that fails on one server (here its memory budget) serves from another, and is
// loaded again when that server restarts: failing is a server's own affair.
TEST_F(DeploymentsTest, AVersionFailingOnOneServerServesFromAnotherAndAfterItsRestart) {
  Model("m");
  ServeOptions small = options_;
  small.host_id = "small";
  small.url = "http://small:1";
  small.max_total_bytes = 1000;
  auto b = Start(small);
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/m")).has_value());
  WaitFor("clf", "ready");
  ASSERT_TRUE(Eventually([&] {
    auto v = View(*b, "clf");
    return !v.value("versions", json::array()).empty() && v["versions"][0].value("error", "") != "";
  }));
  EXPECT_FALSE(b->Locate("clf", std::nullopt).here);
  manager_.reset();  // the server that serves it restarts
  manager_ = Start(options_);
  WaitFor("clf", "ready");
  InferRequest r;
  r.texts = {"cat"};
  EXPECT_TRUE(manager_->Infer("clf", std::move(r)).has_value());
}

// A first version deployed with a traffic share serves all the traffic (there is nothing to
// share it with) and is recorded so: the next canary takes only its own share, and promotes.
TEST_F(DeploymentsTest, AFirstVersionDeployedAsACanaryServesAllAndTheNextCanaryPromotes) {
  Model("v1", 3);
  Model("v2", 11);
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v1", {{"canary_percent", 30}})).has_value());
  WaitFor("clf", "ready");
  ASSERT_TRUE(manager_->Deploy(Request("clf", "models/v2", {{"canary_percent", 25}})).has_value());
  ASSERT_TRUE(manager_->WaitIdle(60s));
  json view = View(*manager_, "clf");
  EXPECT_EQ(view["active_version"], "1") << view.dump();
  EXPECT_EQ(view["canary"], json({{"version", "2"}, {"percent", 25}}));
  auto promoted = manager_->Promote("clf");
  ASSERT_TRUE(promoted.has_value()) << promoted.error().ToString();
  EXPECT_EQ((*promoted)["active_version"], "2");
  // After a restart too.
  manager_.reset();
  manager_ = Start(options_);
  view = WaitFor("clf", "ready");
  EXPECT_EQ(view["active_version"], "2");
  EXPECT_FALSE(view.contains("canary"));
}

}  // namespace
}  // namespace mlaas::serve
