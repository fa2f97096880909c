#include "tokenizers/models.h"

#include <algorithm>
#include <queue>

#include "common/file_util.h"
#include "common/json_file.h"
#include "common/text.h"

namespace mlaas::tokenizers {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

// ----- Vocab -------------------------------------------------------------------------------

void Vocab::Set(std::string token, uint32_t id) {
  if (auto it = map_.find(token); it != map_.end()) {
    if (it->second < reverse_.size() && reverse_[it->second] == token) reverse_[it->second].reset();
    map_.erase(it);
  }
  if (id >= reverse_.size()) reverse_.resize(id + 1);
  reverse_[id] = token;
  map_.emplace(std::move(token), id);
}

std::optional<uint32_t> Vocab::Find(std::string_view token) const {
  auto it = map_.find(token);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

const std::string* Vocab::Token(uint32_t id) const {
  if (id >= reverse_.size() || !reverse_[id]) return nullptr;
  return &*reverse_[id];
}

std::vector<std::pair<std::string, uint32_t>> Vocab::Sorted() const {
  std::vector<std::pair<std::string, uint32_t>> out(map_.begin(), map_.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return out;
}

ojson Vocab::ToJson() const {
  ojson j = ojson::object();
  // Keys are unique, so append to the ordered map's storage directly: operator[] would search
  // it linearly for every insertion.
  auto& storage = static_cast<ojson::object_t::Container&>(j.get_ref<ojson::object_t&>());
  auto sorted = Sorted();
  storage.reserve(sorted.size());
  for (auto& [token, id] : sorted) storage.emplace_back(std::move(token), ojson(id));
  return j;
}

namespace {

Result<Vocab> VocabFromJson(const json& j, const std::string& what) {
  if (!j.is_object()) return InvalidArgument(what + ": \"vocab\" must be an object");
  Vocab v;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_unsigned() && !(it.value().is_number_integer() && it.value().get<int64_t>() >= 0)) {
      return InvalidArgument(what + ": id of token '" + it.key() + "' is not a non-negative integer");
    }
    uint64_t id = it.value().get<uint64_t>();
    // Ids index a table: keep them within a sane multiple of the vocabulary's size.
    if (id >= std::max<uint64_t>(uint64_t{1} << 16, uint64_t{4} * j.size())) {
      return InvalidArgument(what + ": id " + std::to_string(id) + " of token '" + it.key() +
                             "' is far beyond the vocabulary's size");
    }
    v.Set(it.key(), static_cast<uint32_t>(id));
  }
  return v;
}

std::optional<std::string> OptString(const json& j, const char* key) {
  if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return std::nullopt;
}

// The most lines a vocab.txt or merges.txt may hold (the largest vocabulary a model config
// accepts): each line costs a table entry, so a file of newlines must not cost gigabytes.
constexpr size_t kMaxLines = 10'000'000;

Status CheckLineCount(std::string_view text, const std::string& file) {
  if (static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) > kMaxLines)
    return InvalidArgument(file + " has more than " + std::to_string(kMaxLines) + " lines");
  return Status::Ok();
}

// The lines of a text file, without their '\n' (getline's: no empty last line after a final one).
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    out.push_back(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  return out;
}

}  // namespace

// ----- caches ------------------------------------------------------------------------------

bool WordCache::Get(const std::string& word, std::vector<Entry>& out) const {
  const Shard& s = shards_[std::hash<std::string>{}(word) % kShards];
  std::lock_guard lock(s.mu);
  auto it = s.map.find(word);
  if (it == s.map.end()) return false;
  out = it->second;
  return true;
}

void WordCache::Put(const std::string& word, std::vector<Entry> entries) {
  if (word.size() >= 256) return;
  Shard& s = shards_[std::hash<std::string>{}(word) % kShards];
  std::lock_guard lock(s.mu);
  if (s.map.size() >= kPerShard) return;
  s.map.emplace(word, std::move(entries));
}

