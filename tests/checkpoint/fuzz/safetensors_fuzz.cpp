// libFuzzer target: any bytes given to the safetensors reader are either a valid file whose
// tensors can all be read, or an error — never a crash or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "checkpoint/safetensors.h"

using namespace mlaas::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = SafetensorsFile::FromBytes(std::string(reinterpret_cast<const char*>(data), size));
  if (!f.has_value()) return 0;
  uint64_t sum = 0;
  std::vector<TensorToWrite> again;
  for (const auto& t : (*f)->tensors()) {
    auto bytes = (*f)->Data(t);
    for (std::byte b : bytes) sum += static_cast<uint8_t>(b);  // touches every byte in bounds
    again.push_back({t.name, t.dtype, t.shape, bytes});
  }
  auto round = SerializeSafetensors(again, (*f)->metadata());
  if (!round.has_value()) __builtin_trap();  // what was read must be writable again
  return static_cast<int>(sum & 0);
}
