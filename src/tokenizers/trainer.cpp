#include "tokenizers/trainer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <queue>
#include <unordered_set>

namespace mlaas::tokenizers {

using nlohmann::json;

Status WordCounter::Add(std::string_view line) {
  MLAAS_ASSIGN_OR_RETURN(auto words, pipeline_.Words(line));
  ++lines_;
  for (auto& w : words) {
    if (w.empty()) continue;
    for (unsigned char c : w) characters_ += (c & 0xC0) != 0x80;
    if (auto it = counts_.find(w); it != counts_.end()) {
      ++it->second;
    } else {
      counts_.emplace(std::move(w), 1);
    }
  }
  return Status::Ok();
}

namespace {

uint64_t PairKey(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }

struct Symbol {
  uint32_t id;
  size_t len;  // chars
};

// Merges every non-overlapping (c1, c2) of `word` into `rep`; returns the pair count changes
// (pair, +1/-1), as the reference's Word::merge does. One pass, the merged word written over the
// old one as it is read: linear in the word's length (a text may be one word of millions of
// characters).
void MergeWord(std::vector<Symbol>& word, uint32_t c1, uint32_t c2, uint32_t rep, size_t max_len,
               std::vector<std::pair<uint64_t, int>>& changes) {
  const size_t n = word.size();
  size_t w = 0;  // symbols of the merged word so far: word[0, w)
  for (size_t r = 0; r < n;) {
    if (word[r].id == c1 && r + 1 < n && word[r + 1].id == c2) {
      const Symbol merged{rep, word[r].len + word[r + 1].len};
      if (w > 0) {
        changes.push_back({PairKey(word[w - 1].id, c1), -1});
        if (word[w - 1].len + merged.len < max_len) changes.push_back({PairKey(word[w - 1].id, rep), 1});
      }
      if (r + 2 < n) {
        changes.push_back({PairKey(c2, word[r + 2].id), -1});
        if (word[r + 2].len + merged.len < max_len) changes.push_back({PairKey(rep, word[r + 2].id), 1});
      }
      word[w++] = merged;
      r += 2;
    } else {
      word[w++] = word[r++];
    }
  }
  word.resize(w);
}

struct Entry {
  uint64_t count;
  uint64_t pair;
  std::vector<uint32_t> pos;  // the words this entry merges in
};

struct EntryLess {
  // Max-heap: higher count first; equal counts: the smaller (left id, right id) first.
  bool operator()(const Entry& a, const Entry& b) const {
    if (a.count != b.count) return a.count < b.count;
    return a.pair > b.pair;
  }
};

}  // namespace

Result<BpeTrainingResult> TrainBpe(const std::unordered_map<std::string, uint64_t>& words,
                                   const TrainerOptions& o,
                                   const std::function<bool(double)>& progress) {
  std::unordered_map<std::string, uint32_t> w2id;
  std::vector<std::string> id2w;
  auto add = [&](const std::string& s) -> uint32_t {
    auto [it, inserted] = w2id.emplace(s, static_cast<uint32_t>(id2w.size()));
    if (inserted) id2w.push_back(s);
    return it->second;
  };
  for (const auto& sp : o.special_tokens) add(sp);

  // Words in a fixed (sorted) order: the reference walks a hash map here, which only changes
  // the ids of prefix/suffix variants (see docs).
  std::vector<std::pair<CodePoints, uint64_t>> list;
  list.reserve(words.size());
  {
    std::vector<const std::pair<const std::string, uint64_t>*> sorted;
    sorted.reserve(words.size());
    for (const auto& kv : words) sorted.push_back(&kv);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
    for (const auto* kv : sorted) {
      auto cps = DecodeUtf8(kv->first, InvalidUtf8::kReplace).value();
      list.push_back({std::move(cps), kv->second});
    }
  }

  // Alphabet: every char, weighted by word counts; initial chars always kept.
  std::unordered_map<char32_t, uint64_t> alpha;
  for (const auto& [cps, cnt] : list) {
    for (char32_t c : cps) alpha[c] += cnt;
  }
  for (char32_t c : o.initial_alphabet) alpha[c] = UINT64_MAX;
  std::vector<std::pair<char32_t, uint64_t>> kept(alpha.begin(), alpha.end());
  if (o.limit_alphabet && kept.size() > *o.limit_alphabet) {
    // Drop the least frequent (ties: lower code points first).
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second < b.second : a.first < b.first;
    });
    kept.erase(kept.begin(), kept.begin() + static_cast<ptrdiff_t>(kept.size() - *o.limit_alphabet));
  }
  std::sort(kept.begin(), kept.end());
  for (const auto& [c, n] : kept) add(EncodeUtf8(&c, &c + 1));

  // Words as symbol lists; prefix/suffix variants get their ids here.
  std::vector<std::vector<Symbol>> ws(list.size());
  std::vector<uint64_t> counts(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& [cps, cnt] = list[i];
    counts[i] = cnt;
    for (size_t k = 0; k < cps.size(); ++k) {
      std::string s = EncodeUtf8(&cps[k], &cps[k] + 1);
      if (!w2id.count(s)) continue;  // removed by limit_alphabet
      if (k > 0 && o.continuing_subword_prefix) s = *o.continuing_subword_prefix + s;
      if (k + 1 == cps.size() && o.end_of_word_suffix) s += *o.end_of_word_suffix;
      ws[i].push_back({add(s), 1});
    }
  }

  const size_t max_len = o.max_token_length.value_or(SIZE_MAX);
  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  for (size_t i = 0; i < ws.size(); ++i) {
    for (size_t k = 0; k + 1 < ws[i].size(); ++k) {
      uint64_t p = PairKey(ws[i][k].id, ws[i][k + 1].id);
      pair_counts[p] += static_cast<int64_t>(counts[i]);
      where[p].push_back(static_cast<uint32_t>(i));
    }
  }
  std::priority_queue<Entry, std::vector<Entry>, EntryLess> heap;
  auto drain = [&]() {
    // A fixed order for pushes of equal entries.
    std::vector<std::pair<uint64_t, std::vector<uint32_t>>> items(where.begin(), where.end());
    where.clear();
    std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [p, pos] : items) {
      int64_t c = pair_counts[p];
      if (c <= 0) continue;
      std::sort(pos.begin(), pos.end());
      pos.erase(std::unique(pos.begin(), pos.end()), pos.end());
      heap.push({static_cast<uint64_t>(c), p, std::move(pos)});
    }
  };
  drain();

  std::vector<std::pair<uint64_t, uint32_t>> merges;  // (pair, new id), in order
  std::vector<std::pair<uint64_t, int>> changes;
  size_t steps = 0;
  auto last_report = std::chrono::steady_clock::now();
  const size_t start_size = w2id.size();
  while (w2id.size() < o.vocab_size && !heap.empty()) {
    Entry top = heap.top();
    heap.pop();
    int64_t current = pair_counts[top.pair];
    uint64_t cur = static_cast<uint64_t>(current);
    if (top.count != cur) {
      top.count = cur;
      heap.push(std::move(top));
      continue;
    }
    if (top.count < 1 || o.min_frequency > top.count) break;
    const uint32_t left = static_cast<uint32_t>(top.pair >> 32);
    const uint32_t right = static_cast<uint32_t>(top.pair & 0xFFFFFFFFu);
    std::string b = id2w[right];
    if (o.continuing_subword_prefix && b.compare(0, o.continuing_subword_prefix->size(),
                                                 *o.continuing_subword_prefix) == 0) {
      b.erase(0, o.continuing_subword_prefix->size());
    }
    const uint32_t new_id = add(id2w[left] + b);
    merges.push_back({top.pair, new_id});
    for (uint32_t i : top.pos) {
      changes.clear();
      MergeWord(ws[i], left, right, new_id, max_len, changes);
      for (const auto& [p, d] : changes) {
        pair_counts[p] += d * static_cast<int64_t>(counts[i]);
        if (d > 0) where[p].push_back(i);
      }
    }
    drain();
    // Progress (and a cancel) at the first merge and every 256 after it, or every half second
    // when merges are slow (a word of millions of characters is merged in at every step).
    if (progress && ((++steps % 256) == 1 || std::chrono::steady_clock::now() - last_report > std::chrono::milliseconds(500))) {
      last_report = std::chrono::steady_clock::now();
      double f = o.vocab_size > start_size
                     ? static_cast<double>(w2id.size() - start_size) / static_cast<double>(o.vocab_size - start_size)
                     : 1.0;
      if (!progress(std::min(1.0, f))) return Cancelled("training was cancelled");
    }
  }

  BpeTrainingResult result;
  result.vocab = std::move(id2w);
  // A pair merged twice keeps its last rank, as the reference's merge map does.
  std::unordered_map<uint64_t, size_t> last;
  for (size_t r = 0; r < merges.size(); ++r) last[merges[r].first] = r;
  for (size_t r = 0; r < merges.size(); ++r) {
    if (last[merges[r].first] != r) continue;
    uint32_t l = static_cast<uint32_t>(merges[r].first >> 32);
    uint32_t rr = static_cast<uint32_t>(merges[r].first & 0xFFFFFFFFu);
    result.merges.push_back({result.vocab[l], result.vocab[rr]});
  }
  return result;
}

