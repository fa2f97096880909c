#include "tokenizers/unicode.h"

#include <utf8proc.h>

namespace mlaas::tokenizers {
namespace {

utf8proc_category_t Cat(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

}  // namespace

Result<CodePoints> DecodeUtf8(std::string_view text, InvalidUtf8 policy) {
  CodePoints out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    // Decode one sequence; `len` is how many bytes form a valid prefix (the maximal
    // subpart replaced by one U+FFFD when the sequence is invalid).
    size_t need = 0;
    char32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
      cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      cp = b & 0x0F;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      cp = b & 0x07;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    size_t len = 1;
    bool ok = need > 0;
    for (size_t k = 0; ok && k < need; ++k) {
      if (i + 1 + k >= n) {
        ok = false;
        break;
      }
      unsigned char c = s[i + 1 + k];
      unsigned char l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
      if (c < l || c > h) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (c & 0x3F);
      ++len;
    }
    if (ok) {
      out.push_back(cp);
      i += need + 1;
      continue;
    }
    if (policy == InvalidUtf8::kError) {
      return InvalidArgument("text is not valid UTF-8 (invalid byte sequence at byte " +
                             std::to_string(i) + ")");
    }
    out.push_back(0xFFFD);
    i += len;
  }
  return out;
}

void AppendUtf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string EncodeUtf8(const char32_t* begin, const char32_t* end) {
  std::string out;
  out.reserve(static_cast<size_t>(end - begin));
  for (const char32_t* p = begin; p != end; ++p) AppendUtf8(*p, out);
  return out;
}

std::string_view GeneralCategory(char32_t c) {
  return utf8proc_category_string(static_cast<utf8proc_int32_t>(c));
}

bool IsWhitespace(char32_t c) {
  if (c < 0x80) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool IsLetter(char32_t c) {
  auto k = Cat(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

bool IsNumber(char32_t c) {
  auto k = Cat(c);
  return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

bool IsNumeric(char32_t c) { return IsNumber(c); }

bool IsAlphabetic(char32_t c) {
  auto k = Cat(c);
  if ((k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || k == UTF8PROC_CATEGORY_NL) {
    return true;
  }
  // Other_Alphabetic: mostly combining marks, plus circled and squared Latin letters.
  if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC) {
    // Marks are Alphabetic only when Other_Alphabetic; callers that need \w include every
    // mark anyway, so the distinction does not matter to them.
    return false;
  }
  return (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
         (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

bool IsWordChar(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  std::string_view cat = GeneralCategory(c);
  return IsAlphabetic(c) || cat[0] == 'M' || cat == "Nd" || cat == "Pc" || c == 0x200C ||
         c == 0x200D;
}

bool IsPunctuation(char32_t c) {
  auto k = Cat(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool IsMarkNonspacing(char32_t c) { return Cat(c) == UTF8PROC_CATEGORY_MN; }

bool IsOther(char32_t c) {
  auto k = Cat(c);
  return k == UTF8PROC_CATEGORY_CN || k >= UTF8PROC_CATEGORY_CC;
}

}  // namespace mlaas::tokenizers
