#include "tokenizers/processors.h"

#include "tokenizers/unicode.h"

namespace mlaas::tokenizers {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

struct SpecialToken {
  std::string token;
  uint32_t id = 0;
};

Result<SpecialToken> ParseSpecial(const json& j, const char* name) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_string() || !j[1].is_number_integer() ||
      j[1].get<int64_t>() < 0) {
    return InvalidArgument(std::string("post_processor: \"") + name + "\" must be [token, id]");
  }
  return SpecialToken{j[0].get<std::string>(), j[1].get<uint32_t>()};
}

Encoding SpecialOnly(const std::vector<std::pair<std::string, uint32_t>>& tokens, uint32_t type_id) {
  Encoding e;
  for (const auto& [t, id] : tokens) e.Push(id, t, {0, 0}, type_id, std::nullopt, std::nullopt, true);
  return e;
}

// Wraps `e` (and each of its overflowing windows) as prefix + e + suffix.
void Wrap(Encoding& e, const Encoding& prefix, const Encoding& suffix) {
  auto wrap_one = [&](Encoding& x) {
    Encoding out = prefix;
    std::vector<Encoding> keep;
    keep.swap(x.overflowing);
    out.Merge(x);
    out.Merge(suffix);
    out.overflowing = std::move(keep);
    x = std::move(out);
  };
  for (auto& o : e.overflowing) wrap_one(o);
  wrap_one(e);
}

class BertProcessing final : public PostProcessor {
 public:
  BertProcessing(SpecialToken sep, SpecialToken cls) : sep_(std::move(sep)), cls_(std::move(cls)) {}
  size_t AddedTokens(bool is_pair) const override { return is_pair ? 3 : 2; }
  void Process(std::vector<Encoding>& encs, bool add_special) const override {
    if (!add_special) return;
    Wrap(encs[0], SpecialOnly({{cls_.token, cls_.id}}, 0), SpecialOnly({{sep_.token, sep_.id}}, 0));
    if (encs.size() > 1) Wrap(encs[1], Encoding(), SpecialOnly({{sep_.token, sep_.id}}, 1));
  }
  ojson ToJson() const override {
    return {{"type", "BertProcessing"},
            {"sep", ojson::array({sep_.token, sep_.id})},
            {"cls", ojson::array({cls_.token, cls_.id})}};
  }

 private:
  SpecialToken sep_, cls_;
};

class RobertaProcessing final : public PostProcessor {
 public:
  RobertaProcessing(SpecialToken sep, SpecialToken cls, bool trim_offsets, bool add_prefix_space)
      : sep_(std::move(sep)), cls_(std::move(cls)), trim_offsets_(trim_offsets),
        add_prefix_space_(add_prefix_space) {}
  size_t AddedTokens(bool is_pair) const override { return is_pair ? 4 : 2; }
  void Process(std::vector<Encoding>& encs, bool add_special) const override {
    for (auto& e : encs) {
      if (trim_offsets_) {
        TrimOffsets(e, add_prefix_space_);
        for (auto& o : e.overflowing) TrimOffsets(o, add_prefix_space_);
      }
      // The windows keep their type ids unless they get wrapped in special tokens below.
      e.SetTypeIds(0);
      if (add_special) {
        for (auto& o : e.overflowing) o.SetTypeIds(0);
      }
    }
    if (!add_special) return;
    Wrap(encs[0], SpecialOnly({{cls_.token, cls_.id}}, 0), SpecialOnly({{sep_.token, sep_.id}}, 0));
    if (encs.size() > 1) {
      Wrap(encs[1], SpecialOnly({{sep_.token, sep_.id}}, 0), SpecialOnly({{sep_.token, sep_.id}}, 0));
    }
  }
  ojson ToJson() const override {
    return {{"type", "RobertaProcessing"},
            {"sep", ojson::array({sep_.token, sep_.id})},
            {"cls", ojson::array({cls_.token, cls_.id})},
            {"trim_offsets", trim_offsets_},
            {"add_prefix_space", add_prefix_space_}};
  }

 private:
  SpecialToken sep_, cls_;
  bool trim_offsets_, add_prefix_space_;
};

