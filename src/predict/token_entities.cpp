#include "predict/token_entities.h"

#include <algorithm>

#include "predict/answer_spans.h"
#include "tokenizers/unicode.h"

namespace mlaas::predict {

using json = nlohmann::json;

namespace {

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// An entity under construction: a label, a score, the tokens and the text span it covers.
struct Piece {
  std::string label;
  double score = 0;
  std::vector<uint32_t> ids;
  uint32_t start = 0, end = 0;
};

int64_t Argmax(const float* scores, int64_t n) {
  return static_cast<int64_t>(std::max_element(scores, scores + n) - scores);
}

// transformers' get_tag: ("B", type) for "B-type", ("I", type) for "I-type", ("I", label) else.
std::pair<char, std::string_view> Tag(std::string_view label) {
  if (label.size() >= 2 && (label[0] == 'B' || label[0] == 'I') && label[1] == '-') return {label[0], label.substr(2)};
  return {'I', label};
}

// A word's label and score from its tokens (first / average / max).
Piece AggregateWord(const std::vector<const ClassifiedToken*>& word, const std::vector<std::string>& labels,
                    Aggregation aggregation) {
  const auto n = static_cast<int64_t>(labels.size());
  Piece p;
  p.start = word.front()->start;
  p.end = word.back()->end;
  for (const auto* t : word) p.ids.push_back(t->id);
  if (aggregation == Aggregation::kAverage) {
    std::vector<double> mean(static_cast<size_t>(n), 0.0);
    for (const auto* t : word)
      for (int64_t k = 0; k < n; ++k) mean[static_cast<size_t>(k)] += t->scores[k];
    for (double& m : mean) m /= static_cast<double>(word.size());
    const auto best = static_cast<size_t>(std::max_element(mean.begin(), mean.end()) - mean.begin());
    p.label = labels[best];
    p.score = mean[best];
    return p;
  }
  const ClassifiedToken* chosen = word.front();
  if (aggregation == Aggregation::kMax) {
    for (const auto* t : word)
      if (t->scores[Argmax(t->scores, n)] > chosen->scores[Argmax(chosen->scores, n)]) chosen = t;
  }
  const int64_t best = Argmax(chosen->scores, n);
  p.label = labels[static_cast<size_t>(best)];
  p.score = chosen->scores[best];
  return p;
}

}  // namespace

std::vector<ClassifiedToken> ClassifiedTokens(const tokenizers::Encoding& enc, std::string_view text,
                                              const float* scores, int64_t labels,
                                              const std::optional<std::string>& subword_prefix,
                                              std::optional<uint32_t> unk_id) {
  // As the tokenizer read the text: invalid bytes as U+FFFD.
  auto decoded = tokenizers::DecodeUtf8(text, tokenizers::InvalidUtf8::kReplace);
  const tokenizers::CodePoints cps = decoded.has_value() ? std::move(decoded).value() : tokenizers::CodePoints();
  std::vector<ClassifiedToken> out;
  for (size_t k = 0; k < enc.ids.size(); ++k) {
    if (k < enc.special_tokens_mask.size() && enc.special_tokens_mask[k]) continue;
    if (k < enc.attention_mask.size() && !enc.attention_mask[k]) continue;  // padding
    ClassifiedToken t;
    t.id = enc.ids[k];
    t.index = static_cast<int64_t>(k);
    t.token = k < enc.tokens.size() ? enc.tokens[k] : std::string();
    t.start = std::min<uint32_t>(enc.offsets[k].first, static_cast<uint32_t>(cps.size()));
    t.end = std::clamp<uint32_t>(enc.offsets[k].second, t.start, static_cast<uint32_t>(cps.size()));
    t.scores = scores + static_cast<int64_t>(k) * labels;
    if (unk_id && t.id == *unk_id) {
      t.token = tokenizers::EncodeUtf8(cps.data() + t.start, cps.data() + t.end);
      t.subword = false;
    } else if (subword_prefix) {
      t.subword = CodePointCount(t.token) != t.end - t.start;
    } else {
      t.subword = t.start > 0 && cps[t.start - 1] != U' ' && (t.start >= cps.size() || cps[t.start] != U' ');
    }
    out.push_back(std::move(t));
  }
  // An entity's end keeps the accents a stripping tokenizer left out of its last token.
  std::vector<std::pair<uint32_t, uint32_t>> covered;
  for (const auto& t : out) covered.emplace_back(t.start, t.end);
  const std::vector<bool> dropped = DroppedMarks(cps, covered);
  for (auto& t : out) t.end = PastDroppedMarks(dropped, t.end);
  return out;
}

json GroupEntities(const std::vector<ClassifiedToken>& tokens, const std::vector<std::string>& labels,
                   Aggregation aggregation, const EntityWord& decode) {
  const auto n = static_cast<int64_t>(labels.size());
  json out = json::array();
  if (aggregation == Aggregation::kNone) {
    for (const auto& t : tokens) {
      const int64_t best = Argmax(t.scores, n);
      if (labels[static_cast<size_t>(best)] == "O") continue;
      out.push_back({{"entity", labels[static_cast<size_t>(best)]},
                     {"score", t.scores[best]},
                     {"index", t.index},
                     {"word", t.token},
                     {"start", t.start},
                     {"end", t.end}});
    }
    return out;
  }
  // Tokens (simple) or words (first / average / max) with their labels.
  std::vector<Piece> pieces;
  if (aggregation == Aggregation::kSimple) {
    for (const auto& t : tokens) {
      const int64_t best = Argmax(t.scores, n);
      pieces.push_back({labels[static_cast<size_t>(best)], t.scores[best], {t.id}, t.start, t.end});
    }
  } else {
    std::vector<const ClassifiedToken*> word;
    for (const auto& t : tokens) {
      if (!word.empty() && !t.subword) {
        pieces.push_back(AggregateWord(word, labels, aggregation));
        word.clear();
      }
      word.push_back(&t);
    }
    if (!word.empty()) pieces.push_back(AggregateWord(word, labels, aggregation));
  }
  // Consecutive pieces of one type form an entity; a B- starts a new one.
  auto emit = [&](size_t begin, size_t end) {
    std::string_view label = pieces[begin].label;
    const size_t dash = label.find('-');
    const std::string type(dash == std::string_view::npos ? label : label.substr(dash + 1));
    if (type == "O") return;
    double score = 0;
    std::vector<uint32_t> ids;
    for (size_t i = begin; i < end; ++i) {
      score += pieces[i].score;
      ids.insert(ids.end(), pieces[i].ids.begin(), pieces[i].ids.end());
    }
    out.push_back({{"entity_group", type},
                   {"score", score / static_cast<double>(end - begin)},
                   {"word", decode(ids, pieces[begin].start, pieces[end - 1].end)},
                   {"start", pieces[begin].start},
                   {"end", pieces[end - 1].end}});
  };
  size_t begin = 0;
  for (size_t i = 1; i <= pieces.size(); ++i) {
    if (i < pieces.size()) {
      const auto [bi, tag] = Tag(pieces[i].label);
      const auto [last_bi, last_tag] = Tag(pieces[i - 1].label);
      if (tag == last_tag && bi != 'B') continue;
    }
    if (i > begin) emit(begin, i);
    begin = i;
  }
  return out;
}

}  // namespace mlaas::predict
