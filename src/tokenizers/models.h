// Tokenization models: WordPiece and BPE, with Hugging Face tokenizers' algorithms (greedy
// longest-match WordPiece; rank-ordered BPE merges with leftmost tie-breaking), vocabularies
// from tokenizer.json or the legacy vocab.txt / vocab.json + merges.txt files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "tokenizers/unicode.h"

namespace mlaas::tokenizers {

struct Token {
  uint32_t id = 0;
  std::string value;
  uint32_t start = 0;  // char offsets within the word given to Tokenize
  uint32_t end = 0;
};

// token <-> id, with ids that may have holes.
class Vocab {
 public:
  void Set(std::string token, uint32_t id);
  std::optional<uint32_t> Find(std::string_view token) const;
  const std::string* Token(uint32_t id) const;
  size_t size() const { return map_.size(); }
  // (token, id) pairs in increasing id order.
  std::vector<std::pair<std::string, uint32_t>> Sorted() const;
  nlohmann::ordered_json ToJson() const;  // {"token": id, ...} in id order

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> map_;
  std::vector<std::optional<std::string>> reverse_;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the tokens of one pre-token (`word`, non-empty). An error means the word cannot
  // be encoded at all (e.g. WordPiece without its unk token in the vocabulary).
  virtual Status Tokenize(const CodePoints& word, std::vector<Token>& out) const = 0;
  virtual const Vocab& vocab() const = 0;
  virtual nlohmann::ordered_json ToJson() const = 0;
  virtual std::string_view type() const = 0;
};

struct WordPieceOptions {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
};

class WordPiece final : public Model {
 public:
  WordPiece(Vocab vocab, WordPieceOptions options);
  // vocab.txt: one token per line, id = line number.
  static Result<std::unique_ptr<WordPiece>> FromVocabFile(const std::filesystem::path& file,
                                                         WordPieceOptions options);
  static Result<std::unique_ptr<WordPiece>> FromJson(const nlohmann::json& j);

  Status Tokenize(const CodePoints& word, std::vector<Token>& out) const override;
  const Vocab& vocab() const override { return vocab_; }
  nlohmann::ordered_json ToJson() const override;
  std::string_view type() const override { return "WordPiece"; }
  const WordPieceOptions& options() const { return options_; }

 private:
  Vocab vocab_;
  WordPieceOptions options_;
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class Bpe final : public Model {
 public:
  // InvalidArgument when a merge names a token missing from the vocabulary.
  static Result<std::unique_ptr<Bpe>> Create(Vocab vocab,
                                            std::vector<std::pair<std::string, std::string>> merges,
                                            BpeOptions options);
  // vocab.json + merges.txt (GPT-2 / RoBERTa files).
  static Result<std::unique_ptr<Bpe>> FromFiles(const std::filesystem::path& vocab_json,
                                               const std::filesystem::path& merges_txt,
                                               BpeOptions options);
  static Result<std::unique_ptr<Bpe>> FromJson(const nlohmann::json& j);

  Status Tokenize(const CodePoints& word, std::vector<Token>& out) const override;
  const Vocab& vocab() const override { return vocab_; }
  nlohmann::ordered_json ToJson() const override;
  std::string_view type() const override { return "BPE"; }

 private:
  Bpe() = default;
  struct PairHash {
    size_t operator()(uint64_t v) const { return std::hash<uint64_t>{}(v * 0x9E3779B97F4A7C15ULL); }
  };
  struct MergeInfo {
    uint32_t rank;
    uint32_t new_id;
  };

  Vocab vocab_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::unordered_map<uint64_t, MergeInfo, PairHash> merge_map_;
  BpeOptions options_;
};

// Builds a WordPiece or BPE model from its tokenizer.json object.
Result<std::unique_ptr<Model>> ModelFromJson(const nlohmann::json& j);

}  // namespace mlaas::tokenizers