std::unique_ptr<Tokenizer> TrainingPipeline(const TrainSpec& spec) {
  if (spec.kind == TokenizerKind::kWordPiece) {
    auto normalizer = NormalizerFromJson(json{{"type", "BertNormalizer"}, {"clean_text", true},
                                             {"handle_chinese_chars", true},
                                             {"strip_accents", nullptr},
                                             {"lowercase", spec.lowercase}}).value();
    auto pre = PreTokenizerFromJson(json{{"type", "BertPreTokenizer"}}).value();
    WordPieceOptions wo;
    if (spec.trainer.continuing_subword_prefix) wo.continuing_subword_prefix = *spec.trainer.continuing_subword_prefix;
    return Tokenizer::Create(std::make_unique<WordPiece>(Vocab(), wo), std::move(normalizer),
                             std::move(pre), nullptr, nullptr);
  }
  std::unique_ptr<Normalizer> normalizer;
  if (spec.lowercase) normalizer = NormalizerFromJson(json{{"type", "Lowercase"}}).value();
  auto pre = PreTokenizerFromJson(json{{"type", "ByteLevel"}, {"add_prefix_space", false},
                                       {"trim_offsets", true}, {"use_regex", true}}).value();
  auto bpe = Bpe::Create(Vocab(), {}, {}).value();
  return Tokenizer::Create(std::move(bpe), std::move(normalizer), std::move(pre), nullptr, nullptr);
}

