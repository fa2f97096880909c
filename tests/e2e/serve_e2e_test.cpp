// End-to-end: model serving through the real server — deployments over REST, inference over
// the Open Inference Protocol v2 as a KServe/Triton client sends it, dynamic batching under
// 256 concurrent connections (every answer checked against a single-request run), a version
// switch under load, limits answered with clear 4xx, failed loads, metrics, restart and CLI.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;


// Distinct texts of varied lengths, so that a mixed-up answer would show.
std::vector<std::string> Texts(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string t = AffiliationCorpus()[i % AffiliationCorpus().size()];
    t = t.substr(0, 10 + (i * 7) % (t.size() - 10)) + " " + std::to_string(i);
    out.push_back(t);
  }
  return out;
}

// The warning and error lines of a server log.
std::string Warnings(const std::string& log) {
  std::string out;
  size_t start = 0;
  for (size_t end; (end = log.find('\n', start)) != std::string::npos && out.size() < 4000; start = end + 1) {
    const std::string line = log.substr(start, end - start);
    if (line.find("[warning]") != std::string::npos || line.find("[error]") != std::string::npos) out += line + "\n";
  }
  return out;
}

json InferBody(const std::vector<std::string>& texts) {
  return {{"inputs", json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {texts.size()}}, {"data", texts}}})}};
}

class ServeE2eTest : public ServerSuite<ServeE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--threads", "2"});
    dir_->Write("small.json", R"({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                                  "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64})");
    const std::string objects = (dir_->path() / "data" / "objects").string();
    auto tok = TrainWordPieceTokenizer(*dir_, objects + "/tokenizers/wp");
    ASSERT_EQ(tok.exit_code, 0) << tok.out;
    for (const auto& [name, seed, objective] : {std::tuple{"v1", "7", "text-classification"},
                                                std::tuple{"v2", "8", "text-classification"},
                                                std::tuple{"emb", "9", "no-objective"},
                                                std::tuple{"qa", "10", "question-answering"},
                                                std::tuple{"nsp", "11", "next-sentence-prediction"}}) {
      std::vector<std::string> args = {"model", "init", "--config", (dir_->path() / "small.json").string(),
                                       "--objective", objective, "--tokenizer", objects + "/tokenizers/wp",
                                       "--output", objects + "/models/" + name, "--seed", seed};
      if (std::string(objective) == "text-classification") {
        args.push_back("--labels");
        args.push_back("BA,LNF,MI,NoSite");
      }
      auto r = RunMlaas(args);
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    // A model whose weights are not a safetensors file: it fails to load.
    std::filesystem::copy(objects + "/models/v1", objects + "/models/broken");
    dir_->Write("data/objects/models/broken/model.safetensors", "this is not a safetensors file");
    StartServer();
  }

  client::Response Call(const std::string& method, const std::string& path, const json& body = json()) {
    return CallServer(*client_, method, path, body.is_null() ? "" : body.dump());
  }

  // Deploys and waits until the deployment serves `version` (or it fails).
  json Deploy(json body, const std::string& until_version = "") {
    auto r = Call("POST", "/api/v1/deployments", body);
    EXPECT_EQ(r.status, 202) << r.text;
    const std::string name = body["name"];
    const std::string version = until_version.empty() ? r.body["versions"].back()["version"].get<std::string>() : until_version;
    json view;
    EXPECT_TRUE(WaitFor(
        [&] {
          auto g = Call("GET", "/api/v1/deployments/" + name);
          view = g.body;
          return view.value("active_version", "") == version || view.value("status", "") == "failed";
        },
        60s))
        << view.dump();
    return view;
  }

  static json Labels(const client::Response& r) {
    for (const auto& o : r.body["outputs"])
      if (o["name"] == "label") return o["data"];
    return json();
  }
  static json Scores(const client::Response& r) {
    for (const auto& o : r.body["outputs"])
      if (o["name"] == "score") return o["data"];
    return json();
  }
};

