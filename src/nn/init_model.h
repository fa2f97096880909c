// `mlaas model init`: a new model directory from a preset or a config, sized for a tokenizer,
// with weights initialised as transformers does — so users pre-train without downloading
// anything. No libtorch in this header (the CLI includes it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace mlaas::nn {

struct InitModelSpec {
  std::string preset;                  // one of PresetNames(), or
  std::filesystem::path config_file;   // a Hugging Face config.json
  // text-classification, masked-lm, causal-lm, no-objective, image-classification; empty: causal-lm for a
  // gpt2 config, masked-lm for an encoder
  std::string objective;
  std::vector<std::string> labels;     // classes of a classification head
  int64_t channels = 0, image_size = 0;  // image-classification: 0 is the preset's (resnets 3 x 224, else 1 x 28)
  std::filesystem::path tokenizer;     // tokenizer.json, vocab.txt or a tokenizer directory
  std::filesystem::path output;        // the model directory to write
  uint64_t seed = 42;
};

// Writes config.json, model.safetensors and the tokenizer (tokenizer.json, plus vocab.txt /
// vocab.json + merges.txt when the source has them) to spec.output; an image classifier
// (preset mlp, cnn-small, resnet18, resnet34) has no tokenizer. Returns a summary:
// {"output", "model_type", "objective", "parameters", "vocab_size", "config"}.
Result<nlohmann::json> InitModelDirectory(const InitModelSpec& spec);

}  // namespace mlaas::nn
