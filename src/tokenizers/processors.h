// Post-processors (BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel,
// Sequence): add special tokens and set type ids, with Hugging Face tokenizers' semantics.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/result.h"
#include "tokenizers/encoding.h"

namespace mlaas::tokenizers {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // How many special tokens it adds to a single sequence or a pair (for truncation).
  virtual size_t AddedTokens(bool is_pair) const = 0;
  // Transforms the encodings of the sequences (1 or 2) in place.
  virtual void Process(std::vector<Encoding>& encodings, bool add_special_tokens) const = 0;
  virtual nlohmann::ordered_json ToJson() const = 0;
};

Result<std::unique_ptr<PostProcessor>> PostProcessorFromJson(const nlohmann::json& j);

// ByteLevel/Roberta offset trimming: drops leading/trailing spaces ("Ġ" or whitespace) of
// each token from its offsets.
void TrimOffsets(Encoding& e, bool add_prefix_space);

}  // namespace mlaas::tokenizers
