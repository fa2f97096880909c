// The training half of the reference check: trains tiny models with the trainer — BERT text
// classification (with [CLS] and with mean classifier pooling), DistilBERT masked-LM, RoBERTa
// sentence embeddings — and writes the model
// directories it saves as DIR/ours-trained-<Class>/ with the reference inputs and our outputs
// (io.safetensors), for tests/nn/reference/hf_reference.py to load strictly and compare.
//   train_reference_tool DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/text.h"
#include "nn/model.h"
#include "nn/reference_io.h"
#include "train/text_data.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace mlaas;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: train_reference_tool DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  fs::create_directories(root);
  // A 97-token vocabulary, as the reference inputs expect (ids up to 42).
  {
    std::ofstream v(root / "vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << t << "\n";
    for (int i = 5; i < 97; ++i) v << "w" << i << "\n";
  }
  struct Case {
    nn::Architecture arch;
    Objective objective;
    nn::Objective head;
    bool mean_pooled = false;  // the request's model.classifier_pooling "mean"
  };
  const Case cases[] = {
      {nn::Architecture::kBert, Objective::kTextClassification, nn::Objective::kTextClassification},
      {nn::Architecture::kDistilBert, Objective::kMaskedLm, nn::Objective::kMaskedLm},
      {nn::Architecture::kRoberta, Objective::kSentenceEmbedding, nn::Objective::kNoObjective},
      {nn::Architecture::kBert, Objective::kTextClassification, nn::Objective::kTextClassification, true},
      {nn::Architecture::kDistilBert, Objective::kTokenClassification, nn::Objective::kTokenClassification},
      {nn::Architecture::kBert, Objective::kNextSentencePrediction, nn::Objective::kNextSentencePrediction},
      {nn::Architecture::kRoberta, Objective::kQuestionAnswering, nn::Objective::kQuestionAnswering},
  };
  std::mt19937_64 rng(5);
  auto text = [&] {
    std::string t;
    for (int k = 0, n = 3 + static_cast<int>(rng() % 8); k < n; ++k) t += "w" + std::to_string(5 + rng() % 92) + " ";
    return t;
  };
  for (const Case& c : cases) {
    train::TrainInputs in;
    in.spec.objective = c.objective;
    in.spec.epochs = 2;
    in.spec.batch_size = 8;
    in.spec.optimizer.init_lr = 1e-3;
    in.spec.threads = 1;
    if (c.mean_pooled) in.spec.classifier_pooling = nn::Pooling::kMean;
    const std::string type(nn::ArchitectureName(c.arch));
    nlohmann::json config = {{"model_type", type}, {"max_position_embeddings", 42}};
    if (c.arch == nn::Architecture::kDistilBert) {
      config.update({{"dim", 32}, {"n_layers", 2}, {"n_heads", 4}, {"hidden_dim", 48}});
    } else {
      config.update({{"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"intermediate_size", 48}});
    }
    in.model_block = {{"config", config}};
    in.tokenizer = root / "vocab.txt";
    for (int i = 0; i < 48; ++i) {
      train::TextExample e{text(), text(), i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c"};
      if (c.objective == Objective::kNextSentencePrediction) e.label = i % 2 ? "is_next" : "not_next";
      if (c.objective == Objective::kTokenClassification) {  // each word tagged by its number's parity
        for (size_t at = 0, end; (end = e.text.find(' ', at)) != std::string::npos; at = end + 1) {
          e.words.push_back(e.text.substr(at, end - at));
          e.tags.push_back(std::stoi(e.words.back().substr(1)) % 2 ? "B-ODD" : "O");
        }
        e.text = Join(e.words, " ");
      }
      if (c.objective == Objective::kQuestionAnswering) {  // the context's first word
        e.answers = {e.pair.substr(0, e.pair.find(' '))};
        e.answer_start = 0;
      }
      in.train.push_back(std::move(e));
    }
    const fs::path dir =
        root / ("ours-trained-" + nn::ArchitectureClassName(c.arch, c.head) + (c.mean_pooled ? "-mean" : ""));
    in.output_dir = dir;
    auto result = train::RunTraining(in, {});
    if (!result.has_value()) {
      std::fprintf(stderr, "%s: %s\n", dir.c_str(), result.error().ToString().c_str());
      return 1;
    }
    auto loaded = nn::LoadModelDir(dir, std::nullopt);
    if (!loaded.has_value()) {
      std::fprintf(stderr, "%s: %s\n", dir.c_str(), loaded.error().ToString().c_str());
      return 1;
    }
    if (Status st = nn::WriteIo(*loaded->model, c.arch, dir); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    if (c.mean_pooled && loaded->model->config().classifier_pooling != nn::Pooling::kMean) {
      std::fprintf(stderr, "%s: config.json lost classifier_pooling mean\n", dir.c_str());
      return 1;
    }
    std::printf("trained and wrote %s\n", dir.c_str());
  }
  return 0;
}
