#include "tokenizers/tokenizer.h"

#include <algorithm>
#include <thread>

#include "common/file_util.h"
#include "common/json_file.h"
#include "common/text.h"

namespace mlaas::tokenizers {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

struct Tokenizer::Pattern {
  CodePoints chars;
  uint32_t id;
  const AddedToken* token;
};

struct Tokenizer::Piece {
  NormalizedString text;
  std::optional<uint32_t> token_id;
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::Create(std::unique_ptr<Model> model,
                                             std::unique_ptr<Normalizer> normalizer,
                                             std::unique_ptr<PreTokenizer> pre_tokenizer,
                                             std::unique_ptr<PostProcessor> post_processor,
                                             std::unique_ptr<Decoder> decoder) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->model_ = std::move(model);
  t->normalizer_ = std::move(normalizer);
  t->pre_tokenizer_ = std::move(pre_tokenizer);
  t->post_processor_ = std::move(post_processor);
  t->decoder_ = std::move(decoder);
  return t;
}

namespace {

// Longest sequence a tokenizer.json may ask to truncate or pad to.
constexpr size_t kMaxSequenceLength = 1 << 20;

const char* DirectionName(Direction d) { return d == Direction::kLeft ? "Left" : "Right"; }

Result<Direction> ParseDirection(const json& j) {
  if (j.is_null() || j == "Right") return Direction::kRight;
  if (j == "Left") return Direction::kLeft;
  return InvalidArgument("unknown direction " + j.dump());
}

Result<TruncationParams> TruncationFromJson(const json& j) {
  TruncationParams t;
  if (!j.contains("max_length") || !j["max_length"].is_number_integer() || j["max_length"].get<int64_t>() < 0) {
    return InvalidArgument("truncation: \"max_length\" is required");
  }
  t.max_length = j["max_length"].get<size_t>();
  t.stride = j.value("stride", size_t{0});
  if (t.max_length > kMaxSequenceLength) {
    return InvalidArgument("truncation: max_length is larger than " + std::to_string(kMaxSequenceLength));
  }
  std::string s = j.value("strategy", "LongestFirst");
  if (s == "LongestFirst") t.strategy = TruncationStrategy::kLongestFirst;
  else if (s == "OnlyFirst") t.strategy = TruncationStrategy::kOnlyFirst;
  else if (s == "OnlySecond") t.strategy = TruncationStrategy::kOnlySecond;
  else return InvalidArgument("truncation: unknown strategy '" + s + "'");
  MLAAS_ASSIGN_OR_RETURN(t.direction, ParseDirection(j.value("direction", json())));
  return t;
}

Result<PaddingParams> PaddingFromJson(const json& j) {
  PaddingParams p;
  const json& strategy = j.value("strategy", json("BatchLongest"));
  if (strategy.is_object() && strategy.contains("Fixed") && strategy["Fixed"].is_number_integer() &&
      strategy["Fixed"].get<int64_t>() >= 0) {
    p.fixed_length = strategy["Fixed"].get<size_t>();
    if (*p.fixed_length > kMaxSequenceLength) {
      return InvalidArgument("padding: fixed length is larger than " + std::to_string(kMaxSequenceLength));
    }
  } else if (strategy != "BatchLongest") {
    return InvalidArgument("padding: unknown strategy " + strategy.dump());
  }
  MLAAS_ASSIGN_OR_RETURN(p.direction, ParseDirection(j.value("direction", json())));
  if (j.contains("pad_to_multiple_of") && j["pad_to_multiple_of"].is_number_integer() &&
      j["pad_to_multiple_of"].get<int64_t>() >= 0) {
    p.pad_to_multiple_of = j["pad_to_multiple_of"].get<size_t>();
    if (p.pad_to_multiple_of > kMaxSequenceLength) {
      return InvalidArgument("padding: pad_to_multiple_of is larger than " + std::to_string(kMaxSequenceLength));
    }
  }
  p.pad_id = j.value("pad_id", 0u);
  p.pad_type_id = j.value("pad_type_id", 0u);
  p.pad_token = j.value("pad_token", std::string("[PAD]"));
  return p;
}

Status TruncateEncodings(Encoding& a, std::optional<Encoding>& b, const TruncationParams& p) {
  if (p.max_length == 0) {
    a.Truncate(0, p.stride, p.direction);
    if (b) b->Truncate(0, p.stride, p.direction);
    return Status::Ok();
  }
  const size_t total = a.size() + (b ? b->size() : 0);
  if (total <= p.max_length) return Status::Ok();
  const size_t to_remove = total - p.max_length;
  if (p.stride >= p.max_length) {
    return InvalidArgument("truncation stride (" + std::to_string(p.stride) +
                           ") must be smaller than max_length (" + std::to_string(p.max_length) + ")");
  }
  switch (p.strategy) {
    case TruncationStrategy::kLongestFirst:
      if (b) {
        size_t n1 = a.size(), n2 = b->size();
        bool swapped = n1 > n2;
        if (swapped) std::swap(n1, n2);
        n2 = n1 > p.max_length ? n1 : std::max(n1, p.max_length - n1);
        if (n1 + n2 > p.max_length) {
          n1 = p.max_length / 2;
          n2 = n1 + p.max_length % 2;
        }
        if (swapped) std::swap(n1, n2);
        a.Truncate(n1, p.stride, p.direction);
        b->Truncate(n2, p.stride, p.direction);
      } else {
        a.Truncate(total - to_remove, p.stride, p.direction);
      }
      return Status::Ok();
    case TruncationStrategy::kOnlyFirst:
    case TruncationStrategy::kOnlySecond: {
      Encoding* target = p.strategy == TruncationStrategy::kOnlyFirst ? &a : (b ? &*b : nullptr);
      if (target == nullptr) return InvalidArgument("truncation only_second: no second sequence");
      if (target->size() <= to_remove) {
        return InvalidArgument("truncation error: the sequence to truncate is too short to respect "
                               "max_length");
      }
      target->Truncate(target->size() - to_remove, p.stride, p.direction);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

size_t Tokenizer::AddTokens(const std::vector<AddedToken>& tokens) {
  size_t added = 0;
  for (const auto& t : tokens) {
    if (t.content.empty() || !DecodeUtf8(t.content).has_value()) continue;
    auto existing = std::find_if(added_.begin(), added_.end(),
                                 [&](const auto& p) { return p.second.content == t.content; });
    std::optional<uint32_t> id;
    if (existing != added_.end()) id = existing->first;
    if (!id) id = model_->vocab().Find(t.content);
    if (!id) {
      uint32_t v = static_cast<uint32_t>(model_->vocab().size());
      std::optional<uint32_t> mx;
      for (const auto& [aid, at] : added_) mx = mx ? std::max(*mx, aid) : aid;
      id = !mx ? v : (*mx >= v || v == 0 ? *mx + 1 : v);
    }
    if (existing != added_.end()) {
      existing->second = t;
    } else {
      added_.push_back({*id, t});
      ++added;
    }
  }
  RefreshPatterns();
  return added;
}

void Tokenizer::RefreshPatterns() {
  raw_patterns_.clear();
  normalized_patterns_.clear();
  // Special tokens first, then the others, as the reference orders its tries.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [id, t] : added_) {
      if (t.special != (pass == 0)) continue;
      auto cps = DecodeUtf8(t.content).value();
      if (t.normalized && normalizer_) {
        NormalizedString n(cps.data(), cps.data() + cps.size(), 0);
        normalizer_->Normalize(n);
        if (n.empty()) continue;
        normalized_patterns_.push_back({n.chars(), id, &t});
      } else if (t.normalized) {
        normalized_patterns_.push_back({cps, id, &t});
      } else {
        raw_patterns_.push_back({cps, id, &t});
      }
    }
  }
}

void Tokenizer::FindAdded(const NormalizedString& s, const std::vector<Pattern>& patterns,
                          std::vector<Piece>& out) const {
  const auto& c = s.chars();
  const size_t n = c.size();
  if (patterns.empty() || n == 0) {
    if (n > 0) out.push_back({s, std::nullopt});
    return;
  }
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < n) {
    // Leftmost-longest match at or after `pos`.
    const Pattern* best = nullptr;
    size_t at = pos;
    for (; at < n && best == nullptr; ++at) {
      for (const auto& p : patterns) {
        if (p.chars.size() > n - at || p.chars[0] != c[at]) continue;
        if (!std::equal(p.chars.begin(), p.chars.end(), c.begin() + static_cast<ptrdiff_t>(at))) continue;
        if (best == nullptr || p.chars.size() > best->chars.size()) best = &p;
      }
      if (best) break;
    }
    if (best == nullptr) break;
    size_t start = at, stop = at + best->chars.size();
    pos = stop;
    const AddedToken& t = *best->token;
    if (t.single_word) {
      bool ok_l = start == 0 || !IsWordChar(c[start - 1]);
      bool ok_r = stop == n || !IsWordChar(c[stop]);
      if (!ok_l || !ok_r) continue;
    }
    if (t.lstrip) {
      size_t b = start;
      while (b > start_offset && IsWhitespace(c[b - 1])) --b;
      start = b;
    }
    if (t.rstrip) {
      while (stop < n && IsWhitespace(c[stop])) ++stop;
      pos = stop;
    }
    if (start_offset < start) out.push_back({s.Slice(start_offset, start), std::nullopt});
    out.push_back({s.Slice(start, stop), best->id});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({s.Slice(start_offset, n), std::nullopt});
}

Result<Encoding> Tokenizer::EncodeSingle(std::string_view text, uint32_t type_id,
                                         uint32_t sequence) const {
  MLAAS_ASSIGN_OR_RETURN(CodePoints cps, DecodeUtf8(text, invalid_utf8_));
  NormalizedString whole(cps.data(), cps.data() + cps.size(), 0);
  // Added tokens matched on the raw text are never normalized.
  std::vector<Piece> raw;
  FindAdded(whole, raw_patterns_, raw);
  std::vector<Piece> pieces;
  for (auto& p : raw) {
    if (p.token_id) {
      pieces.push_back(std::move(p));
      continue;
    }
    if (normalizer_) normalizer_->Normalize(p.text);
    FindAdded(p.text, normalized_patterns_, pieces);
  }
  // Pre-tokenize every piece that is not an added token, on its own.
  std::vector<Piece> words;
  for (auto& p : pieces) {
    if (p.token_id || !pre_tokenizer_) {
      if (!p.text.empty()) words.push_back(std::move(p));
      continue;
    }
    std::vector<NormalizedString> split{std::move(p.text)};
    pre_tokenizer_->PreTokenize(split);
    for (auto& w : split) words.push_back({std::move(w), std::nullopt});
  }
  // With truncation, the reference stops tokenizing a sequence once whole words give at
  // least max_length tokens (counting from the end for left truncation); the truncation
  // windows are then cut from those tokens only.
  const size_t limit =
      truncation_ && truncation_->max_length > 0 && truncation_->stop_early ? truncation_->max_length : SIZE_MAX;
  const bool from_end = truncation_ && truncation_->direction == Direction::kLeft;
  std::vector<Encoding> parts(words.size());
  size_t count = 0;
  std::vector<Token> toks;
  for (size_t k = 0; k < words.size() && count < limit; ++k) {
    const size_t idx = from_end ? words.size() - 1 - k : k;
    const Piece& w = words[idx];
    const uint32_t word = static_cast<uint32_t>(idx);
    Encoding& part = parts[idx];
    if (w.token_id) {
      Span o = w.text.OriginalRange(0, w.text.size());
      part.Push(*w.token_id, EncodeUtf8(w.text.chars()), {o.start, o.end}, type_id, word,
                sequence, false);
    } else {
      toks.clear();
      MLAAS_RETURN_IF_ERROR(model_->Tokenize(w.text.chars(), toks));
      for (auto& t : toks) {
        Span o = w.text.OriginalRange(t.start, t.end);
        part.Push(t.id, std::move(t.value), {o.start, o.end}, type_id, word, sequence, false);
      }
    }
    count += part.size();
  }
  Encoding e;
  for (auto& part : parts) {
    if (part.size() > 0) e.Merge(part);
  }
  return e;
}

Result<std::vector<std::string>> Tokenizer::Words(std::string_view text) const {
  MLAAS_ASSIGN_OR_RETURN(CodePoints cps, DecodeUtf8(text, invalid_utf8_));
  NormalizedString n(cps.data(), cps.data() + cps.size(), 0);
  if (normalizer_) normalizer_->Normalize(n);
  std::vector<std::string> out;
  if (!pre_tokenizer_) {
    out.push_back(EncodeUtf8(n.chars()));
    return out;
  }
  std::vector<NormalizedString> pieces{std::move(n)};
  pre_tokenizer_->PreTokenize(pieces);
  out.reserve(pieces.size());
  for (const auto& p : pieces) out.push_back(EncodeUtf8(p.chars()));
  return out;
}

Result<Encoding> Tokenizer::PostProcess(Encoding a, std::optional<Encoding> b,
                                        bool add_special) const {
  if (truncation_) {
    TruncationParams p = *truncation_;
    size_t n_added = post_processor_ ? post_processor_->AddedTokens(b.has_value()) : 0;
    if (add_special && n_added > 0) {
      if (p.max_length < n_added) {
        return InvalidArgument("truncation max_length (" + std::to_string(p.max_length) +
                               ") is smaller than the special tokens added (" +
                               std::to_string(n_added) + ")");
      }
      p.max_length -= n_added;
    }
    MLAAS_RETURN_IF_ERROR(TruncateEncodings(a, b, p));
    if (!p.overflowing) {  // before the pair's windows are combined with one another
      a.overflowing.clear();
      if (b) b->overflowing.clear();
    }
  }
  std::vector<Encoding> encs;
  encs.push_back(std::move(a));
  if (b) encs.push_back(std::move(*b));
  if (post_processor_) post_processor_->Process(encs, add_special);
  Encoding out;
  for (auto& e : encs) out.Merge(e);
  if (padding_) {
    size_t target = padding_->fixed_length.value_or(out.size());
    if (padding_->pad_to_multiple_of > 0 && target % padding_->pad_to_multiple_of != 0) {
      target += padding_->pad_to_multiple_of - target % padding_->pad_to_multiple_of;
    }
    out.Pad(target, *padding_);
  }
  return out;
}

Result<Encoding> Tokenizer::Encode(std::string_view text, std::optional<std::string_view> pair,
                                   bool add_special_tokens) const {
  MLAAS_ASSIGN_OR_RETURN(Encoding a, EncodeSingle(text, 0, 0));
  std::optional<Encoding> b;
  if (pair) {
    MLAAS_ASSIGN_OR_RETURN(Encoding eb, EncodeSingle(*pair, 1, 1));
    b = std::move(eb);
  }
  return PostProcess(std::move(a), std::move(b), add_special_tokens);
}

Result<std::vector<Encoding>> Tokenizer::EncodeBatch(const std::vector<EncodeInput>& inputs,
                                                     bool add_special_tokens, size_t threads) const {
  std::vector<Encoding> out(inputs.size());
  std::vector<Status> errors(inputs.size());
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, std::max<size_t>(1, inputs.size() / 16));
  auto work = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      auto r = Encode(inputs[i].text,
                      inputs[i].pair ? std::optional<std::string_view>(*inputs[i].pair) : std::nullopt,
                      add_special_tokens);
      if (r.has_value()) out[i] = std::move(r).value();
      else errors[i] = r.error();
    }
  };
  if (threads <= 1) {
    work(0, inputs.size());
  } else {
    std::vector<std::thread> pool;
    const size_t chunk = (inputs.size() + threads - 1) / threads;
    for (size_t t = 0; t < threads; ++t) {
      size_t b = t * chunk, e = std::min(inputs.size(), b + chunk);
      if (b < e) pool.emplace_back(work, b, e);
    }
    for (auto& th : pool) th.join();
  }
  for (size_t i = 0; i < errors.size(); ++i) {
    if (!errors[i].ok()) return errors[i].WithContext("input " + std::to_string(i));
  }
  if (padding_ && !padding_->fixed_length) {
    size_t target = 0;
    for (const auto& e : out) target = std::max(target, e.size());
    if (padding_->pad_to_multiple_of > 0 && target % padding_->pad_to_multiple_of != 0) {
      target += padding_->pad_to_multiple_of - target % padding_->pad_to_multiple_of;
    }
    for (auto& e : out) e.Pad(target, *padding_);
  }
  return out;
}

