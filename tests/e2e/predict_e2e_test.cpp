// End-to-end: NLP prediction for the three architectures and three objectives — models made
// with `mlaas model init` from tokenizers made with `mlaas tokenizer train`, served by the real
// server over HTTP, and the `mlaas predict` CLI locally and with --remote.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <httplib.h>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;

CliResult RunCli(const std::vector<std::string>& args) { return RunMlaas(args); }


// A preset name, or a config file written by the suite (small shapes keep it fast).
struct ModelCase {
  std::string name, preset, objective, tokenizer;
  size_t dim;
};

class PredictE2eTest : public ServerSuite<PredictE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--threads", "1"});
    dir_->Write("distilbert.json",
                R"({"model_type": "distilbert", "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 128})");
    dir_->Write("roberta.json", R"({"model_type": "roberta", "hidden_size": 48, "num_hidden_layers": 2,
                                    "num_attention_heads": 4, "intermediate_size": 96, "max_position_embeddings": 130})");
    const std::string objects = (dir_->path() / "data" / "objects").string();
    auto wp = TrainWordPieceTokenizer(*dir_, objects + "/tokenizers/wp");
    ASSERT_EQ(wp.exit_code, 0) << wp.out;
    auto bpe = RunCli({"tokenizer", "train", "--model", "bpe", "--vocab-size", "400", "--special-tokens",
                       "<s>,<pad>,</s>,<unk>,<mask>", "--input", (dir_->path() / "corpus.txt").string(), "--output",
                       objects + "/tokenizers/bpe"});
    ASSERT_EQ(bpe.exit_code, 0) << bpe.out;
    for (const auto& m : Cases()) {
      const bool preset = m.preset == "bert-tiny";
      std::vector<std::string> args = {"model", "init", preset ? "--preset" : "--config",
                                       preset ? m.preset : (dir_->path() / m.preset).string(), "--objective", m.objective,
                                       "--tokenizer", objects + "/tokenizers/" + m.tokenizer,
                                       "--output", objects + "/models/" + m.name, "--seed", "7"};
      if (m.objective == "text-classification") {
        args.push_back("--labels");
        args.push_back("BA,LNF,MI,NoSite");
      }
      auto r = RunCli(args);
      ASSERT_EQ(r.exit_code, 0) << m.name << ": " << r.out;
    }
    // A GPT-2 (causal-lm is gpt2's default objective) on the byte-level tokenizer.
    auto gpt = RunCli({"model", "init", "--preset", "gpt2-tiny", "--tokenizer", objects + "/tokenizers/bpe", "--output",
                       objects + "/models/gpt", "--seed", "7"});
    ASSERT_EQ(gpt.exit_code, 0) << gpt.out;
    StartServer();
  }

  static std::vector<ModelCase> Cases() {
    std::vector<ModelCase> out;
    for (const char* objective : {"text-classification", "masked-lm", "no-objective"}) {
      out.push_back({std::string("bert-") + objective, "bert-tiny", objective, "wp", 128});
      out.push_back({std::string("distilbert-") + objective, "distilbert.json", objective, "wp", 64});
      out.push_back({std::string("roberta-") + objective, "roberta.json", objective, "bpe", 48});
    }
    return out;
  }

  client::Response Predict(const json& body) {
    auto r = client_->Call("POST", "/api/v1/ml/nlp/predict", body.dump());
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : client::Response{};
  }

  static json Body(const std::string& model, const std::string& objective, std::vector<std::string> texts,
                   json extra = json::object()) {
    json input = {{"input_text", std::move(texts)}};
    input.update(extra);
    return {{"model", {{"path", "models/" + model}, {"storage_type", "local"}, {"objective", objective}}},
            {"predict_input", input}};
  }
};

std::string Mask(const std::string& tokenizer) { return tokenizer == "bpe" ? "<mask>" : "[MASK]"; }

