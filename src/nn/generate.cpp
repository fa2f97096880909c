#include "nn/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>

namespace mlaas::nn {

int64_t NextToken(const torch::Tensor& logits, const GenerationOptions& options, at::Generator& gen) {
  if (!options.do_sample || options.temperature <= 0) return logits.argmax().item<int64_t>();
  const float lowest = -std::numeric_limits<float>::infinity();
  auto scores = logits / options.temperature;
  if (options.top_k > 0 && options.top_k < scores.size(0)) {
    auto kth = std::get<0>(scores.topk(options.top_k)).index({-1});
    scores = scores.masked_fill(scores < kth, lowest);
  }
  if (options.top_p < 1.0) {
    // As transformers' TopPLogitsWarper: ascending order, drop the tokens whose cumulative
    // probability stays within 1 - top_p, always keeping the most likely one.
    auto [sorted, order] = scores.sort(/*dim=*/-1, /*descending=*/false);
    auto cumulative = torch::softmax(sorted, -1).cumsum(-1);
    auto remove = cumulative.le(1.0 - options.top_p);
    remove.index_put_({-1}, false);
    scores = scores.scatter(0, order, sorted.masked_fill(remove, lowest));
  }
  auto probs = torch::softmax(scores, -1);
  return torch::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
}

std::vector<std::vector<int64_t>> Generate(TransformerModelImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerationOptions& options, const TokenCallback& on_token) {
  TORCH_CHECK(model.decoder, "generation needs a decoder model");
  const size_t n = prompts.size();
  std::vector<std::vector<int64_t>> out(n);
  if (n == 0 || options.max_new_tokens <= 0) return out;
  const torch::Device device = model.decoder->wte->weight.device();
  const int64_t pad = model.config().pad_token_id;
  size_t longest = 0;
  for (const auto& p : prompts) {
    TORCH_CHECK(!p.empty(), "generation needs a non-empty prompt");
    longest = std::max(longest, p.size());
  }
  const int64_t len = static_cast<int64_t>(longest);
  // Left-padded prompts; positions count each row's own tokens from 0.
  auto ids = torch::full({static_cast<int64_t>(n), len}, pad, torch::kInt64);
  auto mask = torch::zeros({static_cast<int64_t>(n), len}, torch::kInt64);
  std::vector<int64_t> next_position(n);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  for (size_t r = 0; r < n; ++r) {
    const int64_t row = static_cast<int64_t>(r), offset = len - static_cast<int64_t>(prompts[r].size());
    for (size_t t = 0; t < prompts[r].size(); ++t) {
      ids_a[row][offset + static_cast<int64_t>(t)] = prompts[r][t];
      mask_a[row][offset + static_cast<int64_t>(t)] = 1;
    }
    next_position[r] = static_cast<int64_t>(prompts[r].size());
  }
  auto positions = (mask.cumsum(1) - 1).clamp_min(0);
  std::vector<at::Generator> gens;
  TORCH_CHECK(options.row_seeds.empty() || options.row_seeds.size() == n, "row_seeds must give one seed per prompt");
  for (size_t r = 0; r < n; ++r)
    gens.push_back(at::make_generator<at::CPUGeneratorImpl>(options.row_seeds.empty() ? options.seed : options.row_seeds[r]));

  torch::InferenceMode guard;
  KvCache cache;
  std::vector<size_t> active(n);  // batch row -> prompt index
  for (size_t r = 0; r < n; ++r) active[r] = r;
  mask = mask.to(device);
  torch::Tensor hidden = model.decoder->forward(ids.to(device), mask, positions.to(device), &cache);
  torch::Tensor logits = model.decoder->Logits(hidden.select(1, -1)).to(torch::kCPU, torch::kFloat32);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    std::vector<int64_t> tokens(active.size());
    std::vector<int64_t> keep;
    for (size_t i = 0; i < active.size(); ++i) {
      const size_t r = active[i];
      tokens[i] = NextToken(logits[static_cast<int64_t>(i)], options, gens[r]);
      out[r].push_back(tokens[i]);
      bool done = std::find(options.eos_token_ids.begin(), options.eos_token_ids.end(), tokens[i]) !=
                  options.eos_token_ids.end();
      if (on_token && on_token(r, tokens[i])) done = true;
      if (!done) keep.push_back(static_cast<int64_t>(i));
    }
    if (keep.empty() || step + 1 == options.max_new_tokens) break;
    if (keep.size() != active.size()) {  // finished rows leave the batch
      auto rows = torch::tensor(keep, torch::kInt64);
      cache.Select(rows.to(device));
      mask = mask.index_select(0, rows.to(device));
      std::vector<size_t> still;
      std::vector<int64_t> kept_tokens;
      for (int64_t i : keep) {
        still.push_back(active[static_cast<size_t>(i)]);
        kept_tokens.push_back(tokens[static_cast<size_t>(i)]);
      }
      active = std::move(still);
      tokens = std::move(kept_tokens);
    }
    const int64_t b = static_cast<int64_t>(active.size());
    auto step_ids = torch::tensor(tokens, torch::kInt64).view({b, 1});
    std::vector<int64_t> step_positions;
    for (size_t r : active) step_positions.push_back(next_position[r]++);
    auto step_pos = torch::tensor(step_positions, torch::kInt64).view({b, 1});
    mask = torch::cat({mask, torch::ones({b, 1}, mask.options())}, 1);
    hidden = model.decoder->forward(step_ids.to(device), mask, step_pos.to(device), &cache);
    logits = model.decoder->Logits(hidden.select(1, -1)).to(torch::kCPU, torch::kFloat32);
  }
  return out;
}

}  // namespace mlaas::nn
