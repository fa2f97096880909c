// libFuzzer target: ParsePytorchStateDict (the restricted unpickler over torch.save's zip and
// legacy formats) on any bytes: no crash, leak, sanitizer report or escaping exception; a state
// dict it accepts converts to safetensors.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "checkpoint/pytorch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mlaas::checkpoint::PickleLimits limits;
  limits.max_tensor_bytes = 64u << 20;
  limits.max_objects = 200000;
  auto t = mlaas::checkpoint::ParsePytorchStateDict(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (t.has_value()) (void)mlaas::checkpoint::ToSafetensors(std::move(t).value());
  return 0;
}
