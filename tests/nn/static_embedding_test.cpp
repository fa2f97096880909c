#include "nn/static_embedding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "checkpoint/safetensors.h"
#include "testutil/temp_dir.h"

namespace mlaas::nn {
namespace {

using json = nlohmann::json;
using mlaas::testing::TempDir;

StaticEmbeddingConfig Config(int64_t vocab, int64_t hidden, double average_length = 3) {
  StaticEmbeddingConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.average_length = average_length;
  return c;
}

TEST(StaticEmbeddingTest, WeighsDistinctTermsByBm25Saturation) {
  // len 3 = average length: k1 (1 - b + b) = 1.2; tf 2 -> 2 * 2.2 / 3.2, tf 1 -> 2.2 / 2.2.
  TermWeights t = WeighTerms({5, 7, 5}, Config(10, 4));
  EXPECT_EQ(t.ids, (std::vector<int64_t>{5, 7}));
  ASSERT_EQ(t.weights.size(), 2u);
  EXPECT_NEAR(t.weights[0], 2 * 2.2 / 3.2, 1e-6);
  EXPECT_NEAR(t.weights[1], 1.0, 1e-6);
  // A text twice the average length weighs a single occurrence less: 2.2 / (1 + 1.2 * 1.75).
  TermWeights long_text = WeighTerms({1, 2, 3, 4, 5, 6}, Config(10, 4));
  EXPECT_NEAR(long_text.weights[0], 2.2 / (1 + 1.2 * 1.75), 1e-6);
  EXPECT_TRUE(WeighTerms({}, Config(10, 4)).ids.empty());
}

TEST(StaticEmbeddingTest, EmbedsTheWeightedSumOfTheTokensRows) {
  StaticEmbedding m(Config(10, 4));
  torch::NoGradGuard no_grad;
  m->embedding->weight.copy_(torch::arange(40, torch::kFloat32).reshape({10, 4}));
  torch::Tensor e = m->forward({{5, 7, 5}, {}, {2}});
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{3, 4}));
  const torch::Tensor& w = m->embedding->weight;
  EXPECT_TRUE(torch::allclose(e[0], w[5] * (2 * 2.2 / 3.2) + w[7] * 1.0));
  EXPECT_TRUE(torch::equal(e[1], torch::zeros({4})));
  EXPECT_TRUE(torch::allclose(e[2], w[2] * static_cast<float>(2.2 / (1 + 1.2 * (0.25 + 0.75 / 3)))));
}

TEST(StaticEmbeddingTest, GradientsReachOnlyTheRowsOfTheTokensUsed) {
  StaticEmbedding m(Config(10, 4));
  m->forward({{1, 2}, {2, 3}}).sum().backward();
  torch::Tensor g = m->embedding->weight.grad();
  ASSERT_TRUE(g.defined());
  for (int64_t row = 0; row < 10; ++row)
    EXPECT_EQ(g[row].abs().sum().item<float>() > 0, row >= 1 && row <= 3) << row;
}