Result<std::string> Tokenizer::Decode(const std::vector<uint32_t>& ids,
                                      bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (uint32_t id : ids) {
    auto added = std::find_if(added_.begin(), added_.end(), [&](const auto& p) { return p.first == id; });
    if (added != added_.end()) {
      if (skip_special_tokens && added->second.special) continue;
      tokens.push_back(added->second.content);
      continue;
    }
    if (const std::string* t = model_->vocab().Token(id)) tokens.push_back(*t);
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  std::string out;
  for (const auto& piece : decoder_->DecodeChain(std::move(tokens))) out += piece;
  return out;
}

std::optional<uint32_t> Tokenizer::TokenToId(std::string_view token) const {
  for (const auto& [id, t] : added_) {
    if (t.content == token) return id;
  }
  return model_->vocab().Find(token);
}

namespace {

std::optional<Tokenizer::KnownToken> FirstKnown(const Tokenizer& t, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (auto id = t.TokenToId(name)) return Tokenizer::KnownToken{*id, name};
  }
  return std::nullopt;
}

}  // namespace

std::optional<Tokenizer::KnownToken> Tokenizer::PadToken() const { return FirstKnown(*this, {"[PAD]", "<pad>"}); }
std::optional<Tokenizer::KnownToken> Tokenizer::MaskToken() const { return FirstKnown(*this, {"[MASK]", "<mask>"}); }
std::optional<Tokenizer::KnownToken> Tokenizer::EosToken() const {
  return FirstKnown(*this, {"<|endoftext|>", "</s>", "<eos>", "[SEP]"});
}

