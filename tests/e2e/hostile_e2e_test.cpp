// End-to-end: the hostile-input suite (issue 17). Each test sends what a hostile or careless
// client could send, or plants what it could upload, against the real server, and checks
// three things: the answer is a clear 4xx (a JSON error naming the field where there is one),
// the server still answers /healthz, and nothing it holds is lost or exposed (no server path
// in any answer). docs/security.md lists the classes and the limits behind them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/raw_socket.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string Nested(size_t depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }

json Ids(json shape, json data = json::array()) {
  return {{"inputs", json::array({{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", shape}, {"data", data}}})}};
}

class HostileE2eTest : public ServerSuite<HostileE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--threads", "2", "--max-upload-bytes", "1048576", "--max-model-bytes", "200000000",
                  "--max-vector-store-bytes", "100000"});
    objects_ = (dir_->path() / "data" / "objects").string();
    auto tok = TrainWordPieceTokenizer(*dir_, objects_ + "/tokenizers/wp");
    ASSERT_EQ(tok.exit_code, 0) << tok.out;
    auto r = InitSmallModel(*dir_, objects_ + "/tokenizers/wp", objects_ + "/models/good", "text-classification", "A,B");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    StartServer();
  }

  static void Plant(const std::string& key, const std::string& content) {
    std::filesystem::create_directories((std::filesystem::path(objects_) / key).parent_path());
    std::ofstream(std::filesystem::path(objects_) / key, std::ios::binary) << content;
  }
  // A copy of the good model with `file` replaced by `content`, at models/<name>.
  static void PlantModel(const std::string& name, const std::string& file, const std::string& content) {
    std::filesystem::remove_all(std::filesystem::path(objects_) / "models" / name);
    std::filesystem::copy(std::filesystem::path(objects_) / "models/good", std::filesystem::path(objects_) / "models" / name,
                          std::filesystem::copy_options::recursive);
    Plant("models/" + name + "/" + file, content);
  }

  client::Response Call(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = CallServer(*client_, method, path, body);
    // No answer ever shows where the server keeps its files.
    EXPECT_EQ(r.text.find(dir_->path().string()), std::string::npos) << method << " " << path << ": " << r.text;
    return r;
  }
  client::Response Call(const std::string& method, const std::string& path, const json& body) {
    return Call(method, path, body.dump());
  }
  void ExpectHealthy() {
    auto h = client_->Call("GET", "/healthz");
    ASSERT_TRUE(h.has_value()) << server_->Log().substr(0, 4000);
    EXPECT_EQ(h->status, 200);
  }
  client::Response Predict(const std::string& model_path, json extra = json::object()) {
    json model = {{"path", model_path}, {"objective", "text-classification"}};
    model.update(extra);
    return Call("POST", "/api/v1/ml/nlp/predict",
                json{{"model", model}, {"predict_input", {{"input_text", {"Bari INFN"}}}}});
  }
  // The deployment's view once its last version stopped loading (a failed expectation after 60 s).
  json Settled(const std::string& name) {
    json view;
    EXPECT_TRUE(WaitFor([&] {
      view = Call("GET", "/api/v1/deployments/" + name).body;
      return view.value("status", "") != "loading";
    }, 60s)) << view.dump();
    return view;
  }
  static std::string ErrorText(const client::Response& r) {
    if (r.body.is_object() && r.body.contains("error")) {
      const json& e = r.body["error"];
      return e.is_string() ? e.get<std::string>() : e.value("message", "") + " [" + e.value("field", "") + "]";
    }
    return r.text;
  }

  static inline std::string objects_;
};

// Shapes whose element count overflows 64 bits (once a SIGSEGV), pairs a zero with a huge
// dimension (once a loop of 2^31), or is merely too large: all 400, before any lookup.
TEST_F(HostileE2eTest, OverflowingInferShapesAreRefused) {
  for (json shape : {json{4, 4611686018427387904LL}, json{2147483648LL, 0}, json{0, 2147483648LL},
                     json{3037000500LL, 3037000500LL}, json{9223372036854775807LL, 2}, json{1, 1, 1, 1, 1, 1, 1, 1, 1},
                     json{1000000, 1000000}, json{-1, 4}}) {
    for (const char* model : {"/v2/models/x/infer", "/v2/models/x/versions/1/infer"}) {
      auto r = Call("POST", model, Ids(shape));
      EXPECT_EQ(r.status, 400) << shape.dump() << " " << r.text;
      EXPECT_TRUE(r.body.is_object() && r.body["error"].is_string()) << r.text;
    }
    json text = {{"inputs", json::array({{{"name", "t"}, {"datatype", "BYTES"}, {"shape", shape}, {"data", json::array()}}})}};
    EXPECT_EQ(Call("POST", "/v2/models/x/infer", text).status, 400) << shape.dump();
  }
  ExpectHealthy();
}

// Tokenizer files of the wrong JSON types once threw out of the loading thread
// (std::terminate), and a deployment replayed it at every start.
TEST_F(HostileE2eTest, MalformedTokenizerFilesAreClearErrors) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"tokenizer_config.json", "[]"},
      {"tokenizer_config.json", R"({"do_lower_case": "yes"})"},
      {"tokenizer_config.json", R"({"model_max_length": "long", "do_lower_case": 3})"},
      {"tokenizer_config.json", R"({"unk_token": {"content": 7}})"},
      {"tokenizer_config.json", Nested(100000)},
      {"tokenizer.json", "{}"},
      {"tokenizer.json", "null"},
      {"tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": []}})"},
      {"tokenizer.json", Nested(200000)},
  };
  int i = 0;
  for (const auto& [file, content] : files) {
    const std::string name = "badtok" + std::to_string(i++);
    PlantModel(name, file, content);
    if (file != "tokenizer.json") std::filesystem::remove(std::filesystem::path(objects_) / "models" / name / "tokenizer.json");
    auto r = Predict("models/" + name);
    EXPECT_EQ(r.status, 400) << file << " = " << content.substr(0, 60) << ": " << r.text;
    auto d = Call("POST", "/api/v1/deployments",
                  json{{"name", name}, {"model", {{"path", "models/" + name}, {"objective", "text-classification"}}}});
    EXPECT_EQ(d.status, 202) << d.text;
  }
  ExpectHealthy();
  // Every deployment fails to load with its reason; the server keeps answering.
  for (int k = 0; k < i; ++k) {
    const std::string name = "badtok" + std::to_string(k);
    const json view = Settled(name);
    EXPECT_EQ(view["status"], "failed") << files[k].first << " = " << files[k].second.substr(0, 60);
    EXPECT_FALSE(view.value("error", "").empty()) << view.dump();
    EXPECT_EQ(Call("DELETE", "/api/v1/deployments/" + name).status, 200);
  }
  // An empty vocab.txt loads (as in Hugging Face tokenizers); encoding with it is the error.
  PlantModel("emptyvocab", "vocab.txt", "");
  std::filesystem::remove(std::filesystem::path(objects_) / "models/emptyvocab/tokenizer.json");
  auto empty = Predict("models/emptyvocab");
  EXPECT_EQ(empty.status, 400) << empty.text;
  EXPECT_EQ(empty.body["error"].value("field", ""), "predict_input.input_text") << empty.text;
  ExpectHealthy();
}

