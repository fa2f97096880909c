// Unit tests of the tokenizer components; expected values are the reference's (verified on
// Hugging Face tokenizers 0.23.2).
#include <gtest/gtest.h>

#include <fstream>

#include "testutil/temp_dir.h"
#include "tokenizers/trainer.h"

namespace mlaas::tokenizers {
namespace {

using nlohmann::json;
using mlaas::testing::TempDir;

NormalizedString Ns(const std::string& text) {
  auto cps = DecodeUtf8(text).value();
  return NormalizedString(cps.data(), cps.data() + cps.size(), 0);
}

std::string Str(const NormalizedString& n) { return EncodeUtf8(n.chars()); }

std::vector<std::pair<uint32_t, uint32_t>> Aligns(const NormalizedString& n) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const auto& a : n.alignments()) out.push_back({a.start, a.end});
  return out;
}

using Pairs = std::vector<std::pair<uint32_t, uint32_t>>;

TEST(Utf8Test, InvalidInputIsAnErrorOrReplaced) {
  EXPECT_EQ(DecodeUtf8("ok\xff").error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(DecodeUtf8("ok\xff").error().message().find("byte 2"), std::string::npos);
  auto r = DecodeUtf8("a\xff\xc3" "b\xe2\x82", InvalidUtf8::kReplace).value();
  EXPECT_EQ(EncodeUtf8(r), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

TEST(NormalizedStringTest, NfdMovesAlignmentsByPositionLikeTheReference) {
  auto n = Ns("\u00e1\u0323b");
  n.Nfd();
  EXPECT_EQ(Str(n), "a\u0323\u0301b");
  EXPECT_EQ(Aligns(n), (Pairs{{0, 1}, {1, 2}, {1, 2}, {2, 3}}));
}

TEST(NormalizedStringTest, NfcCompositeKeepsItsFirstPartsAlignment) {
  auto n = Ns("e\u0301a\u0323\u0302x");
  n.Nfc();
  EXPECT_EQ(Str(n), "\u00e9\u1ead" "x");
  EXPECT_EQ(Aligns(n), (Pairs{{0, 1}, {2, 3}, {5, 6}}));
}

TEST(NormalizedStringTest, LowercaseExpandsDottedCapitalI) {
  auto n = Ns("A\u0130B");
  n.Lowercase();
  EXPECT_EQ(Str(n), "ai\u0307b");
  EXPECT_EQ(Aligns(n), (Pairs{{0, 1}, {1, 2}, {1, 2}, {2, 3}}));
}

TEST(NormalizedStringTest, PrependReplaceAndSlice) {
  auto n = Ns("ab");
  n.Prepend(DecodeUtf8("\u2581\u2581").value());
  EXPECT_EQ(Aligns(n), (Pairs{{0, 1}, {0, 1}, {0, 1}, {1, 2}}));
  auto r = Ns("cabd");
  r.Replace(DecodeUtf8("ab").value(), DecodeUtf8("xyz").value());
  EXPECT_EQ(Str(r), "cxyzd");
  EXPECT_EQ(Aligns(r), (Pairs{{0, 1}, {2, 3}, {2, 3}, {2, 3}, {3, 4}}));
  auto s = r.Slice(1, 4);
  EXPECT_EQ(s.original().start, 2u);
  EXPECT_EQ(s.original().end, 3u);
}

json Normalize(const json& config, const std::string& text, NormalizedString* out) {
  auto n = NormalizerFromJson(config);
  EXPECT_TRUE(n.has_value()) << n.error().ToString();
  *out = Ns(text);
  (*n)->Normalize(*out);
  return Str(*out);
}

TEST(NormalizerTest, BertPadsChineseAndCleansControls) {
  json bert = {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
               {"strip_accents", nullptr}, {"lowercase", true}};
  NormalizedString n;
  EXPECT_EQ(Normalize(bert, "a\u4e2db", &n), "a \u4e2d b");
  EXPECT_EQ(Aligns(n), (Pairs{{0, 1}, {1, 2}, {1, 2}, {1, 2}, {2, 3}}));
  const char kControls[] = "a\0b\ufffdc\u200bd\te\u00a0f\u000bg\u0085h";
  EXPECT_EQ(Normalize(bert, std::string(kControls, sizeof(kControls) - 1), &n), "abcd e fgh");
  EXPECT_EQ(Normalize(bert, "Caf\u00e9 \u0130x \u039f\u0394\u039f\u03a3", &n), "cafe ix \u03bf\u03b4\u03bf\u03c3");
  json cased = bert;
  cased["lowercase"] = false;
  EXPECT_EQ(Normalize(cased, "Caf\u00e9", &n), "Caf\u00e9");  // strip_accents follows lowercase
}

TEST(NormalizerTest, SequenceStripAccentsAndUnsupportedTypes) {
  NormalizedString n;
  json seq = {{"type", "Sequence"},
              {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}, {{"type", "Lowercase"}}}}};
  EXPECT_EQ(Normalize(seq, "\u00c9COLE", &n), "ecole");
  auto bad = NormalizerFromJson({{"type", "Precompiled"}, {"precompiled_charsmap", "x"}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("'Precompiled'"), std::string::npos);
  EXPECT_FALSE(NormalizerFromJson({{"type", "BertNormalizer"}}).has_value());  // required fields
}

std::vector<std::pair<std::string, std::pair<uint32_t, uint32_t>>> PreTokenize(const json& config,
                                                                                const std::string& text) {
  auto p = PreTokenizerFromJson(config);
  EXPECT_TRUE(p.has_value()) << p.error().ToString();
  std::vector<NormalizedString> pieces{Ns(text)};
  (*p)->PreTokenize(pieces);
  std::vector<std::pair<std::string, std::pair<uint32_t, uint32_t>>> out;
  for (const auto& q : pieces) out.push_back({Str(q), {q.original().start, q.original().end}});
  return out;
}

using Pieces = std::vector<std::pair<std::string, std::pair<uint32_t, uint32_t>>>;

TEST(PreTokenizerTest, BertSplitsWhitespaceAndIsolatesPunctuation) {
  EXPECT_EQ(PreTokenize({{"type", "BertPreTokenizer"}}, "Hey friend!     How are you?!?"),
            (Pieces{{"Hey", {0, 3}}, {"friend", {4, 10}}, {"!", {10, 11}}, {"How", {16, 19}},
                    {"are", {20, 23}}, {"you", {24, 27}}, {"?", {27, 28}}, {"!", {28, 29}},
                    {"?", {29, 30}}}));
  // Symbols such as the euro sign are not punctuation.
  EXPECT_EQ(PreTokenize({{"type", "BertPreTokenizer"}}, "5\u20ac$").size(), 2u);
}

TEST(PreTokenizerTest, WhitespaceDigitsAndMetaspace) {
  EXPECT_EQ(PreTokenize({{"type", "Whitespace"}}, "don't"),
            (Pieces{{"don", {0, 3}}, {"'", {3, 4}}, {"t", {4, 5}}}));
  EXPECT_EQ(PreTokenize({{"type", "Digits"}, {"individual_digits", false}}, "Hey 123 friend!"),
            (Pieces{{"Hey ", {0, 4}}, {"123", {4, 7}}, {" friend!", {7, 15}}}));
  EXPECT_EQ(PreTokenize({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"},
                         {"split", true}},
                        "Hey   friend!"),
            (Pieces{{"\u2581Hey", {0, 3}}, {"\u2581", {3, 4}}, {"\u2581", {4, 5}},
                    {"\u2581friend!", {5, 13}}}));
  auto legacy = PreTokenizerFromJson({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"add_prefix_space", false}});
  EXPECT_FALSE(legacy.has_value());
  EXPECT_NE(PreTokenizerFromJson({{"type", "Split"}}).error().message().find("'Split'"), std::string::npos);
}

TEST(PreTokenizerTest, ByteLevelGpt2Splits) {
  json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  EXPECT_EQ(PreTokenize(bl, "Hello there       dear"),
            (Pieces{{"Hello", {0, 5}}, {"\u0120there", {5, 11}},
                    {"\u0120\u0120\u0120\u0120\u0120\u0120", {11, 17}}, {"\u0120dear", {17, 22}}}));
  EXPECT_EQ(PreTokenize(bl, "a\n\nb").size(), 4u);
  EXPECT_EQ(PreTokenize(bl, "i\u2b62j"),  // a 3-byte char: three byte-chars, one original char
            (Pieces{{"i", {0, 1}}, {"\u00e2\u0143\u00a2", {1, 2}}, {"j", {2, 3}}}));
  EXPECT_EQ(ByteToChar(0x20), U'\u0120');
  EXPECT_EQ(CharToByte(U'\u0120'), 0x20);
  EXPECT_EQ(CharToByte(U'\u0143'), 0xAD);
  EXPECT_EQ(CharToByte(U'\u4e00'), -1);
}

TEST(ModelTest, WordPieceGreedyLongestMatchAndUnknowns) {
  Vocab v;
  uint32_t id = 0;
  for (const char* t : {"[UNK]", "un", "##aff", "##able", "a", "##b"}) v.Set(t, id++);
  WordPiece wp(v, {});
  std::vector<Token> out;
  ASSERT_TRUE(wp.Tokenize(DecodeUtf8("unaffable").value(), out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].value, "##aff");
  EXPECT_EQ(out[1].start, 2u);
  EXPECT_EQ(out[1].end, 5u);
  out.clear();
  ASSERT_TRUE(wp.Tokenize(DecodeUtf8("unx").value(), out).ok());  // one unk for the whole word
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].value, "[UNK]");
  EXPECT_EQ(out[0].end, 3u);
  out.clear();
  ASSERT_TRUE(wp.Tokenize(CodePoints(101, U'a'), out).ok());  // longer than 100 chars
  EXPECT_EQ(out[0].value, "[UNK]");
  Vocab no_unk;
  no_unk.Set("a", 0);
  WordPiece bad(no_unk, {});
  out.clear();
  EXPECT_NE(bad.Tokenize(DecodeUtf8("b").value(), out).message().find("Missing [UNK]"), std::string::npos);
}

