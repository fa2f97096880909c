// An inference request as the serving layer takes it, and the parser of the Open Inference
// Protocol v2 request body (KServe / Triton) into it. Torch-free, and defensive: it reads any
// JSON value (its fuzz target feeds it arbitrary documents), checks every type, and does its
// arithmetic on client-given shapes overflow-checked, bounded before anything is allocated.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "predict/output_options.h"

namespace mlaas::serve {

struct InferRequest {
  std::optional<std::string> version;            // a specific version; none: the traffic policy
  std::vector<std::string> texts;                // raw texts (questions when `contexts` is given), or
  std::vector<std::vector<int64_t>> token_ids;   // token ids (with the special tokens) per input, or
  std::vector<float> pixels;                     // images [N, C, H, W], values in [0, 1]
  int64_t images = 0, channels = 0, height = 0, width = 0;
  // With texts: each text's second text (text pairs: next-sentence prediction, classification of
  // pairs), or each question's context (question answering); as many as texts, or none.
  std::vector<std::string> pairs, contexts;
  // With token_ids: each token's segment (0 or 1), as many as its ids; none: all 0.
  std::vector<std::vector<int64_t>> token_type_ids;
  predict::OutputOptions options;
  std::string field = "inputs";                  // names the inputs in errors
  std::string second_field;                      // names the pairs or contexts in errors
  std::vector<std::string> outputs;              // the outputs asked for, in order; empty: all
};

// Bounds the parser applies before it allocates: no deployment takes more inputs (rows) or
// tokens per input than these, whatever its own limits (checked afterwards) say.
struct InferParseLimits {
  int64_t max_rows = 1 << 16;
  int64_t max_row_tokens = 1 << 16;
};

// {"inputs": [{name, datatype, shape, data}], "outputs"?: [{name}], "parameters"?: {...}}:
// texts (or, for an image model, base64-encoded PNG/JPEG files) as one BYTES input of any name;
// text pairs as two, the second named `pair_text` (or `text_pair`); questions about contexts as
// two named `question` and `context`; INT64/INT32 `input_ids` [rows, tokens] with an optional
// `attention_mask` and `token_type_ids` of the same shape; or images as one FP32 (values 0..1)
// or UINT8 (0..255) tensor [N, C, H, W]. InvalidArgument naming the field otherwise.
Result<InferRequest> ParseInferRequestV2(const nlohmann::json& body, const InferParseLimits& limits = {});

}  // namespace mlaas::serve
