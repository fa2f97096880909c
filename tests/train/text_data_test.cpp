#include "train/text_data.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "testutil/temp_dir.h"
#include "train/metrics.h"

namespace mlaas::train {
namespace {

std::vector<TextExample> Examples(int per_class, std::vector<std::string> labels) {
  std::vector<TextExample> out;
  for (int i = 0; i < per_class; ++i) {
    for (const auto& l : labels) out.push_back({l + " example " + std::to_string(i), "", l});
  }
  return out;
}

TEST(SplitTest, StratifiedSeededAndComplete) {
  auto all = Examples(20, {"a", "b", "c"});
  all.push_back({"lonely", "", "d"});  // a class of one stays in training
  std::vector<TextExample> train, eval, train2, eval2;
  SplitExamples(all, 0.25, 1, true, train, eval);
  EXPECT_EQ(train.size() + eval.size(), all.size());
  std::map<std::string, int> per_class;
  for (const auto& e : eval) per_class[e.label]++;
  EXPECT_EQ(per_class["a"], 5);
  EXPECT_EQ(per_class["b"], 5);
  EXPECT_EQ(per_class["c"], 5);
  EXPECT_EQ(per_class.count("d"), 0u);
  SplitExamples(all, 0.25, 1, true, train2, eval2);
  ASSERT_EQ(eval.size(), eval2.size());
  for (size_t i = 0; i < eval.size(); ++i) EXPECT_EQ(eval[i].text, eval2[i].text);
  SplitExamples(all, 0.25, 2, true, train2, eval2);
  bool differs = false;
  for (size_t i = 0; i < eval.size(); ++i) differs |= eval[i].text != eval2[i].text;
  EXPECT_TRUE(differs) << "another seed gives another split";
}

TEST(TyposTest, EditsAtTheRateAndKeepsUtf8) {
  std::mt19937_64 rng(3);
  const std::string text = "Bari INFN, Via E Orabona 4, I-70125 Bari, Italy — Università";
  int changed = 0;
  for (int i = 0; i < 50; ++i) {
    std::string t = AddTypos(text, 0.1, rng);
    changed += t != text;
    EXPECT_NE(t.find("—"), std::string::npos);
    EXPECT_NE(t.find("à"), std::string::npos);
  }
  EXPECT_GT(changed, 40);
  std::mt19937_64 none(3);
  EXPECT_EQ(AddTypos(text, 1e-9, none), text);

  auto ex = Examples(3, {"x"});
  AugmentWithTypos(ex, 2, 0.2, 5);
  ASSERT_EQ(ex.size(), 9u);
  EXPECT_EQ(ex[3].label, "x");
  auto again = Examples(3, {"x"});
  AugmentWithTypos(again, 2, 0.2, 5);
  for (size_t i = 0; i < ex.size(); ++i) EXPECT_EQ(ex[i].text, again[i].text);
}

TEST(BatchesTest, EveryExampleOnceBucketedAndSeeded) {
  std::vector<TokenizedExample> data(1000);
  std::mt19937 rng(1);
  for (auto& e : data) e.ids.resize(1 + rng() % 100);
  auto b1 = MakeBatches(data, 16, 9, 0, true);
  auto b2 = MakeBatches(data, 16, 9, 0, true);
  auto b3 = MakeBatches(data, 16, 9, 1, true);
  EXPECT_EQ(b1, b2);
  EXPECT_NE(b1, b3);
  std::multiset<size_t> seen;
  size_t padded = 0, real = 0;
  for (const auto& b : b1) {
    size_t longest = 0;
    for (size_t i : b) {
      seen.insert(i);
      longest = std::max(longest, data[i].ids.size());
      real += data[i].ids.size();
    }
    padded += longest * b.size();
  }
  EXPECT_EQ(seen.size(), data.size());
  EXPECT_EQ(std::set<size_t>(seen.begin(), seen.end()).size(), data.size());
  // Random batches of lengths 1..100 pad to ~2x; bucketed ones stay close to the real tokens.
  EXPECT_LT(static_cast<double>(padded) / static_cast<double>(real), 1.1);
  auto ordered = MakeBatches(data, 16, 9, 0, false);
  for (size_t k = 1; k < ordered.size(); ++k)
    EXPECT_LE(data[ordered[k - 1].back()].ids.size(), data[ordered[k].front()].ids.size());
}

TEST(MetricsTest, ConfusionMatrixFigures) {
  ConfusionMatrix m(3);
  // truth 0: 3 right, 1 as class 1; truth 1: 2 right; truth 2: 1 as class 0. Class 2 never predicted.
  for (int i = 0; i < 3; ++i) m.Add(0, 0);
  m.Add(0, 1);
  m.Add(1, 1);
  m.Add(1, 1);
  m.Add(2, 0);
  EXPECT_EQ(m.total(), 7);
  EXPECT_NEAR(m.Accuracy(), 5.0 / 7.0, 1e-12);
  // F1: class 0 p=3/4 r=3/4 -> .75; class 1 p=2/3 r=1 -> .8; class 2 -> 0.
  EXPECT_NEAR(m.MacroF1(), (0.75 + 0.8 + 0.0) / 3.0, 1e-12);
  auto j = m.ToJson({"a", "b", "c"});
  EXPECT_EQ(j["confusion_matrix"]["matrix"][0], nlohmann::json({3, 1, 0}));
  EXPECT_NEAR(j["per_class"]["b"]["precision"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_EQ(j["per_class"]["c"]["support"], 1);
}

// seqeval's own example (its README): one of the two MISC entities is found, the PER one is.
TEST(MetricsTest, EntityScoresAsSeqevalComputesThem) {
  EntityScorer scorer;
  scorer.Add({"O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"}, {"O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"});
  scorer.Add({"B-PER", "I-PER", "O"}, {"B-PER", "I-PER", "O"});
  EXPECT_NEAR(scorer.Precision(), 0.5, 1e-12);
  EXPECT_NEAR(scorer.Recall(), 0.5, 1e-12);
  EXPECT_NEAR(scorer.F1(), 0.5, 1e-12);
  EXPECT_NEAR(scorer.Accuracy(), 8.0 / 10.0, 1e-12);  // two tags of the first sentence differ
  auto j = scorer.ToJson();
  EXPECT_EQ(j["per_type"]["MISC"]["support"], 1);
  EXPECT_NEAR(j["per_type"]["MISC"]["f1"].get<double>(), 0.0, 1e-12);
  EXPECT_NEAR(j["per_type"]["PER"]["f1"].get<double>(), 1.0, 1e-12);
}

TEST(MetricsTest, EntitiesOfIobAndIobesTags) {
  using E = std::vector<TaggedEntity>;
  // An I after O starts an entity (IOB1); a type change ends one; B starts one.
  EXPECT_EQ(ExtractEntities({"I-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"}),
            E({{"PER", 0, 2}, {"LOC", 3, 4}, {"LOC", 4, 5}, {"ORG", 5, 6}}));
  // IOBES: S is a whole entity, E ends one.
  EXPECT_EQ(ExtractEntities({"S-PER", "B-LOC", "E-LOC", "I-LOC", "O"}),
            E({{"PER", 0, 1}, {"LOC", 1, 3}, {"LOC", 3, 4}}));
  EXPECT_EQ(ExtractEntities({"O", "O"}), E());
  EXPECT_EQ(ExtractEntities({"PER", "PER", "O", "LOC"}), E({{"PER", 0, 2}, {"LOC", 3, 4}}));
  EntityScorer none;
  EXPECT_EQ(none.F1(), 0.0);  // nothing to find, nothing found: no division by zero
}

// Token classification rows: words as a JSON array or a text, tags as strings or integers.
TEST(TokenClassificationDataTest, ReadsWordsAndTagsAndNamesTheColumnOfABadRow) {
  TrainSpec spec;
  spec.objective = Objective::kTokenClassification;
  spec.tag_names = {"O", "B-X", "I-X", "B-Y"};
  auto read = [&](const std::string& jsonl) -> Result<std::vector<TextExample>> {
    dataset::ReaderOptions o;
    o.format = dataset::Format::kJsonl;
    o.columns = Columns(spec);
    MLAAS_ASSIGN_OR_RETURN(auto r, dataset::OpenRecordReader(storage::MemoryReader(jsonl), o));
    return ReadExamples(*r, spec, nullptr, {});
  };
  auto ok = read("{\"tokens\": [\"EU\", \"rejects\", \"Z\u00fcrich\"], \"tags\": [\"B-ORG\", \"O\", \"B-LOC\"]}\n"
                 "{\"tokens\": \"a  b\", \"tags\": [3, 0]}\n"
                 "{\"tokens\": [], \"tags\": []}\n");
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  ASSERT_EQ(ok->size(), 2u);  // the empty row is skipped
  EXPECT_EQ((*ok)[0].text, "EU rejects Z\u00fcrich");
  EXPECT_EQ((*ok)[0].tags, std::vector<std::string>({"B-ORG", "O", "B-LOC"}));
  EXPECT_EQ((*ok)[1].words, std::vector<std::string>({"a", "b"}));
  EXPECT_EQ((*ok)[1].tags, std::vector<std::string>({"B-Y", "O"}));  // integer tags named by tag_names
  auto unnamed = read("{\"tokens\": [\"a\"], \"tags\": [4]}\n");
  ASSERT_FALSE(unnamed.has_value());
  EXPECT_NE(unnamed.error().message().find("no name"), std::string::npos) << unnamed.error().message();
  spec.tag_names.clear();
  auto no_names = read("{\"tokens\": [\"a\"], \"tags\": [0]}\n");
  ASSERT_FALSE(no_names.has_value());
  EXPECT_EQ(no_names.error().field(), "dataset.loader_kwargs.tags_column");
  EXPECT_NE(no_names.error().message().find("tag_names"), std::string::npos);
  auto mismatch = read("{\"tokens\": [\"a\", \"b\"], \"tags\": [\"O\"]}\n");
  ASSERT_FALSE(mismatch.has_value());
  EXPECT_EQ(mismatch.error().field(), "dataset.loader_kwargs.tags_column");
  EXPECT_NE(mismatch.error().message().find("line 1: 2 tokens but 1 tags"), std::string::npos);
  auto not_strings = read("{\"tokens\": [\"a\", 1], \"tags\": [\"O\", \"O\"]}\n");
  ASSERT_FALSE(not_strings.has_value());
  EXPECT_EQ(not_strings.error().field(), "dataset.loader_kwargs.tokens_column");
  auto bad_tags = read("{\"tokens\": [\"a\"], \"tags\": \"O\"}\n");
  ASSERT_FALSE(bad_tags.has_value());
  EXPECT_EQ(bad_tags.error().field(), "dataset.loader_kwargs.tags_column");
  // Words as an object are refused; a text that only starts with "[" is split at whitespace.
  auto object = read("{\"tokens\": {\"a\": \"b\"}, \"tags\": [\"O\"]}\n");
  ASSERT_FALSE(object.has_value());
  EXPECT_EQ(object.error().field(), "dataset.loader_kwargs.tokens_column");
  auto bracket = read("{\"tokens\": \"[1] John works\", \"tags\": [\"O\", \"B-X\", \"O\"]}\n");
  ASSERT_TRUE(bracket.has_value()) << bracket.error().ToString();
  EXPECT_EQ((*bracket)[0].words, std::vector<std::string>({"[1]", "John", "works"}));
}

// A text column holding a JSON array or object is refused naming the column, not trained on as
// its JSON; SQuAD answers must read as their context does at answer_start; whitespace-only
// texts are skipped like empty ones.
TEST(TextDataTest, TextsAreStringsAndAnswersReadAsTheContextDoes) {
  auto read = [](Objective objective, const std::string& jsonl) -> Result<std::vector<TextExample>> {
    TrainSpec spec;
    spec.objective = objective;
    dataset::ReaderOptions o;
    o.format = dataset::Format::kJsonl;
    o.columns = Columns(spec);
    MLAAS_ASSIGN_OR_RETURN(auto r, dataset::OpenRecordReader(storage::MemoryReader(jsonl), o));
    return ReadExamples(*r, spec, nullptr, {});
  };
  const auto qa = Objective::kQuestionAnswering;
  auto ok = read(qa, R"({"question": "Where?", "context": "\u00c9t\u00e9 \u00e0 Paris.", "answers": {"text": ["Paris"], "answer_start": [6]}})" "\n");
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  EXPECT_EQ((*ok)[0].answer_start, 6);
  auto wrong = read(qa, R"({"question": "Where?", "context": "The tower stands in Paris.", "answers": {"text": ["Paris"], "answer_start": [0]}})" "\n");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().field(), "dataset.loader_kwargs.answers_column");
  EXPECT_NE(wrong.error().message().find("reads 'The t'"), std::string::npos) << wrong.error().message();
  auto bytes = read(qa, R"({"question": "Where?", "context": "\u00c9t\u00e9 \u00e0 Paris.", "answers": {"text": ["Paris"], "answer_start": [9]}})" "\n");
  ASSERT_FALSE(bytes.has_value());  // a byte offset
  auto empty = read(qa, R"({"question": "Where?", "context": "Paris.", "answers": {"text": [""], "answer_start": [0]}})" "\n");
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(empty.error().message().find("is empty"), std::string::npos) << empty.error().message();
  auto listed = read(qa, R"({"question": "Where?", "context": ["Paris."], "answers": {"text": ["P"], "answer_start": [2]}})" "\n");
  ASSERT_FALSE(listed.has_value());
  EXPECT_EQ(listed.error().field(), "dataset.loader_kwargs.context_column");
  EXPECT_NE(listed.error().message().find("line 1: the context column holds a JSON array"), std::string::npos)
      << listed.error().message();
  auto object = read(Objective::kMaskedLm, "{\"text\": \"fine\"}\n{\"text\": {\"a\": 1}}\n");
  ASSERT_FALSE(object.has_value());
  EXPECT_NE(object.error().message().find("line 2: the text column holds a JSON object"), std::string::npos)
      << object.error().message();
  ReadStats stats;
  TrainSpec mlm;
  mlm.objective = Objective::kMaskedLm;
  dataset::ReaderOptions o;
  o.format = dataset::Format::kJsonl;
  o.columns = Columns(mlm);
  auto r = dataset::OpenRecordReader(storage::MemoryReader("{\"text\": \"  \\t \"}\n{\"text\": \"a text\"}\n"), o);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  auto blank = ReadExamples(**r, mlm, &stats, {});
  ASSERT_TRUE(blank.has_value()) << blank.error().ToString();
  EXPECT_EQ(blank->size(), 1u);
  EXPECT_EQ(stats.skipped, 1);
}

// Documents become consecutive-sentence pairs, half of them with a sentence of another document.
TEST(NextSentenceDataTest, PairsAreDrawnFromConsecutiveSentences) {
  std::vector<TextExample> docs;
  for (int d = 0; d < 20; ++d) {
    std::string text;
    for (int s = 0; s < 6; ++s) text += "doc" + std::to_string(d) + " sentence " + std::to_string(s) + (s % 2 ? "!\n" : ". ");
    docs.push_back({text, "", ""});
  }
  auto pairs = SampleNextSentencePairs(docs, 3);
  ASSERT_EQ(pairs.size(), 20u * 5u);
  size_t next = 0;
  for (const auto& p : pairs) {
    const std::string doc = p.text.substr(0, p.text.find(' '));
    if (p.label == "is_next") {
      ++next;
      const int s = p.text[p.text.size() - 2] - '0';
      EXPECT_EQ(p.pair, doc + " sentence " + std::to_string(s + 1) + (s % 2 ? "." : "!")) << p.text;
    } else {
      EXPECT_EQ(p.label, "not_next");
      EXPECT_NE(p.pair.substr(0, p.pair.find(' ')), doc) << p.text << " | " << p.pair;
    }
  }
  EXPECT_GT(next, 30u);
  EXPECT_LT(next, 70u);
  EXPECT_EQ(SampleNextSentencePairs(docs, 3).front().pair, pairs.front().pair);  // seeded
}

TEST(NextSentenceDataTest, LabelledPairsReadTheirLabelsInEveryForm) {
  TrainSpec spec;
  spec.objective = Objective::kNextSentencePrediction;
  spec.text_pair_column = "next";
  dataset::ReaderOptions o;
  o.format = dataset::Format::kJsonl;
  o.columns = Columns(spec);
  const std::string rows = "{\"text\": \"a\", \"label\": true, \"next\": \"b\"}\n"
                           "{\"text\": \"a\", \"label\": 1, \"next\": \"c\"}\n"
                           "{\"text\": \"a\", \"label\": \"not_next\", \"next\": \"d\"}\n";
  auto r = dataset::OpenRecordReader(storage::MemoryReader(rows), o);
  ASSERT_TRUE(r.has_value());
  auto read = ReadExamples(**r, spec, nullptr, {});
  ASSERT_TRUE(read.has_value()) << read.error().ToString();
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0].label, "is_next");
  EXPECT_EQ((*read)[1].label, "not_next");  // transformers' next_sentence_label 1: random
  EXPECT_EQ((*read)[2].label, "not_next");
  auto bad = dataset::OpenRecordReader(storage::MemoryReader("{\"text\": \"a\", \"label\": \"maybe\", \"next\": \"b\"}\n"), o);
  ASSERT_TRUE(bad.has_value());
  auto refused = ReadExamples(**bad, spec, nullptr, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().field(), "dataset.loader_kwargs.label_column");
}

// Each word's label goes to its first piece; other pieces and special tokens are ignored; a
// word cut off by truncation has no token.
TEST(TokenClassificationDataTest, LabelsTheFirstPieceOfEachWord) {
  mlaas::testing::TempDir dir;
  {
    std::ofstream v(dir.path() / "vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "##s", "movie", "z\u00fcrich", "the"}) v << t << "\n";
  }
  auto tok = tokenizers::Tokenizer::Load(dir.path() / "vocab.txt");
  ASSERT_TRUE(tok.has_value()) << tok.error().ToString();
  TrainSpec spec;
  spec.objective = Objective::kTokenClassification;
  TextExample e;
  e.words = {"Z\u00fcrich", "goods", "movie", "the"};
  e.tags = {"B-LOC", "B-POS", "I-POS", "O"};
  e.text = Join(e.words, " ");
  const std::map<std::string, int64_t> ids = {{"B-LOC", 0}, {"B-POS", 1}, {"I-POS", 2}, {"O", 3}};
  auto t = Tokenize({e}, spec, **tok, 6, true, ids, {});
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  const TokenizedExample& x = (*t)[0];
  // [CLS] zürich good ##s movie [SEP]: "the" is cut off.
  EXPECT_EQ(x.token_labels, std::vector<int32_t>({-100, 0, 1, -100, 2, -100}));
  EXPECT_EQ(x.word_tokens, std::vector<int32_t>({1, 2, 4, -1}));
  EXPECT_EQ(x.word_labels, std::vector<int32_t>({0, 1, 2, 3}));
  auto unknown = Tokenize({e}, spec, **tok, 6, true, {{"O", 0}}, {});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().field(), "dataset.loader_kwargs.tags_column");
  // A word with no token (empty, whitespace) before words that have one: an O there is
  // harmless, an entity could never be learned.
  TextExample blank;
  blank.line = 7;
  blank.words = {"movie", " ", "the"};
  blank.tags = {"O", "O", "O"};
  blank.text = Join(blank.words, " ");
  EXPECT_TRUE(Tokenize({blank}, spec, **tok, 16, true, ids, {}).has_value());
  blank.tags = {"O", "B-LOC", "O"};
  auto lost = Tokenize({blank}, spec, **tok, 16, true, ids, {});
  ASSERT_FALSE(lost.has_value());
  EXPECT_EQ(lost.error().field(), "dataset.loader_kwargs.tokens_column");
  EXPECT_NE(lost.error().message().find("line 7: word 1"), std::string::npos) << lost.error().message();
}

}  // namespace
}  // namespace mlaas::train