TEST(ModelTest, BpeMergesByRankAndLeftmostOnTies) {
  Vocab v;
  uint32_t id = 0;
  for (const char* t : {"a", "b", "ab", "aab"}) v.Set(t, id++);
  auto bpe = Bpe::Create(v, {{"a", "b"}, {"a", "ab"}}, {});
  ASSERT_TRUE(bpe.has_value());
  std::vector<Token> out;
  ASSERT_TRUE((*bpe)->Tokenize(DecodeUtf8("aabab").value(), out).ok());
  std::vector<std::string> values;
  for (const auto& t : out) values.push_back(t.value);
  EXPECT_EQ(values, (std::vector<std::string>{"aab", "ab"}));
  EXPECT_EQ(out[1].start, 3u);
  // Without an unk token, unknown chars are dropped: the neighbours become adjacent (and
  // merge), and later offsets shift left, as in the reference.
  out.clear();
  ASSERT_TRUE((*bpe)->Tokenize(DecodeUtf8("axb").value(), out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].value, "ab");
  EXPECT_EQ(out[0].end, 2u);
  EXPECT_FALSE(Bpe::Create(v, {{"a", "zz"}}, {}).has_value());
}

TEST(TokenizerTest, LoadsLegacyBertAndRobertaFiles) {
  TempDir dir;
  dir.Write("bert/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n");
  dir.Write("bert/tokenizer_config.json", R"({"do_lower_case": true})");
  auto bert = Tokenizer::Load(dir / "bert");
  ASSERT_TRUE(bert.has_value()) << bert.error().ToString();
  auto e = (*bert)->Encode("Hello, worlds [MASK]");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->tokens, (std::vector<std::string>{"[CLS]", "hello", ",", "world", "##s", "[MASK]", "[SEP]"}));
  EXPECT_EQ(e->special_tokens_mask, (std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ((*(*bert)->Decode(e->ids, true)), "hello, worlds");
  // The vocab.txt file itself, also by a path relative to the working directory.
  EXPECT_TRUE(Tokenizer::Load(dir / "bert/vocab.txt").has_value());
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir / "bert");
  EXPECT_TRUE(Tokenizer::Load("vocab.txt").has_value());
  std::filesystem::current_path(cwd);

  std::string vocab = "{";
  for (int b = 0; b < 256; ++b) {
    char32_t c = ByteToChar(static_cast<uint8_t>(b));
    vocab += json(EncodeUtf8(&c, &c + 1)).dump() + ": " + std::to_string(b) + ", ";
  }
  vocab += "\"<s>\": 256, \"</s>\": 257, \"\\u0120t\": 258, \"\\u0120th\": 259}";
  dir.Write("roberta/vocab.json", vocab);
  dir.Write("roberta/merges.txt", "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0t h\n");
  auto roberta = Tokenizer::Load(dir / "roberta");
  ASSERT_TRUE(roberta.has_value()) << roberta.error().ToString();
  auto r = (*roberta)->Encode("a th");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->tokens, (std::vector<std::string>{"<s>", "a", "\u0120th", "</s>"}));
  EXPECT_EQ(r->offsets[2], (std::pair<uint32_t, uint32_t>{2, 4}));  // the space is trimmed
  EXPECT_EQ(*(*roberta)->Decode(r->ids, true), "a th");

  EXPECT_EQ(Tokenizer::Load(dir / "nothing").error().code(), StatusCode::kNotFound);
}

