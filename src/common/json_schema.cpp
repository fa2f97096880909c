#include "common/json_schema.h"

#include <cmath>
#include <regex>
#include <set>

namespace mlaas {
namespace {

using nlohmann::json;

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool IsIntegral(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  double d = v.get<double>();
  // Beyond 2^53 a double is no exact integer (and beyond 2^63 no int64_t the server could hold).
  return std::isfinite(d) && std::floor(d) == d && std::fabs(d) <= 9007199254740992.0;
}

bool MatchesType(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "number") return v.is_number();
  if (type == "integer") return IsIntegral(v);
  return false;
}

std::string Article(const std::string& type) {
  if (type == "object" || type == "array" || type == "integer") return "an " + type;
  return "a " + type;
}

std::string ValueText(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string NumberText(const json& v) {
  if (IsIntegral(v) && std::fabs(v.get<double>()) < 1e15) {
    return std::to_string(static_cast<long long>(v.get<double>()));
  }
  return v.dump();
}

Status Fail(const std::string& path, std::string message) {
  std::string where = path.empty() ? "request body" : "'" + path + "'";
  return InvalidArgument(where + " " + message, path);
}

Status CheckType(const json& v, const json& schema, const std::string& path) {
  if (!schema.contains("type")) return Status::Ok();
  const json& t = schema["type"];
  if (t.is_string()) {
    if (!MatchesType(v, t.get<std::string>())) {
      return Fail(path, "must be " + Article(t.get<std::string>()) + " (got " + JsonTypeName(v) +
                            ")");
    }
    return Status::Ok();
  }
  std::string names;
  for (const auto& one : t) {
    if (MatchesType(v, one.get<std::string>())) return Status::Ok();
    names += (names.empty() ? "" : " or ") + one.get<std::string>();
  }
  return Fail(path, "must be of type " + names + " (got " + JsonTypeName(v) + ")");
}

Status CheckNumber(const json& v, const json& s, const std::string& path) {
  double d = v.get<double>();
  if (!std::isfinite(d)) return Fail(path, "must be a finite number");
  if (s.contains("minimum") && d < s["minimum"].get<double>()) {
    return Fail(path, "must be >= " + NumberText(s["minimum"]) + " (got " + ValueText(v) + ")");
  }
  if (s.contains("maximum") && d > s["maximum"].get<double>()) {
    return Fail(path, "must be <= " + NumberText(s["maximum"]) + " (got " + ValueText(v) + ")");
  }
  if (s.contains("exclusiveMinimum") && d <= s["exclusiveMinimum"].get<double>()) {
    return Fail(path, "must be > " + NumberText(s["exclusiveMinimum"]) + " (got " +
                          ValueText(v) + ")");
  }
  if (s.contains("exclusiveMaximum") && d >= s["exclusiveMaximum"].get<double>()) {
    return Fail(path, "must be < " + NumberText(s["exclusiveMaximum"]) + " (got " +
                          ValueText(v) + ")");
  }
  return Status::Ok();
}

Status CheckString(const std::string& v, const json& s, const std::string& path) {
  size_t n = CodePoints(v);
  if (s.contains("minLength") && n < s["minLength"].get<size_t>()) {
    if (s["minLength"].get<size_t>() == 1) return Fail(path, "must not be empty");
    return Fail(path, "must be at least " + s["minLength"].dump() + " characters long");
  }
  if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) {
    return Fail(path, "must be at most " + s["maxLength"].dump() + " characters long");
  }
  if (s.contains("pattern")) {
    std::regex re(s["pattern"].get<std::string>(), std::regex::ECMAScript);
    if (!std::regex_search(v, re)) {
      return Fail(path, "must match the pattern " + s["pattern"].get<std::string>());
    }
  }
  return Status::Ok();
}

Status CheckObject(const json& v, const json& s, const std::string& path) {
  if (s.contains("required")) {
    for (const auto& name : s["required"]) {
      const std::string key = name.get<std::string>();
      if (!v.contains(key)) return Fail(Join(path, key), "is required");
    }
  }
  if (s.contains("minProperties") && v.size() < s["minProperties"].get<size_t>()) {
    return Fail(path, "must have at least " + s["minProperties"].dump() + " field(s)");
  }
  if (s.contains("maxProperties") && v.size() > s["maxProperties"].get<size_t>()) {
    return Fail(path, "must have at most " + s["maxProperties"].dump() + " fields (got " + std::to_string(v.size()) + ")");
  }
  const json empty = json::object();
  const json& props = s.contains("properties") ? s["properties"] : empty;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string child = Join(path, it.key());
    if (props.contains(it.key())) {
      MLAAS_RETURN_IF_ERROR(ValidateJson(it.value(), props[it.key()], child));
      continue;
    }
    if (!s.contains("additionalProperties")) continue;
    const json& extra = s["additionalProperties"];
    if (extra.is_boolean()) {
      if (!extra.get<bool>()) {
        std::string allowed;
        for (auto p = props.begin(); p != props.end(); ++p) {
          allowed += (allowed.empty() ? "" : ", ") + p.key();
        }
        return Fail(child, "is not a known field (allowed: " + allowed + ")");
      }
    } else {
      MLAAS_RETURN_IF_ERROR(ValidateJson(it.value(), extra, child));
    }
  }
  return Status::Ok();
}

