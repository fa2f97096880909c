// Token classification's output: a text's per-token label scores grouped into entities with
// character offsets, as transformers' token-classification pipeline groups them (its
// aggregation strategies none, simple, first, average and max). No libtorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "predict/output_options.h"
#include "tokenizers/encoding.h"

namespace mlaas::predict {

// One token of a classified text (special tokens left out).
struct ClassifiedToken {
  uint32_t id = 0;
  int64_t index = 0;             // position in the encoding
  std::string token;             // the vocabulary's string ("##ing", "Ġworld")
  uint32_t start = 0, end = 0;   // code points of the text
  bool subword = false;          // continues the word before it
  const float* scores = nullptr; // a probability per label
};

// The tokens of `enc` (an encoding of `text`) with the scores of each (row-major, `labels` per
// position), and whether each continues a word as transformers decides it: with a
// continuing-subword prefix (WordPiece's "##"), when the token's string is not as long as the
// text it covers; otherwise when neither the character before it nor its first is a space. An
// unknown token (`unk_id`) never continues a word and reads as the text it covers.
std::vector<ClassifiedToken> ClassifiedTokens(const tokenizers::Encoding& enc, std::string_view text,
                                              const float* scores, int64_t labels,
                                              const std::optional<std::string>& subword_prefix,
                                              std::optional<uint32_t> unk_id);

// The entities of one text: with kNone, every token not labelled "O" as {entity, score, index,
// word, start, end}; otherwise groups {entity_group, score, word, start, end} ("O" groups left
// out), where a group's score is the mean of its members' and its word the decoding of its
// tokens. `decode` gives a group's word from its token ids and its code point span [start, end).
using EntityWord = std::function<std::string(const std::vector<uint32_t>& ids, uint32_t start, uint32_t end)>;
nlohmann::json GroupEntities(const std::vector<ClassifiedToken>& tokens, const std::vector<std::string>& labels,
                             Aggregation aggregation, const EntityWord& decode);

}  // namespace mlaas::predict
