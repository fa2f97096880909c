// libFuzzer target: tokenizer.json parsing and encoding must never crash, leak or trip a
// sanitizer, whatever the bytes. The first byte picks the mode:
//   even: the rest is a tokenizer.json; if it loads, encode a few texts with it;
//   odd:  the rest is a text (or a pair, split at the first 0x00) encoded by a BERT WordPiece
//         and a byte-level BPE tokenizer, with and without specials, and (up to 64 bytes)
//         with truncation and padding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/json_file.h"
#include "tokenizers/tokenizer.h"

using namespace mlaas::tokenizers;
using nlohmann::json;

namespace {

json BertJson() {
  json vocab = {{"[PAD]", 0}, {"[UNK]", 1}, {"[CLS]", 2}, {"[SEP]", 3}, {"[MASK]", 4}};
  uint32_t id = 5;
  for (char c = '!'; c <= '~'; ++c) {
    vocab[std::string(1, c)] = id++;
    vocab["##" + std::string(1, c)] = id++;
  }
  for (const char* w : {"the", "##ing", "hello", "world", "##s", "un", "##able", "infn"}) vocab[w] = id++;
  json added = json::array();
  for (int i = 0; i < 5; ++i) {
    added.push_back({{"id", i}, {"content", vocab.items().begin().key()}, {"special", true},
                     {"normalized", false}, {"lstrip", false}, {"rstrip", false}, {"single_word", false}});
  }
  const char* specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; i < 5; ++i) added[i]["content"] = specials[i];
  return {{"version", "1.0"}, {"added_tokens", added},
          {"normalizer", {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
                          {"strip_accents", nullptr}, {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"post_processor", {{"type", "BertProcessing"}, {"sep", json::array({"[SEP]", 3})}, {"cls", json::array({"[CLS]", 2})}}},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
          {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
                     {"max_input_chars_per_word", 100}, {"vocab", vocab}}}};
}

json BpeJson() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    char32_t c = ByteToChar(static_cast<uint8_t>(b));
    vocab[EncodeUtf8(&c, &c + 1)] = b;
  }
  vocab["<s>"] = 256;
  vocab["</s>"] = 257;
  vocab["th"] = 258;
  vocab["the"] = 259;
  vocab["\xC4\xA0t"] = 260;  // "Ġt"
  json merges = json::array({json::array({"t", "h"}), json::array({"th", "e"}),
                             json::array({"\xC4\xA0", "t"})});
  return {{"version", "1.0"},
          {"added_tokens", json::array({{{"id", 256}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                                        {{"id", 257}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", {{"type", "RobertaProcessing"}, {"sep", json::array({"</s>", 257})}, {"cls", json::array({"<s>", 256})},
                              {"trim_offsets", true}, {"add_prefix_space", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

void Exercise(Tokenizer& t, const std::string& a, const std::string* b) {
  for (InvalidUtf8 policy : {InvalidUtf8::kError, InvalidUtf8::kReplace}) {
    t.set_invalid_utf8(policy);
    for (bool special : {true, false}) {
      auto e = t.Encode(a, b ? std::optional<std::string_view>(*b) : std::nullopt, special);
      if (e.has_value()) (void)t.Decode(e->ids, !special);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto j = mlaas::ParseJsonText(rest, "tokenizer.json");  // as Tokenizer::Load reads the file
    if (!j.has_value()) return 0;
    auto t = Tokenizer::FromJson(*j);
    if (!t.has_value()) return 0;
    Exercise(**t, "Hello, world! The unable INFN 中文 caf\xC3\xA9 \xF0\x9F\x98\x80", nullptr);
    std::string pair = "second part";
    Exercise(**t, "pair first", &pair);
    (void)(*t)->ToJson().dump();
    return 0;
  }
  static auto bert = std::move(Tokenizer::FromJson(BertJson())).value();
  static auto bpe = std::move(Tokenizer::FromJson(BpeJson())).value();
  std::string a = rest, b;
  const std::string* pair = nullptr;
  if (auto nul = rest.find('\0'); nul != std::string::npos) {
    a = rest.substr(0, nul);
    b = rest.substr(nul + 1);
    pair = &b;
  }
  for (Tokenizer* t : {bert.get(), bpe.get()}) {
    t->set_truncation(std::nullopt);
    t->set_padding(std::nullopt);
    Exercise(*t, a, pair);
    // Windows of a pair multiply (each of the first's with each of the second's, as in the
    // reference): kept to short texts, so that one input stays a few milliseconds.
    if (a.size() + b.size() > 64) continue;
    TruncationParams tr;
    tr.max_length = 8 + data[0] % 7;
    tr.stride = data[0] % 3;
    tr.direction = data[0] & 4 ? Direction::kLeft : Direction::kRight;
    t->set_truncation(tr);
    PaddingParams pd;
    pd.fixed_length = 16;
    t->set_padding(pd);
    Exercise(*t, a, pair);
  }
  return 0;
}
