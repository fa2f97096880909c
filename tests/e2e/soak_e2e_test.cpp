// End-to-end soak (issue 17): 64 clients for MLAAS_SOAK_SECONDS (default 120) mix valid
// predictions with hostile requests against one server. The server must stay up, every
// valid request must succeed with a real answer, every hostile one must get its 4xx, and the
// resident memory must stay within a stated bound of what it was after warm-up (the figure is
// printed and recorded in docs/security.md).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr double kMaxGrowthBytes = 384.0 * (1 << 20);  // resident memory over the warmed-up figure

int SoakSeconds() {
  const char* s = std::getenv("MLAAS_SOAK_SECONDS");
  return s != nullptr && std::atoi(s) > 0 ? std::atoi(s) : 120;
}

double ResidentBytes(client::ApiClient& c) {
  auto m = c.Call("GET", "/metrics");
  const std::string text = m.has_value() ? m->text : "";
  auto pos = text.find("\nprocess_resident_memory_bytes ");
  return pos == std::string::npos ? 0.0 : std::stod(text.substr(pos + 31));
}

json Infer(const std::vector<std::string>& texts) {
  return {{"inputs", json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {texts.size()}}, {"data", texts}}})}};
}

class SoakE2eTest : public ServerSuite<SoakE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--threads", "2", "--max-body-bytes", "1048576", "--max-model-bytes", "100000000"});
    const std::string objects = (dir_->path() / "data" / "objects").string();
    auto tok = TrainWordPieceTokenizer(*dir_, objects + "/tokenizers/wp");
    ASSERT_EQ(tok.exit_code, 0) << tok.out;
    auto r = InitSmallModel(*dir_, objects + "/tokenizers/wp", objects + "/models/m", "text-classification", "A,B,C");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    // A model whose tokenizer config has the wrong types.
    std::filesystem::copy(objects + "/models/m", objects + "/models/bad", std::filesystem::copy_options::recursive);
    std::filesystem::remove(objects + "/models/bad/tokenizer.json");
    dir_->Write("data/objects/models/bad/tokenizer_config.json", R"({"do_lower_case": "yes"})");
    StartServer();
  }
};

TEST_F(SoakE2eTest, SixtyFourClientsMixingValidAndHostileRequests) {
  auto d = client_->Call("POST", "/api/v1/deployments",
                         json{{"name", "m"}, {"model", {{"path", "models/m"}, {"objective", "text-classification"}}},
                              {"batching", {{"max_queue", 4096}, {"timeout_ms", 60000}}}}
                             .dump());
  ASSERT_TRUE(d.has_value() && d->status == 202) << (d.has_value() ? d->text : d.error().ToString());
  ASSERT_TRUE(WaitFor([&] { return client_->Call("GET", "/v2/models/m/ready").value().status == 200; }, 60s));

  const std::string deep = std::string(20000, '[') + std::string(20000, ']');
  const json huge_config = {{"model", {{"config", {{"model_type", "bert"}, {"hidden_size", 65536}, {"num_hidden_layers", 512},
                                                   {"num_attention_heads", 64}, {"intermediate_size", 262144},
                                                   {"vocab_size", 10000000}}},
                                       {"objective", "text-classification"}}},
                            {"tokenizer", {{"path", "tokenizers/wp"}}},
                            {"predict_input", {{"input_text", {"x"}}}}};
  struct Case {
    std::string method, path, body;
    int expect;  // 200: valid (must succeed with outputs); else the 4xx it must get
  };
  const std::vector<Case> cases = {
      {"POST", "/v2/models/m/infer", Infer({"Bari INFN, Via Orabona 4", "INAF IASF Milano"}).dump(), 200},
      {"POST", "/api/v1/ml/nlp/predict",
       json{{"model", {{"path", "models/m"}, {"objective", "text-classification"}}},
            {"predict_input", {{"input_text", {"Frascati Natl Lab INFN LNF"}}}}}
           .dump(),
       200},
      {"POST", "/v2/models/m/infer", Infer({"dark matter searches"}).dump(), 200},
      {"POST", "/v2/models/m/infer",
       json{{"inputs", json::array({{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", {4, 4611686018427387904LL}},
                                     {"data", json::array()}}})}}
           .dump(),
       400},
      {"POST", "/v2/models/m/infer",
       json{{"inputs", json::array({{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", {2147483648LL, 0}},
                                     {"data", json::array()}}})}}
           .dump(),
       400},
      {"POST", "/api/v1/ml/nlp/predict", deep, 400},
      {"POST", "/api/v1/ml/nlp/predict", "{\"model\": ", 400},
      {"POST", "/api/v1/ml/nlp/predict", huge_config.dump(), 400},
      {"POST", "/api/v1/ml/nlp/predict",
       json{{"model", {{"path", "models/bad"}, {"objective", "text-classification"}}},
            {"predict_input", {{"input_text", {"x"}}}}}
           .dump(),
       400},
      {"POST", "/api/v1/ml/nlp/predict", std::string(2 << 20, ' '), 413},
      {"GET", "/api/v1/tasks/00000000-0000-4000-8000-000000000000/events", "", 404},
      {"POST", "/v2/models/nope/infer", Infer({"x"}).dump(), 404},
  };

  const double warm = ResidentBytes(*client_);
  ASSERT_GT(warm, 0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(SoakSeconds());
  std::atomic<int64_t> done{0}, valid{0};
  std::atomic<double> peak{warm};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int c = 0; c < 64; ++c) {
    clients.emplace_back([&, c] {
      auto api = client::ApiClient::Create(server_->url(), 120).value();
      for (size_t i = static_cast<size_t>(c); std::chrono::steady_clock::now() < until; i += 7) {
        const Case& k = cases[i % cases.size()];
        auto r = api->Call(k.method, k.path, k.body);
        ++done;
        std::string why;
        if (!r.has_value()) {
          why = "transport: " + r.error().ToString();
        } else if (r->status != k.expect) {
          why = std::to_string(r->status) + " instead of " + std::to_string(k.expect) + ": " + r->text.substr(0, 200);
        } else if (k.expect == 200 && !(r->body.contains("outputs") || r->body.contains("predictions"))) {
          why = "no outputs: " + r->text.substr(0, 200);
        } else if (k.expect == 200) {
          ++valid;
        }
        if (!why.empty()) {
          std::lock_guard<std::mutex> lock(mu);
          if (failures.size() < 20) failures.push_back(k.method + " " + k.path + ": " + why);
        }
      }
    });
  }
  // Memory, sampled while the clients run.
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1s);
    const double rss = ResidentBytes(*client_);
    if (rss > peak) peak = rss;
  }
  for (auto& t : clients) t.join();
  const double after = ResidentBytes(*client_);
  std::printf("soak: %d s, %lld requests (%lld valid), resident memory %.1f MiB warm, %.1f MiB peak, %.1f MiB after\n",
              SoakSeconds(), static_cast<long long>(done.load()), static_cast<long long>(valid.load()), warm / (1 << 20),
              peak.load() / (1 << 20), after / (1 << 20));
  ASSERT_TRUE(server_->Running()) << server_->Log().substr(0, 4000);
  std::string all;
  for (const auto& f : failures) all += f + "\n";
  EXPECT_TRUE(failures.empty()) << all;
  EXPECT_GT(valid.load(), 100);
  EXPECT_LT(peak.load() - warm, kMaxGrowthBytes) << "resident memory grew from " << warm << " to " << peak.load();
  EXPECT_EQ(client_->Call("GET", "/healthz").value().status, 200);
}

}  // namespace
}  // namespace mlaas::testing
