#include "tokenizers/decoders.h"

#include "tokenizers/pre_tokenizers.h"
#include "tokenizers/unicode.h"

namespace mlaas::tokenizers {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i > 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(0, " ");
        }
      }
      if (cleanup_) Cleanup(t);
    }
    return tokens;
  }
  ojson ToJson() const override {
    return {{"type", "WordPiece"}, {"prefix", prefix_}, {"cleanup", cleanup_}};
  }

  static void Cleanup(std::string& t) {
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."},   {" ?", "?"},   {" !", "!"},        {" ,", ","},       {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"},
        {" 're", "'re"}};
    for (const auto& [from, to] : kRules) ReplaceAll(t, from, to);
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class ByteLevelDecoder final : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      auto cps = DecodeUtf8(t, InvalidUtf8::kReplace).value();
      std::string mapped;
      bool ok = true;
      for (char32_t c : cps) {
        int b = CharToByte(c);
        if (b < 0) {
          ok = false;
          break;
        }
        mapped.push_back(static_cast<char>(b));
      }
      bytes += ok ? mapped : t;
    }
    auto text = DecodeUtf8(bytes, InvalidUtf8::kReplace).value();
    return {EncodeUtf8(text)};
  }
  ojson ToJson() const override {
    return {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
            {"use_regex", true}};
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, std::string scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(std::move(scheme)), split_(split) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i == 0 && scheme_ != "never") {
        ReplaceAll(tokens[i], replacement_, "");
      } else {
        ReplaceAll(tokens[i], replacement_, " ");
      }
    }
    return tokens;
  }
  ojson ToJson() const override {
    return {{"type", "Metaspace"}, {"replacement", replacement_}, {"prepend_scheme", scheme_},
            {"split", split_}};
  }

 private:
  std::string replacement_, scheme_;
  bool split_;
};

class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      ReplaceAll(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
    return tokens;
  }
  ojson ToJson() const override { return {{"type", "BPEDecoder"}, {"suffix", suffix_}}; }

 private:
  std::string suffix_;
};

class FuseDecoder final : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    return {all};
  }
  ojson ToJson() const override { return {{"type", "Fuse"}}; }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    auto c = DecodeUtf8(content_, InvalidUtf8::kReplace).value();
    for (auto& t : tokens) {
      auto cps = DecodeUtf8(t, InvalidUtf8::kReplace).value();
      size_t b = 0, e = cps.size();
      for (size_t k = 0; k < start_ && b < e && c.size() == 1 && cps[b] == c[0]; ++k) ++b;
      for (size_t k = 0; k < stop_ && e > b && c.size() == 1 && cps[e - 1] == c[0]; ++k) --e;
      t = EncodeUtf8(cps.data() + b, cps.data() + e);
    }
    return tokens;
  }
  ojson ToJson() const override {
    return {{"type", "Strip"}, {"content", content_}, {"start", start_}, {"stop", stop_}};
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (auto& t : tokens) ReplaceAll(t, pattern_, content_);
    return tokens;
  }
  ojson ToJson() const override {
    return {{"type", "Replace"}, {"pattern", {{"String", pattern_}}}, {"content", content_}};
  }

 private:
  std::string pattern_, content_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (const auto& d : items_) tokens = d->DecodeChain(std::move(tokens));
    return tokens;
  }
  ojson ToJson() const override {
    ojson list = ojson::array();
    for (const auto& d : items_) list.push_back(d->ToJson());
    return {{"type", "Sequence"}, {"decoders", list}};
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

}  // namespace

Result<std::unique_ptr<Decoder>> DecoderFromJson(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("decoder must be an object with a \"type\"");
  }
  const std::string type = j["type"];
  if (type == "WordPiece") {
    return std::unique_ptr<Decoder>(
        new WordPieceDecoder(j.value("prefix", "##"), j.value("cleanup", true)));
  }
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (type == "Metaspace") {
    std::string scheme = j.value("prepend_scheme", "always");
    if (j.contains("add_prefix_space") && j["add_prefix_space"] == false) scheme = "never";
    return std::unique_ptr<Decoder>(
        new MetaspaceDecoder(j.value("replacement", "\xE2\x96\x81"), scheme, j.value("split", true)));
  }
  if (type == "BPEDecoder") return std::unique_ptr<Decoder>(new BpeDecoder(j.value("suffix", "</w>")));
  if (type == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (type == "Strip") {
    return std::unique_ptr<Decoder>(new StripDecoder(j.value("content", " "), j.value("start", 0u),
                                                     j.value("stop", 0u)));
  }
  if (type == "Replace") {
    const json& p = j.value("pattern", json());
    if (!p.is_object() || !p.contains("String") || !p["String"].is_string()) {
      return InvalidArgument("unsupported decoder: Replace without a String pattern");
    }
    return std::unique_ptr<Decoder>(new ReplaceDecoder(p["String"], j.value("content", "")));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> items;
    for (const auto& item : j.value("decoders", json::array())) {
      MLAAS_ASSIGN_OR_RETURN(auto d, DecoderFromJson(item));
      items.push_back(std::move(d));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(items)));
  }
  return InvalidArgument("unsupported decoder type '" + type +
                         "' (supported: WordPiece, ByteLevel, Metaspace, BPEDecoder, Fuse, Strip, "
                         "Replace, Sequence)");
}

}  // namespace mlaas::tokenizers
