// Conformance with Hugging Face `tokenizers` (the official Rust library through its Node
// binding, tests/tokenizers/oracle): the reference trains BERT-style WordPiece and
// RoBERTa-style byte-level BPE tokenizers on the fixture corpus; both implementations then
// encode every text, and ids, tokens, offsets, type ids and masks must be identical.
#include <gtest/gtest.h>

#include <fstream>

#include "testutil/temp_dir.h"
#include "tokenizers/oracle_util.h"
#include "tokenizers/tokenizer.h"

namespace mlaas::tokenizers {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using mlaas::testing::TempDir;

using namespace mlaas::tokenizers::testing;

// The texts both sides encode: the corpus lines, the adversarial strings, and pairs of them.
std::vector<json> Inputs() {
  std::vector<json> in;
  std::ifstream corpus(kData / "corpus.txt");
  std::string line;
  while (std::getline(corpus, line)) in.push_back({{"text", line}});
  for (const auto& a : ReadJsonl(kData / "adversarial.jsonl")) in.push_back(a);
  const size_t singles = in.size();
  for (size_t i = 0; i + 1 < singles; i += 7) {
    in.push_back({{"text", in[i]["text"]}, {"pair", in[i + 1]["text"]}});
  }
  return in;
}

// Turns a reference-trained tokenizer.json (default trainer: no special tokens) into a
// complete BERT or RoBERTa tokenizer: special tokens first, a post-processor, a decoder.
json Complete(json t, bool bert) {
  const std::vector<std::string> specials =
      bert ? std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
           : std::vector<std::string>{"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
  json vocab = json::object();
  for (size_t i = 0; i < specials.size(); ++i) vocab[specials[i]] = i;
  for (auto it = t["model"]["vocab"].begin(); it != t["model"]["vocab"].end(); ++it) {
    vocab[it.key()] = it.value().get<size_t>() + specials.size();
  }
  t["model"]["vocab"] = vocab;
  json added = json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    bool mask = specials[i] == "<mask>";
    added.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false},
                     {"lstrip", mask}, {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  t["added_tokens"] = added;
  if (bert) {
    t["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", json::parse(R"([{"SpecialToken":{"id":"[CLS]","type_id":0}},
                               {"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}}])")},
                           {"pair", json::parse(R"([{"SpecialToken":{"id":"[CLS]","type_id":0}},
                               {"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}},
                               {"Sequence":{"id":"B","type_id":1}},{"SpecialToken":{"id":"[SEP]","type_id":1}}])")},
                           {"special_tokens", {{"[CLS]", {{"id", "[CLS]"}, {"ids", {2}}, {"tokens", {"[CLS]"}}}},
                                               {"[SEP]", {{"id", "[SEP]"}, {"ids", {3}}, {"tokens", {"[SEP]"}}}}}}};
    t["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  } else {
    t["post_processor"] = {{"type", "RobertaProcessing"}, {"sep", json::array({"</s>", 2})}, {"cls", json::array({"<s>", 0})},
                           {"trim_offsets", true}, {"add_prefix_space", false}};
    t["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                    {"use_regex", true}};
    t["model"]["unk_token"] = "<unk>";
  }
  return t;
}

json View(const Encoding& e) {
  json v = {{"ids", e.ids},
            {"tokens", e.tokens},
            {"offsets", json::array()},
            {"type_ids", e.type_ids},
            {"attention_mask", e.attention_mask},
            {"special_tokens_mask", e.special_tokens_mask}};
  for (const auto& [s, t] : e.offsets) v["offsets"].push_back({s, t});
  return v;
}

// Encoding settings written into tokenizer.json, so both sides apply the same ones.
enum class Settings { kNone, kTruncateRightStride, kTruncateLeftPadFixed, kPadLongestMultiple };

class ConformanceTest
    : public ::testing::TestWithParam<std::tuple<std::string, bool, Settings>> {};

TEST_P(ConformanceTest, EncodingsAreIdenticalToTheReference) {
  const auto& [pipeline, add_special, settings] = GetParam();
  TempDir dir;
  const bool bert = pipeline != "byte-level";
  const std::string model = bert ? "wordpiece" : "bpe";
  const std::string trained_with = pipeline == "byte-level" || pipeline == "bert-cased" ? pipeline : "bert-uncased";
  Oracle("train " + model + " " + trained_with + " '" + (dir / "trained.json").string() + "' '" +
         (kData / "corpus.txt").string() + "'");
  std::ifstream trained(dir / "trained.json");
  ASSERT_TRUE(trained) << "the reference did not write its tokenizer";
  json full = Complete(json::parse(trained), bert);
  // The other components, on the BERT vocabulary: normalizer and pre-tokenizer swapped.
  if (pipeline == "mixed-normalizers") {
    full["normalizer"] = json::parse(R"({"type":"Sequence","normalizers":[{"type":"NFKC"},
        {"type":"Lowercase"},{"type":"Strip","strip_left":true,"strip_right":true}]})");
    full["pre_tokenizer"] = json::parse(R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},
        {"type":"Punctuation","behavior":"Isolated"},{"type":"Digits","individual_digits":true}]})");
  } else if (pipeline == "accents-whitespace") {
    full["normalizer"] = json::parse(R"({"type":"Sequence","normalizers":[{"type":"NFD"},
        {"type":"StripAccents"},{"type":"Lowercase"}]})");
    full["pre_tokenizer"] = json::parse(R"({"type":"Whitespace"})");
  } else if (pipeline == "nfc-metaspace") {
    full["normalizer"] = json::parse(R"({"type":"NFC"})");
    full["pre_tokenizer"] = json::parse(R"({"type":"Metaspace","replacement":"▁",
        "prepend_scheme":"first","split":true})");
    full["decoder"] = json::parse(R"({"type":"Metaspace","replacement":"▁",
        "prepend_scheme":"first","split":true})");
  }
  const std::string pad = bert ? "[PAD]" : "<pad>";
  const uint32_t pad_id = bert ? 0 : 1;
  switch (settings) {
    case Settings::kNone: break;
    case Settings::kTruncateRightStride:
      full["truncation"] = {{"direction", "Right"}, {"max_length", 24}, {"strategy", "LongestFirst"},
                            {"stride", 5}};
      break;
    case Settings::kTruncateLeftPadFixed:
      full["truncation"] = {{"direction", "Left"}, {"max_length", 16}, {"strategy", "LongestFirst"},
                            {"stride", 0}};
      full["padding"] = {{"strategy", {{"Fixed", 20}}}, {"direction", "Left"},
                         {"pad_to_multiple_of", nullptr}, {"pad_id", pad_id}, {"pad_type_id", 0},
                         {"pad_token", pad}};
      break;
    case Settings::kPadLongestMultiple:
      full["padding"] = {{"strategy", "BatchLongest"}, {"direction", "Right"},
                         {"pad_to_multiple_of", 8}, {"pad_id", pad_id}, {"pad_type_id", 0},
                         {"pad_token", pad}};
      break;
  }
  std::ofstream(dir / "tokenizer.json") << full.dump(2);

  auto inputs = Inputs();
  {
    std::ofstream in(dir / "input.jsonl");
    for (const auto& x : inputs) in << x.dump() << "\n";
  }
  Oracle("encode '" + (dir / "tokenizer.json").string() + "' '" + (dir / "input.jsonl").string() +
         "' '" + (dir / "ref.jsonl").string() + "'" + (add_special ? "" : " --no-special-tokens"));
  auto ref = ReadJsonl(dir / "ref.jsonl");
  ASSERT_EQ(ref.size(), inputs.size());

  auto ours = Tokenizer::Load(dir / "tokenizer.json");
  ASSERT_TRUE(ours.has_value()) << ours.error().ToString();
  size_t mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::optional<std::string> pair;
    if (inputs[i].contains("pair")) pair = inputs[i]["pair"].get<std::string>();
    auto e = (*ours)->Encode(inputs[i]["text"].get<std::string>(),
                             pair ? std::optional<std::string_view>(*pair) : std::nullopt, add_special);
    ASSERT_TRUE(e.has_value()) << e.error().ToString() << " on " << inputs[i].dump();
    json got = View(*e);
    for (const auto& o : e->overflowing) got["overflowing"].push_back(View(o));
    auto decoded = (*ours)->Decode(e->ids, false);
    auto decoded_skip = (*ours)->Decode(e->ids, true);
    ASSERT_TRUE(decoded.has_value() && decoded_skip.has_value());
    got["decoded"] = *decoded;
    got["decoded_skip"] = *decoded_skip;
    if (got != ref[i]) {
      if (++mismatches <= 5) {
        ADD_FAILURE() << "input " << i << ": " << inputs[i].dump() << "\n ours: " << got.dump()
                      << "\n  ref: " << ref[i].dump();
      }
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << inputs.size() << " inputs";
}

