// Causal-LM prediction: prompts continued by the decoder (nn/generate.h), the continuations
// decoded as transformers' text-generation pipeline returns them (the prompt followed by the
// decoded continuation, special tokens skipped), stop strings, and streaming.
#include <algorithm>
#include <random>

#include "nn/generate.h"
#include "predict/backends.h"

namespace mlaas::predict {

using json = nlohmann::json;

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD: an incomplete UTF-8 sequence so far

// One prompt's generation in progress.
struct Row {
  std::vector<uint32_t> ids;      // the prompt's tokens, then the new ones
  size_t prompt_tokens = 0;
  size_t prompt_chars = 0;        // bytes of the decoded prompt, which the decoded sequence starts with
  std::string continuation;       // decoded so far (up to and including a stop string)
  std::string sent;               // what the sink was handed (a prefix of `continuation` so far)
  std::string finish_reason = "length";
};

// The sequence decoded past the prompt, as the pipeline cuts it.
std::string Continuation(const tokenizers::Tokenizer& tokenizer, const Row& row) {
  auto text = tokenizer.Decode(row.ids, /*skip_special_tokens=*/true);
  if (!text.has_value()) return std::string();
  return text->size() >= row.prompt_chars ? text->substr(row.prompt_chars) : std::string();
}

// The first stop string in `text` (searched from `from`, the stop strings' longest reach before
// the newest piece): the end of its first occurrence, or npos.
size_t StopEnd(const std::string& text, const std::vector<std::string>& stops, size_t from) {
  size_t best = std::string::npos;
  for (const auto& s : stops) {
    const size_t at = text.find(s, from);
    if (at != std::string::npos) best = std::min(best, at + s.size());
  }
  return best;
}

}  // namespace

Result<std::vector<json>> GenerateTexts(nn::TransformerModelImpl& model, const tokenizers::Tokenizer& tokenizer,
                                        const std::vector<const TextRow*>& prompts, const OutputOptions& options,
                                        const ServableModel::TextSink& sink, RunStats* stats,
                                        const ServableModel::RowWanted& wanted) {
  const nn::ModelConfig& c = model.config();
  const GenerationParams& g = options.generation;
  nn::GenerationOptions gen;
  gen.max_new_tokens = g.max_new_tokens;
  gen.do_sample = g.Sampling(options.top_k.has_value());
  gen.temperature = g.temperature.value_or(1.0);
  gen.top_k = options.top_k.value_or(50);
  gen.top_p = g.top_p.value_or(1.0);
  if (g.seed) {
    gen.seed = *g.seed;  // every prompt alike: the same seed, the same text
  } else {
    std::random_device random;  // each prompt a draw of its own
    for (size_t i = 0; i < prompts.size(); ++i) gen.row_seeds.push_back((uint64_t{random()} << 32) | random());
  }
  if (c.eos_token_id) gen.eos_token_ids.push_back(*c.eos_token_id);

  std::vector<Row> rows(prompts.size());
  std::vector<std::vector<int64_t>> ids(prompts.size());
  size_t tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Row& row = rows[i];
    row.ids = prompts[i]->encoding.ids;
    if (row.ids.empty()) {  // an empty prompt starts from the beginning-of-text token
      const auto start = c.bos_token_id ? c.bos_token_id : c.eos_token_id;
      if (!start)
        return InvalidArgument("input_text[" + std::to_string(i) + "] is empty and the model has no bos_token_id to start from",
                               "input_text");
      row.ids.push_back(static_cast<uint32_t>(*start));
    }
    row.prompt_tokens = row.ids.size();
    const int64_t room = c.max_position_embeddings - static_cast<int64_t>(row.prompt_tokens);
    if (room < g.max_new_tokens) {
      return InvalidArgument("input_text[" + std::to_string(i) + "] has " + std::to_string(row.prompt_tokens) +
                                 " tokens: with max_new_tokens " + std::to_string(g.max_new_tokens) +
                                 " it exceeds the model's " + std::to_string(c.max_position_embeddings) +
                                 " positions (at most " + std::to_string(std::max<int64_t>(room, 0)) + " new tokens)",
                             "max_new_tokens");
    }
    auto prompt = tokenizer.Decode(row.ids, /*skip_special_tokens=*/true);
    row.prompt_chars = prompt.has_value() ? prompt->size() : 0;
    ids[i].assign(row.ids.begin(), row.ids.end());
    tokens += row.ids.size();
  }
  // Each new token: decoded when a stop string or the sink needs the text now.
  const bool follow = !g.stop.empty() || static_cast<bool>(sink);
  size_t longest_stop = 0;
  for (const auto& s : g.stop) longest_stop = std::max(longest_stop, s.size());
  bool client_left = false;
  auto on_token = [&](size_t r, int64_t token) {
    Row& row = rows[r];
    row.ids.push_back(static_cast<uint32_t>(token));
    if (wanted && !wanted(r)) return true;  // given up: it stops here
    if (!follow) return false;
    const size_t before = row.continuation.size();
    row.continuation = Continuation(tokenizer, row);
    bool done = false;
    if (!g.stop.empty()) {
      const size_t from = before > longest_stop ? before - longest_stop : 0;
      if (size_t end = StopEnd(row.continuation, g.stop, from); end != std::string::npos) {
        row.continuation.resize(end);
        row.finish_reason = "stop";
        done = true;
      }
    }
    if (sink && !client_left) {
      // What is new since the last piece, once its characters are whole. A decoder that rewrites
      // text already handed out (clean-up of spaces) holds the pieces back until it matches again.
      std::string_view text = row.continuation;
      if (!done && text.ends_with(kReplacement)) text.remove_suffix(kReplacement.size());
      if (text.size() > row.sent.size() && text.starts_with(row.sent)) {
        if (!sink(r, std::string(text.substr(row.sent.size())))) client_left = true;
        row.sent = text;
      }
    }
    return done || client_left;
  };
  const auto f0 = Clock::now();
  std::vector<std::vector<int64_t>> generated;
  try {
    generated = nn::Generate(model, ids, gen, on_token);
  } catch (const c10::Error& e) {
    return Internal(std::string("generation failed: ") + e.what_without_backtrace());
  }
  const auto f1 = Clock::now();
  std::vector<json> out;
  size_t new_tokens = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    Row& row = rows[i];
    if (row.finish_reason != "stop") {
      row.continuation = Continuation(tokenizer, row);
      const auto& eos = gen.eos_token_ids;
      if (!generated[i].empty() && std::find(eos.begin(), eos.end(), generated[i].back()) != eos.end())
        row.finish_reason = "eos";
    }
    if (sink && !client_left && row.continuation.size() > row.sent.size() && row.continuation.starts_with(row.sent))
      sink(i, row.continuation.substr(row.sent.size()));
    new_tokens += generated[i].size();
    out.push_back({{"generated_text", prompts[i]->text + row.continuation},
                   {"new_tokens", generated[i].size()},
                   {"finish_reason", row.finish_reason}});
  }
  if (stats) {
    stats->forward_ms += Ms(f0, f1);
    stats->postprocess_ms += Ms(f1, Clock::now());
    stats->tokens += tokens + new_tokens;
    stats->padded_tokens += tokens + new_tokens;
  }
  return out;
}

}  // namespace mlaas::predict