TEST_F(PredictE2eTest, EveryArchitectureAndObjectiveOverHttp) {
  for (const auto& m : Cases()) {
    SCOPED_TRACE(m.name);
    std::vector<std::string> texts = {AffiliationCorpus()[0], "Bari INFN, Italy", AffiliationCorpus()[2]};
    if (m.objective == "masked-lm") {
      texts = {"particles with the same mass but with " + Mask(m.tokenizer) + " electric charges",
               "the " + Mask(m.tokenizer) + " measures the " + Mask(m.tokenizer)};
    }
    auto r = Predict(Body(m.name, m.objective, texts, m.objective == "text-classification" ? json{{"top_k", 2}} : json::object()));
    ASSERT_EQ(r.status, 200) << r.text;
    const json& preds = r.body["predictions"];
    ASSERT_EQ(preds.size(), texts.size());
    EXPECT_EQ(r.body["model"]["objective"], m.objective);
    if (m.objective == "text-classification") {
      for (const auto& p : preds) {
        EXPECT_TRUE(p["label"] == "BA" || p["label"] == "LNF" || p["label"] == "MI" || p["label"] == "NoSite");
        EXPECT_GT(p["score"].get<double>(), 0.0);
        EXPECT_EQ(p["top_k"].size(), 2u);
        EXPECT_EQ(p["top_k"][0]["label"], p["label"]);
      }
    } else if (m.objective == "masked-lm") {
      EXPECT_EQ(preds[0]["masks"].size(), 1u);
      EXPECT_EQ(preds[1]["masks"].size(), 2u);
      EXPECT_EQ(preds[0]["masks"][0]["candidates"].size(), 5u);
      EXPECT_EQ(preds[0]["sequence"].get<std::string>().find(Mask(m.tokenizer)), std::string::npos);
    } else {
      for (const auto& p : preds) EXPECT_EQ(p["embedding"].size(), m.dim);
    }
  }
}