// Stored JSON nested thousands deep (a 2 MB config.json) is refused by the one bounded
// reader before the recursive copy or dump could overflow the stack.
TEST_F(HostileE2eTest, DeeplyNestedStoredJsonIsRefused) {
  PlantModel("deepconfig", "config.json", "{\"model_type\": \"bert\", \"x\": " + Nested(1000000) + "}");
  auto r = Predict("models/deepconfig");
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_NE(ErrorText(r).find("config.json"), std::string::npos) << r.text;
  PlantModel("deepsim", "config_sentence_transformers.json", Nested(100000));
  auto e = Call("POST", "/api/v1/ml/nlp/predict",
                json{{"model", {{"path", "models/deepsim"}, {"objective", "no-objective"}}},
                     {"predict_input", {{"input_text", {"Bari"}}}}});
  EXPECT_EQ(e.status, 400) << e.text;
  ExpectHealthy();
}

// A model far beyond the budgets is refused from its config, before any allocation: in a
// predict request's model.config, in a stored config.json, and as a deployment (whose
// refused version holds nothing).
TEST_F(HostileE2eTest, OversizedModelsAreRefusedBeforeAllocation) {
  json huge = {{"model_type", "bert"}, {"hidden_size", 65536}, {"num_hidden_layers", 512},
               {"num_attention_heads", 64}, {"intermediate_size", 262144}, {"vocab_size", 10000000}};
  auto r = Call("POST", "/api/v1/ml/nlp/predict",
                json{{"model", {{"config", huge}, {"objective", "text-classification"}, {"labels", {"A", "B"}}}},
                     {"tokenizer", {{"path", "tokenizers/wp"}}},
                     {"predict_input", {{"input_text", {"Bari"}}}}});
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_EQ(r.body["error"].value("field", ""), "model") << r.text;
  // Just over the server's --max-model-bytes (200 MB): 60M parameters.
  json medium = {{"model_type", "bert"}, {"hidden_size", 1024}, {"num_hidden_layers", 4},
                 {"num_attention_heads", 16}, {"intermediate_size", 4096}, {"vocab_size", 50000}};
  PlantModel("bigconfig", "config.json", medium.dump());
  std::filesystem::remove(std::filesystem::path(objects_) / "models/bigconfig/model.safetensors");
  auto p = Predict("models/bigconfig");
  EXPECT_EQ(p.status, 400) << p.text;
  EXPECT_NE(ErrorText(p).find("weights"), std::string::npos) << p.text;
  auto d = Call("POST", "/api/v1/deployments",
                json{{"name", "big"}, {"model", {{"path", "models/bigconfig"}, {"objective", "text-classification"}}}});
  ASSERT_EQ(d.status, 202) << d.text;
  json view = Settled("big");
  EXPECT_EQ(view["status"], "failed") << view.dump();
  EXPECT_NE(view.value("error", "").find("weights"), std::string::npos) << view.dump();
  // max_memory_bytes below the good model's size: refused, and the model is not kept.
  auto small = Call("POST", "/api/v1/deployments",
                    json{{"name", "tight"}, {"max_memory_bytes", 1000},
                         {"model", {{"path", "models/good"}, {"objective", "text-classification"}}}});
  ASSERT_EQ(small.status, 202) << small.text;
  view = Settled("tight");
  EXPECT_EQ(view["status"], "failed") << view.dump();
  EXPECT_NE(view.value("error", "").find("max_memory_bytes"), std::string::npos) << view.dump();
  EXPECT_EQ(Call("DELETE", "/api/v1/deployments/big").status, 200);
  EXPECT_EQ(Call("DELETE", "/api/v1/deployments/tight").status, 200);
  ExpectHealthy();
}

