// Tokenization models: WordPiece and BPE, with Hugging Face tokenizers' algorithms (greedy
// longest-match WordPiece; rank-ordered BPE merges with leftmost tie-breaking), vocabularies
// from tokenizer.json or the legacy vocab.txt / vocab.json + merges.txt files.
#pragma once

#include <cstdint>
#include <array>
#include <filesystem>
#include <mutex>
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

// A thread-safe cache of tokenized words (the same word always gives the same tokens), in
// shards so that encoding threads rarely wait on each other. Bounded: once full, it stops
// inserting, as the reference's cache does.
class WordCache {
 public:
  struct Entry {
    uint32_t id, start, end;
  };
  bool Get(const std::string& word, std::vector<Entry>& out) const;
  void Put(const std::string& word, std::vector<Entry> entries);

 private:
  static constexpr size_t kShards = 32;
  static constexpr size_t kPerShard = 4096;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::vector<Entry>> map;
  };
  std::array<Shard, kShards> shards_;
};

// Open-addressing map from a token pair to its merge (rank, new id): the BPE hot loop.
class MergeMap {
 public:
  struct Value {
    uint32_t rank;
    uint32_t new_id;
  };
  void Insert(uint64_t key, Value v);
  const Value* Find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    size_t i = Hash(key) & mask_;
    for (;;) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.value;
      i = (i + 1) & mask_;
    }
  }

 private:
  struct Slot {
    uint64_t key = 0;
    Value value{};
    bool used = false;
  };
  static size_t Hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void Grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
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
  Status TokenizeUncached(const CodePoints& word, std::vector<Token>& out) const;
  Vocab vocab_;
  WordPieceOptions options_;
  mutable WordCache cache_;
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
  const BpeOptions& options() const { return options_; }

 private:
  Bpe() = default;
  Status TokenizeUncached(const CodePoints& word, std::vector<Token>& out) const;

  Vocab vocab_;
  std::vector<std::pair<std::string, std::string>> merges_;
  MergeMap merge_map_;
  BpeOptions options_;
  mutable WordCache cache_;
};

// Builds a WordPiece or BPE model from its tokenizer.json object.
Result<std::unique_ptr<Model>> ModelFromJson(const nlohmann::json& j);

}  // namespace mlaas::tokenizers
