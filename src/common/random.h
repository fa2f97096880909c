// Randomness for secrets and identifiers: the kernel's CSPRNG (getrandom(2)). Task, request and
// object ids (NewUuid) and API tokens come from it.
#pragma once

#include <cstddef>
#include <string>

namespace mlaas {

// Fills `out` with `n` random bytes; aborts when the kernel has none to give (never in practice).
void RandomBytes(void* out, size_t n);
// `bytes` random bytes as lower-case hex (2 * bytes characters).
std::string RandomHex(size_t bytes);

}  // namespace mlaas