std::unique_ptr<Tokenizer> SmallBert() {
  TrainSpec spec;
  spec.trainer.vocab_size = 300;
  spec.trainer.special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  auto pipeline = TrainingPipeline(spec);
  WordCounter counter(*pipeline);
  for (const char* l : {"the quick brown fox jumps over the lazy dog\n", "a quick test of the tokenizer\n",
                        "dogs and foxes are quick\n"}) {
    EXPECT_TRUE(counter.Add(l).ok());
  }
  return std::move(BuildTrainedTokenizer(spec, counter)).value();
}

TEST(TokenizerTest, TruncationWindowsAndPadding) {
  auto t = SmallBert();
  TruncationParams tr;
  tr.max_length = 6;
  tr.stride = 1;
  t->set_truncation(tr);
  auto e = t->Encode("the quick brown fox jumps over the lazy dog");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->size(), 6u);
  EXPECT_EQ(e->tokens.front(), "[CLS]");
  EXPECT_EQ(e->tokens.back(), "[SEP]");
  ASSERT_FALSE(e->overflowing.empty());
  for (const auto& o : e->overflowing) {
    EXPECT_EQ(o.tokens.front(), "[CLS]");
    EXPECT_LE(o.size(), 6u);
  }
  // Windows overlap by the stride: the last real token of the main window starts the next.
  EXPECT_EQ(e->overflowing[0].tokens[1], e->tokens[4]);

  PaddingParams pad;
  pad.fixed_length = 10;
  pad.direction = Direction::kLeft;
  t->set_padding(pad);
  auto p = t->Encode("the dog");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->size(), 10u);
  EXPECT_EQ(p->tokens.front(), "[PAD]");
  EXPECT_EQ(p->attention_mask.front(), 0);
  EXPECT_EQ(p->attention_mask.back(), 1);

  TruncationParams only_second;
  only_second.max_length = 4;
  only_second.strategy = TruncationStrategy::kOnlySecond;
  t->set_truncation(only_second);
  t->set_padding(std::nullopt);
  EXPECT_FALSE(t->Encode("the quick brown fox jumps", "a").has_value());
}

