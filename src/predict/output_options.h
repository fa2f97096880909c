// What a prediction returns beyond its default outputs, as requests ask for it. Torch-free:
// the request parsers (and their fuzz targets) include it without the engine.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace mlaas::predict {

// How a causal LM continues its prompts (predict_input / parameters of causal-lm models).
// Sampling when do_sample is true, or when it is left out and temperature (> 0), top_k or
// top_p is given; greedy otherwise (temperature 0 is greedy too).
struct GenerationParams {
  int64_t max_new_tokens = 20;
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p;
  std::optional<uint64_t> seed;    // sampling: none draws one (a different text each time)
  std::vector<std::string> stop;   // generation of a text ends once it holds one of these
  bool Sampling(bool top_k_given) const {
    if (do_sample) return *do_sample && temperature.value_or(1.0) > 0;
    if (temperature) return *temperature > 0;
    return top_k_given || top_p.has_value();
  }
  bool operator==(const GenerationParams&) const = default;
};

// How a token classifier's per-token labels become entities (transformers' pipeline names):
// none (every token), simple (consecutive tokens of a type grouped), first / average / max
// (words first: a word's label from its first token, its tokens' mean scores, or its most
// confident token; then grouped).
enum class Aggregation { kNone, kSimple, kFirst, kAverage, kMax };
std::string_view AggregationName(Aggregation a);

// What a forward pass returns beyond the default (the label and its score; the embedding; the
// top 5 candidates per [MASK]). Inputs with different options do not share a forward pass.
struct OutputOptions {
  std::optional<int64_t> top_k;  // classification: also the k best labels; fill-mask: k candidates
  bool cls_pooling = false;      // embeddings: the first token instead of the mean over tokens
  bool normalize = false;        // embeddings: unit length
  bool all_scores = false;       // classification: every label's score, in label order ("scores")
  GenerationParams generation;   // causal-lm: top_k is sampling's too
  Aggregation aggregation = Aggregation::kSimple;  // token-classification
  std::string Key() const;
  bool operator==(const OutputOptions&) const = default;
};

// Parses the options of a predict_input-like object ({top_k, pooling, normalize,
// max_new_tokens, temperature, top_p, seed, stop, do_sample, aggregation_strategy}); errors
// name `prefix` + "." + the member.
Result<OutputOptions> ParseOutputOptions(const nlohmann::json& in, const std::string& prefix);

}  // namespace mlaas::predict
