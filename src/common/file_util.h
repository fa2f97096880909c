// Whole-file helpers with the platform's durability rule: a write is atomic (temp file in the
// same directory, fsync, rename), so a crash leaves the old file or the new one, never half.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mlaas {

// Errors name the file, never its directory (they reach clients).

// Writes `data` to `path` atomically, creating parent directories. The file is created with
// `mode` (less the umask) from the start: 0600 keeps a secret unreadable to others throughout.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode = 0644);

// Whether `name` is the temporary name WriteFileAtomic (and the object stores) give a file
// being written: `<final name>.tmp-<8 hex digits>`. Such names are reserved.
bool IsAtomicWriteTemporary(std::string_view name);

// Reads a whole file; NotFound when it does not exist, ResourceExhausted above `max_bytes`.
Result<std::string> ReadFile(const std::filesystem::path& path, uint64_t max_bytes = 64ull << 20);

}  // namespace mlaas