TEST_F(PredictE2eTest, SecondRequestHitsTheCache) {
  auto body = Body("bert-no-objective", "no-objective", {"dark matter"}, {{"normalize", true}});
  auto a = Predict(body);
  auto b = Predict(body);
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(a.body["predictions"], b.body["predictions"]);
  auto metrics = client_->Call("GET", "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_NE(metrics->text.find("/api/v1/ml/nlp/predict"), std::string::npos);
}

TEST_F(PredictE2eTest, ErrorsNameTheField) {
  struct Case {
    json body;
    int status;
    std::string field;
  };
  const Case cases[] = {
      {Body("nope", "text-classification", {"x"}), 400, "model.path"},
      {Body("bert-text-classification", "causal-lm", {"x"}), 400, "model.objective"},  // an encoder
      {Body("bert-text-classification", "question-answering", {"x"}), 400, "model.path"},  // a classifier has no qa_outputs
      {Body("bert-text-classification", "text-classification", {"x"}, {{"stream", true}}), 400, "predict_input.stream"},
      {Body("bert-masked-lm", "masked-lm", {"no mask in here"}), 400, "predict_input.input_text"},
      {Body("bert-no-objective", "no-objective", {"x"}, {{"pooling", "max"}}), 400, "predict_input.pooling"},
      {Body("bert-no-objective", "no-objective", {"x"}, {{"device", "cuda:7"}}), 400, "predict_input.device"},
      {Body("bert-no-objective", "no-objective", {}), 400, "predict_input.input_text"},
      {Body("bert-masked-lm", "text-classification", {"x"}), 400, "model.path"},
  };
  for (const auto& c : cases) {
    auto r = Predict(c.body);
    EXPECT_EQ(r.status, c.status) << c.body.dump() << " -> " << r.text;
    EXPECT_EQ(r.body["error"]["field"], c.field) << r.text;
  }
}

TEST_F(PredictE2eTest, CliLocalAndRemoteAgreeWithTheServer) {
  const std::string objects = (dir_->path() / "data" / "objects").string();
  const std::string text = "INAF IASF Milano, Via Bassini 15, Milan, Italy";
  auto http = Predict(Body("distilbert-text-classification", "text-classification", {text}));
  ASSERT_EQ(http.status, 200);
  auto local = RunCli({"predict", "--json", "--model", objects + "/models/distilbert-text-classification", "--text", text});
  ASSERT_EQ(local.exit_code, 0) << local.out;
  json line = json::parse(local.out.substr(0, local.out.find('\n')));
  EXPECT_EQ(line["text"], text);
  EXPECT_EQ(line["label"], http.body["predictions"][0]["label"]);
  EXPECT_NEAR(line["score"].get<double>(), http.body["predictions"][0]["score"].get<double>(), 1e-5);

  auto remote = RunCli({"--server", server_->url(), "predict", "--remote", "--json", "--model",
                        "models/distilbert-text-classification", "--objective", "text-classification", "--text", text});
  ASSERT_EQ(remote.exit_code, 0) << remote.out;
  json rline = json::parse(remote.out.substr(0, remote.out.find('\n')));
  EXPECT_EQ(rline["label"], line["label"]);

  // Human output: a table, with the objective read from config.json.
  auto table = RunCli({"predict", "--model", objects + "/models/roberta-masked-lm", "--text", "the <mask> of each particle"});
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("CANDIDATES"), std::string::npos) << table.out;

  auto bad = RunCli({"predict", "--model", objects + "/models/missing", "--text", "x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("error:"), std::string::npos);
}

// Server-sent events of a streamed prediction: (event, data) in order.
std::vector<std::pair<std::string, json>> ParseEvents(const std::string& body) {
  std::vector<std::pair<std::string, json>> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    std::string event, data;
    std::istringstream block(body.substr(at, end - at));
    for (std::string line; std::getline(block, line);) {
      if (line.rfind("event: ", 0) == 0) event = line.substr(7);
      if (line.rfind("data: ", 0) == 0) data += line.substr(6);
    }
    if (!event.empty()) out.emplace_back(event, json::parse(data));
    at = end + 2;
  }
  return out;
}

TEST_F(PredictE2eTest, CausalLmGeneratesAndStreamsOverHttp) {
  const std::vector<std::string> prompts = {"the measurement of the", "Universität Zürich ✓"};
  json body = {{"model", {{"path", "models/gpt"}}}, {"predict_input", {{"input_text", prompts}, {"max_new_tokens", 10}}}};
  auto whole = Predict(body);
  ASSERT_EQ(whole.status, 200) << whole.text;
  EXPECT_EQ(whole.body["model"]["objective"], "causal-lm");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string text = whole.body["predictions"][i]["generated_text"];
    EXPECT_EQ(text.substr(0, prompts[i].size()), prompts[i]);
  }

  body["predict_input"]["stream"] = true;
  httplib::Client raw("127.0.0.1", server_->port());
  auto streamed = raw.Post("/api/v1/ml/nlp/predict", body.dump(), "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  EXPECT_EQ(streamed->get_header_value("Content-Type"), "text/event-stream");
  auto events = ParseEvents(streamed->body);
  ASSERT_GE(events.size(), 2u) << streamed->body;
  EXPECT_EQ(events.back().first, "done");
  std::vector<std::string> pieces(prompts.size());
  for (size_t e = 0; e + 1 < events.size(); ++e) {
    ASSERT_EQ(events[e].first, "token") << streamed->body;
    pieces[events[e].second["index"].get<size_t>()] += events[e].second["text"].get<std::string>();
  }
  // Greedy: the same texts as the whole answer, piece by piece.
  EXPECT_EQ(events.back().second["predictions"], whole.body["predictions"]);
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(prompts[i] + pieces[i], whole.body["predictions"][i]["generated_text"].get<std::string>());

  // Refused before streaming: a plain JSON error with its status.
  body["predict_input"]["max_new_tokens"] = 1020;
  body["predict_input"]["input_text"] = {std::string(400, 'x') + " the measurement"};
  auto refused = raw.Post("/api/v1/ml/nlp/predict", body.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_EQ(json::parse(refused->body)["error"]["field"], "predict_input.max_new_tokens");

  // The CLI: one JSON line per prompt, the same greedy text.
  const std::string objects = (dir_->path() / "data" / "objects").string();
  auto cli = RunCli({"predict", "--json", "--model", objects + "/models/gpt", "--text", prompts[0], "--max-new-tokens", "10"});
  ASSERT_EQ(cli.exit_code, 0) << cli.out;
  json line = json::parse(cli.out.substr(0, cli.out.find('\n')));
  EXPECT_EQ(line["generated_text"], whole.body["predictions"][0]["generated_text"]);
  // Seeded sampling is reproducible across requests.
  json sample = {{"model", {{"path", "models/gpt"}}},
                 {"predict_input", {{"input_text", {prompts[0]}}, {"max_new_tokens", 12}, {"temperature", 1.3}, {"seed", 3}}}};
  auto s1 = Predict(sample), s2 = Predict(sample);
  ASSERT_EQ(s1.status, 200) << s1.text;
  EXPECT_EQ(s1.body["predictions"], s2.body["predictions"]);
}

}  // namespace
}  // namespace mlaas::testing
