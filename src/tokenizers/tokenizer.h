// mlaas::tokenizers::Tokenizer — a Hugging Face-compatible tokenizer: loads tokenizer.json
// (or legacy vocab.txt / vocab.json + merges.txt), encodes texts and pairs to exactly the ids,
// offsets and masks Hugging Face `tokenizers` produces, decodes, and saves tokenizer.json.
//
// Offsets are code-point offsets into the input text (each text of a pair on its own), as the
// Hugging Face Python and Node bindings report them. Thread-safe: Encode/Decode may run on
// many threads at once.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "tokenizers/decoders.h"
#include "tokenizers/encoding.h"
#include "tokenizers/models.h"
#include "tokenizers/normalizers.h"
#include "tokenizers/pre_tokenizers.h"
#include "tokenizers/processors.h"

namespace mlaas::tokenizers {

struct AddedToken {
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

struct EncodeInput {
  std::string text;
  std::optional<std::string> pair;
};

class Tokenizer {
 public:
  ~Tokenizer();

  static Result<std::unique_ptr<Tokenizer>> FromJson(const nlohmann::json& j);
  // A tokenizer.json file; or a directory holding tokenizer.json, or vocab.txt (BERT, with
  // an optional tokenizer_config.json), or vocab.json + merges.txt (GPT-2/RoBERTa).
  static Result<std::unique_ptr<Tokenizer>> Load(const std::filesystem::path& path);
  // A tokenizer around `model` with the given pipeline parts (any may be null).
  static std::unique_ptr<Tokenizer> Create(std::unique_ptr<Model> model,
                                           std::unique_ptr<Normalizer> normalizer,
                                           std::unique_ptr<PreTokenizer> pre_tokenizer,
                                           std::unique_ptr<PostProcessor> post_processor,
                                           std::unique_ptr<Decoder> decoder);

  nlohmann::ordered_json ToJson() const;
  // Writes tokenizer.json atomically (temp file + rename).
  Status Save(const std::filesystem::path& file) const;

  // InvalidArgument for invalid UTF-8 (unless set_invalid_utf8(kReplace)) or when the model
  // cannot encode a word (e.g. WordPiece without its unk token).
  Result<Encoding> Encode(std::string_view text, std::optional<std::string_view> pair = std::nullopt,
                          bool add_special_tokens = true) const;
  // Encodes in parallel on `threads` threads (0: all cores), then pads the batch.
  Result<std::vector<Encoding>> EncodeBatch(const std::vector<EncodeInput>& inputs,
                                            bool add_special_tokens = true,
                                            size_t threads = 0) const;
  Result<std::string> Decode(const std::vector<uint32_t>& ids, bool skip_special_tokens) const;

  void set_truncation(std::optional<TruncationParams> t) { truncation_ = std::move(t); }
  void set_padding(std::optional<PaddingParams> p) { padding_ = std::move(p); }
  void set_invalid_utf8(InvalidUtf8 policy) { invalid_utf8_ = policy; }
  const std::optional<TruncationParams>& truncation() const { return truncation_; }
  const std::optional<PaddingParams>& padding() const { return padding_; }

  // The "words" of a text: normalizer then pre-tokenizer, without extracting added tokens
  // (what training counts). Without a pre-tokenizer the whole normalized text is one word.
  Result<std::vector<std::string>> Words(std::string_view text) const;

  // Adds tokens (ids after the model's vocabulary unless the model knows them); returns how
  // many were new.
  size_t AddTokens(const std::vector<AddedToken>& tokens);
  std::optional<uint32_t> TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(uint32_t id) const;
  // The padding and mask tokens of BERT-style ([PAD], [MASK]) or RoBERTa-style (<pad>,
  // <mask>) vocabularies, when the vocabulary has one.
  struct KnownToken {
    uint32_t id;
    std::string token;
  };
  std::optional<KnownToken> PadToken() const;
  std::optional<KnownToken> MaskToken() const;
  // The end-of-text token a causal language model ends documents with: GPT-2's <|endoftext|>,
  // RoBERTa-style </s>, <eos>, or BERT's [SEP].
  std::optional<KnownToken> EosToken() const;
  size_t VocabSize(bool with_added_tokens = true) const;
  const Model& model() const { return *model_; }
  const std::vector<std::pair<uint32_t, AddedToken>>& added_tokens() const { return added_; }

 private:
  Tokenizer();
  static Result<std::unique_ptr<Tokenizer>> FromJsonUnchecked(const nlohmann::json& j);
  static Result<std::unique_ptr<Tokenizer>> LoadUnchecked(const std::filesystem::path& path);
  struct Pattern;
  struct Piece;
  Result<Encoding> EncodeSingle(std::string_view text, uint32_t type_id, uint32_t sequence) const;
  Result<Encoding> PostProcess(Encoding a, std::optional<Encoding> b, bool add_special) const;
  void RefreshPatterns();
  void FindAdded(const NormalizedString& s, const std::vector<Pattern>& patterns,
                 std::vector<Piece>& out) const;

  std::unique_ptr<Model> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::optional<TruncationParams> truncation_;
  std::optional<PaddingParams> padding_;
  InvalidUtf8 invalid_utf8_ = InvalidUtf8::kError;

  std::vector<std::pair<uint32_t, AddedToken>> added_;  // (id, token) in insertion order
  std::vector<Pattern> raw_patterns_;         // added tokens matched before normalization
  std::vector<Pattern> normalized_patterns_;  // ... and after it
};

}  // namespace mlaas::tokenizers
