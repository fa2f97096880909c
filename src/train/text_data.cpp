#include "train/text_data.h"

#include <algorithm>
#include <numeric>

#include "common/json_file.h"
#include "predict/answer_spans.h"
#include "common/text.h"

namespace mlaas::train {

namespace {

// The words of a JSON array of strings; nullopt when `text` is not one.
std::optional<std::vector<std::string>> JsonWords(std::string_view text) {
  auto parsed = ParseJsonText(text, "the tokens", {}, {.max_depth = 2});
  if (!parsed.has_value() || !parsed->is_array()) return std::nullopt;
  std::vector<std::string> words;
  for (const auto& w : *parsed) {
    if (!w.is_string()) return std::nullopt;
    words.push_back(w.get<std::string>());
  }
  return words;
}

// Token classification's row: the words (a JSON array of strings — a JSON Lines array, or a
// text cell that parses as one — or else a text split at whitespace) and their tags (strings or
// integers), as many of each. `structured`: the tokens came as a JSON array or object.
Status ReadWordsAndTags(const std::string& tokens, bool structured, const std::string& tags, int64_t line,
                        const TrainSpec& spec, TextExample& e) {
  const std::string where = "line " + std::to_string(line) + ": ";
  const std::string tokens_field = ColumnField(spec, 0), tags_field = ColumnField(spec, 1);
  const std::string_view t = Trim(tokens);
  std::optional<std::vector<std::string>> words =
      !t.empty() && t.front() == '[' ? JsonWords(t) : std::nullopt;
  if (structured && !words)
    return InvalidArgument(where + "the tokens are not a JSON array of strings", tokens_field);
  if (words) {
    e.words = std::move(*words);
  } else {
    size_t i = 0;
    while (i < t.size()) {
      const size_t begin = t.find_first_not_of(" \t\r\n", i);
      if (begin == std::string_view::npos) break;
      const size_t end = std::min(t.size(), t.find_first_of(" \t\r\n", begin));
      e.words.emplace_back(t.substr(begin, end - begin));
      i = end;
    }
  }
  if (e.words.empty()) return Status::Ok();  // skipped as an empty row
  auto parsed = ParseJsonText(Trim(tags), "the tags", {}, {.max_depth = 2});
  if (!parsed.has_value() || !parsed->is_array())
    return InvalidArgument(where + "the tags are not a JSON array of strings or integers", tags_field);
  for (const auto& g : *parsed) {
    if (g.is_string() && !g.get<std::string>().empty()) {
      e.tags.push_back(g.get<std::string>());
    } else if (g.is_number_integer()) {  // a class id: its name from loader_kwargs.tag_names
      const int64_t id = g.get<int64_t>();
      if (spec.tag_names.empty())
        return InvalidArgument(where + "integer tags need their names: give dataset.loader_kwargs.tag_names "
                                       "[\"O\", \"B-PER\", ...] in id order",
                               tags_field);
      if (id < 0 || id >= static_cast<int64_t>(spec.tag_names.size()))
        return InvalidArgument(where + "tag " + std::to_string(id) + " has no name in loader_kwargs.tag_names (" +
                                   std::to_string(spec.tag_names.size()) + " names)",
                               tags_field);
      e.tags.push_back(spec.tag_names[static_cast<size_t>(id)]);
    } else {
      return InvalidArgument(where + "each tag must be a non-empty string or an integer", tags_field);
    }
  }
  if (e.tags.size() != e.words.size())
    return InvalidArgument(where + std::to_string(e.words.size()) + " tokens but " + std::to_string(e.tags.size()) +
                               " tags",
                           tags_field);
  e.text = Join(e.words, " ");
  return Status::Ok();
}

// A next-sentence label: is_next / not_next, true / false (does the pair text follow?), or
// transformers' next_sentence_label integers (0: it follows, 1: a random text).
Result<std::string> NextSentenceLabel(const std::string& v, int64_t line, const TrainSpec& spec) {
  if (v == "is_next" || v == "true" || v == "True" || v == "0") return std::string(kIsNext);
  if (v == "not_next" || v == "false" || v == "False" || v == "1") return std::string(kNotNext);
  return InvalidArgument("line " + std::to_string(line) + ": the label must be is_next or not_next, true or false, or 0 "
                             "(follows) or 1 (random) as transformers' next_sentence_label; got '" + v + "'",
                         ColumnField(spec, 1));
}

// The number of code points of UTF-8 `s` (the unit of encodings' offsets).
uint32_t CodePoints(std::string_view s) {
  uint32_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Question answering's answers: SQuAD's {"text": [...], "answer_start": [...]} (code points of
// the context), every answer inside the context.
Status ReadAnswers(const std::string& answers, int64_t line, const TrainSpec& spec, TextExample& e) {
  const std::string field = ColumnField(spec, 2), where = "line " + std::to_string(line) + ": ";
  auto parsed = ParseJsonText(Trim(answers), "the answers", {}, {.max_depth = 3});
  if (!parsed.has_value() || !parsed->is_object() || !(*parsed)["text"].is_array() ||
      !(*parsed)["answer_start"].is_array() || (*parsed)["text"].size() != (*parsed)["answer_start"].size())
    return InvalidArgument(where + "the answers must be {\"text\": [...], \"answer_start\": [...]} of as many entries",
                           field);
  const int64_t context_length = CodePoints(e.pair);
  for (size_t i = 0; i < (*parsed)["text"].size(); ++i) {
    const nlohmann::json& t = (*parsed)["text"][i];
    const nlohmann::json& s = (*parsed)["answer_start"][i];
    if (!t.is_string() || !s.is_number_integer() || s.get<int64_t>() < 0)
      return InvalidArgument(where + "answer " + std::to_string(i) +
                                 " must be a text and its start, a character offset inside the context",
                             field);
    const std::string& text = t.get_ref<const std::string&>();
    const int64_t start = s.get<int64_t>(), length = CodePoints(text);
    if (length == 0) return InvalidArgument(where + "answer " + std::to_string(i) + " is empty", field);
    if (start > context_length - length)
      return InvalidArgument(where + "answer " + std::to_string(i) + " ends past the context", field);
    // The context at answer_start must read the answer (code points, as Python's str counts).
    if (const std::string at = predict::CodePointSlice(e.pair, static_cast<uint32_t>(start),
                                                       static_cast<uint32_t>(start + length));
        at != text)
      return InvalidArgument(where + "answer " + std::to_string(i) + " is '" + EscapeForLog(text, 80) +
                                 "' but the context at its answer_start " + std::to_string(start) + " reads '" +
                                 EscapeForLog(at, 80) + "' (answer_start counts characters, not bytes)",
                             field);
    e.answers.push_back(text);
    if (i == 0) e.answer_start = start;
  }
  return Status::Ok();
}

// Token classification: each token's label from the word it ends in (the first token of a word
// carries the word's label; later ones and special tokens are ignored), each word's first token.
Status LabelTokens(const TextExample& e, const tokenizers::Encoding& enc, const std::map<std::string, int64_t>& label_ids,
                   TokenizedExample& t) {
  std::vector<uint32_t> starts, ends;  // code point spans of the words in the joined text
  uint32_t at = 0;
  for (const auto& w : e.words) {
    starts.push_back(at);
    at += CodePoints(w);
    ends.push_back(at);
    at += 1;  // the space
  }
  t.word_labels.resize(e.words.size());
  for (size_t w = 0; w < e.words.size(); ++w) {
    auto it = label_ids.find(e.tags[w]);
    if (it == label_ids.end())
      return InvalidArgument("tag '" + e.tags[w] + "' is not one of the model's labels", "dataset.loader_kwargs.tags_column");
    t.word_labels[w] = static_cast<int32_t>(it->second);
  }
  t.word_tokens.assign(e.words.size(), -1);
  t.token_labels.assign(enc.ids.size(), TokenizedExample::kIgnoreLabel);
  for (size_t k = 0; k < enc.ids.size(); ++k) {
    const auto [s, end] = enc.offsets[k];
    if (enc.special_tokens_mask[k] || end <= s) continue;
    // The word holding the token's last character (a byte-level token's offsets may take in the
    // space before its word).
    const auto w = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), end - 1) - starts.begin());
    if (w == 0 || end - 1 >= ends[w - 1]) continue;  // a space
    if (t.word_tokens[w - 1] >= 0) continue;
    t.word_tokens[w - 1] = static_cast<int32_t>(k);
    t.token_labels[k] = t.word_labels[w - 1];
  }
  // A word the tokenizer left no token of (empty, whitespace, characters its normalizer removes)
  // cannot carry a tag: harmless for O, but an entity there would never be learned or found.
  // Words after the last token were cut by max_length, not lost.
  int64_t last = -1;
  for (size_t w = 0; w < e.words.size(); ++w)
    if (t.word_tokens[w] >= 0) last = static_cast<int64_t>(w);
  for (size_t w = 0; static_cast<int64_t>(w) < last; ++w) {
    if (t.word_tokens[w] < 0 && e.tags[w] != "O")
      return InvalidArgument("line " + std::to_string(e.line) + ": word " + std::to_string(w) + " ('" +
                                 EscapeForLog(e.words[w], 40) + "', tagged " + e.tags[w] +
                                 ") has no token: it is empty, whitespace or characters the tokenizer removes",
                             "dataset.loader_kwargs.tokens_column");
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<TextExample>> ReadExamples(dataset::RecordReader& reader, const TrainSpec& spec,
                                              ReadStats* stats, const std::function<bool(int64_t)>& on_rows) {
  const size_t ncols = Columns(spec).size();
  if (reader.columns().size() != ncols) return Internal("reader columns do not match the objective");
  const bool classification = spec.objective == Objective::kTextClassification;
  const bool pairs = spec.objective == Objective::kSentenceEmbedding;
  const bool tagging = spec.objective == Objective::kTokenClassification;
  const bool next_sentence = spec.objective == Objective::kNextSentencePrediction && ncols > 1;
  const bool questions = spec.objective == Objective::kQuestionAnswering;
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
    auto structured = [&](size_t i) { return i < row.structured.size() && row.structured[i]; };
    // Texts are strings: a JSON Lines array or object where a text goes is refused, not read as
    // its JSON (a label, the tags, SQuAD's answers and token classification's words may be JSON).
    for (size_t i = 0; i < ncols; ++i) {
      const bool json_column = tagging || ((classification || next_sentence) && i == 1) || (questions && i == 2);
      if (!json_column && structured(i))
        return InvalidArgument("line " + std::to_string(row.line) + ": the " + reader.columns()[i] +
                                   " column holds a JSON " + (row.values[i].starts_with('[') ? "array" : "object") +
                                   ", not a text",
                               ColumnField(spec, i));
    }
    TextExample e;
    e.line = row.line;
    if (tagging) {
      MLAAS_RETURN_IF_ERROR(ReadWordsAndTags(value(0), structured(0), value(1), row.line, spec, e));
    } else {
      e.text = value(0);
    }
    if (classification) {
      e.label = value(1);
      if (ncols > 2) e.pair = value(2);
    } else if (pairs) {
      e.pair = value(1);
      if (ncols > 2) e.negative = value(2);
    } else if (questions) {
      e.pair = value(1);
      if (!e.text.empty() && !e.pair.empty() && !value(2).empty())
        MLAAS_RETURN_IF_ERROR(ReadAnswers(value(2), row.line, spec, e));
    } else if (next_sentence) {
      e.pair = value(2);
      if (!value(1).empty()) {
        MLAAS_ASSIGN_OR_RETURN(e.label, NextSentenceLabel(value(1), row.line, spec));
      }
    }
    const bool empty = Trim(e.text).empty() || (classification && e.label.empty()) || (pairs && e.pair.empty()) ||
                       (next_sentence && (e.pair.empty() || e.label.empty())) ||
                       (questions && (e.pair.empty() || e.answers.empty()));  // SQuAD v1: answerable only
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

namespace {

// The sentences of a document: cut after ., ! or ? followed by whitespace, and at line ends.
std::vector<std::string> Sentences(std::string_view doc) {
  std::vector<std::string> out;
  std::string current;
  auto flush = [&] {
    const std::string_view t = Trim(current);
    if (!t.empty()) out.emplace_back(t);
    current.clear();
  };
  for (size_t i = 0; i < doc.size(); ++i) {
    const char c = doc[i];
    if (c == '\n' || c == '\r') {
      flush();
      continue;
    }
    current.push_back(c);
    if ((c == '.' || c == '!' || c == '?') && (i + 1 == doc.size() || doc[i + 1] == ' ' || doc[i + 1] == '\t')) flush();
  }
  flush();
  return out;
}

}  // namespace

std::vector<TextExample> SampleNextSentencePairs(const std::vector<TextExample>& documents, uint64_t seed) {
  std::vector<std::vector<std::string>> docs;
  size_t total = 0;
  for (const auto& d : documents) {
    docs.push_back(Sentences(d.text));
    total += docs.back().size();
  }
  std::mt19937_64 rng(seed ^ 0x6e5b6e5bULL);
  std::vector<TextExample> out;
  for (size_t d = 0; d < docs.size(); ++d) {
    const auto& s = docs[d];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      TextExample e;
      e.text = s[i];
      if (rng() % 2 == 0 || total == s.size()) {  // no other document to draw from: true pairs only
        e.pair = s[i + 1];
        e.label = std::string(kIsNext);
      } else {  // a sentence of another document, as BERT's pre-training draws it
        size_t other = d;
        while (other == d || docs[other].empty()) other = rng() % docs.size();
        e.pair = docs[other][rng() % docs[other].size()];
        e.label = std::string(kNotNext);
      }
      out.push_back(std::move(e));
    }
  }
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
  const bool pairs_are_inputs =
      spec.objective == Objective::kTextClassification || spec.objective == Objective::kNextSentencePrediction;
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
      if (spec.objective == Objective::kTokenClassification) {
        MLAAS_RETURN_IF_ERROR(LabelTokens(examples[i], encs[k - 1], label_ids, t));
      } else if (!label_ids.empty()) {
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

Result<std::vector<TokenizedExample>> TokenizeQuestions(const std::vector<TextExample>& examples, const TrainSpec& spec,
                                                        tokenizers::Tokenizer& tokenizer, size_t max_length,
                                                        size_t stride, const std::function<bool(size_t)>& on_progress) {
  tokenizers::TruncationParams trunc;
  trunc.max_length = max_length;
  trunc.strategy = tokenizers::TruncationStrategy::kOnlySecond;
  trunc.stride = stride;
  trunc.overflowing = true;  // every window of the context,
  trunc.stop_early = false;  // over the whole context
  tokenizer.set_truncation(trunc);
  tokenizer.set_padding(std::nullopt);
  tokenizer.set_invalid_utf8(tokenizers::InvalidUtf8::kReplace);
  std::vector<TokenizedExample> out;
  for (size_t i = 0; i < examples.size(); ++i) {
    const TextExample& e = examples[i];
    // The question whole, with room left for a window of context that moves by at least the stride.
    auto q = tokenizer.Encode(e.text, std::nullopt, /*add_special_tokens=*/false);
    if (!q.has_value() || q->size() + kQuestionSpecialTokens + 2 * stride > max_length)
      return InvalidArgument("line " + std::to_string(e.line) + ": the question (" +
                                 (q.has_value() ? std::to_string(q->size()) + " tokens" : std::string("too long")) +
                                 ") leaves no room in " + std::to_string(max_length) +
                                 " tokens for context windows overlapping by " + std::to_string(stride) +
                                 ": shorten it or raise model_train.max_length",
                             ColumnField(spec, 0));
    auto enc = tokenizer.Encode(e.text, e.pair, /*add_special_tokens=*/true);
    if (!enc.has_value())
      return InvalidArgument("line " + std::to_string(e.line) + ": " + enc.error().message(), ColumnField(spec, 0));
    std::vector<tokenizers::Encoding> windows = std::move(enc->overflowing);
    enc->overflowing.clear();
    windows.insert(windows.begin(), std::move(*enc));
    predict::TypeWindowsAsTheFirst(windows);
    const int64_t answer_end = e.answer_start + static_cast<int64_t>(CodePoints(e.answers.empty() ? "" : e.answers[0]));
    for (const auto& w : windows) {
      TokenizedExample t;
      t.ids.assign(w.ids.begin(), w.ids.end());
      t.type_ids.assign(w.type_ids.begin(), w.type_ids.end());
      t.flags.resize(w.ids.size());
      t.example = static_cast<int32_t>(i);
      t.context_offsets.assign(w.ids.size(), TokenizedExample::kNoOffset);
      int64_t first = -1, last = -1;
      for (size_t k = 0; k < w.ids.size(); ++k) {
        if (w.special_tokens_mask[k]) t.flags[k] |= TokenizedExample::kSpecial;
        if (k < w.sequence_ids.size() && w.sequence_ids[k] == 1u && !w.special_tokens_mask[k]) {
          t.context_offsets[k] = w.offsets[k];
          if (first < 0) first = static_cast<int64_t>(k);
          last = static_cast<int64_t>(k);
        }
      }
      // The answer's tokens when the window holds all of it: the last token starting at or
      // before its start, the first ending at or after its end (run_qa's rule).
      if (first >= 0 && e.answer_start >= 0 && t.context_offsets[first].first <= e.answer_start &&
          t.context_offsets[last].second >= answer_end) {
        int64_t s = first, en = last;
        while (s + 1 <= last && t.context_offsets[s + 1].first <= e.answer_start) ++s;
        while (en - 1 >= first && t.context_offsets[en - 1].second >= answer_end) --en;
        t.start_position = static_cast<int32_t>(s);
        t.end_position = static_cast<int32_t>(std::max(s, en));
      }
      out.push_back(std::move(t));
    }
    if (on_progress && i % 256 == 0 && !on_progress(i)) return Cancelled("cancelled");
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
