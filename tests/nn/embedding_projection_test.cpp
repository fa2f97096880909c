#include "nn/embedding_projection.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "checkpoint/safetensors.h"
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
  // Power 0.25 maps each eigenvalue l to l^0.5 along its direction, largest first (the
  // directions below 1e-5 of the largest are dropped).
  ASSERT_GE(after.size(0), 8);
  torch::Tensor expected = before.flip(0).sqrt().slice(0, 0, after.size(0));
  EXPECT_TRUE(torch::allclose(after, expected, 1e-3, 1e-4)) << after << expected;
}

TEST(EmbeddingProjectionTest, FittingInBatchesEqualsFittingAtOnce) {
  torch::Tensor x = Correlated(300, 12, 9, 4);
  WhiteningFit fit;
  for (int64_t s = 0; s < 300; s += 64) fit.Add(x.slice(0, s, s + 64));
  EXPECT_EQ(fit.rows(), 300);
  auto batched = fit.Finish(0.4, "f");
  auto once = FitWhitening(x, 0.4, "f");
  ASSERT_TRUE(batched.has_value() && once.has_value());
  ASSERT_EQ(batched->out_features(), 9);
  // Eigenvectors are defined up to sign: compare the projected data, direction by direction.
  torch::Tensor a = batched->Apply(x), b = once->Apply(x);
  EXPECT_TRUE(torch::allclose(a.abs(), b.abs(), 1e-3, 1e-3));
  EXPECT_FALSE(WhiteningFit().Finish(0.4, "f").has_value());  // nothing added
  torch::Tensor bad = x.clone();
  bad[3][2] = std::numeric_limits<float>::infinity();
  auto inf = FitWhitening(bad, 0.4, "f");
  ASSERT_FALSE(inf.has_value());
  EXPECT_NE(inf.error().message().find("finite"), std::string::npos);
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
    ASSERT_TRUE(SaveEmbeddingProjection(dir_.path(), projection_).ok());
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

  json relu = dense;
  relu["activation_function"] = "torch.nn.modules.activation.ReLU";
  Rewrite("2_Dense/config.json", relu);
  EXPECT_NE(LoadError().find("not supported"), std::string::npos);
  json wider = dense;
  wider["out_features"] = dense["out_features"].get<int64_t>() + 1;
  Rewrite("2_Dense/config.json", wider);
  EXPECT_NE(LoadError().find("linear.weight"), std::string::npos) << LoadError();
  Rewrite("2_Dense/config.json", dense);

  // Members of the wrong JSON type are errors, not exceptions.
  json number_path = modules;
  number_path[2]["path"] = 2;
  Rewrite("modules.json", number_path);
  EXPECT_NE(LoadError().find("path must be a string"), std::string::npos) << LoadError();
  json other = modules;
  other.insert(other.begin() + 1, json{{"idx", 9}, {"path", "x"}, {"type", "sentence_transformers.models.LayerNorm"}});
  Rewrite("modules.json", other);
  EXPECT_NE(LoadError().find("LayerNorm' is not supported"), std::string::npos) << LoadError();
  Rewrite("modules.json", modules);
  for (auto [key, value] : std::vector<std::pair<std::string, json>>{
           {"bias", 1}, {"bias", "yes"}, {"activation_function", 3}, {"in_features", "8"}, {"out_features", 2.5}}) {
    json broken = dense;
    broken[key] = value;
    Rewrite("2_Dense/config.json", broken);
    EXPECT_NE(LoadError().find(key), std::string::npos) << key << ": " << LoadError();
  }
  json pooling = json::parse(*ReadFile(dir_.path() / "1_Pooling" / "config.json"));
  json max = pooling;
  max["pooling_mode_mean_tokens"] = false;
  max["pooling_mode_max_tokens"] = true;
  Rewrite("1_Pooling/config.json", max);
  EXPECT_NE(LoadError().find("pooling_mode_max_tokens is not supported"), std::string::npos) << LoadError();
  Rewrite("1_Pooling/config.json", pooling);
  Rewrite("2_Dense/config.json", dense);
  ASSERT_EQ(LoadError(), "loaded");

  // A truncated weights file.
  const fs::path weights = dir_.path() / "2_Dense" / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) - 7);
  EXPECT_NE(LoadError().find("model.safetensors"), std::string::npos) << LoadError();
  fs::remove(weights);
  EXPECT_NE(LoadError().find("only safetensors"), std::string::npos) << LoadError();
}

TEST_F(ProjectionFilesTest, ReadsTanhHalfPrecisionAndClsPoolingModules) {
  // A Dense module as sentence-transformers writes for e.g. LaBSE: tanh, here in float16,
  // after CLS pooling.
  torch::Tensor w = torch::randn({4, 8}).to(torch::kFloat16), b = torch::randn({4}).to(torch::kFloat16);
  auto bytes = [](const torch::Tensor& t) {
    return std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.numel() * 2);
  };
  ASSERT_TRUE(checkpoint::WriteSafetensors(dir_.path() / "2_Dense" / "model.safetensors",
                                           {{"linear.bias", checkpoint::DType::kF16, {4}, bytes(b)},
                                            {"linear.weight", checkpoint::DType::kF16, {4, 8}, bytes(w)}})
                  .ok());
  Rewrite("2_Dense/config.json", {{"in_features", 8}, {"out_features", 4}, {"bias", true},
                                  {"activation_function", "torch.nn.modules.activation.Tanh"}});
  Rewrite("1_Pooling/config.json", {{"word_embedding_dimension", 8}, {"pooling_mode_cls_token", true},
                                    {"pooling_mode_mean_tokens", false}});
  auto loaded = LoadEmbeddingProjection(dir_.path(), 8, "model.path");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->pooling, Pooling::kCls);
  EXPECT_EQ((*loaded)->activation, ProjectionActivation::kTanh);
  torch::Tensor x = torch::randn({2, 8});
  torch::Tensor want = torch::tanh(torch::matmul(x, w.to(torch::kFloat32).t()) + b.to(torch::kFloat32));
  EXPECT_TRUE(torch::allclose((*loaded)->Apply(x), want, 1e-5, 1e-5));
}

}  // namespace
}  // namespace mlaas::nn