TEST(StaticEmbeddingTest, FreshWeightsAreARandomProjectionOfBm25) {
  // Token 0 is in every document, 1..8 in one each, 9 in none.
  std::vector<std::vector<int64_t>> docs;
  for (int64_t i = 1; i <= 8; ++i) docs.push_back({0, i, i, 0});
  StaticEmbedding m(Config(10, 8192));
  ASSERT_TRUE(m->InitFromDocuments(docs, 7, "dataset").ok());
  EXPECT_DOUBLE_EQ(m->config().average_length, 4.0);
  const torch::Tensor& w = m->embedding->weight;
  auto idf = [](double df) { return std::log1p((8 - df + 0.5) / (df + 0.5)); };
  // Rows are nearly orthogonal with squared norms idf: inner products of embeddings give BM25.
  EXPECT_NEAR(w[0].pow(2).sum().item<double>(), idf(8), 0.05 * idf(8));
  EXPECT_NEAR(w[3].pow(2).sum().item<double>(), idf(1), 0.05 * idf(1));
  EXPECT_NEAR(w[9].pow(2).sum().item<double>(), idf(0), 0.05 * idf(0));
  EXPECT_LT(std::abs(w[3].dot(w[4]).item<double>()), 0.1 * idf(1));
  torch::NoGradGuard no_grad;
  torch::Tensor d = m->forward(docs);
  torch::Tensor q = m->forward({{5}});
  EXPECT_EQ((q.matmul(d.t())).argmax().item<int64_t>(), 4);  // the document with token 5
  // The same seed gives the same weights.
  StaticEmbedding again(Config(10, 8192));
  ASSERT_TRUE(again->InitFromDocuments(docs, 7, "dataset").ok());
  EXPECT_TRUE(torch::equal(again->embedding->weight, w));

  EXPECT_EQ(m->InitFromDocuments({}, 7, "dataset").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m->InitFromDocuments({{}, {}}, 7, "dataset").code(), StatusCode::kInvalidArgument);
  Status out_of_range = m->InitFromDocuments({{1, 10}}, 7, "dataset");
  EXPECT_EQ(out_of_range.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out_of_range.field(), "dataset");
}

TEST(StaticEmbeddingTest, SavesAndLoadsTheSameModel) {
  TempDir dir;
  StaticEmbedding m(Config(12, 6, 2.5));
  ASSERT_TRUE(SaveStaticEmbedding(*m, dir.path()).ok());
  auto loaded = LoadStaticEmbedding(dir.path(), "model.path");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_DOUBLE_EQ((*loaded)->config().average_length, 2.5);
  EXPECT_EQ((*loaded)->config().hidden_size, 6);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal((*loaded)->forward({{1, 2, 2}}), m->forward({{1, 2, 2}})));
  json config = json::parse(mlaas::testing::ReadFile(dir / "config.json"));
  EXPECT_EQ(config["model_type"], "static-embedding");
}

TEST(StaticEmbeddingTest, RefusesMalformedDirectories) {
  TempDir dir;
  StaticEmbedding m(Config(12, 6));
  ASSERT_TRUE(SaveStaticEmbedding(*m, dir.path()).ok());
  auto expect_refused = [&](const std::string& config, const std::string& needle) {
    dir.Write("config.json", config);
    auto r = LoadStaticEmbedding(dir.path(), "model.path");
    ASSERT_FALSE(r.has_value()) << config;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.error().field(), "model.path");
    EXPECT_NE(r.error().ToString().find(needle), std::string::npos) << r.error().ToString();
  };
  expect_refused("{", "not valid JSON");
  expect_refused(R"({"model_type": "bert", "vocab_size": 12, "hidden_size": 6})", "model_type");
  expect_refused(R"({"model_type": "static-embedding", "hidden_size": 6})", "vocab_size");
  expect_refused(R"({"model_type": "static-embedding", "vocab_size": 12, "hidden_size": 6, "b": 2})", "config.json: b must be in [0, 1]");
  expect_refused(R"({"model_type": "static-embedding", "vocab_size": 12, "hidden_size": 6, "k1": "x"})", "k1");
  expect_refused(R"({"model_type": "static-embedding", "vocab_size": 12, "hidden_size": 6, "average_length": 0})",
                 "average_length");
  expect_refused(R"({"model_type": "static-embedding", "vocab_size": 13, "hidden_size": 6})", "embedding.weight");
  dir.Write("config.json", R"({"model_type": "static-embedding", "vocab_size": 12, "hidden_size": 6})");
  dir.Write("model.safetensors", "truncated");
  EXPECT_EQ(LoadStaticEmbedding(dir.path(), "model.path").error().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove(dir / "model.safetensors");
  EXPECT_EQ(LoadStaticEmbedding(dir.path(), "model.path").error().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlaas::nn
