// Test fixture of the trainer's text tests: a word-piece vocabulary of a few words, a sentiment
// set (filler words and one sentiment word, separable), the inputs of a tiny BERT run, and the
// weights of a saved model.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "nn/model.h"
#include "testutil/temp_dir.h"
#include "train/trainer.h"

namespace mlaas::train {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mlaas::testing::TempDir;

inline const std::vector<std::string> kGood = {"good", "great", "fine", "nice", "happy"};
inline const std::vector<std::string> kBad = {"bad", "awful", "poor", "sad", "angry"};
inline const std::vector<std::string> kFiller = {"the", "movie", "was", "very", "really", "plot", "and", "actors", "it", "a"};

inline json ReadJson(const fs::path& path) {
  std::ifstream f(path);
  return json::parse(f, nullptr, /*allow_exceptions=*/false);
}

class TextTrainingFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream v(dir_.path() / "vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "##s"}) v << t << "\n";
    for (const auto* list : {&kGood, &kBad, &kFiller})
      for (const auto& w : *list) v << w << "\n";
  }

  // Sentences of filler words with one sentiment word at a random place.
  std::vector<TextExample> Sentiment(int n, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::vector<TextExample> out;
    for (int i = 0; i < n; ++i) {
      const bool good = i % 2 == 0;
      std::vector<std::string> words;
      const size_t len = 3 + rng() % 6;
      for (size_t k = 0; k < len; ++k) words.push_back(kFiller[rng() % kFiller.size()]);
      const auto& pool = good ? kGood : kBad;
      words.insert(words.begin() + static_cast<std::ptrdiff_t>(rng() % (words.size() + 1)), pool[rng() % pool.size()]);
      std::string text;
      for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
      out.push_back({text, "", good ? "pos" : "neg"});
    }
    return out;
  }

  TrainInputs Inputs(Objective objective, const std::string& name) const {
    TrainInputs in;
    in.spec.objective = objective;
    in.spec.epochs = 4;
    in.spec.batch_size = 8;
    in.spec.optimizer.init_lr = 3e-3;
    in.spec.optimizer.num_warm_steps = 2;
    in.spec.seed = 11;
    in.spec.threads = 1;
    in.model_block = {{"config",
                       {{"model_type", "bert"},
                        {"hidden_size", 32},
                        {"num_hidden_layers", 2},
                        {"num_attention_heads", 4},
                        {"intermediate_size", 64},
                        {"max_position_embeddings", 64}}}};
    in.tokenizer = dir_.path() / "vocab.txt";
    in.checkpoint_dir = dir_.path() / name / "checkpoints";
    in.output_dir = dir_.path() / name / "model";
    return in;
  }

  static std::map<std::string, torch::Tensor> Weights(const fs::path& dir) {
    auto loaded = nn::LoadModelDir(dir, std::nullopt);
    EXPECT_TRUE(loaded.has_value()) << loaded.error().ToString();
    std::map<std::string, torch::Tensor> out;
    if (!loaded.has_value()) return out;
    for (const auto& p : loaded->model->named_parameters()) out[p.key()] = p.value().clone();
    return out;
  }

  TempDir dir_;
};

}  // namespace mlaas::train
