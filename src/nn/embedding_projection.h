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

#include "common/result.h"
#include "nn/config.h"

namespace mlaas::nn {

struct EmbeddingProjection {
  torch::Tensor weight;  // [out, in], float32
  torch::Tensor bias;    // [out], float32
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  // [n, in] -> [n, out], in float32 on the weights' device.
  torch::Tensor Apply(const torch::Tensor& pooled) const;
};

// The directory's Dense projection; none when it has no modules.json, or one without a Dense
// module. InvalidArgument naming `field` for a malformed modules.json or module (a path that
// leaves the directory, missing or mis-shaped tensors, in_features other than `hidden_size`, an
// activation other than identity, more than one Dense, a module after it other than Normalize).
Result<std::optional<EmbeddingProjection>> LoadEmbeddingProjection(const std::filesystem::path& dir,
                                                                   int64_t hidden_size, const std::string& field);

// Writes 2_Dense/, 1_Pooling/config.json (pooling, `projection.in_features()` wide) and
// modules.json, last, each file atomically.
Status SaveEmbeddingProjection(const std::filesystem::path& dir, const EmbeddingProjection& projection,
                               Pooling pooling);

// Whitening fitted on `embeddings` [n, d] (n >= 2): centred, then projected on the principal
// directions of their covariance with non-zero variance (eigenvalue above 1e-7 of the largest),
// each scaled by eigenvalue^-power: 0.5 gives identity covariance, smaller powers flatten the
// spectrum less. Largest eigenvalue first. InvalidArgument naming `field` for too few rows or no
// variance.
Result<EmbeddingProjection> FitWhitening(const torch::Tensor& embeddings, double power, const std::string& field);

}  // namespace mlaas::nn
