// libFuzzer target: any bytes given to the image decoders (PNG, JPEG) and to the IDX reader
// are an image / an array within their limits, or an error: never a crash, an out-of-bounds
// access, or an allocation beyond the limits (ASan's malloc limit catches one).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vision/idx.h"
#include "vision/image.h"

using namespace mlaas::vision;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const DecodeLimits limits{.max_pixels = 4'000'000, .max_side = 4096};
  for (int channels : {0, 1, 3}) {
    auto img = DecodeImage(bytes, channels, limits);
    if (img.has_value()) {
      if (img->pixels.size() != static_cast<size_t>(img->width * img->height * img->channels)) __builtin_trap();
      Image small = Resize(*img, 7, 5);
      (void)ToNormalizedCHW(small, {0.5f}, {0.25f});
    }
  }
  auto idx = ParseIdx(bytes, {.max_bytes = 64u << 20});
  if (idx.has_value()) {
    size_t n = 1;
    for (int64_t d : idx->dims) n *= static_cast<size_t>(d);
    if (n != idx->values.size()) __builtin_trap();
  }
  return 0;
}