std::string ParamName(
    const ::testing::TestParamInfo<std::tuple<std::string, bool, Settings>>& param_info) {
  static const char* kSettings[] = {"", "_truncate_right_stride", "_truncate_left_pad_fixed",
                                    "_pad_longest_multiple"};
  std::string name = std::get<0>(param_info.param);
  for (char& c : name) c = c == '-' ? '_' : c;
  name += std::get<1>(param_info.param) ? "_special" : "_plain";
  return name + kSettings[static_cast<int>(std::get<2>(param_info.param))];
}

INSTANTIATE_TEST_SUITE_P(
    Pipelines, ConformanceTest,
    ::testing::Combine(::testing::Values("bert-uncased", "bert-cased", "byte-level"),
                       ::testing::Bool(),
                       ::testing::Values(Settings::kNone, Settings::kTruncateRightStride,
                                         Settings::kTruncateLeftPadFixed,
                                         Settings::kPadLongestMultiple)),
    ParamName);

INSTANTIATE_TEST_SUITE_P(
    OtherComponents, ConformanceTest,
    ::testing::Combine(::testing::Values("mixed-normalizers", "accents-whitespace", "nfc-metaspace"),
                       ::testing::Values(true), ::testing::Values(Settings::kNone)),
    ParamName);

}  // namespace
}  // namespace mlaas::tokenizers