TEST_F(ServeE2eTest, DeploysAndAnswersTheOpenInferenceProtocol) {
  json view = Deploy({{"name", "clf"}, {"model", {{"path", "models/v1"}, {"objective", "text-classification"}}}});
  ASSERT_EQ(view["status"], "ready") << view.dump();
  EXPECT_EQ(view["endpoints"]["infer"], "/v2/models/clf/infer");

  auto server = Call("GET", "/v2");
  EXPECT_EQ(server.status, 200);
  EXPECT_EQ(server.body["name"], "mlaas");
  EXPECT_EQ(Call("GET", "/v2/health/live").body["live"], true);
  EXPECT_EQ(Call("GET", "/v2/health/ready").status, 200);
  auto meta = Call("GET", "/v2/models/clf");
  ASSERT_EQ(meta.status, 200) << meta.text;
  EXPECT_EQ(meta.body["name"], "clf");
  EXPECT_EQ(meta.body["versions"], json({"1"}));
  EXPECT_EQ(meta.body["inputs"][0]["datatype"], "BYTES");
  EXPECT_EQ(meta.body["outputs"][2]["name"], "probabilities");
  EXPECT_EQ(meta.body["outputs"][2]["shape"], json({-1, 4}));
  EXPECT_EQ(Call("GET", "/v2/models/clf/versions/1").body["name"], "clf");
  auto ready = Call("GET", "/v2/models/clf/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body["ready"], true);

  // A request as a KServe/Triton v2 client sends it: nested data, an id, chosen outputs.
  json body = {{"id", "req-42"},
               {"inputs", json::array({{{"name", "text"},
                                        {"shape", {2, 1}},
                                        {"datatype", "BYTES"},
                                        {"data", {{AffiliationCorpus()[0]}, {AffiliationCorpus()[1]}}}}})},
               {"outputs", json::array({{{"name", "label"}}, {{"name", "probabilities"}}})}};
  auto r = Call("POST", "/v2/models/clf/versions/1/infer", body);
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body["id"], "req-42");
  EXPECT_EQ(r.body["model_name"], "clf");
  EXPECT_EQ(r.body["model_version"], "1");
  ASSERT_EQ(r.body["outputs"].size(), 2u);
  EXPECT_EQ(r.body["outputs"][0]["name"], "label");
  EXPECT_EQ(r.body["outputs"][0]["datatype"], "BYTES");
  EXPECT_EQ(r.body["outputs"][0]["shape"], json({2}));
  EXPECT_EQ(r.body["outputs"][1]["shape"], json({2, 4}));
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += r.body["outputs"][1]["data"][i].get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-5);
  // The same prediction as the SPEC predict endpoint gives.
  auto p = Call("POST", "/api/v1/ml/nlp/predict",
                {{"model", {{"path", "models/v1"}, {"objective", "text-classification"}}},
                 {"predict_input", {{"input_text", {AffiliationCorpus()[0]}}}}});
  ASSERT_EQ(p.status, 200) << p.text;
  EXPECT_EQ(r.body["outputs"][0]["data"][0], p.body["predictions"][0]["label"]);

  // A client written from the protocol's documentation (Python, standard library only).
  const std::string script = std::string(MLAAS_SOURCE_DIR) + "/tests/e2e/oip_v2_client.py";
  FILE* client = popen(("/usr/bin/python3 " + script + " " + server_->url() + " clf 2>&1").c_str(), "r");
  ASSERT_NE(client, nullptr);
  std::string client_out;
  char buf[512];
  while (fgets(buf, sizeof(buf), client) != nullptr) client_out += buf;
  EXPECT_EQ(pclose(client), 0) << client_out;

  // Embeddings as FP32 [n, hidden]; token ids in as INT64.
  ASSERT_EQ(Deploy({{"name", "emb"}, {"model", {{"path", "models/emb"}, {"objective", "no-objective"}}}})["status"], "ready");
  auto e = Call("POST", "/v2/models/emb/infer", InferBody({"dark matter", "the detector"}));
  ASSERT_EQ(e.status, 200) << e.text;
  EXPECT_EQ(e.body["outputs"][0]["name"], "embedding");
  EXPECT_EQ(e.body["outputs"][0]["shape"], json({2, 32}));
  EXPECT_EQ(e.body["outputs"][0]["data"].size(), 64u);
  json ids = {{"inputs", json::array({{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", {1, 4}}, {"data", {2, 10, 11, 3}}}})}};
  auto by_ids = Call("POST", "/v2/models/emb/infer", ids);
  ASSERT_EQ(by_ids.status, 200) << by_ids.text;
  EXPECT_EQ(by_ids.body["outputs"][0]["shape"], json({1, 32}));
}

TEST_F(ServeE2eTest, ManyConcurrentConnectionsEachGetTheirOwnCorrectAnswer) {
  ASSERT_EQ(Deploy({{"name", "load"}, {"model", {{"path", "models/v1"}, {"objective", "text-classification"}}},
                    {"batching", {{"max_delay_us", 1000}}}})["status"],
            "ready");
  const auto texts = Texts(64);
  // What each text gets alone, one request at a time.
  std::vector<std::pair<std::string, double>> expected;
  for (const auto& t : texts) {
    auto r = Call("POST", "/v2/models/load/infer", InferBody({t}));
    ASSERT_EQ(r.status, 200) << r.text;
    expected.emplace_back(Labels(r)[0], Scores(r)[0]);
  }
  auto memory = [&] {
    auto m = client_->Call("GET", "/metrics");
    const std::string text = m.has_value() ? m->text : "";
    auto pos = text.find("\nprocess_resident_memory_bytes ");
    return pos == std::string::npos ? 0.0 : std::stod(text.substr(pos + 31));
  };
  constexpr int kConnections = 256, kRequests = 10000;
  std::atomic<int> next{0}, ok{0}, server_errors{0}, other{0}, wrong{0};
  std::atomic<double> memory_mid{0};
  std::mutex first_error_mu;
  std::string first_error;
  std::vector<std::thread> clients;
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&] {
      auto client = server_->Client(60);
      for (int i; (i = next++) < kRequests;) {
        if (i == kRequests / 5 && memory_mid == 0) memory_mid = memory();
        const size_t k = static_cast<size_t>(i) % texts.size();
        auto r = client->Call("POST", "/v2/models/load/infer", InferBody({texts[k]}).dump());
        if (!r.has_value() || r->status != 200) {
          (r.has_value() && r->status >= 500 ? server_errors : other)++;
          std::lock_guard<std::mutex> lock(first_error_mu);
          if (first_error.empty()) first_error = r.has_value() ? std::to_string(r->status) + " " + r->text : r.error().ToString();
          continue;
        }
        if (Labels(*r)[0] != expected[k].first || std::abs(Scores(*r)[0].get<double>() - expected[k].second) > 1e-4)
          ++wrong;
        ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(server_errors.load(), 0) << first_error;
  EXPECT_EQ(other.load(), 0) << first_error << "\nserver warnings:\n" << Warnings(server_->Log());
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ok.load(), kRequests);
  const double end = memory();
  ASSERT_GT(memory_mid.load(), 0);
  EXPECT_LT(end - memory_mid.load(), 64.0 * (1 << 20)) << "resident memory grew from " << memory_mid.load() << " to " << end;
  // The work was batched: fewer forward passes than requests.
  auto metrics = Call("GET", "/metrics").text;
  auto count = [&](const std::string& series) {
    auto pos = metrics.find(series);
    return pos == std::string::npos ? -1.0 : std::stod(metrics.substr(pos + series.size()));
  };
  const double passes = count("mlaas_inference_exec_count_total{model=\"load\",version=\"1\"} ");
  const double inputs = count("mlaas_inference_count_total{model=\"load\",version=\"1\"} ");
  EXPECT_EQ(inputs, kRequests + 64 + 0.0);
  EXPECT_GT(passes, 0);
  EXPECT_LT(passes, inputs);
  EXPECT_NE(metrics.find("mlaas_inference_batch_size_bucket{model=\"load\""), std::string::npos);
  EXPECT_NE(metrics.find("mlaas_inference_queue_duration_seconds_count{model=\"load\""), std::string::npos);
}

TEST_F(ServeE2eTest, AVersionSwitchUnderLoadFailsNoRequest) {
  ASSERT_EQ(Deploy({{"name", "switch"}, {"model", {{"path", "models/v1"}, {"objective", "text-classification"}}}})["status"],
            "ready");
  const std::string text = AffiliationCorpus()[2];
  std::map<std::string, double> expected;
  expected["1"] = Scores(Call("POST", "/v2/models/switch/infer", InferBody({text})))[0];
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, mismatches{0}, by_v2{0};
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 32; ++c) {
    clients.emplace_back([&] {
      auto client = server_->Client(60);
      while (!stop) {
        auto r = client->Call("POST", "/v2/models/switch/infer", InferBody({text}).dump());
        if (!r.has_value() || r->status != 200) {
          ++failures;
          continue;
        }
        const std::string version = r->body["model_version"];
        if (version == "2") ++by_v2;
        std::lock_guard<std::mutex> lock(mu);
        auto [it, fresh] = expected.emplace(version, Scores(*r)[0].get<double>());
        if (!fresh && std::abs(it->second - Scores(*r)[0].get<double>()) > 1e-4) ++mismatches;
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  json view = Deploy({{"name", "switch"}, {"model", {{"path", "models/v2"}, {"objective", "text-classification"}}}}, "2");
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(view["active_version"], "2");
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(by_v2.load(), 0);
  EXPECT_NE(expected["1"], expected["2"]);
  EXPECT_EQ(Call("GET", "/v2/models/switch").body["versions"], json({"2"}));
}

TEST_F(ServeE2eTest, BadInputsAndBrokenModelsGetClearErrors) {
  ASSERT_EQ(Deploy({{"name", "limits"}, {"model", {{"path", "models/v1"}, {"objective", "text-classification"}}}})["status"],
            "ready");
  auto expect_4xx = [&](const client::Response& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.text;
    ASSERT_TRUE(r.body.contains("error")) << r.text;
    EXPECT_TRUE(r.body["error"].is_string()) << r.text;  // the protocol's {"error": "..."}
    EXPECT_NE(r.body["error"].get<std::string>().find(needle), std::string::npos) << r.text;
  };
  expect_4xx(Call("POST", "/v2/models/limits/infer", InferBody(std::vector<std::string>(10000, "a"))), 400, "at most");
  expect_4xx(Call("POST", "/v2/models/limits/infer", InferBody({})), 400, "no inputs");
  expect_4xx(Call("POST", "/v2/models/limits/infer", InferBody({std::string(1 << 20, 'x')})), 400, "bytes long");
  json mismatch = InferBody({"a", "b"});
  mismatch["inputs"][0]["shape"] = {3};
  expect_4xx(Call("POST", "/v2/models/limits/infer", mismatch), 400, "shape");
  expect_4xx(Call("POST", "/v2/models/limits/infer", {{"inputs", "text"}}), 400, "inputs");
  expect_4xx(Call("POST", "/v2/models/nothing/infer", InferBody({"a"})), 404, "no deployment");
  expect_4xx(Call("GET", "/v2/models/limits/versions/9"), 404, "no version");
  json outputs = InferBody({"a"});
  outputs["outputs"] = json::array({{{"name", "logits"}}});
  expect_4xx(Call("POST", "/v2/models/limits/infer", outputs), 400, "no output 'logits'");

  // Deployment requests: the field is named.
  auto missing = Call("POST", "/api/v1/deployments",
                      {{"name", "ghost"}, {"model", {{"path", "models/none"}, {"objective", "text-classification"}}}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["error"]["field"], "model.path");
  auto bad_batching = Call("POST", "/api/v1/deployments",
                           {{"name", "x"}, {"model", {{"path", "models/v1"}, {"objective", "text-classification"}}},
                            {"batching", {{"max_batch_size", 0}}}});
  EXPECT_EQ(bad_batching.status, 400);
  EXPECT_EQ(bad_batching.body["error"]["field"], "batching.max_batch_size");
  EXPECT_EQ(Call("GET", "/api/v1/deployments/ghost").status, 404);

  // A model that fails to load reports why; the others keep serving.
  json broken = Deploy({{"name", "broken"}, {"model", {{"path", "models/broken"}, {"objective", "text-classification"}}}});
  EXPECT_EQ(broken["status"], "failed");
  EXPECT_NE(broken.value("error", "").find("safetensors"), std::string::npos) << broken.dump();
  EXPECT_EQ(Call("GET", "/v2/models/broken/ready").status, 503);
  expect_4xx(Call("POST", "/v2/models/broken/infer", InferBody({"a"})), 503, "failed to load");
  EXPECT_EQ(Call("POST", "/v2/models/limits/infer", InferBody({"still serving"})).status, 200);

  // More inputs than the queue ever holds: a 400 (no retry would fit), not a 429 with
  // Retry-After (a queue full of others' inputs, BatcherTest.AFullQueueRefusesInsteadOfGrowing).
  ASSERT_EQ(Deploy({{"name", "tight"}, {"model", {{"path", "models/v1"}, {"objective", "text-classification"}}},
                    {"batching", {{"max_queue", 2}}}})["status"],
            "ready");
  auto never = Call("POST", "/v2/models/tight/infer", InferBody({"a", "b", "c"}));
  expect_4xx(never, 400, "more than this deployment queues (batching.max_queue 2)");
  EXPECT_EQ(never.headers.count("retry-after"), 0u);
  EXPECT_EQ(Call("POST", "/v2/models/tight/infer", InferBody({"a", "b"})).status, 200);
}

// Question answering and next-sentence prediction served over the Open Inference Protocol:
// the answers of POST /api/v1/ml/nlp/predict, whatever the context's length (windows) or
// characters; the metadata names the inputs; the CLI passes pairs and contexts.
TEST_F(ServeE2eTest, QuestionAnsweringAndNextSentenceDeploymentsAnswerAsPredictDoes) {
  for (const char* name : {"qa", "nsp"}) {
    json view = Deploy({{"name", name}, {"model", {{"path", std::string("models/") + name}}}});
    ASSERT_EQ(view["status"], "ready") << view.dump();
  }
  std::string long_context;
  for (const auto& t : AffiliationCorpus()) long_context += t + " ";
  const std::vector<std::string> questions = {"Where is INFN?", "Which laboratory?", "Qué ciudad?"};
  const std::vector<std::string> contexts = {long_context, "Laboratori Nazionali di Frascati, Roma – Italia",
                                             "Università di Bari, Dipartimento di Física, Bari, Itàlia"};
  json body = {{"inputs", json::array({{{"name", "question"}, {"datatype", "BYTES"}, {"shape", {3}}, {"data", questions}},
                                       {{"name", "context"}, {"datatype", "BYTES"}, {"shape", {3}}, {"data", contexts}}})}};
  auto served = Call("POST", "/v2/models/qa/infer", body);
  ASSERT_EQ(served.status, 200) << served.text;
  auto predicted = Call("POST", "/api/v1/ml/nlp/predict",
                        {{"model", {{"path", "models/qa"}, {"storage_type", "local"}, {"objective", "question-answering"}}},
                         {"predict_input", {{"question", questions}, {"context", contexts}}}});
  ASSERT_EQ(predicted.status, 200) << predicted.text;
  std::map<std::string, json> out;
  for (const auto& o : served.body["outputs"]) out[o["name"]] = o;
  ASSERT_EQ(out.size(), 4u) << served.text;
  EXPECT_EQ(out["start"]["datatype"], "INT64");
  for (size_t i = 0; i < questions.size(); ++i) {
    const json& p = predicted.body["predictions"][i];
    EXPECT_EQ(out["answer"]["data"][i], p["answer"]) << i;
    EXPECT_EQ(out["start"]["data"][i], p["start"]) << i;
    EXPECT_EQ(out["end"]["data"][i], p["end"]) << i;
    EXPECT_NEAR(out["score"]["data"][i].get<double>(), p["score"].get<double>(), 1e-5) << i;
  }
  auto meta = Call("GET", "/v2/models/qa");
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(meta.body["inputs"][0]["name"], "question");
  EXPECT_EQ(meta.body["inputs"][1]["name"], "context");
  auto no_context = Call("POST", "/v2/models/qa/infer", InferBody({"Where?"}));
  EXPECT_EQ(no_context.status, 400) << no_context.text;
  EXPECT_NE(no_context.text.find("context"), std::string::npos) << no_context.text;

  const std::vector<std::string> firsts = {AffiliationCorpus()[0], AffiliationCorpus()[1]},
                                  seconds = {AffiliationCorpus()[1], "Bari INFN, Italy"};
  json pairs = {{"inputs", json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {2}}, {"data", firsts}},
                                        {{"name", "pair_text"}, {"datatype", "BYTES"}, {"shape", {2}}, {"data", seconds}}})}};
  auto nsp = Call("POST", "/v2/models/nsp/infer", pairs);
  ASSERT_EQ(nsp.status, 200) << nsp.text;
  auto nsp_predicted = Call("POST", "/api/v1/ml/nlp/predict",
                            {{"model", {{"path", "models/nsp"}, {"storage_type", "local"}}},
                             {"predict_input", {{"input_text", firsts}, {"pair_text", seconds}}}});
  ASSERT_EQ(nsp_predicted.status, 200) << nsp_predicted.text;
  out.clear();
  for (const auto& o : nsp.body["outputs"]) out[o["name"]] = o;
  EXPECT_EQ(out["is_next"]["datatype"], "BOOL");
  for (size_t i = 0; i < firsts.size(); ++i) {
    EXPECT_EQ(out["is_next"]["data"][i], nsp_predicted.body["predictions"][i]["is_next"]);
    EXPECT_NEAR(out["score"]["data"][i].get<double>(), nsp_predicted.body["predictions"][i]["score"].get<double>(), 1e-5);
  }

  auto cli = RunMlaas({"--server", server_->url(), "infer", "qa", questions[1], "--context", contexts[1]});
  ASSERT_EQ(cli.exit_code, 0) << cli.out;
  const std::string answer = predicted.body["predictions"][1]["answer"];
  EXPECT_NE(cli.out.find("\"" + answer + "\""), std::string::npos) << cli.out;
  auto cli_nsp = RunMlaas({"--server", server_->url(), "infer", "nsp", firsts[0], "--pair", seconds[0]});
  ASSERT_EQ(cli_nsp.exit_code, 0) << cli_nsp.out;
  EXPECT_NE(cli_nsp.out.find("next "), std::string::npos) << cli_nsp.out;
  for (const char* name : {"qa", "nsp"}) EXPECT_EQ(Call("DELETE", "/api/v1/deployments/" + std::string(name)).status, 200);
}

TEST_F(ServeE2eTest, DeploymentsSurviveARestartAndTheCliDrivesThem) {
  const std::string server = server_->url();
  auto deploy = RunMlaas({"--server", server, "deploy", "cli", "--model", "models/v1", "--wait"});
  ASSERT_EQ(deploy.exit_code, 0) << deploy.out;
  EXPECT_NE(deploy.out.find("ready"), std::string::npos) << deploy.out;
  auto list = RunMlaas({"--server", server, "deployments"});
  ASSERT_EQ(list.exit_code, 0) << list.out;
  EXPECT_NE(list.out.find("cli"), std::string::npos);
  auto infer = RunMlaas({"--server", server, "infer", "cli", "Bari INFN, Italy"});
  ASSERT_EQ(infer.exit_code, 0) << infer.out;
  EXPECT_NE(infer.out.find("Bari INFN, Italy"), std::string::npos) << infer.out;
  auto bad = RunMlaas({"--server", server, "deploy", "broken-cli", "--model", "models/broken", "--wait"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("failed"), std::string::npos) << bad.out;
  EXPECT_EQ(RunMlaas({"--server", server, "infer", "nope", "x"}).exit_code, 1);

  const json before = Call("POST", "/v2/models/cli/infer", InferBody({"dark matter"})).body["outputs"];
  ASSERT_EQ(server_->Kill(SIGTERM), 0);
  ASSERT_TRUE(server_->Start().ok());
  client_ = server_->Client();
  json view;
  ASSERT_TRUE(WaitFor([&] { view = Call("GET", "/api/v1/deployments/cli").body; return view.value("status", "") == "ready"; }, 60s))
      << view.dump();
  EXPECT_EQ(Call("POST", "/v2/models/cli/infer", InferBody({"dark matter"})).body["outputs"], before);
  auto undeploy = RunMlaas({"--server", server_->url(), "undeploy", "cli"});
  EXPECT_EQ(undeploy.exit_code, 0) << undeploy.out;
  EXPECT_EQ(Call("GET", "/v2/models/cli").status, 404);
}

}  // namespace
}  // namespace mlaas::testing
