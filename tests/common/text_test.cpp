#include "common/text.h"

#include <gtest/gtest.h>

#include <set>

namespace mlaas {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("Frascati \xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
}

TEST(Utf8Test, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));               // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));           // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));       // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));   // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("ok\x80"));             // stray continuation byte
}

TEST(UuidTest, GeneratesDistinctVersion4Ids) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUuid();
    ASSERT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("0751bf4c-95f7-4463-bc47-dd901561e1dg"));
}

TEST(Base64Test, RoundTripsArbitraryBytes) {
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                        std::string("data/x.csv"), std::string("\0\xff\x10", 3)}) {
    auto decoded = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, s);
  }
  EXPECT_FALSE(Base64UrlDecode("a+b").has_value());
}

TEST(TextTest, SmallHelpers) {
  EXPECT_EQ(Trim("  x y \n"), "x y");
  EXPECT_EQ(Split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(StartsWith("datasets/a", "datasets/"));
  EXPECT_EQ(ToLower("AbC"), "abc");
  EXPECT_EQ(ParseInt("42"), 42);
  EXPECT_EQ(ParseInt("-7"), -7);
  EXPECT_FALSE(ParseInt("4x").has_value());
  EXPECT_FALSE(ParseInt("").has_value());
  EXPECT_EQ(FormatBytes(10), "10 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
}

TEST(TextTest, EscapesForLogLines) {
  EXPECT_EQ(EscapeForLog("/api/v1/objects/a b"), "/api/v1/objects/a b");
  EXPECT_EQ(EscapeForLog("a\nforged\r\x1b[31m"), "a\\x0aforged\\x0d\\x1b[31m");
  EXPECT_EQ(EscapeForLog("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 kept
  EXPECT_EQ(EscapeForLog("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(EscapeForLog(std::string(600, 'a'), 10), "aaaaaaaaaa...");
  // C1 controls (an 8-bit CSI, NEL) and the line separator are escaped as C0 ones are.
  EXPECT_EQ(EscapeForLog("a\xc2\x9b" "31mb\xc2\x85" "c\xe2\x80\xa8" "d\xc2\xa0"), "a\\xc2\\x9b31mb\\xc2\\x85c\\xe2\\x80\\xa8d\xc2\xa0");
  // A cut inside a character cuts before it, and the rest stays readable UTF-8.
  EXPECT_EQ(EscapeForLog("ab\xc3\xa9", 3), "ab...");
}

TEST(TextTest, CutsAtCharacterStartsAndFindsControlCharacters) {
  EXPECT_EQ(Utf8Prefix("abc", 5), "abc");
  EXPECT_EQ(Utf8Prefix("ab\xe2\x82\xac", 4), "ab");  // inside a 3-byte character: before it
  EXPECT_EQ(Utf8Prefix("ab\xe2\x82\xac", 5), "ab\xe2\x82\xac");
  EXPECT_EQ(Utf8Prefix("\xf0\x9f\x98\x80x", 3), "");
  // Invalid input: at most three continuation bytes are stepped back over, never the whole text.
  EXPECT_EQ(Utf8Prefix("ab" + std::string(10, '\x80'), 9), "ab\x80\x80\x80\x80");
  EXPECT_EQ(Utf8Cut("caf\xc3\xa9 au lait", 4), "caf...");
  EXPECT_EQ(Utf8Cut("caf\xc3\xa9", 5), "caf\xc3\xa9");

  const std::string text = "a\tb\x7f" "c\xc2\x85" "d\xe2\x80\xa9" "e\xc2\xa0" "f\xe2\x80\xa6";
  std::vector<size_t> found;
  for (size_t i = 0; i < text.size(); ++i)
    if (size_t n = ControlCharBytes(text, i)) found.push_back(i * 10 + n);
  // TAB (1 byte at 1), DEL (1 at 3), NEL (2 at 5), U+2029 (3 at 8); NBSP and U+2026 are text.
  EXPECT_EQ(found, (std::vector<size_t>{11, 31, 52, 83}));
  EXPECT_EQ(ControlCharBytes(text, text.size()), 0u);
  EXPECT_EQ(ControlCharBytes("\xe2\x80", 0), 0u);  // a cut separator is not one
}

TEST(TextTest, RedactsPaths) {
  EXPECT_EQ(RedactPath("cannot read /srv/d/objects/m/x and /srv/d/objects/y", "/srv/d/objects/", ""),
            "cannot read m/x and y");
  EXPECT_EQ(RedactPath("no path here", "/srv/d", "<data-dir>"), "no path here");
  EXPECT_EQ(RedactPath("/a/a/a", "/a", "/a/b"), "/a/b/a/b/a/b");
}

}  // namespace
}  // namespace mlaas