void MergeMap::Insert(uint64_t key, Value v) {
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  size_t i = Hash(key) & mask_;
  while (slots_[i].used && slots_[i].key != key) i = (i + 1) & mask_;
  if (!slots_[i].used) ++size_;
  slots_[i] = {key, v, true};
}

void MergeMap::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{});
  mask_ = slots_.size() - 1;
  size_ = 0;
  for (const auto& s : old) {
    if (s.used) Insert(s.key, s.value);
  }
}

namespace {

// Tokenizes through `cache`: a hit copies the cached tokens (values from the vocabulary).
template <class F>
Status CachedTokenize(WordCache& cache, const Vocab& vocab, const CodePoints& word,
                      std::vector<Token>& out, F&& tokenize) {
  std::string key = EncodeUtf8(word);
  std::vector<WordCache::Entry> entries;
  if (cache.Get(key, entries)) {
    for (const auto& e : entries) {
      const std::string* v = vocab.Token(e.id);
      out.push_back({e.id, v ? *v : std::string(), e.start, e.end});
    }
    return Status::Ok();
  }
  const size_t first = out.size();
  MLAAS_RETURN_IF_ERROR(tokenize(word, out));
  entries.reserve(out.size() - first);
  for (size_t i = first; i < out.size(); ++i) {
    // Only tokens whose text is the vocabulary's can be rebuilt from the id.
    const std::string* v = vocab.Token(out[i].id);
    if (v == nullptr || *v != out[i].value) return Status::Ok();
    entries.push_back({out[i].id, out[i].start, out[i].end});
  }
  cache.Put(key, std::move(entries));
  return Status::Ok();
}

}  // namespace

// ----- WordPiece ---------------------------------------------------------------------------

