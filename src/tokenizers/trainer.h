// Tokenizer training: the BPE and WordPiece trainers of Hugging Face tokenizers (same word
// counting, alphabet, pair counting, merge order and tie-breaking), so that the same corpus
// and settings give the same vocabulary.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "tokenizers/tokenizer.h"

namespace mlaas::tokenizers {

struct TrainerOptions {
  size_t vocab_size = 30000;
  uint64_t min_frequency = 0;
  std::vector<std::string> special_tokens;
  std::optional<size_t> limit_alphabet;
  std::vector<char32_t> initial_alphabet;
  std::optional<std::string> continuing_subword_prefix;  // WordPiece: "##"
  std::optional<std::string> end_of_word_suffix;
  std::optional<size_t> max_token_length;
};

// Counts the "words" of a corpus: each line goes through the tokenizer's normalizer and
// pre-tokenizer (as the reference trainer does; added tokens are not split out).
class WordCounter {
 public:
  explicit WordCounter(const Tokenizer& pipeline) : pipeline_(pipeline) {}
  // Adds one line of text (include its line terminator to match training from files).
  Status Add(std::string_view line);
  const std::unordered_map<std::string, uint64_t>& counts() const { return counts_; }
  uint64_t characters() const { return characters_; }
  uint64_t lines() const { return lines_; }

 private:
  const Tokenizer& pipeline_;
  std::unordered_map<std::string, uint64_t> counts_;
  uint64_t characters_ = 0;
  uint64_t lines_ = 0;
};

struct BpeTrainingResult {
  std::vector<std::string> vocab;                              // id -> token
  std::vector<std::pair<std::string, std::string>> merges;     // in rank order
};

// The BPE training loop over word counts. `progress(fraction)` is called now and then and
// returns false to stop early (Cancelled).
Result<BpeTrainingResult> TrainBpe(const std::unordered_map<std::string, uint64_t>& words,
                                   const TrainerOptions& options,
                                   const std::function<bool(double)>& progress = nullptr);

enum class TokenizerKind { kWordPiece, kBpe };

struct TrainSpec {
  TokenizerKind kind = TokenizerKind::kWordPiece;
  TrainerOptions trainer;
  bool lowercase = true;  // WordPiece: BERT uncased; BPE: a Lowercase normalizer when true
};

// The pipeline a trained tokenizer uses (BERT for WordPiece, byte-level for BPE), with an
// empty model; WordCounter runs on it.
std::unique_ptr<Tokenizer> TrainingPipeline(const TrainSpec& spec);

// Trains on the counted words and returns the complete tokenizer (special tokens registered,
// post-processor for [CLS]/[SEP] or <s>/</s> when present, decoder).
Result<std::unique_ptr<Tokenizer>> BuildTrainedTokenizer(const TrainSpec& spec,
                                                         const WordCounter& words,
                                                         const std::function<bool(double)>& progress = nullptr);

struct CorpusCoverage {
  uint64_t words = 0;         // word occurrences in the corpus
  uint64_t known_words = 0;   // ... encoded without the unk token
  uint64_t tokens = 0;        // tokens when the corpus is encoded
};
// How well a trained tokenizer covers the corpus it was trained on.
CorpusCoverage MeasureCoverage(const Tokenizer& tokenizer, const WordCounter& words);

// The files of a tokenizer directory: tokenizer.json, plus vocab.txt (WordPiece) or
// vocab.json + merges.txt (BPE) for tools that read the legacy formats.
std::vector<std::pair<std::string, std::string>> TokenizerFiles(const Tokenizer& tokenizer);

}  // namespace mlaas::tokenizers
