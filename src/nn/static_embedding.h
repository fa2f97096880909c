// mlaas::nn — a static embedding model: a text's embedding is the sum of one learned vector
// per distinct token, each weighted by BM25's term saturation of the token's count in the text,
// e = sum_t tf_t (k1 + 1) / (tf_t + k1 (1 - b + b len / average_length)) * E[t], compared by
// inner product. Fresh weights are a random projection of BM25 (rows ~ normal(0, 1/sqrt(d))
// scaled by sqrt(idf) of the training documents), which sentence-embedding training then moves.
// No transformer: embedding costs a gather and a sum. This header includes libtorch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "nn/static_embedding_config.h"

namespace mlaas::nn {

class StaticEmbeddingImpl : public torch::nn::Module {
 public:
  explicit StaticEmbeddingImpl(StaticEmbeddingConfig c);
  // Texts as token ids (special tokens left out; every id below vocab_size) -> [texts,
  // hidden_size]. A text without tokens embeds to zeros.
  torch::Tensor forward(const std::vector<std::vector<int64_t>>& texts);
  // Fresh weights for `documents` (token ids): rows ~ normal(0, 1/sqrt(hidden_size)) times
  // sqrt(ln(1 + (n - df + 0.5) / (df + 0.5))), average_length their mean length.
  // InvalidArgument naming `field` without documents or tokens, or for an id out of range.
  Status InitFromDocuments(const std::vector<std::vector<int64_t>>& documents, uint64_t seed,
                           const std::string& field);
  const StaticEmbeddingConfig& config() const { return config_; }

  torch::nn::Embedding embedding{nullptr};  // "embedding.weight" [vocab_size, hidden_size]

 private:
  StaticEmbeddingConfig config_;
};
TORCH_MODULE(StaticEmbedding);

// Writes config.json and model.safetensors ("embedding.weight", float32) atomically.
Status SaveStaticEmbedding(StaticEmbeddingImpl& model, const std::filesystem::path& dir);
// Reads what SaveStaticEmbedding wrote (F32/F16/BF16/F64 weights). InvalidArgument naming
// `field` for a missing or malformed file or a tensor of the wrong shape.
// `config`: the directory's config.json already read (as checked by the caller); null: read here.
Result<StaticEmbedding> LoadStaticEmbedding(const std::filesystem::path& dir, const std::string& field,
                                            const StaticEmbeddingConfig* config = nullptr);
// The config.json of a static model's directory; InvalidArgument naming `field` when unusable.
Result<StaticEmbeddingConfig> ReadStaticEmbeddingConfig(const std::filesystem::path& dir, const std::string& field);

}  // namespace mlaas::nn
