// Normalizers with the semantics of Hugging Face tokenizers: BertNormalizer, Lowercase,
// StripAccents, NFC/NFD/NFKC/NFKD, Strip, Prepend, Replace (literal), Sequence.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "tokenizers/normalized_string.h"

namespace mlaas::tokenizers {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void Normalize(NormalizedString& s) const = 0;
  virtual nlohmann::ordered_json ToJson() const = 0;
};

// InvalidArgument naming an unsupported "type" or a bad field.
Result<std::unique_ptr<Normalizer>> NormalizerFromJson(const nlohmann::json& j);

}  // namespace mlaas::tokenizers
