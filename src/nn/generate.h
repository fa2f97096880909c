// mlaas::nn — text generation with a decoder (GPT-2): greedy or sampled decoding over a
// key/value cache, with the logits processing of transformers' generate() (temperature, then
// top-k, then top-p). Prompts of a batch are left-padded, as transformers' text-generation
// pipeline pads them; each row samples from a generator of its own seeded by the request's
// seed, so that a prompt's continuation does not depend on the rows beside it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "nn/model.h"

namespace mlaas::nn {

struct GenerationOptions {
  int64_t max_new_tokens = 20;
  bool do_sample = false;    // false: greedy (the most likely token each step)
  double temperature = 1.0;  // sampling: logits divided by it (> 0)
  int64_t top_k = 50;        // sampling: only the k most likely tokens (0: all), transformers' default 50
  double top_p = 1.0;        // sampling: the smallest set of tokens holding this probability (1: all)
  uint64_t seed = 0;
  std::vector<uint64_t> row_seeds;  // one per prompt, instead of `seed` for all, when given
  std::vector<int64_t> eos_token_ids;  // a row ends after producing one of these
};

// Called after each step for every row still generating, with its new token; returns true to
// end that row there (a stop string was reached, the client left).
using TokenCallback = std::function<bool(size_t row, int64_t token)>;

// The new tokens of each prompt (an end-of-text token that ended a row included). Prompts must
// be non-empty and prompt + max_new_tokens must fit the model's positions (checked by the
// caller). Throws c10::Error on failures of the forward pass.
std::vector<std::vector<int64_t>> Generate(TransformerModelImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerationOptions& options, const TokenCallback& on_token = nullptr);

// The next token of one row's logits [vocab] (float32, CPU) under `options`, drawing from `gen`
// when sampling.
int64_t NextToken(const torch::Tensor& logits, const GenerationOptions& options, at::Generator& gen);

}  // namespace mlaas::nn