std::optional<std::string> Tokenizer::IdToToken(uint32_t id) const {
  for (const auto& [aid, t] : added_) {
    if (aid == id) return t.content;
  }
  if (const std::string* t = model_->vocab().Token(id)) return *t;
  return std::nullopt;
}

size_t Tokenizer::VocabSize(bool with_added_tokens) const {
  size_t n = model_->vocab().size();
  if (!with_added_tokens) return n;
  for (const auto& [id, t] : added_) n += model_->vocab().Token(id) == nullptr ? 1 : 0;
  return n;
}

ojson Tokenizer::ToJson() const {
  ojson j;
  j["version"] = "1.0";
  if (truncation_) {
    const char* strategy = truncation_->strategy == TruncationStrategy::kOnlyFirst   ? "OnlyFirst"
                           : truncation_->strategy == TruncationStrategy::kOnlySecond ? "OnlySecond"
                                                                                      : "LongestFirst";
    j["truncation"] = {{"direction", DirectionName(truncation_->direction)},
                       {"max_length", truncation_->max_length},
                       {"strategy", strategy},
                       {"stride", truncation_->stride}};
  } else {
    j["truncation"] = nullptr;
  }
  if (padding_) {
    ojson strategy = padding_->fixed_length ? ojson{{"Fixed", *padding_->fixed_length}}
                                            : ojson("BatchLongest");
    j["padding"] = {{"strategy", strategy},
                    {"direction", DirectionName(padding_->direction)},
                    {"pad_to_multiple_of", padding_->pad_to_multiple_of
                                               ? ojson(padding_->pad_to_multiple_of)
                                               : ojson()},
                    {"pad_id", padding_->pad_id},
                    {"pad_type_id", padding_->pad_type_id},
                    {"pad_token", padding_->pad_token}};
  } else {
    j["padding"] = nullptr;
  }
  auto added = added_;
  std::sort(added.begin(), added.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  ojson list = ojson::array();
  for (const auto& [id, t] : added) {
    list.push_back({{"id", id},
                    {"content", t.content},
                    {"single_word", t.single_word},
                    {"lstrip", t.lstrip},
                    {"rstrip", t.rstrip},
                    {"normalized", t.normalized},
                    {"special", t.special}});
  }
  j["added_tokens"] = list;
  j["normalizer"] = normalizer_ ? normalizer_->ToJson() : ojson();
  j["pre_tokenizer"] = pre_tokenizer_ ? pre_tokenizer_->ToJson() : ojson();
  j["post_processor"] = post_processor_ ? post_processor_->ToJson() : ojson();
  j["decoder"] = decoder_ ? decoder_->ToJson() : ojson();
  j["model"] = model_->ToJson();
  return j;
}

Status Tokenizer::Save(const std::filesystem::path& file) const {
  return WriteFileAtomic(file, ToJson().dump(2, ' ', false, ojson::error_handler_t::replace) + "\n");
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(const json& j) {
  // The one place where a mistyped field (nlohmann's typed getters throw) becomes an error.
  try {
    return FromJsonUnchecked(j);
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    return InvalidArgument("tokenizer.json has a field of the wrong type: " + what);
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonUnchecked(const json& j) {
  if (!j.is_object()) return InvalidArgument("tokenizer.json must hold a JSON object");
  if (j.contains("version") && j["version"] != "1.0") {
    return InvalidArgument("unknown tokenizer.json version " + j["version"].dump());
  }
  if (!j.contains("model")) return InvalidArgument("tokenizer.json has no \"model\"");
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  MLAAS_ASSIGN_OR_RETURN(t->model_, ModelFromJson(j["model"]));
  auto present = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  if (present("normalizer")) {
    MLAAS_ASSIGN_OR_RETURN(t->normalizer_, NormalizerFromJson(j["normalizer"]));
  }
  if (present("pre_tokenizer")) {
    MLAAS_ASSIGN_OR_RETURN(t->pre_tokenizer_, PreTokenizerFromJson(j["pre_tokenizer"]));
  }
  if (present("post_processor")) {
    MLAAS_ASSIGN_OR_RETURN(t->post_processor_, PostProcessorFromJson(j["post_processor"]));
  }
  if (present("decoder")) {
    MLAAS_ASSIGN_OR_RETURN(t->decoder_, DecoderFromJson(j["decoder"]));
  }
  if (present("truncation")) {
    MLAAS_ASSIGN_OR_RETURN(auto tr, TruncationFromJson(j["truncation"]));
    t->truncation_ = tr;
  }
  if (present("padding")) {
    MLAAS_ASSIGN_OR_RETURN(auto pd, PaddingFromJson(j["padding"]));
    t->padding_ = pd;
  }
  std::vector<AddedToken> added;
  for (const auto& a : j.value("added_tokens", json::array())) {
    if (!a.is_object() || !a.contains("content") || !a["content"].is_string()) {
      return InvalidArgument("tokenizer.json: malformed entry in \"added_tokens\"");
    }
    added.push_back({a["content"], a.value("single_word", false), a.value("lstrip", false),
                     a.value("rstrip", false), a.value("normalized", true), a.value("special", false)});
  }
  // Special tokens register first, as the reference does within one add call.
  std::stable_partition(added.begin(), added.end(), [](const AddedToken& a) { return a.special; });
  t->AddTokens(added);
  return t;
}

namespace {

// tokenizer_config.json, as the legacy layouts read it: an object whose members, when present,
// have the types transformers writes. Errors name the file and the member.
class TokenizerConfig {
 public:
  static Result<TokenizerConfig> Read(const std::filesystem::path& dir) {
    TokenizerConfig c;
    std::error_code ec;
    if (!std::filesystem::exists(dir / kFile, ec)) return c;
    MLAAS_ASSIGN_OR_RETURN(c.j_, ReadJsonFile(dir / kFile, kFile));
    if (!c.j_.is_object()) return InvalidArgument(std::string(kFile) + " must hold a JSON object");
    return c;
  }
  Result<std::optional<bool>> OptBool(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return std::optional<bool>();
    if (!it->is_boolean()) return InvalidArgument(std::string(kFile) + ": " + key + " must be true or false");
    return std::optional<bool>(it->get<bool>());
  }
  Result<bool> Bool(const char* key, bool fallback) const {
    MLAAS_ASSIGN_OR_RETURN(auto b, OptBool(key));
    return b.value_or(fallback);
  }
  // A special token, as a string or an AddedToken object {"content": ...}.
  Result<std::string> Token(const char* key, const char* fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return std::string(fallback);
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object()) {
      if (auto c = it->find("content"); c != it->end() && c->is_string()) return c->get<std::string>();
    }
    return InvalidArgument(std::string(kFile) + ": " + key + " must be a string or {\"content\": string}");
  }

 private:
  static constexpr const char* kFile = "tokenizer_config.json";
  json j_ = json::object();
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::filesystem::path& path) {
  // The files are the client's, and every member is checked; should anything still throw, it
  // becomes an error here (without the exception's text, which may hold a server path).
  try {
    return LoadUnchecked(path);
  } catch (const std::exception&) {
    return Internal("the tokenizer files could not be read");
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::LoadUnchecked(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (path.filename() == "vocab.txt") return Load(path.has_parent_path() ? path.parent_path() : fs::path("."));
    MLAAS_ASSIGN_OR_RETURN(json j, ReadJsonFile(path, path.filename().string()));
    return FromJson(j);
  }
  if (!fs::is_directory(path, ec)) return NotFound("no tokenizer at '" + path.filename().string() + "'");
  if (fs::exists(path / "tokenizer.json", ec)) {
    MLAAS_ASSIGN_OR_RETURN(json j, ReadJsonFile(path / "tokenizer.json", "tokenizer.json"));
    return FromJson(j);
  }
  MLAAS_ASSIGN_OR_RETURN(const TokenizerConfig config, TokenizerConfig::Read(path));
  if (fs::exists(path / "vocab.txt", ec)) {
    WordPieceOptions o;
    MLAAS_ASSIGN_OR_RETURN(o.unk_token, config.Token("unk_token", "[UNK]"));
    MLAAS_ASSIGN_OR_RETURN(auto wp, WordPiece::FromVocabFile(path / "vocab.txt", o));
    MLAAS_ASSIGN_OR_RETURN(const bool lower, config.Bool("do_lower_case", true));
    MLAAS_ASSIGN_OR_RETURN(const bool chinese, config.Bool("tokenize_chinese_chars", true));
    MLAAS_ASSIGN_OR_RETURN(const auto strip_accents, config.OptBool("strip_accents"));  // none: as lowercase
    json norm = {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", chinese},
                 {"strip_accents", strip_accents ? json(*strip_accents) : json()}, {"lowercase", lower}};
    MLAAS_ASSIGN_OR_RETURN(auto normalizer, NormalizerFromJson(norm));
    MLAAS_ASSIGN_OR_RETURN(auto pre, PreTokenizerFromJson(json{{"type", "BertPreTokenizer"}}));
    MLAAS_ASSIGN_OR_RETURN(const std::string cls, config.Token("cls_token", "[CLS]"));
    MLAAS_ASSIGN_OR_RETURN(const std::string sep, config.Token("sep_token", "[SEP]"));
    auto cls_id = wp->vocab().Find(cls), sep_id = wp->vocab().Find(sep);
    std::unique_ptr<PostProcessor> post;
    if (cls_id && sep_id) {
      MLAAS_ASSIGN_OR_RETURN(post, PostProcessorFromJson(json{{"type", "BertProcessing"},
                                                              {"sep", json::array({sep, *sep_id})},
                                                              {"cls", json::array({cls, *cls_id})}}));
    }
    MLAAS_ASSIGN_OR_RETURN(auto dec, DecoderFromJson(json{{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}));
    auto t = Create(std::move(wp), std::move(normalizer), std::move(pre), std::move(post), std::move(dec));
    std::vector<AddedToken> specials;
    for (const char* key : {"pad_token", "unk_token", "cls_token", "sep_token", "mask_token"}) {
      static const std::map<std::string, std::string> kDefaults = {
          {"pad_token", "[PAD]"}, {"unk_token", "[UNK]"}, {"cls_token", "[CLS]"},
          {"sep_token", "[SEP]"}, {"mask_token", "[MASK]"}};
      MLAAS_ASSIGN_OR_RETURN(const std::string tok, config.Token(key, kDefaults.at(key).c_str()));
      if (t->model().vocab().Find(tok)) specials.push_back({tok, false, false, false, false, true});
    }
    t->AddTokens(specials);
    return t;
  }
  if (fs::exists(path / "vocab.json", ec) && fs::exists(path / "merges.txt", ec)) {
    MLAAS_ASSIGN_OR_RETURN(auto bpe, Bpe::FromFiles(path / "vocab.json", path / "merges.txt", {}));
    MLAAS_ASSIGN_OR_RETURN(const bool prefix, config.Bool("add_prefix_space", false));
    MLAAS_ASSIGN_OR_RETURN(auto pre, PreTokenizerFromJson(json{{"type", "ByteLevel"},
                                                               {"add_prefix_space", prefix},
                                                               {"trim_offsets", true},
                                                               {"use_regex", true}}));
    MLAAS_ASSIGN_OR_RETURN(const std::string bos, config.Token("bos_token", "<s>"));
    MLAAS_ASSIGN_OR_RETURN(const std::string eos, config.Token("eos_token", "</s>"));
    auto bos_id = bpe->vocab().Find(bos), eos_id = bpe->vocab().Find(eos);
    std::unique_ptr<PostProcessor> post;
    if (bos_id && eos_id && bos != eos) {
      MLAAS_ASSIGN_OR_RETURN(post, PostProcessorFromJson(json{{"type", "RobertaProcessing"},
                                                              {"sep", json::array({eos, *eos_id})},
                                                              {"cls", json::array({bos, *bos_id})},
                                                              {"trim_offsets", true},
                                                              {"add_prefix_space", prefix}}));
    } else {
      MLAAS_ASSIGN_OR_RETURN(post, PostProcessorFromJson(json{{"type", "ByteLevel"},
                                                              {"add_prefix_space", prefix},
                                                              {"trim_offsets", true},
                                                              {"use_regex", true}}));
    }
    MLAAS_ASSIGN_OR_RETURN(auto dec, DecoderFromJson(json{{"type", "ByteLevel"}}));
    auto t = Create(std::move(bpe), nullptr, std::move(pre), std::move(post), std::move(dec));
    std::vector<AddedToken> specials;
    for (const char* tok : {"<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"}) {
      if (t->model().vocab().Find(tok)) {
        specials.push_back({tok, false, std::string(tok) == "<mask>", false, false, true});
      }
    }
    t->AddTokens(specials);
    return t;
  }
  return NotFound("no tokenizer files in '" + path.filename().string() +
                  "' (expected tokenizer.json, vocab.txt, or vocab.json + merges.txt)");
}

}  // namespace mlaas::tokenizers
