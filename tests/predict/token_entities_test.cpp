#include "predict/token_entities.h"

#include <gtest/gtest.h>

namespace mlaas::predict {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kLabels = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};

// An encoding of `text` by hand: [CLS], the given (token, start, end) pieces, [SEP].
tokenizers::Encoding Encode(const std::vector<std::tuple<std::string, uint32_t, uint32_t>>& pieces) {
  tokenizers::Encoding e;
  e.Push(101, "[CLS]", {0, 0}, 0, std::nullopt, 0, true);
  uint32_t id = 1000;
  for (const auto& [token, start, end] : pieces) e.Push(id++, token, {start, end}, 0, std::nullopt, 0, false);
  e.Push(102, "[SEP]", {0, 0}, 0, std::nullopt, 0, true);
  return e;
}

// Scores that give each token's label (by index into kLabels) probability p.
std::vector<float> Scores(const std::vector<int>& labels, const std::vector<float>& p) {
  std::vector<float> out;
  for (size_t k = 0; k < labels.size(); ++k) {
    for (size_t l = 0; l < kLabels.size(); ++l)
      out.push_back(static_cast<int>(l) == labels[k] ? p[k] : (1 - p[k]) / static_cast<float>(kLabels.size() - 1));
  }
  return out;
}

std::string Decode(const std::vector<uint32_t>& ids, const tokenizers::Encoding& e) {
  std::string out;
  for (uint32_t id : ids) {
    const std::string& t = e.tokens[id - 1000 + 1];
    if (t.rfind("##", 0) == 0) out += t.substr(2);
    else out += (out.empty() ? "" : " ") + t;
  }
  return out;
}

// "Jean-Pierre vit à Zürich": offsets are code points (à and ü are two bytes each).
//  0         1         2
//  012345678901234567890123
class TokenEntitiesTest : public ::testing::Test {
 protected:
  const std::string text_ = "Jean-Pierre vit \xC3\xA0 Z\xC3\xBCrich";
  const tokenizers::Encoding enc_ = Encode({{"jean", 0, 4}, {"-", 4, 5}, {"pierre", 5, 11}, {"vit", 12, 15},
                                            {"a", 16, 17}, {"zu", 18, 20}, {"##rich", 20, 24}});
  json Group(const std::vector<int>& labels, const std::vector<float>& p, Aggregation a) {
    std::vector<int> all = {0};  // [CLS]
    all.insert(all.end(), labels.begin(), labels.end());
    all.push_back(0);
    std::vector<float> probs = {0.9f};
    probs.insert(probs.end(), p.begin(), p.end());
    probs.push_back(0.9f);
    scores_ = Scores(all, probs);
    auto tokens = ClassifiedTokens(enc_, text_, scores_.data(), static_cast<int64_t>(kLabels.size()), "##", std::nullopt);
    return GroupEntities(tokens, kLabels, a,
                         [&](const std::vector<uint32_t>& ids, uint32_t, uint32_t) { return Decode(ids, enc_); });
  }
  std::vector<float> scores_;
};

TEST_F(TokenEntitiesTest, SimpleGroupsConsecutiveTokensOfATypeWithCodePointOffsets) {
  auto out = Group({1, 2, 2, 0, 0, 3, 4}, {0.9f, 0.8f, 0.7f, 0.9f, 0.9f, 0.6f, 0.4f}, Aggregation::kSimple);
  ASSERT_EQ(out.size(), 2u) << out.dump();
  EXPECT_EQ(out[0]["entity_group"], "PER");
  EXPECT_EQ(out[0]["word"], "jean - pierre");
  EXPECT_EQ(out[0]["start"], 0);
  EXPECT_EQ(out[0]["end"], 11);
  EXPECT_NEAR(out[0]["score"].get<double>(), 0.8, 1e-6);
  EXPECT_EQ(out[1]["entity_group"], "LOC");
  EXPECT_EQ(out[1]["word"], "zurich");
  EXPECT_EQ(out[1]["start"], 18);  // code points: "à" counts once
  EXPECT_EQ(out[1]["end"], 24);
  EXPECT_NEAR(out[1]["score"].get<double>(), 0.5, 1e-6);
}

TEST_F(TokenEntitiesTest, ABeginningStartsANewEntityAndOIsLeftOut) {
  auto out = Group({1, 0, 1, 0, 0, 3, 3}, {0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f}, Aggregation::kSimple);
  ASSERT_EQ(out.size(), 4u) << out.dump();
  EXPECT_EQ(out[2]["word"], "zu");
  EXPECT_EQ(out[3]["word"], "rich");  // simple reads pieces as they come
  EXPECT_EQ(out[3]["start"], 20);
}

