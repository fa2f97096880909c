// Validation of JSON values against a subset of JSON Schema (the subset OpenAPI 3.0 uses),
// so that one schema both validates requests and documents them in /openapi.json.
//
// Supported keywords: type (string or list), properties, required, additionalProperties
// (bool or schema), minProperties, maxProperties, enum, minimum, maximum, exclusiveMinimum, exclusiveMaximum (numeric,
// draft-6 form), minLength, maxLength (in code points), pattern, items, minItems, maxItems,
// anyOf. "integer" accepts a number with an integral value (10 and 10.0).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace mlaas {

// Checks `value` against `schema`. On failure returns InvalidArgument whose field() is the
// dotted path of the first offending field, prefixed by `path` ("" for the document root).
Status ValidateJson(const nlohmann::json& value, const nlohmann::json& schema,
                    const std::string& path = "");

// Name of a JSON value's type as the schema spells it ("object", "integer", "null", ...).
std::string JsonTypeName(const nlohmann::json& value);

}  // namespace mlaas