WordPiece::WordPiece(Vocab vocab, WordPieceOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {}

Result<std::unique_ptr<WordPiece>> WordPiece::FromVocabFile(const std::filesystem::path& file,
                                                           WordPieceOptions options) {
  MLAAS_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  MLAAS_RETURN_IF_ERROR(CheckLineCount(text, file.filename().string()));
  Vocab v;
  uint32_t id = 0;
  for (std::string_view t : Lines(text)) {
    while (!t.empty() && (t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    v.Set(std::string(t), id++);
  }
  return std::make_unique<WordPiece>(std::move(v), std::move(options));
}

Result<std::unique_ptr<WordPiece>> WordPiece::FromJson(const json& j) {
  MLAAS_ASSIGN_OR_RETURN(Vocab v, VocabFromJson(j.value("vocab", json()), "WordPiece model"));
  WordPieceOptions o;
  if (auto s = OptString(j, "unk_token")) o.unk_token = *s;
  if (auto s = OptString(j, "continuing_subword_prefix")) o.continuing_subword_prefix = *s;
  if (j.contains("max_input_chars_per_word") && j["max_input_chars_per_word"].is_number_integer() &&
      j["max_input_chars_per_word"].get<int64_t>() >= 0) {
    o.max_input_chars_per_word = j["max_input_chars_per_word"].get<size_t>();
  }
  return std::make_unique<WordPiece>(std::move(v), std::move(o));
}

Status WordPiece::Tokenize(const CodePoints& word, std::vector<Token>& out) const {
  return CachedTokenize(cache_, vocab_, word, out, [this](const CodePoints& w, std::vector<Token>& o) {
    return TokenizeUncached(w, o);
  });
}

Status WordPiece::TokenizeUncached(const CodePoints& word, std::vector<Token>& out) const {
  const size_t n = word.size();
  auto unk = [&]() -> Status {
    auto id = vocab_.Find(options_.unk_token);
    if (!id) {
      return InvalidArgument("WordPiece error: Missing " + options_.unk_token +
                             " token from the vocabulary");
    }
    out.push_back({*id, options_.unk_token, 0, static_cast<uint32_t>(n)});
    return Status::Ok();
  };
  if (n > options_.max_input_chars_per_word) return unk();
  const size_t first = out.size();
  std::string cand;
  size_t start = 0;
  while (start < n) {
    size_t end = n;
    bool found = false;
    while (start < end) {
      cand.clear();
      if (start > 0) cand = options_.continuing_subword_prefix;
      for (size_t k = start; k < end; ++k) AppendUtf8(word[k], cand);
      if (auto id = vocab_.Find(cand)) {
        out.push_back({*id, cand, static_cast<uint32_t>(start), static_cast<uint32_t>(end)});
        found = true;
        break;
      }
      --end;
    }
    if (!found) {
      out.resize(first);
      return unk();
    }
    start = end;
  }
  return Status::Ok();
}

ojson WordPiece::ToJson() const {
  return {{"type", "WordPiece"},
          {"unk_token", options_.unk_token},
          {"continuing_subword_prefix", options_.continuing_subword_prefix},
          {"max_input_chars_per_word", options_.max_input_chars_per_word},
          {"vocab", vocab_.ToJson()}};
}

// ----- BPE ---------------------------------------------------------------------------------

Result<std::unique_ptr<Bpe>> Bpe::Create(Vocab vocab,
                                        std::vector<std::pair<std::string, std::string>> merges,
                                        BpeOptions options) {
  std::unique_ptr<Bpe> m(new Bpe());
  const size_t prefix_len = options.continuing_subword_prefix ? options.continuing_subword_prefix->size() : 0;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto a_id = vocab.Find(a);
    auto b_id = vocab.Find(b);
    if (!a_id || !b_id) {
      return InvalidArgument("BPE merge " + std::to_string(rank + 1) + " ('" + a + " " + b +
                             "') uses a token missing from the vocabulary");
    }
    std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : std::string());
    auto new_id = vocab.Find(merged);
    if (!new_id) {
      return InvalidArgument("BPE merge " + std::to_string(rank + 1) + " produces '" + merged +
                             "', which is missing from the vocabulary");
    }
    m->merge_map_.Insert((uint64_t{*a_id} << 32) | *b_id, {static_cast<uint32_t>(rank), *new_id});
  }
  m->vocab_ = std::move(vocab);
  m->merges_ = std::move(merges);
  m->options_ = std::move(options);
  return m;
}

namespace {

Result<std::pair<std::string, std::string>> ParseMergeLine(std::string_view line, size_t line_no) {
  auto parts = Split(line, ' ');
  if (parts.size() != 2) {
    return InvalidArgument("merges: line " + std::to_string(line_no) +
                           " is not two tokens separated by one space");
  }
  return std::pair{parts[0], parts[1]};
}

Result<BpeOptions> BpeOptionsFromJson(const json& j) {
  BpeOptions o;
  o.unk_token = OptString(j, "unk_token");
  o.continuing_subword_prefix = OptString(j, "continuing_subword_prefix");
  o.end_of_word_suffix = OptString(j, "end_of_word_suffix");
  auto flag = [&](const char* key) { return j.contains(key) && j[key].is_boolean() && j[key].get<bool>(); };
  o.fuse_unk = flag("fuse_unk");
  o.byte_fallback = flag("byte_fallback");
  o.ignore_merges = flag("ignore_merges");
  if (j.contains("dropout") && !j["dropout"].is_null()) {
    double d = j["dropout"].is_number() ? j["dropout"].get<double>() : -1;
    if (d < 0 || d > 1) return InvalidArgument("BPE dropout must be between 0 and 1");
    if (d > 0) {
      return InvalidArgument("unsupported BPE option: dropout > 0 (training-time randomness)");
    }
  }
  return o;
}

}  // namespace

Result<std::unique_ptr<Bpe>> Bpe::FromFiles(const std::filesystem::path& vocab_json,
                                           const std::filesystem::path& merges_txt,
                                           BpeOptions options) {
  MLAAS_ASSIGN_OR_RETURN(json vj, ReadJsonFile(vocab_json, vocab_json.filename().string()));
  MLAAS_ASSIGN_OR_RETURN(Vocab v, VocabFromJson(vj, vocab_json.filename().string()));
  MLAAS_ASSIGN_OR_RETURN(std::string text, ReadFile(merges_txt));
  MLAAS_RETURN_IF_ERROR(CheckLineCount(text, merges_txt.filename().string()));
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0;
  for (std::string_view line : Lines(text)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (StartsWith(line, "#version")) continue;
    MLAAS_ASSIGN_OR_RETURN(auto m, ParseMergeLine(line, ++line_no));
    merges.push_back(std::move(m));
  }
  return Create(std::move(v), std::move(merges), std::move(options));
}

Result<std::unique_ptr<Bpe>> Bpe::FromJson(const json& j) {
  MLAAS_ASSIGN_OR_RETURN(Vocab v, VocabFromJson(j.value("vocab", json()), "BPE model"));
  if (!j.contains("merges") || !j["merges"].is_array()) {
    return InvalidArgument("BPE model: missing \"merges\"");
  }
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0;
  for (const auto& m : j["merges"]) {
    ++line_no;
    if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.push_back({m[0], m[1]});
    } else if (m.is_string()) {
      MLAAS_ASSIGN_OR_RETURN(auto p, ParseMergeLine(m.get<std::string>(), line_no));
      merges.push_back(std::move(p));
    } else {
      return InvalidArgument("BPE model: merge " + std::to_string(line_no) + " is malformed");
    }
  }
  MLAAS_ASSIGN_OR_RETURN(BpeOptions o, BpeOptionsFromJson(j));
  return Create(std::move(v), std::move(merges), std::move(o));
}