// As the reference (tokenizers 0.23) does, a truncated sequence is tokenized only until its
// whole words give max_length tokens, so its windows cover no more of it; question answering
// turns that off, and its windows then cover the whole context, each moving by max - stride.
TEST(TokenizerTest, WindowsCoverTheWholeTextWhenTokenizingDoesNotStopEarly) {
  auto t = SmallBert();
  std::string context;
  for (int i = 0; i < 30; ++i) context += "the quick brown fox jumps over the lazy dog ";
  TruncationParams p;
  p.max_length = 16;
  p.strategy = TruncationStrategy::kOnlySecond;
  p.stride = 4;
  t->set_truncation(p);
  auto early = t->Encode("the dog", context);
  ASSERT_TRUE(early.has_value());
  EXPECT_LE(early->overflowing.size(), 1u);  // the reference's
  p.stop_early = false;
  t->set_truncation(p);
  auto whole = t->Encode("the dog", context);
  ASSERT_TRUE(whole.has_value());
  t->set_truncation(std::nullopt);
  auto full = t->Encode(context, std::nullopt, /*add_special_tokens=*/false);
  ASSERT_TRUE(full.has_value());
  const size_t context_tokens = full->size(), per_window = 16 - 2 - 3, step = per_window - 4;
  EXPECT_EQ(whole->overflowing.size() + 1, (context_tokens - per_window + step - 1) / step + 1) << context_tokens;
  // The last window ends with the context's last token.
  const auto& last = whole->overflowing.back();
  EXPECT_EQ(last.ids[last.size() - 2], full->ids.back());
  EXPECT_EQ(last.offsets[last.size() - 2], full->offsets.back());
}

