// Pre-tokenizers: split normalized text into the "words" a model tokenizes, with the
// semantics of Hugging Face tokenizers (BertPreTokenizer, Whitespace, WhitespaceSplit,
// ByteLevel, Punctuation, Digits, Metaspace, CharDelimiterSplit, Sequence).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/result.h"
#include "tokenizers/normalized_string.h"

namespace mlaas::tokenizers {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece with the pieces it splits into (empty pieces are dropped).
  virtual void PreTokenize(std::vector<NormalizedString>& pieces) const = 0;
  virtual nlohmann::ordered_json ToJson() const = 0;
};

// Builds a pre-tokenizer from its tokenizer.json object; InvalidArgument naming an
// unsupported "type".
Result<std::unique_ptr<PreTokenizer>> PreTokenizerFromJson(const nlohmann::json& j);

// The GPT-2 byte <-> printable-char table used by ByteLevel.
char32_t ByteToChar(uint8_t b);
// -1 when `c` is not one of the 256 byte chars.
int CharToByte(char32_t c);

// True for the characters Hugging Face's BERT and Punctuation pre-tokenizers isolate.
bool IsBertPunctuation(char32_t c);

}  // namespace mlaas::tokenizers