TEST_F(TokenEntitiesTest, WordAggregationsLabelWholeWords) {
  // "zu" says LOC weakly, "##rich" says O strongly.
  const std::vector<int> labels = {1, 2, 2, 0, 0, 3, 0};
  const std::vector<float> p = {0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.55f, 0.95f};
  auto first = Group(labels, p, Aggregation::kFirst);
  ASSERT_EQ(first.size(), 2u) << first.dump();
  EXPECT_EQ(first[1]["word"], "zurich");
  EXPECT_EQ(first[1]["start"], 18);
  EXPECT_EQ(first[1]["end"], 24);
  EXPECT_NEAR(first[1]["score"].get<double>(), 0.55, 1e-6);
  auto max = Group(labels, p, Aggregation::kMax);  // the most confident piece: O
  ASSERT_EQ(max.size(), 1u) << max.dump();
  EXPECT_EQ(max[0]["entity_group"], "PER");
  auto average = Group(labels, p, Aggregation::kAverage);  // mean O 0.53 > mean B-LOC 0.28
  ASSERT_EQ(average.size(), 1u) << average.dump();
}

TEST_F(TokenEntitiesTest, NoneListsEveryLabelledToken) {
  auto out = Group({1, 2, 2, 0, 0, 3, 4}, {0.9f, 0.8f, 0.7f, 0.9f, 0.9f, 0.6f, 0.4f}, Aggregation::kNone);
  ASSERT_EQ(out.size(), 5u) << out.dump();
  EXPECT_EQ(out[0], json({{"entity", "B-PER"}, {"score", 0.9f}, {"index", 1}, {"word", "jean"}, {"start", 0}, {"end", 4}}));
  EXPECT_EQ(out[4]["word"], "##rich");
  EXPECT_EQ(out[4]["index"], 7);
}

// Without a subword prefix (byte-level BPE) a token continues a word when no space precedes it;
// an unknown token never continues one and reads as its text.
TEST(ClassifiedTokensTest, SubwordsWithoutAPrefixAndUnknownTokens) {
  const std::string text = "Hi Z\xC3\xBCrich!";
  auto enc = Encode({{"Hi", 0, 2}, {"\xC4\xA0Z", 2, 4}, {"\xC3\x83\xC2\xBC", 4, 5}, {"rich", 5, 9}, {"!", 9, 10}});
  std::vector<float> scores(7 * 2, 0.5f);
  auto tokens = ClassifiedTokens(enc, text, scores.data(), 2, std::nullopt, 1002);
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_FALSE(tokens[0].subword);
  EXPECT_FALSE(tokens[1].subword);  // starts at the space
  EXPECT_FALSE(tokens[2].subword);  // the unknown token
  EXPECT_EQ(tokens[2].token, "\xC3\xBC");
  EXPECT_TRUE(tokens[3].subword);
  EXPECT_TRUE(tokens[4].subword);
  EXPECT_EQ(tokens[4].start, 9u);
}

// A tokenizer that strips accents (BERT's uncased: NFD, then the marks removed) leaves a
// decomposed accent out of every token's offsets, as Hugging Face's does; a token's end moves
// past such marks right after it, so an entity keeps the accent of its last letter. A mark that a
// token covers stays that token's.
TEST(ClassifiedTokensTest, ATokensEndKeepsTheAccentsAStrippingTokenizerLeftOut) {
  // "Zu\u0301rich e\u0301 caf\u00e9": code points Z0 u1 ◌2 r3 i4 c5 h6 _7 e8 ◌9 _10 c11 a12 f13 é14.
  const std::string text = "Zu\xCC\x81rich e\xCC\x81 caf\xC3\xA9";
  auto enc = Encode({{"zu", 0, 2}, {"##rich", 3, 7}, {"e", 8, 9}, {"cafe", 11, 15}});
  std::vector<float> scores(6 * 2, 0.5f);
  auto tokens = ClassifiedTokens(enc, text, scores.data(), 2, "##", std::nullopt);
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[0].end, 3u);  // past the mark between u and r
  EXPECT_TRUE(tokens[1].subword);
  EXPECT_EQ(tokens[1].end, 7u);
  EXPECT_EQ(tokens[2].end, 10u);  // e + its accent
  EXPECT_EQ(tokens[3].end, 15u);  // a precomposed é is the token's own
  EXPECT_FALSE(tokens[2].subword);
}

}  // namespace
}  // namespace mlaas::predict
