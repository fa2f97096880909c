// Tiny seeded models in the Hugging Face layout (config.json, model.safetensors, vocab.txt) for
// tests of the modules that load models (predict, serve). Includes libtorch.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/model.h"

namespace mlaas::testing {

// A WordPiece vocabulary of a few words.
inline const std::vector<std::string>& TinyVocab() {
  static const std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a",
                                             "cat",   "dog",   "sat",   "on",    "mat",    "ran", "fast",
                                             "##s",   "big",   "red",   "and",   ".",      ","};
  return v;
}

// Writes a 2-layer, hidden-32 model of `arch` for `objective` (16 positions; RoBERTa 18) with
// TinyVocab() as vocab.txt into `out`. Weights are seeded and perturbed so that outputs depend
// visibly on the input. Returns false (with a gtest failure) when it cannot.
inline bool WriteTinyModel(const std::filesystem::path& out, nn::Architecture arch, nn::Objective objective,
                           std::vector<std::string> labels = {"neg", "pos", "other"}, std::string problem = {},
                           uint64_t seed = 3) {
  nlohmann::json config = {{"model_type", std::string(nn::ArchitectureName(arch))},
                           {"vocab_size", TinyVocab().size()},
                           {"max_position_embeddings", arch == nn::Architecture::kRoberta ? 18 : 16},
                           {"pad_token_id", 0}};
  if (arch == nn::Architecture::kDistilBert) {
    config.update({{"dim", 32}, {"n_layers", 2}, {"n_heads", 4}, {"hidden_dim", 64}});
  } else {
    config.update({{"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"intermediate_size", 64}});
  }
  auto c = nn::ParseConfig(config);
  if (!c.has_value()) return false;
  c->id2label = std::move(labels);
  c->problem_type = std::move(problem);
  nn::TransformerModel m(*c, objective);
  nn::InitWeights(*m, seed);
  {
    torch::NoGradGuard no_grad;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    for (auto& p : m->parameters()) p.add_(at::randn(p.sizes(), gen) * 0.2);
  }
  if (!nn::SaveModelDir(*m, out).ok()) return false;
  std::ofstream vocab(out / "vocab.txt");
  for (const auto& t : TinyVocab()) vocab << t << "\n";
  return static_cast<bool>(vocab);
}

}  // namespace mlaas::testing
