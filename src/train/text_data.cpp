#include "train/text_data.h"

#include <algorithm>
#include <numeric>

namespace mlaas::train {

Result<std::vector<TextExample>> ReadExamples(dataset::RecordReader& reader, const TrainSpec& spec,
                                              ReadStats* stats, const std::function<bool(int64_t)>& on_rows) {
  const size_t ncols = Columns(spec).size();
  if (reader.columns().size() != ncols) return Internal("reader columns do not match the objective");
  const bool classification = spec.objective == Objective::kTextClassification;
  const bool pairs = spec.objective == Objective::kSentenceEmbedding;
  std::vector<TextExample> out;
  ReadStats local;
  dataset::Row row;
  for (;;) {
    auto more = reader.Next(row);
    if (!more.has_value()) return more.error().WithField("dataset.path");
    if (!*more) break;
    ++local.rows;
    auto value = [&](size_t i) -> const std::string& {
      static const std::string kEmpty;
      return row.missing[i] ? kEmpty : row.values[i];
    };
    TextExample e;
    e.text = value(0);
    if (classification) {
      e.label = value(1);
      if (ncols > 2) e.pair = value(2);
    } else if (pairs) {
      e.pair = value(1);
      if (ncols > 2) e.negative = value(2);
    }
    const bool empty = e.text.empty() || (classification && e.label.empty()) || (pairs && e.pair.empty());
    if (empty) {
      ++local.skipped;
    } else {
      out.push_back(std::move(e));
    }
    if (local.rows % 4096 == 0 && on_rows && !on_rows(local.rows)) return Cancelled("cancelled");
  }
  if (stats) *stats = local;
  return out;
}

void SplitIndices(const std::vector<int64_t>& strata, double fraction, uint64_t seed, std::vector<size_t>& train_idx,
                  std::vector<size_t>& eval_idx) {
  std::mt19937_64 rng(seed ^ 0x5eed5eedULL);
  train_idx.clear();
  eval_idx.clear();
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < strata.size(); ++i) groups[strata[i]].push_back(i);
  for (auto& [stratum, idx] : groups) {
    std::shuffle(idx.begin(), idx.end(), rng);
    size_t n_eval = static_cast<size_t>(std::llround(fraction * static_cast<double>(idx.size())));
    if (idx.size() >= 2) n_eval = std::clamp<size_t>(n_eval, 1, idx.size() - 1);
    else n_eval = 0;
    eval_idx.insert(eval_idx.end(), idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n_eval));
    train_idx.insert(train_idx.end(), idx.begin() + static_cast<std::ptrdiff_t>(n_eval), idx.end());
  }
  // Keep the file's order within each side: reproducible and easy to inspect.
  std::sort(train_idx.begin(), train_idx.end());
  std::sort(eval_idx.begin(), eval_idx.end());
}

void SplitExamples(std::vector<TextExample> all, double fraction, uint64_t seed, bool stratify,
                   std::vector<TextExample>& train, std::vector<TextExample>& eval) {
  // Strata in label order: each label's rank among the distinct labels.
  std::map<std::string, int64_t> rank;
  if (stratify)
    for (const auto& e : all) rank.emplace(e.label, 0);
  int64_t r = 0;
  for (auto& [label, value] : rank) value = r++;
  std::vector<int64_t> strata(all.size(), 0);
  if (stratify)
    for (size_t i = 0; i < all.size(); ++i) strata[i] = rank[all[i].label];
  std::vector<size_t> train_idx, eval_idx;
  SplitIndices(strata, fraction, seed, train_idx, eval_idx);
  train.clear();
  eval.clear();
  for (size_t i : train_idx) train.push_back(std::move(all[i]));
  for (size_t i : eval_idx) eval.push_back(std::move(all[i]));
}

namespace {

// Neighbours on a QWERTY keyboard (same row and the rows above and below).
const std::string& Neighbours(char c) {
  static const std::map<char, std::string> kMap = {
      {'q', "wa"},     {'w', "qesa"},   {'e', "wrds"},   {'r', "etfd"},   {'t', "rygf"},   {'y', "tuhg"},
      {'u', "yijh"},   {'i', "uokj"},   {'o', "iplk"},   {'p', "ol"},     {'a', "qwsz"},   {'s', "awedxz"},
      {'d', "serfcx"}, {'f', "drtgvc"}, {'g', "ftyhbv"}, {'h', "gyujnb"}, {'j', "huikmn"}, {'k', "jiolm"},
      {'l', "kop"},    {'z', "asx"},    {'x', "zsdc"},   {'c', "xdfv"},   {'v', "cfgb"},   {'b', "vghn"},
      {'n', "bhjm"},   {'m', "njk"},    {'1', "2q"},     {'2', "13w"},    {'3', "24e"},    {'4', "35r"},
      {'5', "46t"},    {'6', "57y"},    {'7', "68u"},    {'8', "79i"},    {'9', "80o"},    {'0', "9p"}};
  static const std::string kNone;
  auto it = kMap.find(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return it == kMap.end() ? kNone : it->second;
}

}  // namespace

std::string AddTypos(std::string_view text, double rate, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool editable = std::isalnum(static_cast<unsigned char>(c)) != 0;  // ASCII only
    if (!editable || u(rng) >= rate) {
      out.push_back(c);
      continue;
    }
    const bool upper = std::isupper(static_cast<unsigned char>(c)) != 0;
    switch (rng() % 5) {
      case 0: {  // keyboard-neighbour substitution
        const std::string& n = Neighbours(c);
        if (n.empty()) {
          out.push_back(c);
        } else {
          char r = n[rng() % n.size()];
          out.push_back(upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(r))) : r);
        }
        break;
      }
      case 1:  // drop
        break;
      case 2:  // swap with the next character, when it is editable too
        if (i + 1 < text.size() && std::isalnum(static_cast<unsigned char>(text[i + 1]))) {
          out.push_back(text[i + 1]);
          out.push_back(c);
          ++i;
        } else {
          out.push_back(c);
        }
        break;
      case 3:  // doubling
        out.push_back(c);
        out.push_back(c);
        break;
      default:  // a stray space
        out.push_back(c);
        out.push_back(' ');
        break;
    }
  }
  return out;
}

