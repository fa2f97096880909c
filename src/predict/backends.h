// The backends behind ServableModel (servable_model.h), and what they share. Internal to the
// predict module: libtorch is allowed here.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/model.h"
#include "predict/servable_model.h"
#include "tokenizers/tokenizer.h"

namespace mlaas::predict {

// Each runs on the load thread of ServableModel::Load.
Result<std::shared_ptr<const ServableModel>> LoadTextModel(const LoadSpec& spec, Objective objective);
Result<std::shared_ptr<const ServableModel>> LoadImageModel(const LoadSpec& spec);

// The process's limit and the caller's budgets (LoadSpec::admit) on a model's weight bytes,
// computed from its config before they are allocated.
Status AdmitWeights(const LoadSpec& spec, uint64_t bytes);

// The model block's "labels" (a model from scratch).
std::vector<std::string> Labels(const nlohmann::json& model_block);
// The k best of a row of class scores: [{label, score}], best first.
nlohmann::json TopLabels(const torch::Tensor& scores, const std::vector<std::string>& labels, int64_t k);

// A causal LM's continuations of `prompts` (generation.cpp): one {generated_text (the prompt
// followed by its continuation), new_tokens, finish_reason} per prompt. Runs on the calling
// thread (the caller is on the compute thread); `sink` (optional) receives each row's text as
// it grows; a row that `wanted` (optional) no longer wants stops.
Result<std::vector<nlohmann::json>> GenerateTexts(nn::TransformerModelImpl& model, const tokenizers::Tokenizer& tokenizer,
                                                  const std::vector<const TextRow*>& prompts,
                                                  const OutputOptions& options, const ServableModel::TextSink& sink,
                                                  RunStats* stats, const ServableModel::RowWanted& wanted = nullptr);

using Clock = std::chrono::steady_clock;
inline double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace mlaas::predict