Status CheckArray(const json& v, const json& s, const std::string& path) {
  if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) {
    if (s["minItems"].get<size_t>() == 1) return Fail(path, "must not be empty");
    return Fail(path, "must have at least " + s["minItems"].dump() + " items");
  }
  if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) {
    return Fail(path, "must have at most " + s["maxItems"].dump() + " items (got " +
                          std::to_string(v.size()) + ")");
  }
  if (s.value("uniqueItems", false)) {
    std::set<std::string> seen;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!seen.insert(v[i].dump()).second) return Fail(path + "[" + std::to_string(i) + "]", "repeats an earlier item");
    }
  }
  if (s.contains("items")) {
    for (size_t i = 0; i < v.size(); ++i) {
      MLAAS_RETURN_IF_ERROR(
          ValidateJson(v[i], s["items"], path + "[" + std::to_string(i) + "]"));
    }
  }
  return Status::Ok();
}

// When no branch of an anyOf holds, the error of the branch the value came closest to: one whose
// type it has (a list given where a string or a list is allowed is told what is wrong with the
// list), or among branches that list required fields, the one with most of them given (a
// question without its context is told the context is missing). When the value gives none of
// any branch's required fields: "needs one of the fields 'a', 'b' and 'c'".
Status CheckAnyOf(const json& v, const json& s, const std::string& path) {
  Status closest;
  int closest_rank = -1;
  bool only_required = true;
  std::string names;
  for (const auto& branch : s["anyOf"]) {
    Status st = ValidateJson(v, branch, path);
    if (st.ok()) return st;
    int rank = CheckType(v, branch, path).ok() ? 1 : 0;
    const bool required_only = branch.size() == 1 && branch.contains("required");
    if (rank == 1 && branch.contains("required") && v.is_object()) {
      for (const auto& key : branch["required"]) rank += v.contains(key.get<std::string>()) ? 1 : 0;
    }
    if (rank > closest_rank) {
      closest = st;
      closest_rank = rank;
    }
    if (required_only) {
      std::string all;
      for (const auto& key : branch["required"]) all += (all.empty() ? "'" : "' and '") + key.get<std::string>();
      names += (names.empty() ? "" : ", ") + all + "'";
    } else {
      only_required = false;
    }
  }
  if (only_required && closest_rank <= 1 && !names.empty()) return Fail(path, "needs one of the fields " + names);
  return closest;
}

}  // namespace

std::string JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    default: return "binary";
  }
}

Status ValidateJson(const json& value, const json& schema, const std::string& path) {
  if (!schema.is_object()) return Status::Ok();
  MLAAS_RETURN_IF_ERROR(CheckType(value, schema, path));
  if (schema.contains("enum")) {
    bool found = false;
    std::string allowed;
    for (const auto& option : schema["enum"]) {
      if (option == value) found = true;
      allowed += (allowed.empty() ? "" : ", ") +
                 (option.is_string() ? option.get<std::string>() : option.dump());
    }
    if (!found) return Fail(path, "must be one of: " + allowed + " (got " + ValueText(value) + ")");
  }
  if (value.is_number()) MLAAS_RETURN_IF_ERROR(CheckNumber(value, schema, path));
  if (value.is_string()) MLAAS_RETURN_IF_ERROR(CheckString(value.get<std::string>(), schema, path));
  if (value.is_object()) MLAAS_RETURN_IF_ERROR(CheckObject(value, schema, path));
  if (value.is_array()) MLAAS_RETURN_IF_ERROR(CheckArray(value, schema, path));
  if (schema.contains("anyOf")) MLAAS_RETURN_IF_ERROR(CheckAnyOf(value, schema, path));
  return Status::Ok();
}

}  // namespace mlaas