// Oversized counts in request fields: each a 400 naming the field, none a crash or a hang.
TEST_F(HostileE2eTest, OversizedCountsInRequestFieldsAreRefused) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"/api/v1/ml/nlp/predict",
       {{"model", {{"path", "models/good"}, {"objective", "text-classification"}}},
        {"predict_input", {{"input_text", {"x"}}, {"top_k", 1000000000000LL}}}}},
      {"/api/v1/ml/nlp/predict",
       {{"model", {{"path", "models/good"}, {"objective", "text-classification"}}},
        {"predict_input", {{"input_text", json::array()}}}}},
      {"/api/v1/deployments",
       {{"name", "b"}, {"model", {{"path", "models/good"}, {"objective", "text-classification"}}},
        {"batching", {{"max_batch_size", 1LL << 40}}}}},
      {"/api/v1/deployments",
       {{"name", "b"}, {"model", {{"path", "models/good"}, {"objective", "text-classification"}}},
        {"max_memory_bytes", -5}}},
      {"/api/v1/deployments", {{"name", std::string(10000, 'n')}, {"model", {{"path", "models/good"}}}}},
      {"/v2/models/x/infer",
       {{"inputs", json::array({{{"name", "t"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {"x"}}}})},
        {"parameters", {{"top_k", -1}}}}},
      {"/api/v1/ml/nlp/train/model",
       {{"model", {{"path", "models/good"}, {"objective", "text-classification"}}},
        {"dataset", {{"path", "datasets/x.csv"}}},
        {"model_train", {{"epochs", 1000000000000LL}, {"batch_size", 1000000000}}},
        {"model_save", {{"path", "models/out"}}}}},
      {"/api/v1/ml/nlp/vector/search",
       {{"vector_store", {{"path", "stores/x"}}}, {"query", {"q"}}, {"top_k", 1000000000}}},
      {"/api/v1/ml/nlp/train/tokenizer",
       {{"dataset", {{"path", "datasets/x.csv"}}}, {"tokenizer_train", {{"vocab_size", 1LL << 40}}},
        {"model_save", {{"path", "tokenizers/t"}}}}},
  };
  for (const auto& [path, body] : cases) {
    auto r = Call("POST", path, body);
    EXPECT_EQ(r.status, 400) << path << " " << body.dump().substr(0, 200) << ": " << r.text;
  }
  // Deep or huge request bodies, numbers beyond a double.
  EXPECT_EQ(Call("POST", "/api/v1/ml/nlp/predict", Nested(100000)).status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/ml/nlp/predict", std::string(R"({"model": {"path": "m"}, "x": 1e400})")).status, 400);
  // Names the server gives files being written are reserved (a restart sweeps them).
  auto reserved = Call("PUT", "/api/v1/objects/datasets/a.csv.tmp-0a1b2c3d", std::string("a\n1\n"));
  EXPECT_EQ(reserved.status, 400) << reserved.text;
  EXPECT_EQ(Call("POST", "/v2/models/x/infer", "{\"inputs\": " + Nested(5000) + "}").status, 400);
  ExpectHealthy();
}

