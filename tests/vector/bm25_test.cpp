#include "vector/bm25.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mlaas::vector {
namespace {

TEST(Bm25Test, TermsAreLowerCasedWordsOfTwoOrMoreCharacters) {
  EXPECT_EQ(LexicalTerms("The C++ library: libfoo_2, a X11 tool (v2.0)!"),
            (std::vector<std::string>{"the", "library", "libfoo_2", "x11", "tool", "v2"}));
  EXPECT_EQ(LexicalTerms("Übersetzung für ZÜRICH"), (std::vector<std::string>{"übersetzung", "für", "zürich"}));
  // Non-ASCII punctuation separates words; a one-letter piece is no term.
  EXPECT_EQ(LexicalTerms("don\u2019t stop\u2014go\u00a0now"), (std::vector<std::string>{"don", "stop", "go", "now"}));
  EXPECT_EQ(LexicalTerms("bad \xff\xfe utf8"), (std::vector<std::string>{"bad", "utf8"}));
  EXPECT_TRUE(LexicalTerms("a b c - !").empty());
}

TEST(Bm25Test, ScoresAreOkapiBm25WithLuceneIdf) {
  const std::vector<std::string_view> docs = {"apple banana apple", "banana cherry", "cherry cherry cherry date",
                                              "elderberry"};
  Bm25Index index(docs);
  EXPECT_EQ(index.size(), 4u);
  EXPECT_EQ(index.terms(), 5u);
  // By hand: N = 4, avgdl = (3 + 2 + 4 + 1) / 4 = 2.5, k1 = 1.2, b = 0.75.
  const auto idf = [](double df) { return std::log(1 + (4 - df + 0.5) / (df + 0.5)); };
  const auto tf = [](double f, double dl) { return f * 2.2 / (f + 1.2 * (0.25 + 0.75 * dl / 2.5)); };
  auto hits = index.Search("apple cherry", 10);
  ASSERT_EQ(hits.size(), 3u);
  const double doc0 = idf(1) * tf(2, 3), doc1 = idf(2) * tf(1, 2), doc2 = idf(2) * tf(3, 4);
  EXPECT_EQ(hits[0].first, 0u);
  EXPECT_NEAR(hits[0].second, doc0, 1e-5);
  EXPECT_EQ(hits[1].first, 2u);
  EXPECT_NEAR(hits[1].second, doc2, 1e-5);
  EXPECT_EQ(hits[2].first, 1u);
  EXPECT_NEAR(hits[2].second, doc1, 1e-5);
  // A query term counts once however often it repeats; unknown terms add nothing.
  auto repeated = index.Search("apple apple zucchini cherry", 10);
  ASSERT_EQ(repeated.size(), 3u);
  EXPECT_NEAR(repeated[0].second, hits[0].second, 1e-6);
}

TEST(Bm25Test, KeepsTheBestKAndAppliesTheFilter) {
  // Length normalisation: the one-word "red" beats "red red fox", which beats "red fox".
  const std::vector<std::string_view> docs = {"red fox", "red red fox", "blue fox", "red"};
  Bm25Index index(docs);
  auto all = index.Search("red", 10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].first, 3u);
  EXPECT_EQ(all[1].first, 1u);
  EXPECT_EQ(all[2].first, 0u);
  auto top1 = index.Search("red", 1);
  ASSERT_EQ(top1.size(), 1u);
  EXPECT_EQ(top1[0].first, 3u);
  auto even = index.Search("red", 10, [](uint32_t doc) { return doc % 2 == 0; });
  ASSERT_EQ(even.size(), 1u);
  EXPECT_EQ(even[0].first, 0u);
  EXPECT_TRUE(index.Search("green", 5).empty());
  EXPECT_TRUE(Bm25Index({}).Search("red", 3).empty());
}

}  // namespace
}  // namespace mlaas::vector
