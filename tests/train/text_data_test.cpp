#include "train/text_data.h"

#include <gtest/gtest.h>

#include <set>

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

}  // namespace
}  // namespace mlaas::train