// Control characters in a path (a decoded %0A) never start a new log line.
TEST_F(HostileE2eTest, ControlCharactersNeverForgeLogLines) {
  Call("GET", "/api/v1/objects/a%0A2026-01-01%20forged%20line");
  Call("GET", "/nothing%0D%0Aforged%1B[31m");
  const std::string log = server_->Log();
  EXPECT_EQ(log.find("\n2026-01-01 forged line"), std::string::npos);
  EXPECT_EQ(log.find("\nforged"), std::string::npos);
  EXPECT_EQ(log.find("\x1b[31m"), std::string::npos);
  ExpectHealthy();
}

// A body the server refused without reading it all must not be parsed as the next request:
// the connection is closed after the answer. The smuggled request comes with the headers,
// a few milliseconds after them (while the answer is written: a socket shut down for reading
// still hands out what it received, on Linux) or well after the answer; three rounds.
TEST_F(HostileE2eTest, AnUnreadBodyClosesTheConnection) {
  for (int delay_ms : {0, 1, 2, 5, 10, 300, 0, 1, 2, 5, 10, 0, 1, 2, 5, 10}) {
    int fd = ConnectLoopback(server_->port());
    ASSERT_GE(fd, 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    // Announces 200 MB (over every limit) but sends a smuggled request as its first bytes.
    const std::string smuggled = "DELETE /api/v1/objects/models/good/config.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const std::string head = "PUT /api/v1/objects/datasets/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                             "application/octet-stream\r\nContent-Length: 200000000\r\n\r\n";
    ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::send(fd, smuggled.data(), smuggled.size(), MSG_NOSIGNAL);
    const std::string answer = ReadToClose(fd);  // (or to the 10 s timeout: then the next checks fail)
    EXPECT_NE(answer.find(" 413 "), std::string::npos) << delay_ms << " ms: " << answer;
    EXPECT_EQ(answer.find("HTTP/1.1", 10), std::string::npos) << "a second response: " << answer;
    // The server may still be working on what it read: give it the time to.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(std::filesystem::exists(std::filesystem::path(objects_) / "models/good/config.json"))
        << "smuggled after " << delay_ms << " ms";
  }
  ExpectHealthy();
}

// cpp-httplib reads no body for GET, HEAD and OPTIONS: a body on one is refused and ends the
// connection, so it cannot carry a second request.
TEST_F(HostileE2eTest, ABodyOnAGetIsRefusedAndCannotSmuggle) {
  for (const std::string framing : {"Content-Length: 71\r\n", "Transfer-Encoding: chunked\r\n"}) {
    int fd = ConnectLoopback(server_->port());
    ASSERT_GE(fd, 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const std::string smuggled = "DELETE /api/v1/objects/models/good/config.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing + "\r\n" + smuggled;
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    const std::string answer = ReadToClose(fd);
    EXPECT_NE(answer.find(" 400 "), std::string::npos) << framing << answer;
    EXPECT_NE(answer.find("carries no body"), std::string::npos) << answer;
    EXPECT_EQ(answer.find("HTTP/1.1", 10), std::string::npos) << "a second response: " << answer;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(std::filesystem::exists(std::filesystem::path(objects_) / "models/good/config.json")) << framing;
  }
  ExpectHealthy();
}

// A config.json that names its objective but is unusable answers its own error (the member
// out of range), not "model.objective is required"; a deployment may name any served objective.
TEST_F(HostileE2eTest, AnUnusableConfigIsNamedForWhatItIs) {
  std::ifstream in(std::filesystem::path(objects_) / "models/good/config.json");
  json config = json::parse(in);
  config["num_attention_heads"] = 0;
  PlantModel("no-heads", "config.json", config.dump());
  auto r = Call("POST", "/api/v1/ml/nlp/predict", json{{"model", {{"path", "models/no-heads"}}}, {"predict_input", {{"input_text", {"x"}}}}});
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_EQ(r.body["error"].value("field", ""), "model.path") << r.text;
  EXPECT_NE(r.text.find("num_attention_heads"), std::string::npos) << r.text;
  for (const char* objective : {"question-answering", "next-sentence-prediction"}) {
    auto d = Call("POST", "/api/v1/deployments",
                  json{{"name", std::string("schema-") + objective}, {"model", {{"path", "models/nothing"}, {"objective", objective}}}});
    EXPECT_NE(d.body["error"].value("field", ""), "model.objective") << objective << ": " << d.text;
  }
  ExpectHealthy();
}

// One raw request on its own connection (closed after the answer): the whole answer.
std::string Exchange(int port, const std::string& request) {
  int fd = ConnectLoopback(port, 10);
  if (fd < 0) return "";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  return ReadToClose(fd);
}

// With auth off on loopback, a page of another site may neither POST to the API (CSRF: a
// text/plain body needs no preflight, and the server once created a catalog entry for it) nor
// read it through a name made to resolve to 127.0.0.1 (DNS rebinding: a Host that is not a
// loopback name). The CLI, the SDK and curl send no Origin; the web app's own is its Host.
TEST_F(HostileE2eTest, PagesOfOtherSitesCannotUseAServerWithAuthOff) {
  const std::string body = R"({"name": "csrf-model", "visibility": "public"})";
  auto post = [&](const std::string& host, const std::string& origin) {
    return Exchange(server_->port(), "POST /api/v1/catalog/models HTTP/1.1\r\nHost: " + host + "\r\n" +
                                         (origin.empty() ? "" : "Origin: " + origin + "\r\n") +
                                         "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                                         "\r\nConnection: close\r\n\r\n" + body);
  };
  const std::string here = "127.0.0.1:" + std::to_string(server_->port());
  for (const std::string origin : {"http://attacker.example", "null", "http://127.0.0.1:1"}) {
    std::string refused = post(here, origin);
    EXPECT_NE(refused.find(" 403 "), std::string::npos) << origin << ": " << refused;
    EXPECT_NE(refused.find("\"field\":\"Origin\""), std::string::npos) << refused;
  }
  for (const std::string& host : std::vector<std::string>{"attacker.example", "attacker.example:" + std::to_string(server_->port()),
                                                          "127.0.0.1.nip.io"}) {
    std::string rebound = Exchange(server_->port(), "GET /api/v1/whoami HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
    EXPECT_NE(rebound.find(" 403 "), std::string::npos) << host << ": " << rebound;
    EXPECT_NE(rebound.find("\"field\":\"Host\""), std::string::npos) << rebound;
    EXPECT_NE(post(host, "http://" + host).find(" 403 "), std::string::npos) << host;
  }
  EXPECT_EQ(Call("GET", "/api/v1/catalog/models/csrf-model").status, 404) << "nothing was created";
  // The web app's own requests (Origin = Host), and clients without an Origin, are served.
  for (const std::string& host : std::vector<std::string>{here, "localhost:" + std::to_string(server_->port()), "[::1]", "127.1.2.3"}) {
    std::string own = Exchange(server_->port(), "GET /api/v1/whoami HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
    EXPECT_NE(own.find(" 200 "), std::string::npos) << host << ": " << own;
  }
  EXPECT_NE(post(here, "http://" + here).find(" 201 "), std::string::npos);
  EXPECT_EQ(Call("DELETE", "/api/v1/catalog/models/csrf-model").status, 204);
  ExpectHealthy();
}

// Ranges are read against the object's size (cpp-httplib 0.11 serves them unchecked: a 206
// promising bytes it never sends); a Content-Length that is no number, a decoded line end in
// a key and a key segment longer than a file name are 400s, not a 413, a bare 404 or a 500.
TEST_F(HostileE2eTest, RangesLengthsAndKeysAreCheckedBeforeTheyReachAnything) {
  const std::string file = "/api/v1/objects/models/good/config.json";
  const auto size = std::filesystem::file_size(std::filesystem::path(objects_) / "models/good/config.json");
  auto get = [&](const std::string& range) {
    return Exchange(server_->port(), "GET " + file + " HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: " + range + "\r\nConnection: close\r\n\r\n");
  };
  std::string past = get("bytes=100000-200000");
  EXPECT_NE(past.find(" 416 "), std::string::npos) << past;
  EXPECT_NE(past.find("Content-Range: bytes */" + std::to_string(size)), std::string::npos) << past;
  EXPECT_NE(past.find("\"field\":\"Range\""), std::string::npos) << past;
  for (const std::string range : {"bytes=0-100000", "bytes=-100000", "bytes=0-"}) {
    std::string whole = get(range);
    EXPECT_NE(whole.find(" 206 "), std::string::npos) << range << ": " << whole;
    EXPECT_NE(whole.find("Content-Range: bytes 0-" + std::to_string(size - 1) + "/" + std::to_string(size)), std::string::npos)
        << range << ": " << whole;
    const size_t body = whole.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << whole;
    EXPECT_EQ(whole.size() - body - 4, size) << range << ": every byte it promised";
  }
  std::string many = "bytes=0-";
  for (int i = 0; i < 16; ++i) many += ",0-";
  std::string whole = get(many);  // 17 ranges: the object once, not 17 times
  EXPECT_NE(whole.find(" 200 "), std::string::npos) << whole.substr(0, 300);
  EXPECT_EQ(whole.size() - whole.find("\r\n\r\n") - 4, size);
  std::string tail = get("bytes=2-100000");
  EXPECT_NE(tail.find("Content-Range: bytes 2-" + std::to_string(size - 1) + "/" + std::to_string(size)), std::string::npos) << tail;

  std::string negative = Exchange(server_->port(), "POST /api/v1/catalog/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                                   "application/json\r\nContent-Length: -5\r\n\r\n{}");
  EXPECT_NE(negative.find(" 400 "), std::string::npos) << negative;
  EXPECT_NE(negative.find("Content-Length must be a number of bytes"), std::string::npos) << negative;

  std::string both = Exchange(server_->port(), "POST /api/v1/catalog/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                               "application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                                               "2\r\n{}\r\n0\r\n\r\n");
  EXPECT_NE(both.find(" 400 "), std::string::npos) << both;
  EXPECT_NE(both.find("not both"), std::string::npos) << both;

  auto line_end = Call("GET", "/api/v1/objects/a%0Ab");
  EXPECT_EQ(line_end.status, 400) << line_end.text;
  EXPECT_EQ(line_end.body["error"].value("field", ""), "key") << line_end.text;
  auto long_segment = Call("PUT", "/api/v1/objects/" + std::string(256, 'c'), std::string("x"));
  EXPECT_EQ(long_segment.status, 400) << long_segment.text;
  EXPECT_EQ(long_segment.body["error"].value("field", ""), "key") << long_segment.text;
  auto c1 = Call("PUT", "/api/v1/objects/c1%C2%9B31mRED", std::string("x"));
  EXPECT_EQ(c1.status, 400) << c1.text;
  // OPTIONS names each method once.
  std::string options = Exchange(server_->port(), "OPTIONS /api/v1/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  const size_t allow = options.find("Allow: ");
  ASSERT_NE(allow, std::string::npos) << options;
  const std::string methods = options.substr(allow, options.find("\r\n", allow) - allow);
  for (const std::string m : {"GET", "POST", "OPTIONS"}) {
    EXPECT_NE(methods.find(m), std::string::npos) << methods;
    EXPECT_EQ(methods.find(m), methods.rfind(m)) << methods;
  }
  ExpectHealthy();
}

// A pickle nested 200,000 lists deep (400 KB) loaded for a prediction is an error, not a
// crash (its values were freed by a recursion as deep); nor does an import write into the
// catalog's storage.
TEST_F(HostileE2eTest, ADeeplyNestedPickleAndAnImportIntoTheCatalogAreRefused) {
  const size_t depth = 200000;
  PlantModel("deep", "pytorch_model.bin", std::string("\x80\x02") + std::string(depth, ']') + std::string(depth - 1, 'a') + ".");
  std::filesystem::remove(std::filesystem::path(objects_) / "models/deep/model.safetensors");
  auto r = Call("POST", "/api/v1/ml/nlp/predict",
                std::string(R"({"model": {"path": "models/deep", "objective": "text-classification"}, "predict_input": {"input_text": ["x"]}})"));
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_NE(r.text.find("a bare pickle"), std::string::npos) << r.text;
  auto into = Call("POST", "/api/v1/ml/models/import",
                   std::string(R"({"model": {"path": "models/good"}, "model_save": {"path": "catalog/models/x/1"}})"));
  EXPECT_EQ(into.status, 400) << into.text;
  EXPECT_EQ(into.body["error"].value("field", ""), "model_save.path") << into.text;
  auto docs = Call("POST", "/api/v1/vector-stores/catalog/models/x/1/documents", std::string(R"({"documents": [{"page_content": "x"}]})"));
  EXPECT_EQ(docs.status, 400) << docs.text;
  EXPECT_EQ(docs.body["error"].value("field", ""), "path") << docs.text;
  ExpectHealthy();
}

// Slow clients (a request's headers sent and never finished, a slowloris) each hold a
// connection thread until the read timeout; more of them than --http-threads (256 here, the
// default) leave the server answering everyone else at once.
TEST_F(HostileE2eTest, SlowClientsBeyondTheThreadPoolDoNotStarveOthers) {
  std::vector<int> slow;
  for (int i = 0; i < 300; ++i) {
    int fd = ConnectLoopback(server_->port());
    ASSERT_GE(fd, 0);
    const std::string part = "POST /api/v1/ml/nlp/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"mo";
    ::send(fd, part.data(), part.size(), MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(500ms);  // every slow request is being read by now
  auto started = std::chrono::steady_clock::now();
  ExpectHealthy();
  EXPECT_EQ(Call("GET", "/api/v1/objects/models/good/config.json").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);  // not after a read timeout (30 s)
  for (int fd : slow) ::close(fd);
}

// Errors name object keys, never server paths: every kind of failure that touches storage.
TEST_F(HostileE2eTest, ErrorsNeverShowServerPaths) {
  PlantModel("nosafetensors", "model.safetensors", "not a safetensors file");
  for (const std::string path : {"models/missing", "models/nosafetensors", "../../etc", "models/good/config.json"})
    EXPECT_GE(Predict(path).status, 400) << path;  // Call() checks that no answer holds a path
  Call("GET", "/api/v1/objects/missing/key");
  Call("POST", "/api/v1/utilities/dataset/stats", json{{"dataset", {{"path", "datasets/missing.csv"}}}});
  ExpectHealthy();
}

// A deployment is recorded before it loads: one whose files cannot load must not stop the
// server from starting again (it once replayed the crash at every start). Here it comes from the
// deployments file of older releases, beside entries of the wrong types, imported at start.
TEST_F(HostileE2eTest, ARecordedDeploymentThatCannotLoadDoesNotStopARestart) {
  PlantModel("replay", "tokenizer_config.json", "[]");
  std::filesystem::remove(std::filesystem::path(objects_) / "models/replay/tokenizer.json");
  server_->Kill(SIGTERM);
  // As a crash in the middle of its load leaves it: recorded, never loaded; beside entries
  // of the wrong types.
  json version = {{"name", "replay"}, {"version", "1"},
                  {"model", {{"path", "models/replay"}, {"objective", "text-classification"}}}};
  std::ofstream(server_->data_dir() / "deployments.json")
      << json{{"deployments", json::array({3, json{{"versions", "x"}}, json{{"name", "replay"}, {"versions", {version, 7}}}})}}
             .dump();
  Status st = server_->Start();
  ASSERT_TRUE(st.ok()) << st.ToString();
  client_ = server_->Client();
  json view;
  ASSERT_TRUE(WaitFor([&] {
    view = Call("GET", "/api/v1/deployments/replay").body;
    return view.value("status", "") == "failed";
  }, 60s)) << view.dump();
  ExpectHealthy();
  EXPECT_EQ(Call("DELETE", "/api/v1/deployments/replay").status, 200);
}

// A vector store larger than --max-vector-store-bytes is refused before it is read.
TEST_F(HostileE2eTest, AVectorStoreOverItsBudgetIsRefusedBeforeLoading) {
  Plant("stores/big/manifest.json", R"({"count": 1, "dimension": 32, "metric": "l2", "index": {"type": "Flat"}})");
  Plant("stores/big/index.faiss", std::string(150000, '\0'));
  Plant("stores/big/documents.jsonl", "{}\n");
  json body = {{"model", {{"path", "models/good"}, {"objective", "no-objective"}}},
               {"dataset", {{"path", "stores/big"}, {"format", "vector_store"}}},
               {"search_input", {{"input_text", {"x"}}, {"top_k", 1}}}};
  auto r = Call("POST", "/api/v1/ml/nlp/vector/search", body);
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_NE(ErrorText(r).find("--max-vector-store-bytes"), std::string::npos) << r.text;
  ExpectHealthy();
}

// A server whose synchronous model work is kept to 2 requests at once and whose searches wait
// for no background work: what the default limits do over minutes, here in milliseconds.
class BusyServerE2eTest : public ServerSuite<BusyServerE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--threads", "1", "--http-threads", "8", "--max-compute-requests", "2", "--search-wait-seconds", "0"});
    const std::string objects = (dir_->path() / "data" / "objects").string();
    auto tok = TrainWordPieceTokenizer(*dir_, objects + "/tokenizers/wp");
    ASSERT_EQ(tok.exit_code, 0) << tok.out;
    auto r = InitSmallModel(*dir_, objects + "/tokenizers/wp", objects + "/models/embed", "no-objective");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    std::string csv = "id,text\n";
    for (int i = 0; i < 4000; ++i)
      csv += "d" + std::to_string(i) + ",\"" + AffiliationCorpus()[i % AffiliationCorpus().size()] + " " +
             "tag" + std::to_string(i) + "\"\n";
    dir_->Write("data/objects/many.csv", csv);
    StartServer();
  }

  client::Response Search(const std::string& mode) {
    json body = {{"model", {{"path", "models/embed"}, {"objective", "no-objective"}}},
                 {"dataset", {{"path", "many.csv"}, {"loader_kwargs", {{"page_content_column", "text"}, {"id_column", "id"}}}}},
                 {"search_input", {{"input_text", {"Bari INFN tag7"}}, {"top_k", 3}, {"mode", mode}}}};
    return CallServer(*client_, "POST", "/api/v1/ml/nlp/search", body.dump());
  }
};

// Embedding a dataset (4000 documents) and building its lexical index run in the background:
// the search that started them is answered 503 with Retry-After at once, the server keeps
// answering, and a retry finds the work done.
TEST_F(BusyServerE2eTest, LongSearchWorkRunsInTheBackgroundAndARetryFindsItDone) {
  for (const std::string mode : {"dense", "lexical"}) {
    auto first = Search(mode);
    ASSERT_EQ(first.status, 503) << mode << ": " << first.text;
    EXPECT_FALSE(first.headers["retry-after"].empty()) << mode;
    EXPECT_NE(first.body["error"]["message"].get<std::string>().find("retry"), std::string::npos) << first.text;
    EXPECT_EQ(CallServer(*client_, "GET", "/healthz").status, 200);
    client::Response done;
    EXPECT_TRUE(WaitFor([&] {
      done = Search(mode);
      return done.status != 503 && done.status != 429;
    }, 120s)) << done.text;
    ASSERT_EQ(done.status, 200) << mode << ": " << done.text;
    ASSERT_EQ(done.body["results"][0].size(), 3u) << done.text;
    if (mode == "lexical") {
      EXPECT_EQ(done.body["results"][0][0]["id"], "d7") << done.text;
    }
  }
}

// The CLI sends a search again while its dataset embeds, saying so, and prints the results.
TEST_F(BusyServerE2eTest, TheCliWaitsForBackgroundSearchWork) {
  dir_->Write("data/objects/copy.csv", ReadFile(dir_->path() / "data" / "objects" / "many.csv"));
  auto r = RunMlaas({"search", "Bari INFN tag7", "--dataset", "copy.csv", "--text-column", "text", "--id-column", "id",
                     "--model", "models/embed", "--mode", "lexical", "-k", "2", "--server", server_->url()});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("waiting 1 s:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("d7"), std::string::npos) << r.out;
}

// More prediction requests at once than --max-compute-requests: the others are refused with
// 429 and Retry-After, never queued on every HTTP thread, and the server answers /healthz.
TEST_F(BusyServerE2eTest, ComputeRequestsBeyondTheLimitAreRefused) {
  json texts = json::array();
  for (int i = 0; i < 256; ++i) texts.push_back("the detector measures the electric charge and the mass " + std::to_string(i));
  const std::string body =
      json{{"model", {{"path", "models/embed"}, {"objective", "no-objective"}}}, {"predict_input", {{"input_text", texts}}}}
          .dump();
  // Rounds of 8 requests at once until one overlapped (each takes tens of milliseconds).
  int ok = 0, busy = 0, health = 0;
  for (int round = 0; round < 10 && busy == 0; ++round) {
    std::vector<client::Response> answers(8);
    std::vector<std::thread> clients;
    for (size_t c = 0; c < answers.size(); ++c)
      clients.emplace_back([&, c] {
        auto client = server_->Client();
        answers[c] = CallServer(*client, "POST", "/api/v1/ml/nlp/predict", body);
      });
    health = CallServer(*client_, "GET", "/healthz").status;
    for (auto& t : clients) t.join();
    EXPECT_EQ(health, 200);
    for (auto& a : answers) {
      if (a.status == 200) ++ok;
      if (a.status == 429) {
        ++busy;
        EXPECT_FALSE(a.headers["retry-after"].empty());
        EXPECT_NE(a.text.find("--max-compute-requests"), std::string::npos) << a.text;
      }
      EXPECT_TRUE(a.status == 200 || a.status == 429) << a.status << " " << a.text;
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1) << "8 requests of 256 texts each never overlapped in 10 rounds";
}

}  // namespace
}  // namespace mlaas::testing
