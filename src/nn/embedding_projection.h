// mlaas::nn — a projection of pooled sentence embeddings, kept beside a Hugging Face model
// directory the way sentence-transformers keeps its modules: modules.json lists the
// Transformer (the directory itself), a Pooling module (1_Pooling/config.json) and a Dense
// module (2_Dense/config.json + model.safetensors with linear.weight [out, in] and linear.bias
// [out], identity activation). Sentence-embedding training writes one when asked to whiten
// (FitWhitening); embedding models apply it after pooling, before normalisation.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <string>

#include "checkpoint/safetensors.h"
#include "common/result.h"
#include "nn/config.h"

namespace mlaas::nn {

enum class ProjectionActivation { kIdentity, kTanh };

struct EmbeddingProjection {
  torch::Tensor weight;  // [out, in], float32
  torch::Tensor bias;    // [out], float32
  ProjectionActivation activation = ProjectionActivation::kIdentity;
  Pooling pooling = Pooling::kMean;  // what it was made for (1_Pooling/config.json)
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  // [n, in] -> [n, out], in float32 on the weights' device.
  torch::Tensor Apply(const torch::Tensor& pooled) const;
};

// The float tensor `name` of `file` (F32/F16/BF16/F64) as float32 of exactly `shape`;
// InvalidArgument naming `field` ("<what> has no tensor ...", "... must be a float tensor of
// shape [...]") otherwise. Shared by the readers of saved modules.
Result<torch::Tensor> ReadFloatTensor(const checkpoint::SafetensorsFile& file, const std::string& name,
                                      std::vector<int64_t> shape, const std::string& field, const std::string& what);

// The directory's Dense projection; none when it has no modules.json, or one without a Dense
// module. Modules: Transformer, Pooling (mean or CLS: 1_Pooling/config.json, default mean),
// one Dense (identity or tanh activation; F32/F16/BF16/F64 safetensors), Normalize.
// InvalidArgument naming `field` for anything else, or a malformed file (a path that leaves the
// directory, wrong JSON types, missing or mis-shaped tensors, in_features other than
// `hidden_size`, a module after the Dense other than Normalize).
Result<std::optional<EmbeddingProjection>> LoadEmbeddingProjection(const std::filesystem::path& dir,
                                                                   int64_t hidden_size, const std::string& field);

// Writes 2_Dense/, 1_Pooling/config.json (projection.pooling, `projection.in_features()` wide) and
// modules.json, last, each file atomically.
Status SaveEmbeddingProjection(const std::filesystem::path& dir, const EmbeddingProjection& projection);

// How an embedding model's vectors compare: config_sentence_transformers.json's
// similarity_fn_name as written ("cosine" when the file or the field is missing).
// InvalidArgument naming `field` for an unreadable file or a malformed field.
Result<std::string> ReadSimilarity(const std::filesystem::path& dir, const std::string& field);
// Writes that file, {"similarity_fn_name": similarity}, atomically.
Status SaveSimilarity(const std::filesystem::path& dir, const std::string& similarity);

// Whitening of embeddings [n, d] (n >= 2), fed in batches (memory: d x d, whatever n): centred,
// then projected on the principal directions of their covariance with variance (eigenvalue
// above 1e-5 of the largest: below that, float32 or bf16 rounding of the pooled embeddings
// would be amplified into noise), each scaled by eigenvalue^-power: 0.5 gives identity
// covariance, smaller powers flatten the spectrum less. Largest eigenvalue first.
class WhiteningFit {
 public:
  void Add(const torch::Tensor& batch);  // [rows, d]
  int64_t rows() const { return rows_; }
  // InvalidArgument naming `field` for fewer than 2 rows, no variance, non-finite values or a
  // power outside (0, 1].
  Result<EmbeddingProjection> Finish(double power, const std::string& field) const;

 private:
  torch::Tensor sum_, outer_;  // float64: sum of rows, sum of row outer products
  int64_t rows_ = 0;
};

// The same over one tensor.
Result<EmbeddingProjection> FitWhitening(const torch::Tensor& embeddings, double power, const std::string& field);

}  // namespace mlaas::nn