Status Bpe::Tokenize(const CodePoints& word, std::vector<Token>& out) const {
  if (word.empty()) return Status::Ok();
  return CachedTokenize(cache_, vocab_, word, out, [this](const CodePoints& w, std::vector<Token>& o) {
    return TokenizeUncached(w, o);
  });
}

Status Bpe::TokenizeUncached(const CodePoints& word, std::vector<Token>& out) const {
  std::string whole;
  if (options_.ignore_merges) {
    whole = EncodeUtf8(word);
    if (auto id = vocab_.Find(whole)) {
      out.push_back({*id, whole, 0, static_cast<uint32_t>(word.size())});
      return Status::Ok();
    }
  }
  struct Sym {
    uint32_t id;
    int prev, next;
    uint32_t len;  // bytes of the input it covers (0: merged away)
  };
  std::vector<Sym> syms;
  syms.reserve(word.size());
  auto add = [&](uint32_t id, uint32_t len) {
    int idx = static_cast<int>(syms.size());
    syms.push_back({id, idx - 1, -1, len});
    if (idx > 0) syms[static_cast<size_t>(idx - 1)].next = idx;
  };
  bool unk = false;  // a pending unk symbol (unk_id, unk_len bytes)
  uint32_t unk_id = 0, unk_len = 0;
  std::string s, bytes;
  for (size_t i = 0; i < word.size(); ++i) {
    bytes.clear();
    AppendUtf8(word[i], bytes);
    const uint32_t blen = static_cast<uint32_t>(bytes.size());
    s.clear();
    if (i > 0 && options_.continuing_subword_prefix) s = *options_.continuing_subword_prefix;
    s += bytes;
    if (i + 1 == word.size() && options_.end_of_word_suffix) s += *options_.end_of_word_suffix;
    if (auto id = vocab_.Find(s)) {
      if (unk) {
        add(unk_id, unk_len);
        unk = false;
      }
      add(*id, blen);
      continue;
    }
    if (options_.byte_fallback) {
      std::vector<uint32_t> ids;
      for (unsigned char b : s) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
        if (auto id = vocab_.Find(hex)) ids.push_back(*id);
        else break;
      }
      if (ids.size() == s.size()) {
        for (uint32_t id : ids) add(id, 1);
        continue;
      }
    }
    if (options_.unk_token) {
      auto uid = vocab_.Find(*options_.unk_token);
      if (!uid) {
        return InvalidArgument("BPE error: unk token '" + *options_.unk_token +
                               "' is missing from the vocabulary");
      }
      if (unk && options_.fuse_unk) {
        unk_len += blen;
      } else {
        if (unk) add(unk_id, unk_len);
        unk = true;
        unk_id = *uid;
        unk_len = blen;
      }
    }
    // Without an unk token the char is dropped (later offsets shift, as in the reference).
  }
  if (unk) add(unk_id, unk_len);

  // Merge by rank; equal ranks: leftmost first.
  struct Merge {
    uint32_t rank;
    int pos;
    uint32_t new_id;
    bool operator>(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Merge, std::vector<Merge>, std::greater<>> queue;
  auto find = [&](uint32_t a, uint32_t b) { return merge_map_.Find((uint64_t{a} << 32) | b); };
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    if (const auto* m = find(syms[i].id, syms[i + 1].id)) {
      queue.push({m->rank, static_cast<int>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    Merge top = queue.top();
    queue.pop();
    Sym& left = syms[static_cast<size_t>(top.pos)];
    if (left.len == 0 || left.next == -1) continue;
    const int right_idx = left.next;
    Sym right = syms[static_cast<size_t>(right_idx)];
    const auto* m = find(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    syms[static_cast<size_t>(right_idx)].len = 0;
    if (right.next != -1) syms[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev != -1) {
      const Sym& p = syms[static_cast<size_t>(left.prev)];
      if (const auto* pm = find(p.id, left.id)) queue.push({pm->rank, left.prev, pm->new_id});
    }
    if (left.next != -1) {
      const Sym& nx = syms[static_cast<size_t>(left.next)];
      if (const auto* nm = find(left.id, nx.id)) queue.push({nm->rank, top.pos, nm->new_id});
    }
  }

  // Cumulative byte offsets, turned into char offsets within the word.
  std::vector<uint32_t> char_of_byte;
  char_of_byte.reserve(word.size() * 2);
  for (size_t i = 0; i < word.size(); ++i) {
    bytes.clear();
    AppendUtf8(word[i], bytes);
    char_of_byte.insert(char_of_byte.end(), bytes.size(), static_cast<uint32_t>(i));
  }
  const uint32_t total = static_cast<uint32_t>(char_of_byte.size());
  uint32_t pos = 0;
  for (const Sym& sym : syms) {
    if (sym.len == 0) continue;
    uint32_t b0 = pos, b1 = pos + sym.len;
    pos = b1;
    uint32_t c0 = b0 < total ? char_of_byte[b0] : static_cast<uint32_t>(word.size());
    uint32_t c1 = b1 - 1 < total ? char_of_byte[b1 - 1] + 1 : static_cast<uint32_t>(word.size());
    const std::string* value = vocab_.Token(sym.id);
    out.push_back({sym.id, value ? *value : std::string(), c0, c1});
  }
  return Status::Ok();
}

ojson Bpe::ToJson() const {
  auto opt = [](const std::optional<std::string>& s) { return s ? ojson(*s) : ojson(); };
  ojson merges = ojson::array();
  for (const auto& [a, b] : merges_) merges.push_back(ojson::array({a, b}));
  return {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", opt(options_.unk_token)},
          {"continuing_subword_prefix", opt(options_.continuing_subword_prefix)},
          {"end_of_word_suffix", opt(options_.end_of_word_suffix)},
          {"fuse_unk", options_.fuse_unk},
          {"byte_fallback", options_.byte_fallback},
          {"ignore_merges", options_.ignore_merges},
          {"vocab", vocab_.ToJson()},
          {"merges", merges}};
}

Result<std::unique_ptr<Model>> ModelFromJson(const json& j) {
  if (!j.is_object()) return InvalidArgument("\"model\" must be an object");
  std::string type = j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  if (type.empty()) type = j.contains("merges") ? "BPE" : "WordPiece";
  if (type == "WordPiece") {
    MLAAS_ASSIGN_OR_RETURN(auto m, WordPiece::FromJson(j));
    return std::unique_ptr<Model>(std::move(m));
  }
  if (type == "BPE") {
    MLAAS_ASSIGN_OR_RETURN(auto m, Bpe::FromJson(j));
    return std::unique_ptr<Model>(std::move(m));
  }
  return InvalidArgument("unsupported model type '" + type + "' (supported: WordPiece, BPE)");
}

}  // namespace mlaas::tokenizers
