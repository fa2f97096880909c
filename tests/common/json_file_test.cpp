#include "common/json_file.h"

#include <gtest/gtest.h>

#include "testutil/temp_dir.h"

namespace mlaas {
namespace {

TEST(JsonFileTest, ParsesWithinLimits) {
  auto j = ParseJsonText(R"({"a": [1, {"b": "[[["}]})", "x.json");
  ASSERT_TRUE(j.has_value()) << j.error().ToString();
  EXPECT_EQ((*j)["a"][1]["b"], "[[[");
  EXPECT_TRUE(JsonNestingWithin(std::string(64, '[') + std::string(64, ']'), 64));
  EXPECT_FALSE(JsonNestingWithin(std::string(65, '[') + std::string(65, ']'), 64));
  // Brackets inside strings (escaped quotes too) do not count.
  EXPECT_TRUE(JsonNestingWithin("[\"\\\"" + std::string(100, '[') + "\"]", 2));
}

TEST(JsonFileTest, RefusesDeepLargeAndInvalidDocumentsNamingThem) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const auto& [text, what] : std::vector<std::pair<std::string, std::string>>{
           {deep, "nests deeper"}, {"{\"a\": ", "not valid JSON"}, {std::string(2000, ' ') + "1", "larger"}}) {
    auto r = ParseJsonText(text, "config.json", "model.path", {.max_bytes = what == "larger" ? 1000u : 1u << 20});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.error().field(), "model.path");
    EXPECT_NE(r.error().message().find("config.json"), std::string::npos) << r.error().ToString();
    EXPECT_NE(r.error().message().find(what), std::string::npos) << r.error().ToString();
  }
}

TEST(JsonFileTest, FileErrorsNameTheFileNeverItsPath) {
  testing::TempDir dir;
  auto missing = ReadJsonFile(dir / "nope.json", "tokenizer.json");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.error().message().find(dir.path().string()), std::string::npos) << missing.error().ToString();
  dir.Write("big.json", std::string(5000, ' ') + "{}");
  auto big = ReadOrderedJsonFile(dir / "big.json", "big.json", "f", {.max_bytes = 100});
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(big.error().message().find(dir.path().string()), std::string::npos) << big.error().ToString();
  dir.Write("ok.json", R"({"z": 1, "a": 2})");
  auto ok = ReadOrderedJsonFile(dir / "ok.json", "ok.json");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->begin().key(), "z");  // order kept
}

}  // namespace
}  // namespace mlaas
