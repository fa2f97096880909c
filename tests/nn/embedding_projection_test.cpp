#include "nn/embedding_projection.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "testutil/temp_dir.h"

namespace mlaas::nn {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mlaas::testing::TempDir;

// Rows with correlated columns of very different variances, of rank `rank` (< columns).
torch::Tensor Correlated(int64_t rows, int64_t columns, int64_t rank, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor basis = torch::randn({rank, columns}, torch::kFloat64);
  torch::Tensor scales = torch::logspace(1, -1, rank, 10, torch::kFloat64).unsqueeze(1);
  return (torch::matmul(torch::randn({rows, rank}, torch::kFloat64), basis * scales) + 3.0).to(torch::kFloat32);
}

torch::Tensor Covariance(const torch::Tensor& x) {
  torch::Tensor c = x.to(torch::kFloat64) - x.to(torch::kFloat64).mean(0);
  return torch::matmul(c.t(), c) / static_cast<double>(x.size(0) - 1);
}

TEST(EmbeddingProjectionTest, FullWhiteningGivesIdentityCovarianceOnTheDirectionsWithVariance) {
  torch::Tensor x = Correlated(400, 16, 10, 1);
  auto p = FitWhitening(x, 0.5, "f");
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(p->in_features(), 16);
  EXPECT_EQ(p->out_features(), 10);  // the 6 directions without variance are dropped
  torch::Tensor y = p->Apply(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{400, 10}));
  EXPECT_LT(y.mean(0).abs().max().item<double>(), 1e-3);  // centred
  EXPECT_TRUE(torch::allclose(Covariance(y), torch::eye(10, torch::kFloat64), 1e-3, 1e-3)) << Covariance(y);
}

TEST(EmbeddingProjectionTest, PartialWhiteningFlattensTheSpectrumAndKeepsItsOrder) {
  torch::Tensor x = Correlated(400, 12, 12, 2);
  auto half = FitWhitening(x, 0.25, "f");
  ASSERT_TRUE(half.has_value());
  torch::Tensor before = torch::linalg_eigvalsh(Covariance(x));  // ascending
  torch::Tensor after = torch::diagonal(Covariance(half->Apply(x)));
  // Power 0.25 maps each eigenvalue l to l^0.5 along its direction, largest first.
  torch::Tensor expected = before.flip(0).sqrt();
  EXPECT_TRUE(torch::allclose(after, expected, 1e-3, 1e-4)) << after << expected;
}

TEST(EmbeddingProjectionTest, BadInputsAreRefused) {
  EXPECT_FALSE(FitWhitening(torch::ones({1, 4}), 0.5, "f").has_value());   // one row
  EXPECT_FALSE(FitWhitening(torch::ones({8, 4}), 0.5, "f").has_value());   // no variance
  EXPECT_FALSE(FitWhitening(torch::randn({8, 4}), 0.0, "f").has_value());  // power
  EXPECT_FALSE(FitWhitening(torch::randn({8, 4}), 1.5, "f").has_value());
  auto e = FitWhitening(torch::randn({8}), 0.5, "model_train.whitening");
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().field(), "model_train.whitening");
}

class ProjectionFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = FitWhitening(Correlated(64, 8, 6, 3), 0.4, "f");
    ASSERT_TRUE(p.has_value());
    projection_ = *p;
    ASSERT_TRUE(SaveEmbeddingProjection(dir_.path(), projection_, Pooling::kMean).ok());
  }
  void Rewrite(const std::string& name, const json& j) {
    ASSERT_TRUE(WriteFileAtomic(dir_.path() / name, j.dump()).ok());
  }
  std::string LoadError(int64_t hidden = 8) {
    auto r = LoadEmbeddingProjection(dir_.path(), hidden, "model.path");
    if (r.has_value()) return "loaded";
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.error().field(), "model.path");
    return r.error().message();
  }
  TempDir dir_;
  EmbeddingProjection projection_;
};

