#include "common/json_schema.h"

#include <gtest/gtest.h>

namespace mlaas {
namespace {

using nlohmann::json;

const json kSchema = json::parse(R"({
  "type": "object",
  "required": ["model"],
  "additionalProperties": false,
  "properties": {
    "model": {
      "type": "object",
      "additionalProperties": false,
      "anyOf": [{"required": ["path"]}, {"required": ["preset"]}],
      "properties": {
        "path": {"type": "string", "minLength": 1},
        "preset": {"type": "string"},
        "storage_type": {"enum": ["local", "s3"]}
      }
    },
    "epochs": {"type": "integer", "minimum": 1, "maximum": 1000},
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "split": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "texts": {"type": "array", "minItems": 1, "maxItems": 3, "uniqueItems": true,
              "items": {"type": "string", "maxLength": 5}},
    "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
    "kwargs": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
    "space": {"type": "object", "minProperties": 1},
    "either": {"type": ["string", "null"]},
    "input": {
      "type": "object",
      "anyOf": [{"required": ["text"]}, {"required": ["question", "context"]}],
      "properties": {
        "text": {"type": "string"},
        "question": {"type": "string"},
        "context": {"type": "string"},
        "stop": {"anyOf": [{"type": "string", "minLength": 1},
                           {"type": "array", "maxItems": 2, "items": {"type": "string", "minLength": 1}}]}
      }
    }
  }
})");

Status Check(const std::string& body) { return ValidateJson(json::parse(body), kSchema); }

void ExpectError(const std::string& body, const std::string& field, const std::string& fragment) {
  Status st = Check(body);
  ASSERT_FALSE(st.ok()) << body;
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), field) << st.message();
  EXPECT_NE(st.message().find(fragment), std::string::npos) << st.message();
}

TEST(JsonSchemaTest, AcceptsValidDocuments) {
  EXPECT_TRUE(Check(R"({"model": {"path": "m", "storage_type": "local"}})").ok());
  EXPECT_TRUE(Check(R"({"model": {"preset": "bert-tiny"}, "epochs": 10.0, "lr": 2e-5,
                        "split": 0.1, "texts": ["a", "bb"], "name": "my-model",
                        "kwargs": {"page_content_column": "abstract"}, "either": null})")
                  .ok());
}

TEST(JsonSchemaTest, NamesTheOffendingField) {
  ExpectError(R"([])", "", "must be an object (got array)");
  ExpectError(R"({})", "model", "is required");
  ExpectError(R"({"model": {}})", "model", "needs one of the fields 'path', 'preset'");
  ExpectError(R"({"model": {"path": ""}})", "model.path", "must not be empty");
  ExpectError(R"({"model": {"path": 3}})", "model.path", "must be a string (got integer)");
  ExpectError(R"({"model": {"path": "m", "storage_type": "ftp"}})", "model.storage_type",
              "must be one of: local, s3");
  ExpectError(R"({"model": {"path": "m", "extra": 1}})", "model.extra", "is not a known field");
  ExpectError(R"({"model": {"path": "m"}, "epochs": 0})", "epochs", "must be >= 1");
  ExpectError(R"({"model": {"path": "m"}, "epochs": 2.5})", "epochs", "must be an integer");
  ExpectError(R"({"model": {"path": "m"}, "epochs": "3"})", "epochs", "(got string)");
  ExpectError(R"({"model": {"path": "m"}, "epochs": 1001})", "epochs", "must be <= 1000");
  ExpectError(R"({"model": {"path": "m"}, "lr": 0})", "lr", "must be > 0");
  ExpectError(R"({"model": {"path": "m"}, "split": 1})", "split", "must be < 1");
  ExpectError(R"({"model": {"path": "m"}, "epochs": true})", "epochs", "(got boolean)");
  ExpectError(R"({"model": {"path": "m"}, "texts": []})", "texts", "must not be empty");
  ExpectError(R"({"model": {"path": "m"}, "texts": ["a","b","c","d"]})", "texts",
              "at most 3 items");
  ExpectError(R"({"model": {"path": "m"}, "texts": ["a", 1]})", "texts[1]", "must be a string");
  ExpectError(R"({"model": {"path": "m"}, "texts": ["a", "b", "a"]})", "texts[2]", "repeats an earlier item");
  ExpectError(R"({"model": {"path": "m"}, "texts": ["toolong"]})", "texts[0]", "at most 5");
  ExpectError(R"({"model": {"path": "m"}, "name": "Bad Name"})", "name", "must match");
  ExpectError(R"({"model": {"path": "m"}, "kwargs": {"a": 1}})", "kwargs.a", "must be a string");
  ExpectError(R"({"model": {"path": "m"}, "kwargs": {"a": "1", "b": "2", "c": "3"}})", "kwargs", "at most 2 fields");
  ExpectError(R"({"model": {"path": "m"}, "space": {}})", "space", "at least 1 field");
  EXPECT_TRUE(Check(R"({"model": {"path": "m"}, "space": {"x": 1}, "kwargs": {"a": "1", "b": "2"}})").ok());
  ExpectError(R"({"model": {"path": "m"}, "either": 1})", "either",
              "must be of type string or null");
}

// When no branch of an anyOf holds, the error is the closest branch's: the one whose type the
// value has, or the one with most of its required fields given.
TEST(JsonSchemaTest, AnAnyOfNamesWhatTheClosestBranchLacks) {
  auto input = [](const std::string& fields) { return R"({"model": {"path": "m"}, "input": )" + fields + "}"; };
  EXPECT_TRUE(Check(input(R"({"text": "a"})")).ok());
  EXPECT_TRUE(Check(input(R"({"question": "q", "context": "c", "stop": ["x"]})")).ok());
  ExpectError(input(R"({"question": "q"})"), "input.context", "is required");
  ExpectError(input(R"({"context": "c"})"), "input.question", "is required");
  ExpectError(input(R"({})"), "input", "needs one of the fields 'text', 'question' and 'context'");
  ExpectError(input(R"({"text": "a", "stop": [""]})"), "input.stop[0]", "must not be empty");
  ExpectError(input(R"({"text": "a", "stop": ["x", "y", "z"]})"), "input.stop", "at most 2 items");
  ExpectError(input(R"({"text": "a", "stop": ""})"), "input.stop", "must not be empty");
  ExpectError(input(R"({"text": "a", "stop": 5})"), "input.stop", "must be a string (got integer)");
}

TEST(JsonSchemaTest, CountsCharactersNotBytes) {
  // Five code points, ten bytes.
  EXPECT_TRUE(Check(R"({"model": {"path": "m"}, "texts": ["\u00e9\u00e9\u00e9\u00e9\u00e9"]})").ok());
}

}  // namespace
}  // namespace mlaas