void AugmentWithTypos(std::vector<TextExample>& examples, int64_t copies, double rate, uint64_t seed) {
  if (copies <= 0) return;
  std::mt19937_64 rng(seed ^ 0x7e905ULL);
  const size_t n = examples.size();
  examples.reserve(n * static_cast<size_t>(copies + 1));
  for (int64_t c = 0; c < copies; ++c) {
    for (size_t i = 0; i < n; ++i) {
      TextExample e = examples[i];
      e.text = AddTypos(examples[i].text, rate, rng);
      if (!e.pair.empty()) e.pair = AddTypos(examples[i].pair, rate, rng);
      examples.push_back(std::move(e));
    }
  }
}

Result<std::vector<TokenizedExample>> Tokenize(const std::vector<TextExample>& examples, const TrainSpec& spec,
                                               tokenizers::Tokenizer& tokenizer, size_t max_length,
                                               bool add_special_tokens, const std::map<std::string, int64_t>& label_ids,
                                               const std::function<bool(size_t)>& on_progress) {
  tokenizers::TruncationParams trunc;
  trunc.max_length = max_length;
  // Only the first window is trained on; a pair of two long words would otherwise build the
  // cross product of their windows.
  trunc.overflowing = false;
  tokenizer.set_truncation(trunc);
  tokenizer.set_padding(std::nullopt);
  tokenizer.set_invalid_utf8(tokenizers::InvalidUtf8::kReplace);
  const bool pairs_are_inputs = spec.objective == Objective::kTextClassification;
  const bool embedding = spec.objective == Objective::kSentenceEmbedding;
  std::vector<TokenizedExample> out(examples.size());
  constexpr size_t kChunk = 2048;
  auto compact = [](const tokenizers::Encoding& enc, TokenizedExample& t) {
    t.ids.assign(enc.ids.begin(), enc.ids.end());
    t.type_ids.assign(enc.type_ids.begin(), enc.type_ids.end());
    t.flags.resize(enc.ids.size());
    std::optional<uint32_t> prev;
    for (size_t k = 0; k < enc.ids.size(); ++k) {
      uint8_t f = 0;
      if (enc.special_tokens_mask[k]) f |= TokenizedExample::kSpecial;
      if (enc.word_ids[k].has_value() && enc.word_ids[k] != prev) f |= TokenizedExample::kWordStart;
      prev = enc.word_ids[k];
      t.flags[k] = f;
    }
  };
  for (size_t begin = 0; begin < examples.size(); begin += kChunk) {
    const size_t end = std::min(examples.size(), begin + kChunk);
    std::vector<tokenizers::EncodeInput> inputs;
    inputs.reserve(2 * (end - begin));
    for (size_t i = begin; i < end; ++i) {
      const auto& e = examples[i];
      if (pairs_are_inputs && !e.pair.empty()) {
        inputs.push_back({e.text, e.pair});
      } else {
        inputs.push_back({e.text, std::nullopt});
      }
      if (embedding) inputs.push_back({e.pair, std::nullopt});
      if (embedding && !e.negative.empty()) inputs.push_back({e.negative, std::nullopt});
    }
    MLAAS_ASSIGN_OR_RETURN(auto encs, tokenizer.EncodeBatch(inputs, add_special_tokens, 0));
    for (size_t i = begin, k = 0; i < end; ++i) {
      TokenizedExample& t = out[i];
      compact(encs[k++], t);
      if (embedding) t.ids2.assign(encs[k].ids.begin(), encs[k].ids.end()), ++k;
      if (embedding && !examples[i].negative.empty()) t.ids3.assign(encs[k].ids.begin(), encs[k].ids.end()), ++k;
      if (!label_ids.empty()) {
        auto it = label_ids.find(examples[i].label);
        if (it == label_ids.end()) {
          return InvalidArgument("label '" + examples[i].label + "' is not one of the model's labels",
                                 "dataset.loader_kwargs.label_column");
        }
        t.label = it->second;
      }
    }
    if (on_progress && !on_progress(end)) return Cancelled("cancelled");
  }
  return out;
}

std::vector<std::vector<size_t>> MakeBatches(const std::vector<TokenizedExample>& examples, int64_t batch_size,
                                             uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t bs = static_cast<size_t>(std::max<int64_t>(1, batch_size));
  auto by_length = [&](size_t a, size_t b) {
    return examples[a].length() != examples[b].length() ? examples[a].length() < examples[b].length() : a < b;
  };
  std::vector<std::vector<size_t>> batches;
  if (!shuffle) {
    std::sort(order.begin(), order.end(), by_length);
  } else {
    std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch) + 1);
    std::shuffle(order.begin(), order.end(), rng);
    const size_t pool = bs * 50;
    for (size_t p = 0; p < order.size(); p += pool) {
      auto first = order.begin() + static_cast<std::ptrdiff_t>(p);
      auto last = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), p + pool));
      std::sort(first, last, by_length);
    }
  }
  for (size_t b = 0; b < order.size(); b += bs) {
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(b),
                         order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), b + bs)));
  }
  if (shuffle) {
    std::mt19937_64 rng(seed * 7919ULL + static_cast<uint64_t>(epoch) + 17);
    std::shuffle(batches.begin(), batches.end(), rng);
  }
  return batches;
}

}  // namespace mlaas::train