Result<std::unique_ptr<Tokenizer>> BuildTrainedTokenizer(const TrainSpec& spec,
                                                         const WordCounter& words,
                                                         const std::function<bool(double)>& progress) {
  TrainerOptions o = spec.trainer;
  if (spec.kind == TokenizerKind::kWordPiece && !o.continuing_subword_prefix) {
    o.continuing_subword_prefix = "##";
  }
  MLAAS_ASSIGN_OR_RETURN(BpeTrainingResult trained, TrainBpe(words.counts(), o, progress));
  Vocab vocab;
  for (size_t i = 0; i < trained.vocab.size(); ++i) vocab.Set(trained.vocab[i], static_cast<uint32_t>(i));
  auto has = [&](const char* t) {
    return std::find(o.special_tokens.begin(), o.special_tokens.end(), t) != o.special_tokens.end();
  };
  // Ids of the special tokens the post-processors use, read before the vocabulary moves into
  // the model.
  std::map<std::string, uint32_t> special_ids;
  for (const char* t : {"[CLS]", "[SEP]", "<s>", "</s>"}) {
    if (auto id = vocab.Find(t)) special_ids[t] = *id;
  }
  auto id_of = [&](const char* t) { return special_ids.at(t); };

  std::unique_ptr<Tokenizer> t;
  TrainSpec pipeline_spec = spec;
  pipeline_spec.trainer = o;
  auto pipeline = TrainingPipeline(pipeline_spec);
  auto parts = pipeline->ToJson();
  if (spec.kind == TokenizerKind::kWordPiece) {
    WordPieceOptions wo;
    wo.continuing_subword_prefix = *o.continuing_subword_prefix;
    std::unique_ptr<PostProcessor> post;
    if (has("[CLS]") && has("[SEP]")) {
      post = PostProcessorFromJson(json{{"type", "BertProcessing"},
                                        {"sep", json::array({"[SEP]", id_of("[SEP]")})},
                                        {"cls", json::array({"[CLS]", id_of("[CLS]")})}}).value();
    }
    t = Tokenizer::Create(std::make_unique<WordPiece>(std::move(vocab), wo),
                          NormalizerFromJson(json::parse(parts["normalizer"].dump())).value(),
                          PreTokenizerFromJson(json::parse(parts["pre_tokenizer"].dump())).value(),
                          std::move(post),
                          DecoderFromJson(json{{"type", "WordPiece"}, {"prefix", wo.continuing_subword_prefix},
                                               {"cleanup", true}}).value());
  } else {
    BpeOptions bo;
    bo.continuing_subword_prefix = o.continuing_subword_prefix;
    bo.end_of_word_suffix = o.end_of_word_suffix;
    MLAAS_ASSIGN_OR_RETURN(auto bpe, Bpe::Create(std::move(vocab), std::move(trained.merges), bo));
    std::unique_ptr<PostProcessor> post;
    if (has("<s>") && has("</s>")) {
      post = PostProcessorFromJson(json{{"type", "RobertaProcessing"}, {"sep", json::array({"</s>", id_of("</s>")})},
                                        {"cls", json::array({"<s>", id_of("<s>")})}, {"trim_offsets", true},
                                        {"add_prefix_space", false}}).value();
    } else {
      post = PostProcessorFromJson(json{{"type", "ByteLevel"}, {"add_prefix_space", false},
                                        {"trim_offsets", true}, {"use_regex", true}}).value();
    }
    std::unique_ptr<Normalizer> normalizer;
    if (!parts["normalizer"].is_null()) {
      normalizer = NormalizerFromJson(json::parse(parts["normalizer"].dump())).value();
    }
    t = Tokenizer::Create(std::move(bpe), std::move(normalizer),
                          PreTokenizerFromJson(json::parse(parts["pre_tokenizer"].dump())).value(),
                          std::move(post), DecoderFromJson(json{{"type", "ByteLevel"}}).value());
  }
  std::vector<AddedToken> specials;
  for (const auto& sp : o.special_tokens) specials.push_back({sp, false, false, false, false, true});
  t->AddTokens(specials);
  return t;
}

