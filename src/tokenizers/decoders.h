// Decoders: turn tokens back into text (WordPiece, ByteLevel, Metaspace, BPEDecoder, Fuse,
// Strip, Replace, Sequence), with Hugging Face tokenizers' semantics.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace mlaas::tokenizers {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // One step of the chain: tokens in, tokens out (a final decoder may return one string).
  virtual std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const = 0;
  virtual nlohmann::ordered_json ToJson() const = 0;
};

Result<std::unique_ptr<Decoder>> DecoderFromJson(const nlohmann::json& j);

}  // namespace mlaas::tokenizers
