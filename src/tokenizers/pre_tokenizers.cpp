#include "tokenizers/pre_tokenizers.h"

#include <array>

#include "tokenizers/unicode_tables.h"

namespace mlaas::tokenizers {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

void ForEachPiece(std::vector<NormalizedString>& pieces,
                  const std::function<std::vector<NormalizedString>(const NormalizedString&)>& f) {
  std::vector<NormalizedString> out;
  out.reserve(pieces.size());
  for (const auto& p : pieces) {
    for (auto& q : f(p)) {
      if (!q.empty()) out.push_back(std::move(q));
    }
  }
  pieces = std::move(out);
}

Result<SplitBehavior> ParseBehavior(const json& j) {
  static const std::pair<const char*, SplitBehavior> kNames[] = {
      {"Removed", SplitBehavior::kRemoved},
      {"Isolated", SplitBehavior::kIsolated},
      {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
      {"MergedWithNext", SplitBehavior::kMergedWithNext},
      {"Contiguous", SplitBehavior::kContiguous}};
  if (j.is_string()) {
    for (const auto& [name, b] : kNames) {
      if (j == name) return b;
    }
  }
  return InvalidArgument("unknown split behavior " + j.dump());
}

const char* BehaviorName(SplitBehavior b) {
  switch (b) {
    case SplitBehavior::kRemoved: return "Removed";
    case SplitBehavior::kIsolated: return "Isolated";
    case SplitBehavior::kMergedWithPrevious: return "MergedWithPrevious";
    case SplitBehavior::kMergedWithNext: return "MergedWithNext";
    case SplitBehavior::kContiguous: return "Contiguous";
  }
  return "Isolated";
}

// Whitespace removed, punctuation isolated: one pass over the chars.
class BertPre final : public PreTokenizer {
 public:
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    std::vector<NormalizedString> out;
    out.reserve(pieces.size() * 8);
    for (const auto& p : pieces) {
      const auto& c = p.chars();
      size_t start = 0;
      for (size_t i = 0; i < c.size(); ++i) {
        bool space = IsWhitespace(c[i]);
        if (!space && !IsBertPunctuation(c[i])) continue;
        if (start < i) out.push_back(p.Slice(start, i));
        if (!space) out.push_back(p.Slice(i, i + 1));
        start = i + 1;
      }
      if (start < c.size()) out.push_back(p.Slice(start, c.size()));
    }
    pieces = std::move(out);
  }
  ojson ToJson() const override { return {{"type", "BertPreTokenizer"}}; }
};

class WhitespacePre final : public PreTokenizer {
 public:
  // \w+|[^\w\s]+ : maximal runs of word chars, and of chars that are neither word chars nor
  // whitespace; whitespace is dropped.
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    ForEachPiece(pieces, [](const NormalizedString& p) {
      std::vector<NormalizedString> out;
      const auto& s = p.chars();
      size_t i = 0;
      while (i < s.size()) {
        if (IsWhitespace(s[i])) {
          ++i;
          continue;
        }
        bool word = IsWordChar(s[i]);
        size_t j = i + 1;
        while (j < s.size() && !IsWhitespace(s[j]) && IsWordChar(s[j]) == word) ++j;
        out.push_back(p.Slice(i, j));
        i = j;
      }
      return out;
    });
  }
  ojson ToJson() const override { return {{"type", "Whitespace"}}; }
};

class WhitespaceSplitPre final : public PreTokenizer {
 public:
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    ForEachPiece(pieces, [](const NormalizedString& p) {
      return p.Split(IsWhitespace, SplitBehavior::kRemoved);
    });
  }
  ojson ToJson() const override { return {{"type", "WhitespaceSplit"}}; }
};

class PunctuationPre final : public PreTokenizer {
 public:
  explicit PunctuationPre(SplitBehavior b) : behavior_(b) {}
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    ForEachPiece(pieces, [this](const NormalizedString& p) {
      return p.Split(IsBertPunctuation, behavior_);
    });
  }
  ojson ToJson() const override {
    return {{"type", "Punctuation"}, {"behavior", BehaviorName(behavior_)}};
  }

 private:
  SplitBehavior behavior_;
};

class DigitsPre final : public PreTokenizer {
 public:
  explicit DigitsPre(bool individual) : individual_(individual) {}
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    ForEachPiece(pieces, [this](const NormalizedString& p) {
      return p.Split(IsNumeric, individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
    });
  }
  ojson ToJson() const override { return {{"type", "Digits"}, {"individual_digits", individual_}}; }

 private:
  bool individual_;
};

class CharDelimiterPre final : public PreTokenizer {
 public:
  explicit CharDelimiterPre(char32_t d) : delim_(d) {}
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    ForEachPiece(pieces, [this](const NormalizedString& p) {
      return p.Split([this](char32_t c) { return c == delim_; }, SplitBehavior::kRemoved);
    });
  }
  ojson ToJson() const override {
    return {{"type", "CharDelimiterSplit"}, {"delimiter", EncodeUtf8(&delim_, &delim_ + 1)}};
  }

 private:
  char32_t delim_;
};