TEST(TokenizerTest, SaveAndLoadGivesTheSameEncodings) {
  auto t = SmallBert();
  TempDir dir;
  ASSERT_TRUE(t->Save(dir / "tokenizer.json").ok());
  auto loaded = Tokenizer::Load(dir / "tokenizer.json");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  for (const char* text : {"the lazy dog", "unknown words xyz", "[MASK] quick"}) {
    EXPECT_EQ(t->Encode(text)->ids, (*loaded)->Encode(text)->ids) << text;
  }
  EXPECT_EQ(json::parse(t->ToJson().dump()), json::parse((*loaded)->ToJson().dump()));
  auto files = TokenizerFiles(*t);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[1].first, "vocab.txt");
  EXPECT_EQ(files[1].second.substr(0, 12), "[PAD]\n[UNK]\n");
}

TEST(TokenizerTest, BatchEncodingMatchesOneByOneAndPadsToTheLongest) {
  auto t = SmallBert();
  PaddingParams pad;
  t->set_padding(pad);
  std::vector<EncodeInput> inputs;
  for (int i = 0; i < 200; ++i) inputs.push_back({i % 2 ? "the quick dog" : "a fox", std::nullopt});
  auto batch = t->EncodeBatch(inputs, true, 2);
  ASSERT_TRUE(batch.has_value());
  const size_t longest = t->Encode("the quick dog")->size();
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ((*batch)[i].size(), longest);
  }
  EXPECT_EQ((*batch)[1].ids, t->Encode("the quick dog")->ids);
  std::vector<EncodeInput> bad{{"fine", std::nullopt}, {"bad \xff", std::nullopt}};
  auto err = t->EncodeBatch(bad, true, 1);
  ASSERT_FALSE(err.has_value());
  EXPECT_NE(err.error().message().find("input 1"), std::string::npos);
}

TEST(TrainerTest, SpecialTokensComeFirstAndMergesRespectMinFrequency) {
  TrainerOptions o;
  o.vocab_size = 100;
  o.special_tokens = {"<pad>", "<unk>"};
  o.min_frequency = 2;
  std::unordered_map<std::string, uint64_t> words = {{"ab", 3}, {"cd", 1}};
  auto r = TrainBpe(words, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->vocab, (std::vector<std::string>{"<pad>", "<unk>", "a", "b", "c", "d", "ab"}));
  ASSERT_EQ(r->merges.size(), 1u);  // (c, d) occurs once, below min_frequency
  o.limit_alphabet = 2;
  auto limited = TrainBpe(words, o);
  EXPECT_EQ(limited->vocab[2], "a");
  EXPECT_EQ(limited->vocab.size(), 5u);  // specials, a, b, ab
}

// One word of a million characters (a text without spaces): merging was quadratic in the word's
// length (an erase per merge), a 5 MB word held a worker for many minutes past its cancel.
TEST(TrainerTest, AWordOfAMillionCharactersTrainsAndCancels) {
  std::string word(1'000'000, 'a');
  uint64_t x = 88172645463325252ull;
  for (char& c : word) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>('a' + x % 26);
  }
  std::unordered_map<std::string, uint64_t> words = {{word, 1}, {"ab", 1}};
  TrainerOptions o;
  o.vocab_size = 26 + 200;
  int calls = 0;
  auto r = TrainBpe(words, o, [&](double) { return ++calls > 0; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->vocab.size(), 226u);
  EXPECT_EQ(r->merges.size(), 200u);
  EXPECT_GE(calls, 1);
  auto stopped = TrainBpe(words, o, [](double) { return false; });
  ASSERT_FALSE(stopped.has_value());
  EXPECT_EQ(stopped.error().code(), StatusCode::kCancelled);
}

