// Unicode helpers of the tokenizers module, with the exact character classes Hugging Face
// `tokenizers` uses (Rust's char methods and the unicode_categories crate), backed by
// utf8proc's Unicode tables. Text is handled as code points (char32_t): offsets reported to
// users are code-point offsets, as the Hugging Face bindings report them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mlaas::tokenizers {

using CodePoints = std::vector<char32_t>;

// How invalid UTF-8 input is treated.
enum class InvalidUtf8 {
  kError,    // InvalidArgument naming the byte offset
  kReplace,  // each maximal invalid subpart becomes U+FFFD (the WHATWG / Unicode rule)
};

Result<CodePoints> DecodeUtf8(std::string_view text, InvalidUtf8 policy = InvalidUtf8::kError);
void AppendUtf8(char32_t c, std::string& out);
std::string EncodeUtf8(const char32_t* begin, const char32_t* end);
inline std::string EncodeUtf8(const CodePoints& cps) {
  return EncodeUtf8(cps.data(), cps.data() + cps.size());
}

// Unicode general category, two letters ("Lu", "Mn", "Zs", "Cn", ...).
std::string_view GeneralCategory(char32_t c);

bool IsWhitespace(char32_t c);        // Rust char::is_whitespace (White_Space property)
bool IsAlphabetic(char32_t c);        // Rust char::is_alphabetic (Alphabetic property)
bool IsNumeric(char32_t c);           // Rust char::is_numeric (Nd, Nl, No)
bool IsPunctuation(char32_t c);       // unicode_categories is_punctuation: Pc Pd Pe Pf Pi Po Ps
bool IsMarkNonspacing(char32_t c);    // Mn
bool IsOther(char32_t c);             // unicode_categories is_other: Cc Cf Cn Co Cs
bool IsLetter(char32_t c);            // L*
// \w of the Rust regex crate in Unicode mode (UTS#18): Alphabetic, marks, Nd, Pc, ZWJ/ZWNJ.
bool IsWordChar(char32_t c);
bool IsNumber(char32_t c);            // N*

}  // namespace mlaas::tokenizers
