#include "tokenizers/normalizers.h"

#include "tokenizers/unicode_tables.h"

namespace mlaas::tokenizers {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

bool IsBertWhitespace(char32_t c) { return c == '\t' || c == '\n' || c == '\r' || IsWhitespace(c); }

class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese, std::optional<bool> strip_accents, bool lowercase)
      : clean_text_(clean_text), chinese_(chinese), strip_accents_(strip_accents),
        lowercase_(lowercase) {}

  void Normalize(NormalizedString& s) const override {
    if (AsciiFastPath(s)) return;
    if (clean_text_) {
      s.Filter([](char32_t c) { return !tables::IsBertCleanRemoved(c); });
      s.Map([](char32_t c) { return IsBertWhitespace(c) ? U' ' : c; });
    }
    if (chinese_) {
      bool any = false;
      for (char32_t c : s.chars()) any |= tables::IsBertChinese(c);
      if (any) {
        std::vector<std::pair<char32_t, int>> items;
        items.reserve(s.size() + 8);
        for (char32_t c : s.chars()) {
          if (tables::IsBertChinese(c)) {
            items.push_back({U' ', 0});
            items.push_back({c, 1});
            items.push_back({U' ', 1});
          } else {
            items.push_back({c, 0});
          }
        }
        s.Transform(items);
      }
    }
    if (strip_accents_.value_or(lowercase_)) {
      s.Nfd();
      s.Filter([](char32_t c) { return !tables::IsMnV8(c); });
    }
    if (lowercase_) s.Lowercase();
  }

  // All of BERT normalization in one pass when the text is ASCII (no Chinese chars, nothing
  // to decompose, ASCII-only lowercase): the common case, and the same result.
  bool AsciiFastPath(NormalizedString& s) const {
    for (char32_t c : s.chars()) {
      if (c >= 0x80) return false;
    }
    auto& chars = s.mutable_chars();
    auto& align = s.mutable_alignments();
    size_t w = 0;
    for (size_t r = 0; r < chars.size(); ++r) {
      char32_t c = chars[r];
      if (clean_text_) {
        if (tables::IsBertCleanRemoved(c)) continue;
        if (IsBertWhitespace(c)) c = U' ';
      }
      if (lowercase_ && c >= 'A' && c <= 'Z') c += 32;
      chars[w] = c;
      align[w] = align[r];
      ++w;
    }
    chars.resize(w);
    align.resize(w);
    return true;
  }

  ojson ToJson() const override {
    return {{"type", "BertNormalizer"},
            {"clean_text", clean_text_},
            {"handle_chinese_chars", chinese_},
            {"strip_accents", strip_accents_ ? ojson(*strip_accents_) : ojson()},
            {"lowercase", lowercase_}};
  }

 private:
  bool clean_text_, chinese_;
  std::optional<bool> strip_accents_;
  bool lowercase_;
};

// A normalizer that is one NormalizedString operation and has no parameters.
class SimpleNormalizer final : public Normalizer {
 public:
  SimpleNormalizer(std::string type, void (NormalizedString::*op)()) : type_(std::move(type)), op_(op) {}
  void Normalize(NormalizedString& s) const override { (s.*op_)(); }
  ojson ToJson() const override { return {{"type", type_}}; }

 private:
  std::string type_;
  void (NormalizedString::*op_)();
};

class StripAccents final : public Normalizer {
 public:
  void Normalize(NormalizedString& s) const override {
    s.Filter([](char32_t c) { return !tables::IsCombiningMarkV9(c); });
  }
  ojson ToJson() const override { return {{"type", "StripAccents"}}; }
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(NormalizedString& s) const override {
    if (left_) s.StripLeft();
    if (right_) s.StripRight();
  }
  ojson ToJson() const override {
    return {{"type", "Strip"}, {"strip_left", left_}, {"strip_right", right_}};
  }

 private:
  bool left_, right_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string text) : text_(std::move(text)), cps_(*DecodeUtf8(text_)) {}
  void Normalize(NormalizedString& s) const override { s.Prepend(cps_); }
  ojson ToJson() const override { return {{"type", "Prepend"}, {"prepend", text_}}; }

 private:
  std::string text_;
  CodePoints cps_;
};