CorpusCoverage MeasureCoverage(const Tokenizer& tokenizer, const WordCounter& words) {
  CorpusCoverage c;
  std::optional<uint32_t> unk;
  if (const auto* wp = dynamic_cast<const WordPiece*>(&tokenizer.model())) {
    unk = wp->vocab().Find(wp->options().unk_token);
  }
  std::vector<Token> toks;
  for (const auto& [w, n] : words.counts()) {
    c.words += n;
    toks.clear();
    auto cps = DecodeUtf8(w, InvalidUtf8::kReplace).value();
    if (!tokenizer.model().Tokenize(cps, toks).ok()) continue;
    c.tokens += n * toks.size();
    bool known = !toks.empty() && std::none_of(toks.begin(), toks.end(), [&](const Token& t) {
      return unk && t.id == *unk;
    });
    if (known) c.known_words += n;
  }
  return c;
}

std::vector<std::pair<std::string, std::string>> TokenizerFiles(const Tokenizer& tokenizer) {
  using ojson = nlohmann::ordered_json;
  std::vector<std::pair<std::string, std::string>> files;
  files.push_back({"tokenizer.json",
                   tokenizer.ToJson().dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"});
  const Model& m = tokenizer.model();
  if (m.type() == "WordPiece") {
    std::string vocab;
    uint32_t next = 0;
    for (const auto& [token, id] : m.vocab().Sorted()) {
      for (; next < id; ++next) vocab += "\n";  // holes keep line numbers equal to ids
      vocab += token + "\n";
      next = id + 1;
    }
    files.push_back({"vocab.txt", vocab});
  } else if (m.type() == "BPE") {
    ojson model = m.ToJson();
    files.push_back({"vocab.json", model["vocab"].dump(-1, ' ', false, ojson::error_handler_t::replace)});
    std::string merges = "#version: 0.2\n";
    for (const auto& pair : model["merges"]) {
      merges += pair[0].get<std::string>() + " " + pair[1].get<std::string>() + "\n";
    }
    files.push_back({"merges.txt", merges});
  }
  return files;
}

}  // namespace mlaas::tokenizers
