// libFuzzer target: an Open Inference Protocol v2 request body, read as the server reads one
// (common/json_file.h with the request-body nesting limit), then parsed by
// serve::ParseInferRequestV2. Whatever the bytes, neither may crash, leak, trip a sanitizer or
// allocate beyond the parser's limits; a parsed request must respect those limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/json_file.h"
#include "serve/infer_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto body = mlaas::ParseJsonText(text, "request body", {}, {.max_depth = 64});
  if (!body.has_value()) return 0;
  // Small limits, so that the fuzzer reaches them with short inputs.
  const mlaas::serve::InferParseLimits limits{.max_rows = 64, .max_row_tokens = 64};
  auto request = mlaas::serve::ParseInferRequestV2(*body, limits);
  if (!request.has_value()) return 0;
  const auto& r = *request;
  if (!r.texts.empty() && !r.token_ids.empty()) std::abort();  // texts or token ids, never both
  if (static_cast<int64_t>(r.texts.size() + r.token_ids.size()) > limits.max_rows) std::abort();
  for (const auto& row : r.token_ids) {
    if (static_cast<int64_t>(row.size()) > limits.max_row_tokens) std::abort();
  }
  // Second texts: pairs or contexts, never both, one for each text; segments line up with the ids.
  if (!r.pairs.empty() && !r.contexts.empty()) std::abort();
  for (const auto* seconds : {&r.pairs, &r.contexts})
    if (!seconds->empty() && seconds->size() != r.texts.size()) std::abort();
  if (!r.token_type_ids.empty()) {
    if (r.token_type_ids.size() != r.token_ids.size()) std::abort();
    for (size_t i = 0; i < r.token_ids.size(); ++i) {
      if (r.token_type_ids[i].size() != r.token_ids[i].size()) std::abort();
      for (int64_t t : r.token_type_ids[i])
        if (t != 0 && t != 1) std::abort();
    }
  }
  // Images: one kind of input only, [N, C, H, W] filled exactly, pixels in 0..1.
  if (!r.pixels.empty() || r.images > 0) {
    if (!r.texts.empty() || !r.token_ids.empty() || !r.pairs.empty() || !r.contexts.empty()) std::abort();
    if (r.images < 1 || r.images > limits.max_rows || (r.channels != 1 && r.channels != 3)) std::abort();
    if (static_cast<int64_t>(r.pixels.size()) != r.images * r.channels * r.height * r.width) std::abort();
    for (float v : r.pixels)
      if (!(v >= 0.0f && v <= 1.0f)) std::abort();
  }
  return 0;
}