TEST_F(ProjectionFilesTest, SavedAsSentenceTransformersModulesAndLoadedBack) {
  auto modules = json::parse(*ReadFile(dir_.path() / "modules.json"));
  ASSERT_EQ(modules.size(), 3u);
  EXPECT_EQ(modules[0]["path"], "");
  EXPECT_EQ(modules[1]["type"], "sentence_transformers.models.Pooling");
  EXPECT_EQ(modules[2]["path"], "2_Dense");
  auto pooling = json::parse(*ReadFile(dir_.path() / "1_Pooling" / "config.json"));
  EXPECT_EQ(pooling["word_embedding_dimension"], 8);
  EXPECT_EQ(pooling["pooling_mode_mean_tokens"], true);
  auto dense = json::parse(*ReadFile(dir_.path() / "2_Dense" / "config.json"));
  EXPECT_EQ(dense["in_features"], 8);
  EXPECT_EQ(dense["out_features"], projection_.out_features());
  EXPECT_EQ(dense["activation_function"], "torch.nn.modules.linear.Identity");

  auto loaded = LoadEmbeddingProjection(dir_.path(), 8, "model.path");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_TRUE(torch::equal((*loaded)->weight, projection_.weight));
  EXPECT_TRUE(torch::equal((*loaded)->bias, projection_.bias));
  torch::Tensor x = torch::randn({3, 8});
  EXPECT_TRUE(torch::allclose((*loaded)->Apply(x), torch::matmul(x, projection_.weight.t()) + projection_.bias));
}

TEST_F(ProjectionFilesTest, NoModulesOrNoDenseModuleIsNoProjection) {
  TempDir empty;
  auto none = LoadEmbeddingProjection(empty.path(), 8, "model.path");
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
  Rewrite("modules.json", json::array({{{"idx", 0}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                                       {{"idx", 1}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}},
                                       {{"idx", 2}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}}}));
  auto plain = LoadEmbeddingProjection(dir_.path(), 8, "model.path");
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->has_value());
}

TEST_F(ProjectionFilesTest, MalformedModulesAreClearErrors) {
  EXPECT_NE(LoadError(16).find("hidden size 16"), std::string::npos) << LoadError(16);
  json modules = json::parse(*ReadFile(dir_.path() / "modules.json"));
  json dense = json::parse(*ReadFile(dir_.path() / "2_Dense" / "config.json"));

  Rewrite("modules.json", json{{"not", "a list"}});
  EXPECT_NE(LoadError().find("list"), std::string::npos);
  json escape = modules;
  escape[2]["path"] = "../elsewhere";
  Rewrite("modules.json", escape);
  EXPECT_NE(LoadError().find("path"), std::string::npos);
  json after = modules;
  after.push_back({{"idx", 3}, {"path", "3_Dense"}, {"type", "sentence_transformers.models.Dense"}});
  Rewrite("modules.json", after);
  EXPECT_NE(LoadError().find("after a Dense"), std::string::npos);
  Rewrite("modules.json", modules);

  json tanh = dense;
  tanh["activation_function"] = "torch.nn.modules.activation.Tanh";
  Rewrite("2_Dense/config.json", tanh);
  EXPECT_NE(LoadError().find("not supported"), std::string::npos);
  json wider = dense;
  wider["out_features"] = dense["out_features"].get<int64_t>() + 1;
  Rewrite("2_Dense/config.json", wider);
  EXPECT_NE(LoadError().find("linear.weight"), std::string::npos) << LoadError();
  Rewrite("2_Dense/config.json", dense);

  // A truncated weights file.
  const fs::path weights = dir_.path() / "2_Dense" / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) - 7);
  EXPECT_NE(LoadError().find("model.safetensors"), std::string::npos) << LoadError();
  fs::remove(weights);
  EXPECT_NE(LoadError().find("model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace mlaas::nn