class ByteLevelProcessing final : public PostProcessor {
 public:
  ByteLevelProcessing(bool add_prefix_space, bool trim_offsets, bool use_regex)
      : add_prefix_space_(add_prefix_space), trim_offsets_(trim_offsets), use_regex_(use_regex) {}
  size_t AddedTokens(bool) const override { return 0; }
  void Process(std::vector<Encoding>& encs, bool) const override {
    if (!trim_offsets_) return;
    for (auto& e : encs) {
      TrimOffsets(e, add_prefix_space_);
      for (auto& o : e.overflowing) TrimOffsets(o, add_prefix_space_);
    }
  }
  ojson ToJson() const override {
    return {{"type", "ByteLevel"},
            {"add_prefix_space", add_prefix_space_},
            {"trim_offsets", trim_offsets_},
            {"use_regex", use_regex_}};
  }

 private:
  bool add_prefix_space_, trim_offsets_, use_regex_;
};

class TemplateProcessing final : public PostProcessor {
 public:
  struct Piece {
    bool is_sequence;
    std::string id;  // "A"/"B" or a special token name
    uint32_t type_id;
  };
  struct Special {
    std::vector<uint32_t> ids;
    std::vector<std::string> tokens;
  };
  TemplateProcessing(std::vector<Piece> single, std::vector<Piece> pair,
                     std::map<std::string, Special> specials)
      : single_(std::move(single)), pair_(std::move(pair)), specials_(std::move(specials)) {}

  size_t AddedTokens(bool is_pair) const override {
    size_t n = 0;
    for (const auto& p : is_pair ? pair_ : single_) {
      if (!p.is_sequence) {
        auto it = specials_.find(p.id);
        if (it != specials_.end()) n += it->second.ids.size();
      }
    }
    return n;
  }

  void Process(std::vector<Encoding>& encs, bool add_special) const override {
    const auto& tmpl = encs.size() > 1 ? pair_ : single_;
    std::vector<Encoding> out;
    for (const auto& p : tmpl) {
      if (p.is_sequence) {
        size_t idx = p.id == "A" ? 0 : 1;
        if (idx >= encs.size()) continue;
        Encoding e = encs[idx];
        e.SetTypeIds(p.type_id);
        e.SetSequenceId(static_cast<uint32_t>(idx));
        out.push_back(std::move(e));
      } else if (add_special) {
        const Special& s = specials_.at(p.id);
        Encoding e;
        for (size_t k = 0; k < s.ids.size(); ++k) {
          e.Push(s.ids[k], s.tokens[k], {0, 0}, p.type_id, std::nullopt, std::nullopt, true);
        }
        out.push_back(std::move(e));
      }
    }
    encs = std::move(out);
  }

  ojson ToJson() const override {
    auto pieces = [](const std::vector<Piece>& v) {
      ojson a = ojson::array();
      for (const auto& p : v) {
        a.push_back({{p.is_sequence ? "Sequence" : "SpecialToken", {{"id", p.id}, {"type_id", p.type_id}}}});
      }
      return a;
    };
    ojson sp = ojson::object();
    for (const auto& [name, s] : specials_) {
      sp[name] = {{"id", name}, {"ids", s.ids}, {"tokens", s.tokens}};
    }
    return {{"type", "TemplateProcessing"},
            {"single", pieces(single_)},
            {"pair", pieces(pair_)},
            {"special_tokens", sp}};
  }

 private:
  std::vector<Piece> single_, pair_;
  std::map<std::string, Special> specials_;
};

class SequenceProcessing final : public PostProcessor {
 public:
  explicit SequenceProcessing(std::vector<std::unique_ptr<PostProcessor>> items)
      : items_(std::move(items)) {}
  size_t AddedTokens(bool is_pair) const override {
    size_t n = 0;
    for (const auto& p : items_) n += p->AddedTokens(is_pair);
    return n;
  }
  void Process(std::vector<Encoding>& encs, bool add_special) const override {
    for (const auto& p : items_) p->Process(encs, add_special);
  }
  ojson ToJson() const override {
    ojson list = ojson::array();
    for (const auto& p : items_) list.push_back(p->ToJson());
    return {{"type", "Sequence"}, {"processors", list}};
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

Result<std::vector<TemplateProcessing::Piece>> ParsePieces(const json& j, const char* name) {
  if (!j.is_array()) return InvalidArgument(std::string("TemplateProcessing: \"") + name + "\" must be a list");
  std::vector<TemplateProcessing::Piece> out;
  for (const auto& item : j) {
    bool seq = item.contains("Sequence");
    const json& body = seq ? item["Sequence"] : item.value("SpecialToken", json());
    if (!body.is_object() || !body.contains("id") || !body["id"].is_string()) {
      return InvalidArgument(std::string("TemplateProcessing: malformed piece in \"") + name + "\"");
    }
    out.push_back({seq, body["id"], body.value("type_id", 0u)});
  }
  return out;
}

bool Flag(const json& j, const char* key, bool fallback) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
}

}  // namespace

