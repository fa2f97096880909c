#include "common/json_file.h"

#include "common/file_util.h"
#include "common/text.h"

namespace mlaas {

bool JsonNestingWithin(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      if (depth > 0) --depth;
    }
  }
  return true;
}

namespace {

template <typename Json>
Result<Json> Parse(std::string_view text, std::string_view what, std::string field, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    return InvalidArgument(std::string(what) + " is larger than the " + FormatBytes(limits.max_bytes) + " allowed",
                           std::move(field));
  if (!JsonNestingWithin(text, limits.max_depth))
    return InvalidArgument(std::string(what) + " nests deeper than " + std::to_string(limits.max_depth) + " levels",
                           std::move(field));
  try {
    return Json::parse(text);
  } catch (const std::exception& e) {  // parse_error; nothing else is thrown here
    std::string why = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> the tail.
    if (auto pos = why.find("] "); pos != std::string::npos) why = why.substr(pos + 2);
    return InvalidArgument(std::string(what) + " is not valid JSON: " + why, std::move(field));
  }
}

template <typename Json>
Result<Json> Read(const std::filesystem::path& path, std::string_view what, std::string field,
                  const JsonLimits& limits) {
  auto text = ReadFile(path, limits.max_bytes);
  if (!text) {
    const StatusCode code = text.error().code();
    if (code == StatusCode::kNotFound) return Status(code, std::string(what) + " is missing", std::move(field));
    if (code == StatusCode::kResourceExhausted)
      return InvalidArgument(std::string(what) + " is larger than the " + FormatBytes(limits.max_bytes) + " allowed",
                             std::move(field));
    return Status(code, "cannot read " + std::string(what), std::move(field));
  }
  return Parse<Json>(*text, what, std::move(field), limits);
}

}  // namespace

Result<nlohmann::json> ParseJsonText(std::string_view text, std::string_view what, std::string field,
                                     const JsonLimits& limits) {
  return Parse<nlohmann::json>(text, what, std::move(field), limits);
}
Result<nlohmann::ordered_json> ParseOrderedJsonText(std::string_view text, std::string_view what, std::string field,
                                                    const JsonLimits& limits) {
  return Parse<nlohmann::ordered_json>(text, what, std::move(field), limits);
}
Result<nlohmann::json> ReadJsonFile(const std::filesystem::path& path, std::string_view what, std::string field,
                                    const JsonLimits& limits) {
  return Read<nlohmann::json>(path, what, std::move(field), limits);
}
Result<nlohmann::ordered_json> ReadOrderedJsonFile(const std::filesystem::path& path, std::string_view what,
                                                   std::string field, const JsonLimits& limits) {
  return Read<nlohmann::ordered_json>(path, what, std::move(field), limits);
}

}  // namespace mlaas
