// mlaas::nn — the configuration of a static embedding model (see static_embedding.h), without
// libtorch: what request validation and serving decisions need.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace mlaas::nn {

// No positions to run out of: the bound on the tokens one text may bring (training and serving).
constexpr int64_t kStaticEmbeddingMaxTokens = 8192;

// config.json of a static embedding model ("model_type": "static-embedding").
struct StaticEmbeddingConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  double k1 = 1.2;
  double b = 0.75;
  double average_length = 1;  // tokens per document of the data the weights were fitted on
};

// InvalidArgument naming `field` + "." + the member for a missing or out-of-range value.
Result<StaticEmbeddingConfig> ParseStaticEmbeddingConfig(const nlohmann::json& j, const std::string& field);
nlohmann::ordered_json StaticEmbeddingConfigToJson(const StaticEmbeddingConfig& c);
// The float32 bytes of the model's weights (vocabulary x hidden), known before they exist.
uint64_t ParameterBytes(const StaticEmbeddingConfig& c);

// One text's distinct token ids (first-seen order) and their BM25 saturated counts.
struct TermWeights {
  std::vector<int64_t> ids;
  std::vector<float> weights;
};
TermWeights WeighTerms(const std::vector<int64_t>& ids, const StaticEmbeddingConfig& c);

// Whether a config object declares a static embedding model (model_type "static-embedding").
bool IsStaticEmbeddingConfig(const nlohmann::json& config);
// Whether `dir`'s config.json declares one.
bool IsStaticEmbeddingDir(const std::filesystem::path& dir);

}  // namespace mlaas::nn