void TrimOffsets(Encoding& e, bool add_prefix_space) {
  for (size_t i = 0; i < e.size(); ++i) {
    auto cps = DecodeUtf8(e.tokens[i], InvalidUtf8::kReplace).value();
    auto is_space = [](char32_t c) { return c == 0x120 || IsWhitespace(c); };
    size_t lead = 0, trail = 0;
    while (lead < cps.size() && is_space(cps[lead])) ++lead;
    while (trail < cps.size() && is_space(cps[cps.size() - 1 - trail])) ++trail;
    auto& [start, end] = e.offsets[i];
    if (lead > 0) {
      if ((i == 0 || start == 0) && add_prefix_space && lead == 1) lead = 0;
      start = std::min<uint32_t>(start + static_cast<uint32_t>(lead), end);
    }
    if (trail > 0 && end >= trail) end = std::max<uint32_t>(end - static_cast<uint32_t>(trail), start);
  }
}

Result<std::unique_ptr<PostProcessor>> PostProcessorFromJson(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("post_processor must be an object with a \"type\"");
  }
  const std::string type = j["type"];
  if (type == "BertProcessing") {
    MLAAS_ASSIGN_OR_RETURN(auto sep, ParseSpecial(j.value("sep", json()), "sep"));
    MLAAS_ASSIGN_OR_RETURN(auto cls, ParseSpecial(j.value("cls", json()), "cls"));
    return std::unique_ptr<PostProcessor>(new BertProcessing(sep, cls));
  }
  if (type == "RobertaProcessing") {
    MLAAS_ASSIGN_OR_RETURN(auto sep, ParseSpecial(j.value("sep", json()), "sep"));
    MLAAS_ASSIGN_OR_RETURN(auto cls, ParseSpecial(j.value("cls", json()), "cls"));
    return std::unique_ptr<PostProcessor>(new RobertaProcessing(
        sep, cls, Flag(j, "trim_offsets", true), Flag(j, "add_prefix_space", true)));
  }
  if (type == "ByteLevel") {
    return std::unique_ptr<PostProcessor>(new ByteLevelProcessing(
        Flag(j, "add_prefix_space", true), Flag(j, "trim_offsets", true), Flag(j, "use_regex", true)));
  }
  if (type == "TemplateProcessing") {
    MLAAS_ASSIGN_OR_RETURN(auto single, ParsePieces(j.value("single", json()), "single"));
    MLAAS_ASSIGN_OR_RETURN(auto pair, ParsePieces(j.value("pair", json()), "pair"));
    std::map<std::string, TemplateProcessing::Special> specials;
    const json& sp = j.value("special_tokens", json::object());
    for (auto it = sp.begin(); it != sp.end(); ++it) {
      const json& v = it.value();
      if (!v.contains("ids") || !v.contains("tokens") || !v["ids"].is_array() ||
          !v["tokens"].is_array() || v["ids"].size() != v["tokens"].size()) {
        return InvalidArgument("TemplateProcessing: special token '" + it.key() + "' is malformed");
      }
      specials[it.key()] = {v["ids"].get<std::vector<uint32_t>>(),
                            v["tokens"].get<std::vector<std::string>>()};
    }
    for (const auto* list : {&single, &pair}) {
      for (const auto& p : *list) {
        if (!p.is_sequence && !specials.count(p.id)) {
          return InvalidArgument("TemplateProcessing: template uses unknown special token '" + p.id + "'");
        }
      }
    }
    return std::unique_ptr<PostProcessor>(
        new TemplateProcessing(std::move(single), std::move(pair), std::move(specials)));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> items;
    for (const auto& item : j.value("processors", json::array())) {
      MLAAS_ASSIGN_OR_RETURN(auto p, PostProcessorFromJson(item));
      items.push_back(std::move(p));
    }
    return std::unique_ptr<PostProcessor>(new SequenceProcessing(std::move(items)));
  }
  return InvalidArgument("unsupported post_processor type '" + type +
                         "' (supported: BertProcessing, RobertaProcessing, TemplateProcessing, "
                         "ByteLevel, Sequence)");
}

}  // namespace mlaas::tokenizers
