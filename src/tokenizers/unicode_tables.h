// Character sets measured on the Hugging Face reference (see data/hf_unicode_tables.txt).
// They mix Unicode versions on purpose: the reference uses Unicode 8.0 categories for BERT's
// control and accent tests and its punctuation, Unicode 9.0 for normalization, and a recent
// Unicode for lowercase; matching its output byte for byte needs the same sets.
#pragma once

namespace mlaas::tokenizers::tables {

bool IsBertCleanRemoved(char32_t c);  // dropped by BertNormalizer clean_text
bool IsBertChinese(char32_t c);       // padded with spaces by handle_chinese_chars
bool IsMnV8(char32_t c);              // stripped by BertNormalizer strip_accents (after NFD)
bool IsCombiningMarkV9(char32_t c);   // stripped by the StripAccents normalizer
bool IsCccZeroV9(char32_t c);         // combining class 0 in the reference's Unicode 9.0 data
bool IsPunctuationV8(char32_t c);     // non-ASCII punctuation isolated by BERT/Punctuation
// Rust char::to_lowercase for every char with a one-char mapping (U+0130 is special-cased
// by the caller); returns `c` when it has none.
char32_t LowercaseSingle(char32_t c);

}  // namespace mlaas::tokenizers::tables