enum class PrependScheme { kFirst, kAlways, kNever };

class MetaspacePre final : public PreTokenizer {
 public:
  MetaspacePre(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {}
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    ForEachPiece(pieces, [this](const NormalizedString& p) {
      NormalizedString n = p;
      n.Replace({U' '}, {replacement_});
      bool prepend = scheme_ == PrependScheme::kAlways ||
                     (scheme_ == PrependScheme::kFirst && n.original().start == 0);
      if (prepend && !n.empty() && n.chars()[0] != replacement_) n.Prepend({replacement_});
      if (!split_) return std::vector<NormalizedString>{n};
      return n.Split([this](char32_t c) { return c == replacement_; },
                     SplitBehavior::kMergedWithNext);
    });
  }
  ojson ToJson() const override {
    const char* scheme = scheme_ == PrependScheme::kFirst   ? "first"
                         : scheme_ == PrependScheme::kNever ? "never"
                                                            : "always";
    return {{"type", "Metaspace"},
            {"replacement", EncodeUtf8(&replacement_, &replacement_ + 1)},
            {"prepend_scheme", scheme},
            {"split", split_}};
  }

 private:
  char32_t replacement_;
  PrependScheme scheme_;
  bool split_;
};

// Character classes of the GPT-2 pattern under Oniguruma: letters, numbers, whitespace
// (\s: 9-D, 85, Zs, Zl, Zp) and everything else.
enum class Gpt2Class { kL, kN, kW, kO };

Gpt2Class Classify(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return Gpt2Class::kL;
    if (c >= '0' && c <= '9') return Gpt2Class::kN;
    if (c == ' ' || (c >= 9 && c <= 13)) return Gpt2Class::kW;
    return Gpt2Class::kO;
  }
  if (c == 0x85) return Gpt2Class::kW;
  std::string_view cat = GeneralCategory(c);
  if (cat[0] == 'L') return Gpt2Class::kL;
  if (cat[0] == 'N') return Gpt2Class::kN;
  if (cat[0] == 'Z') return Gpt2Class::kW;
  return Gpt2Class::kO;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ as Oniguruma
// matches it (leftmost-first): returns the end of the match starting at `pos`.
size_t Gpt2MatchEnd(const CodePoints& s, size_t pos) {
  const size_t n = s.size();
  char32_t c = s[pos];
  if (c == '\'' && pos + 1 < n) {
    char32_t a = s[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
    if (pos + 2 < n) {
      char32_t b = s[pos + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return pos + 3;
    }
  }
  size_t k = (c == ' ' && pos + 1 < n) ? pos + 1 : pos;
  Gpt2Class cls = Classify(s[k]);
  if (cls != Gpt2Class::kW) {
    size_t e = k + 1;
    while (e < n && Classify(s[e]) == cls) ++e;
    return e;
  }
  size_t r = pos;
  while (r < n && Classify(s[r]) == Gpt2Class::kW) ++r;
  if (r == n) return n;
  if (r - pos >= 2) return r - 1;  // \s+(?!\S): leave the last space for the next word
  return r;
}

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool trim_offsets, bool use_regex)
      : add_prefix_space_(add_prefix_space), trim_offsets_(trim_offsets), use_regex_(use_regex) {}

  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    ForEachPiece(pieces, [this](const NormalizedString& p) {
      NormalizedString n = p;
      if (add_prefix_space_ && !n.empty() && n.chars()[0] != U' ') n.Prepend({U' '});
      std::vector<NormalizedString> parts;
      if (use_regex_) {
        const auto& s = n.chars();
        size_t pos = 0;
        while (pos < s.size()) {
          size_t e = Gpt2MatchEnd(s, pos);
          parts.push_back(n.Slice(pos, e));
          pos = e;
        }
      } else {
        parts.push_back(std::move(n));
      }
      for (auto& part : parts) ToByteChars(part);
      return parts;
    });
  }

  ojson ToJson() const override {
    return {{"type", "ByteLevel"},
            {"add_prefix_space", add_prefix_space_},
            {"trim_offsets", trim_offsets_},
            {"use_regex", use_regex_}};
  }

 private:
  // Every char becomes the chars of its UTF-8 bytes, all aligned to the original char.
  static void ToByteChars(NormalizedString& n) {
    std::vector<std::pair<char32_t, int>> items;
    items.reserve(n.size() * 2);
    std::string bytes;
    for (char32_t c : n.chars()) {
      bytes.clear();
      AppendUtf8(c, bytes);
      for (size_t k = 0; k < bytes.size(); ++k) {
        items.push_back({ByteToChar(static_cast<uint8_t>(bytes[k])), k == 0 ? 0 : 1});
      }
    }
    n.Transform(items);
  }

  bool add_prefix_space_, trim_offsets_, use_regex_;
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void PreTokenize(std::vector<NormalizedString>& pieces) const override {
    for (const auto& p : items_) p->PreTokenize(pieces);
  }
  ojson ToJson() const override {
    ojson list = ojson::array();
    for (const auto& p : items_) list.push_back(p->ToJson());
    return {{"type", "Sequence"}, {"pretokenizers", list}};
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

Result<char32_t> SingleChar(const json& j, const std::string& what) {
  if (!j.is_string()) return InvalidArgument(what + " must be a one-character string");
  auto cps = DecodeUtf8(j.get<std::string>());
  if (!cps.has_value() || cps->size() != 1) {
    return InvalidArgument(what + " must be exactly one character");
  }
  return (*cps)[0];
}

bool Bool(const json& j, const char* key, bool fallback) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
}

}  // namespace

