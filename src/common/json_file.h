// The one way the platform parses JSON it did not write itself in this process: request
// bodies, and files from storage (config.json, tokenizer.json, dataset lines, manifests,
// state files). Every document is checked against a size and a nesting limit before the
// recursive parts of nlohmann::json (copy, dump, comparison) ever see it, and errors name
// what was read ("config.json"), never a server path. Never throws.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mlaas {

struct JsonLimits {
  uint64_t max_bytes = 64ull << 20;  // the document's size
  size_t max_depth = 64;             // arrays and objects inside one another
};

// True when no array or object of `text` lies deeper than `max_depth` (strings skipped).
bool JsonNestingWithin(std::string_view text, size_t max_depth);

// Parses `text` as one JSON document. InvalidArgument naming `what` (and `field`) when it is
// larger or deeper than the limits or not valid JSON.
Result<nlohmann::json> ParseJsonText(std::string_view text, std::string_view what, std::string field = {},
                                     const JsonLimits& limits = {});
Result<nlohmann::ordered_json> ParseOrderedJsonText(std::string_view text, std::string_view what,
                                                    std::string field = {}, const JsonLimits& limits = {});

// Reads and parses a file: NotFound when it is missing, InvalidArgument as above otherwise.
// `what` names the file in errors (e.g. "config.json"); the path itself is never shown.
Result<nlohmann::json> ReadJsonFile(const std::filesystem::path& path, std::string_view what,
                                    std::string field = {}, const JsonLimits& limits = {});
Result<nlohmann::ordered_json> ReadOrderedJsonFile(const std::filesystem::path& path, std::string_view what,
                                                   std::string field = {}, const JsonLimits& limits = {});

}  // namespace mlaas