// Replace with a literal pattern: every match (left to right, not overlapping) becomes the
// content, each content char aligned to the match's last char.
class Replace final : public Normalizer {
 public:
  Replace(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)),
        pat_(*DecodeUtf8(pattern_)), con_(*DecodeUtf8(content_)) {}
  void Normalize(NormalizedString& s) const override { s.Replace(pat_, con_); }
  ojson ToJson() const override {
    return {{"type", "Replace"}, {"pattern", {{"String", pattern_}}}, {"content", content_}};
  }

 private:
  std::string pattern_, content_;
  CodePoints pat_, con_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> items) : items_(std::move(items)) {}
  void Normalize(NormalizedString& s) const override {
    for (const auto& n : items_) n->Normalize(s);
  }
  ojson ToJson() const override {
    ojson list = ojson::array();
    for (const auto& n : items_) list.push_back(n->ToJson());
    return {{"type", "Sequence"}, {"normalizers", list}};
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

Result<bool> RequiredBool(const json& j, const char* key, const std::string& type) {
  if (!j.contains(key) || !j[key].is_boolean()) {
    return InvalidArgument(type + " normalizer: missing boolean field '" + key + "'");
  }
  return j[key].get<bool>();
}

}  // namespace

Result<std::unique_ptr<Normalizer>> NormalizerFromJson(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("normalizer must be an object with a \"type\"");
  }
  const std::string type = j["type"];
  if (type == "BertNormalizer") {
    MLAAS_ASSIGN_OR_RETURN(bool clean, RequiredBool(j, "clean_text", type));
    MLAAS_ASSIGN_OR_RETURN(bool chinese, RequiredBool(j, "handle_chinese_chars", type));
    MLAAS_ASSIGN_OR_RETURN(bool lower, RequiredBool(j, "lowercase", type));
    std::optional<bool> strip;
    if (j.contains("strip_accents") && j["strip_accents"].is_boolean()) strip = j["strip_accents"].get<bool>();
    return std::unique_ptr<Normalizer>(new BertNormalizer(clean, chinese, strip, lower));
  }
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new SimpleNormalizer(type, &NormalizedString::Lowercase));
  if (type == "NFD") return std::unique_ptr<Normalizer>(new SimpleNormalizer(type, &NormalizedString::Nfd));
  if (type == "NFKD") return std::unique_ptr<Normalizer>(new SimpleNormalizer(type, &NormalizedString::Nfkd));
  if (type == "NFC") return std::unique_ptr<Normalizer>(new SimpleNormalizer(type, &NormalizedString::Nfc));
  if (type == "NFKC") return std::unique_ptr<Normalizer>(new SimpleNormalizer(type, &NormalizedString::Nfkc));
  if (type == "StripAccents") return std::unique_ptr<Normalizer>(new StripAccents());
  if (type == "Strip") {
    MLAAS_ASSIGN_OR_RETURN(bool left, RequiredBool(j, "strip_left", type));
    MLAAS_ASSIGN_OR_RETURN(bool right, RequiredBool(j, "strip_right", type));
    return std::unique_ptr<Normalizer>(new Strip(left, right));
  }
  if (type == "Prepend") {
    if (!j.contains("prepend") || !j["prepend"].is_string() ||
        !DecodeUtf8(j["prepend"].get<std::string>()).has_value()) {
      return InvalidArgument("Prepend normalizer: 'prepend' must be a string");
    }
    return std::unique_ptr<Normalizer>(new Prepend(j["prepend"]));
  }
  if (type == "Replace") {
    const json& p = j.value("pattern", json());
    if (!p.is_object() || !p.contains("String") || !p["String"].is_string() ||
        !j.contains("content") || !j["content"].is_string()) {
      if (p.is_object() && p.contains("Regex")) {
        return InvalidArgument("unsupported normalizer: Replace with a Regex pattern");
      }
      return InvalidArgument("Replace normalizer needs pattern {\"String\": ...} and content");
    }
    if (p["String"].get<std::string>().empty()) {
      return InvalidArgument("unsupported normalizer: Replace with an empty pattern");
    }
    return std::unique_ptr<Normalizer>(new Replace(p["String"], j["content"]));
  }
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      return InvalidArgument("Sequence normalizer needs a \"normalizers\" list");
    }
    std::vector<std::unique_ptr<Normalizer>> items;
    for (const auto& item : j["normalizers"]) {
      MLAAS_ASSIGN_OR_RETURN(auto n, NormalizerFromJson(item));
      items.push_back(std::move(n));
    }
    return std::unique_ptr<Normalizer>(new Sequence(std::move(items)));
  }
  return InvalidArgument("unsupported normalizer type '" + type +
                         "' (supported: BertNormalizer, Lowercase, StripAccents, NFC, NFD, NFKC, "
                         "NFKD, Strip, Prepend, Replace, Sequence)");
}

}  // namespace mlaas::tokenizers