char32_t ByteToChar(uint8_t b) {
  static const std::array<char32_t, 256> kTable = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 0x100;
    for (int i = 0; i < 256; ++i) {
      bool printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE);
      t[static_cast<size_t>(i)] = printable ? static_cast<char32_t>(i) : next++;
    }
    return t;
  }();
  return kTable[b];
}

int CharToByte(char32_t c) {
  if (c < 0x100) {
    bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE);
    return printable ? static_cast<int>(c) : -1;
  }
  if (c < 0x100 + 68) {
    static const std::array<int, 68> kBack = [] {
      std::array<int, 68> t{};
      for (int i = 0; i < 256; ++i) {
        char32_t m = ByteToChar(static_cast<uint8_t>(i));
        if (m >= 0x100) t[m - 0x100] = i;
      }
      return t;
    }();
    return kBack[c - 0x100];
  }
  return -1;
}

bool IsBertPunctuation(char32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  }
  return tables::IsPunctuationV8(c);
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("pre_tokenizer must be an object with a \"type\"");
  }
  const std::string type = j["type"];
  if (type == "BertPreTokenizer") return std::unique_ptr<PreTokenizer>(new BertPre());
  if (type == "Whitespace") return std::unique_ptr<PreTokenizer>(new WhitespacePre());
  if (type == "WhitespaceSplit") return std::unique_ptr<PreTokenizer>(new WhitespaceSplitPre());
  if (type == "Punctuation") {
    SplitBehavior b = SplitBehavior::kIsolated;
    if (j.contains("behavior")) {
      MLAAS_ASSIGN_OR_RETURN(b, ParseBehavior(j["behavior"]));
    }
    return std::unique_ptr<PreTokenizer>(new PunctuationPre(b));
  }
  if (type == "Digits") {
    return std::unique_ptr<PreTokenizer>(new DigitsPre(Bool(j, "individual_digits", false)));
  }
  if (type == "CharDelimiterSplit") {
    MLAAS_ASSIGN_OR_RETURN(char32_t d, SingleChar(j.value("delimiter", json()), "delimiter"));
    return std::unique_ptr<PreTokenizer>(new CharDelimiterPre(d));
  }
  if (type == "Metaspace") {
    MLAAS_ASSIGN_OR_RETURN(char32_t rep,
                           SingleChar(j.value("replacement", json()), "Metaspace replacement"));
    PrependScheme scheme = PrependScheme::kAlways;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      std::string s = j["prepend_scheme"];
      if (s == "first") scheme = PrependScheme::kFirst;
      else if (s == "never") scheme = PrependScheme::kNever;
      else if (s != "always") return InvalidArgument("unknown Metaspace prepend_scheme '" + s + "'");
    }
    if (j.contains("add_prefix_space") && j["add_prefix_space"] == false) {
      if (scheme != PrependScheme::kNever) {
        return InvalidArgument("Metaspace: add_prefix_space does not match declared prepend_scheme");
      }
    }
    return std::unique_ptr<PreTokenizer>(new MetaspacePre(rep, scheme, Bool(j, "split", true)));
  }
  if (type == "ByteLevel") {
    return std::unique_ptr<PreTokenizer>(new ByteLevelPre(Bool(j, "add_prefix_space", true),
                                                          Bool(j, "trim_offsets", true),
                                                          Bool(j, "use_regex", true)));
  }
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      return InvalidArgument("Sequence pre_tokenizer needs a \"pretokenizers\" list");
    }
    std::vector<std::unique_ptr<PreTokenizer>> items;
    for (const auto& item : j["pretokenizers"]) {
      MLAAS_ASSIGN_OR_RETURN(auto p, PreTokenizerFromJson(item));
      items.push_back(std::move(p));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePre(std::move(items)));
  }
  return InvalidArgument("unsupported pre_tokenizer type '" + type +
                         "' (supported: BertPreTokenizer, Whitespace, WhitespaceSplit, ByteLevel, "
                         "Punctuation, Digits, Metaspace, CharDelimiterSplit, Sequence)");
}

}  // namespace mlaas::tokenizers
