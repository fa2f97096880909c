// Randomness for secrets and identifiers: the kernel's CSPRNG (getrandom(2)). Task, request and
// object ids (NewUuid) and API tokens come from it. And the hex form secrets are written in.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mlaas {

// Fills `out` with `n` random bytes; aborts when the kernel has none to give (never in practice).
void RandomBytes(void* out, size_t n);
// `bytes` random bytes as lower-case hex (2 * bytes characters).
std::string RandomHex(size_t bytes);
// `bytes` as lower-case hex, two characters a byte.
std::string HexEncode(std::string_view bytes);

}  // namespace mlaas
