#include "predict/answer_spans.h"

#include <gtest/gtest.h>

namespace mlaas::predict {
namespace {

TEST(AnswerSpansTest, SquadNormalisationExactMatchAndF1) {
  EXPECT_EQ(NormalizeAnswer("The  Eiffel-Tower, in Paris!"), "eiffeltower in paris");
  EXPECT_EQ(ExactMatch("the Eiffel Tower", {"Tower", "eiffel tower"}), 1.0);
  EXPECT_EQ(ExactMatch("Eiffel", {"eiffel tower"}), 0.0);
  // prediction "eiffel tower paris" vs gold "eiffel tower": 2 common, p 2/3, r 1 -> 0.8
  EXPECT_NEAR(AnswerF1("Eiffel Tower Paris", {"Eiffel Tower", "nothing"}), 0.8, 1e-12);
  EXPECT_EQ(AnswerF1("a", {"the"}), 0.0);  // both empty once normalised: no common token (SQuAD v1.1)
  EXPECT_EQ(ExactMatch("a", {"the"}), 1.0);
  EXPECT_EQ(AnswerF1("paris", {"london"}), 0.0);
  EXPECT_EQ(CodePointSlice("Z\xC3\xBCrich ist sch\xC3\xB6n", 0, 6), "Z\xC3\xBCrich");
  EXPECT_EQ(CodePointSlice("Z\xC3\xBCrich ist sch\xC3\xB6n", 11, 16), "sch\xC3\xB6n");
  EXPECT_EQ(CodePointSlice("abc", 1, 9), "bc");
}

// The evaluation script's normalize_answer on Python 3 strings (its expected values computed by
// it): Unicode lower case and whitespace, articles as whole words by Python's \b.
TEST(AnswerSpansTest, SquadNormalisationOfUnicodeTextAsPythonDoesIt) {
  EXPECT_EQ(NormalizeAnswer("\xC3\x89" "CLAIR au Caf\xC3\xA9"), "\xC3\xA9" "clair au caf\xC3\xA9");  // upper-case accented letters lowered
  EXPECT_EQ(NormalizeAnswer("\xC4\xB0stanbul"), "i\xCC\x87stanbul");  // U+0130's full mapping
  EXPECT_EQ(NormalizeAnswer("the\xC2\xA0Z\xC3\xBCrich\xE2\x80\x83Tower"), "z\xC3\xBCrich tower");  // no-break and em spaces
  EXPECT_EQ(NormalizeAnswer("\xC3\xBC" "ber-the-top"), "\xC3\xBC" "berthetop");  // ASCII punctuation removed before the articles
  EXPECT_EQ(NormalizeAnswer("a\xCC\x81 b"), "\xCC\x81 b");  // a combining mark is not a word character
  EXPECT_EQ(NormalizeAnswer("x\x1Cy"), "x y");  // an information separator is whitespace to Python
  EXPECT_EQ(NormalizeAnswer("the\xE2\x82\xACthe 1the"), "\xE2\x82\xAC 1the");  // articles between non-word characters
  EXPECT_EQ(ExactMatch("\xC3\x89" "clair", {"\xC3\xA9" "CLAIR"}), 1.0);
  EXPECT_NEAR(AnswerF1("Z\xC3\xBCrich\xC2\xA0Tower", {"z\xC3\xBCrich"}), 2.0 / 3.0, 1e-12);
  EXPECT_EQ(NormalizeAnswer("\xFF the"), "\xEF\xBF\xBD");  // invalid UTF-8 as U+FFFD, never a throw
  // A capital sigma ending a word lowers to the final sigma, as str.lower() does.
  EXPECT_EQ(NormalizeAnswer("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"), "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");
  EXPECT_EQ(NormalizeAnswer("\xCE\xA3\xCE\x91\xCE\xA3\x20\xCE\x9A\xCE\x91\xCE\x99"), "\xCF\x83\xCE\xB1\xCF\x82\x20\xCE\xBA\xCE\xB1\xCE\xB9");
  EXPECT_EQ(NormalizeAnswer("\xCE\xA3"), "\xCF\x83");
  EXPECT_EQ(NormalizeAnswer("\xCE\x91\xCE\xA3\x2E"), "\xCE\xB1\xCF\x82");
  EXPECT_EQ(NormalizeAnswer("\xCE\x91\xCE\xA3\x27\xCE\x92"), "\xCE\xB1\xCF\x83\xCE\xB2");
}

// Spans stay in the context, end after start, within the length limit; the best over windows.
// Marks that no token covers (a stripping tokenizer dropped them) extend a span's end; marks
// inside a token, or after a gap, do not.
TEST(AnswerSpansTest, ASpansEndTakesTheDroppedMarksAfterIt) {
  // P0 a1 r2 i3 ◌4 s5 ◌6 ◌7 _8 x9 ◌10
  const std::vector<char32_t> text = {U'P', U'a', U'r', U'i', 0x301, U's', 0x301, 0x302, U' ', U'x', 0x301};
  const auto dropped = DroppedMarks(text, {{0, 3}, {3, 6}, {9, 11}});
  EXPECT_EQ(PastDroppedMarks(dropped, 6), 8u);   // both marks after s
  EXPECT_EQ(PastDroppedMarks(dropped, 3), 3u);   // the mark at 4 is inside "##is"
  EXPECT_EQ(PastDroppedMarks(dropped, 11), 11u);  // the end of the text
  EXPECT_EQ(PastDroppedMarks(dropped, 9), 9u);   // x covers its own mark
  EXPECT_EQ(PastDroppedMarks(DroppedMarks(text, {}), 4), 5u);  // nothing covered: the mark after i
}

TEST(AnswerSpansTest, BestSpanOverWindows) {
  // Window 0: [CLS] q [SEP] c0 c1 [SEP]; window 1: [CLS] q [SEP] c1 c2 [SEP].
  using O = std::optional<std::pair<uint32_t, uint32_t>>;
  const std::vector<O> w0 = {std::nullopt, std::nullopt, std::nullopt, O({0, 4}), O({5, 9}), std::nullopt};
  const std::vector<O> w1 = {std::nullopt, std::nullopt, std::nullopt, O({5, 9}), O({10, 14}), std::nullopt};
  // The question token has the highest logits: never chosen.
  const float s0[] = {0, 9, 0, 1, 0.5f, 0}, e0[] = {0, 9, 0, 0.2f, 1, 0};
  const float s1[] = {0, 9, 0, 0.1f, 3, 0}, e1[] = {0, 9, 0, 0.1f, 2.5f, 0};
  std::vector<AnswerWindow> windows = {{s0, e0, w0, std::nullopt}, {s1, e1, w1, std::nullopt}};
  auto best = BestSpan(windows, 30, SpanScore::kLogitSum);
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(best->window, 1u);
  EXPECT_EQ(best->start, 10u);
  EXPECT_EQ(best->end, 14u);
  EXPECT_NEAR(best->score, 5.5, 1e-6);
  auto prob = BestSpan(windows, 30, SpanScore::kProbProduct);
  ASSERT_TRUE(prob.has_value());
  EXPECT_EQ(prob->start, 10u);
  EXPECT_GT(prob->score, 0.5);
  EXPECT_LE(prob->score, 1.0);
  // [CLS] counted in the softmax (as the pipeline does) lowers the probabilities, never wins.
  std::vector<AnswerWindow> with_cls = windows;
  for (auto& w : with_cls) w.cls = 0;
  const float big[] = {5, 9, 0, 0.1f, 3, 0};
  with_cls[1].start = big;
  auto counted = BestSpan(with_cls, 30, SpanScore::kProbProduct);
  ASSERT_TRUE(counted.has_value());
  EXPECT_NE(counted->start_token, 0u);  // [CLS] is counted, never chosen
  EXPECT_LT(counted->score, prob->score);
  // One token at most: window 0's c0..c1 span is too long; the best single token wins.
  std::vector<AnswerWindow> first = {{s0, e0, w0, std::nullopt}};
  auto single = BestSpan(first, 1, SpanScore::kLogitSum);
  ASSERT_TRUE(single.has_value());
  EXPECT_EQ(single->start_token, single->end_token);
  const std::vector<O> none(6, std::nullopt);
  EXPECT_FALSE(BestSpan({{s0, e0, none, std::nullopt}}, 30, SpanScore::kLogitSum).has_value());
}

}  // namespace
}  // namespace mlaas::predict