// tokenizer_config.json and the legacy files are the client's: a config of the wrong shape once
// made an nlohmann type_error escape Load (std::terminate in the model-loading thread).
TEST(TokenizerTest, LegacyLayoutsRefuseMistypedFilesNamingThem) {
  TempDir dir;
  const std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nHello\n";
  dir.Write("bert/vocab.txt", vocab);
  for (const char* config : {"[]", "3", R"({"do_lower_case":"yes"})", R"({"tokenize_chinese_chars":1})",
                             R"({"strip_accents":"x"})", R"({"unk_token":5})", R"({"cls_token":{"content":3}})",
                             R"({"mask_token":["[MASK]"]})"}) {
    dir.Write("bert/tokenizer_config.json", config);
    auto t = Tokenizer::Load(dir / "bert");
    ASSERT_FALSE(t.has_value()) << config;
    EXPECT_EQ(t.error().code(), StatusCode::kInvalidArgument) << config;
    EXPECT_NE(t.error().message().find("tokenizer_config.json"), std::string::npos) << t.error().message();
    EXPECT_EQ(t.error().message().find(dir.path().string()), std::string::npos) << t.error().message();
  }
  // The accepted types still work: lower case off keeps "Hello", an AddedToken object names a token.
  dir.Write("bert/tokenizer_config.json", R"({"do_lower_case":false,"strip_accents":null,"unk_token":{"content":"[UNK]"}})");
  auto cased = Tokenizer::Load(dir / "bert");
  ASSERT_TRUE(cased.has_value()) << cased.error().ToString();
  EXPECT_EQ((*cased)->Encode("Hello")->tokens, (std::vector<std::string>{"[CLS]", "Hello", "[SEP]"}));

  dir.Write("gpt/vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  dir.Write("gpt/merges.txt", "a b\n");
  for (const char* config : {R"({"add_prefix_space":"no"})", R"({"bos_token":[1]})", "null"}) {
    dir.Write("gpt/tokenizer_config.json", config);
    auto t = Tokenizer::Load(dir / "gpt");
    ASSERT_FALSE(t.has_value()) << config;
    EXPECT_NE(t.error().message().find("tokenizer_config.json"), std::string::npos) << t.error().message();
  }
  dir.Write("gpt/tokenizer_config.json", "{}");
  dir.Write("gpt/vocab.json", R"({"a": 0, "b": )");
  auto bad = Tokenizer::Load(dir / "gpt");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("vocab.json"), std::string::npos) << bad.error().message();
  EXPECT_EQ(bad.error().message().find(dir.path().string()), std::string::npos) << bad.error().message();
  // JSON nested deeper than the reader's limit is refused before nlohmann recurses into it.
  dir.Write("deep/tokenizer.json", std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(Tokenizer::Load(dir / "deep").error().code(), StatusCode::kInvalidArgument);
  auto missing = Tokenizer::Load(dir / "nothing");
  EXPECT_EQ(missing.error().message().find(dir.path().string()), std::string::npos) << missing.error().message();
}

// A truncated pair combines every window of one text with every window of the other, and a
// long word is tokenized whole however long: with `overflowing` off (all serving and training
// need) only the first window is built.
TEST(TokenizerTest, TruncatedPairWindowsCanBeLeftOut) {
  TempDir dir;
  dir.Write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n##a\n");
  auto t = Tokenizer::Load(dir.path());
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  const std::string word(100, 'a');  // 100 tokens: a ##a ##a ...
  TruncationParams tr;
  tr.max_length = 16;  // 13 tokens besides [CLS] and the two [SEP]: windows of 6 and of 7
  (*t)->set_truncation(tr);
  auto all = (*t)->Encode(word, std::string_view(word));
  ASSERT_TRUE(all.has_value());
  // 100 tokens make 17 windows of 6 and 15 of 7: the 16 and 14 after the first ones, and each
  // of those 16 with each of the 14.
  EXPECT_EQ(all->overflowing.size(), 16u + 16u * 14u + 14u);
  tr.overflowing = false;
  (*t)->set_truncation(tr);
  auto first = (*t)->Encode(word, std::string_view(word));
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->overflowing.empty());
  EXPECT_EQ(first->ids, all->ids);
  EXPECT_EQ(first->size(), 16u);
}

}  // namespace
}  // namespace mlaas::tokenizers
