// Fixtures shared by the end-to-end suites: a suite base owning one server, a small
// affiliation corpus, a sentiment set, a WordPiece tokenizer trained on it with the CLI, and an HTTP call that
// records transport failures.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "e2e/cli_runner.h"
#include "e2e/server_process.h"
#include "storage/object_store.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {

// A suite sharing one server across its tests: a temporary directory, the server process
// (created by the suite's SetUpTestSuite, which prepares its files and then starts it), a
// client per test and a check that the server survived each test. Each suite passes itself
// as `Suite`, so each has its own server.
template <class Suite>
class ServerSuite : public ::testing::Test {
 protected:
  static void CreateServer(std::vector<std::string> args = {}) {
    dir_ = new TempDir();
    server_ = new ServerProcess(dir_->path() / "data", std::move(args));
  }
  static void StartServer() {
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override { client_ = server_->Client(); }
  void TearDown() override { ASSERT_TRUE(server_->Running()) << server_->Log(); }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  std::unique_ptr<client::ApiClient> client_;
};

// A separable sentiment set: sentences of filler words with one sentiment word each.
inline const std::vector<std::string> kGood = {"good", "great", "fine", "nice", "happy"};
inline const std::vector<std::string> kBad = {"bad", "awful", "poor", "sad", "angry"};
inline const std::vector<std::string> kFiller = {"the", "movie", "was", "very", "really", "plot", "and", "actors", "it", "a"};

// A WordPiece vocab.txt of the sentiment set's words and BERT's special tokens, at `path`.
inline void WriteSentimentVocab(const std::filesystem::path& path) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream v(path);
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << t << "\n";
  for (const auto* list : {&kGood, &kBad, &kFiller})
    for (const auto& w : *list) v << w << "\n";
}

// CSV (id,text,label) of `n` such sentences, labelled pos/neg alternately.
inline std::string SentimentCsv(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string csv = "id,text,label\n";
  for (int i = 0; i < n; ++i) {
    const bool good = i % 2 == 0;
    std::vector<std::string> words;
    for (size_t k = 0, len = 3 + rng() % 5; k < len; ++k) words.push_back(kFiller[rng() % kFiller.size()]);
    const auto& pool = good ? kGood : kBad;
    words.insert(words.begin() + static_cast<std::ptrdiff_t>(rng() % (words.size() + 1)), pool[rng() % pool.size()]);
    std::string text;
    for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
    csv += std::to_string(i) + "," + text + "," + (good ? "pos" : "neg") + "\n";
  }
  return csv;
}

inline const std::vector<std::string>& AffiliationCorpus() {
  static const std::vector<std::string> lines = {
      "Frascati Natl Lab INFN LNF, Natl Inst Nucl Phys, Italy",
      "Bari INFN, Via E Orabona 4, I-70125 Bari, Italy",
      "INAF IASF Milano, Via Bassini 15, Milan, Italy",
      "particles with the same mass but with opposite electric charges annihilate",
      "the detector measures the electric charge and the mass of each particle",
      "dark matter searches at the national laboratory",
  };
  return lines;
}

// Writes the corpus (20 copies) to `dir`/corpus.txt and trains a lower-cased WordPiece
// tokenizer of 300 tokens on it into `output` with `mlaas tokenizer train`.
inline CliResult TrainWordPieceTokenizer(const TempDir& dir, const std::string& output) {
  std::string corpus;
  for (int rep = 0; rep < 20; ++rep)
    for (const auto& line : AffiliationCorpus()) corpus += line + "\n";
  dir.Write("corpus.txt", corpus);
  return RunMlaas({"tokenizer", "train", "--model", "wordpiece", "--vocab-size", "300", "--lowercase",
                   "--special-tokens", "[PAD],[UNK],[CLS],[SEP],[MASK]", "--input", (dir.path() / "corpus.txt").string(),
                   "--output", output});
}

// `mlaas model init` of a small BERT (hidden 32, 2 layers) for `objective` with the tokenizer
// at `tokenizer` into `output`; `labels` (comma-separated) for a classifier.
inline CliResult InitSmallModel(const TempDir& dir, const std::string& tokenizer, const std::string& output,
                                const std::string& objective, const std::string& labels = "") {
  dir.Write("small.json", R"({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                              "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64})");
  std::vector<std::string> args = {"model", "init", "--config", (dir.path() / "small.json").string(), "--objective",
                                   objective, "--tokenizer", tokenizer, "--output", output};
  if (!labels.empty()) args.insert(args.end(), {"--labels", labels});
  return RunMlaas(args);
}

// A raw call whose transport failure fails the test (an HTTP error status does not).
inline client::Response CallServer(client::ApiClient& c, const std::string& method, const std::string& path,
                                   const std::string& body = "") {
  auto r = c.Call(method, path, body);
  EXPECT_TRUE(r.has_value()) << method << " " << path << ": " << r.error().ToString();
  return r.has_value() ? *r : client::Response{};
}

// Whether a training task has written a complete checkpoint under `prefix` of `bucket` (its
// state.json is written last).
inline bool HasCompleteCheckpoint(storage::ObjectStore& bucket, const std::string& prefix) {
  auto listed = bucket.List({.prefix = prefix, .delimiter = "", .max_keys = 1000, .continuation_token = "", .start_after = ""});
  if (!listed.has_value()) return false;
  for (const auto& o : listed->objects)
    if (o.key.ends_with("/state.json")) return true;
  return false;
}

}  // namespace mlaas::testing
