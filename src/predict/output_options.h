// What a prediction returns beyond its default outputs, as requests ask for it. Torch-free:
// the request parsers (and their fuzz targets) include it without the engine.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"

namespace mlaas::predict {

// What a forward pass returns beyond the default (the label and its score; the embedding; the
// top 5 candidates per [MASK]). Inputs with different options do not share a forward pass.
struct OutputOptions {
  std::optional<int64_t> top_k;  // classification: also the k best labels; fill-mask: k candidates
  bool cls_pooling = false;      // embeddings: the first token instead of the mean over tokens
  bool normalize = false;        // embeddings: unit length
  bool all_scores = false;       // classification: every label's score, in label order ("scores")
  std::string Key() const;
  bool operator==(const OutputOptions&) const = default;
};

// Parses the options of a predict_input-like object ({top_k, pooling, normalize}); errors
// name `prefix` + "." + the member.
Result<OutputOptions> ParseOutputOptions(const nlohmann::json& in, const std::string& prefix);

}  // namespace mlaas::predict
