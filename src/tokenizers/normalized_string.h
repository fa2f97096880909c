// NormalizedString: a piece of the input after normalization, where every normalized code
// point remembers the range of ORIGINAL code points it came from (absolute positions in the
// whole input). This is what lets every token report offsets into the user's text, exactly
// as Hugging Face tokenizers' NormalizedString does (which tracks bytes; we track code
// points, the unit the bindings report).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "tokenizers/unicode.h"

namespace mlaas::tokenizers {

struct Span {
  uint32_t start = 0;
  uint32_t end = 0;
  bool operator==(const Span&) const = default;
};

// How a split keeps the delimiters it found (Hugging Face SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class NormalizedString {
 public:
  NormalizedString() = default;
  // `text[begin, end)` of an input, not normalized yet; `shift` is the position of `begin`
  // in the whole input.
  NormalizedString(const char32_t* begin, const char32_t* end, uint32_t shift);

  const CodePoints& chars() const { return chars_; }
  const std::vector<Span>& alignments() const { return align_; }
  size_t size() const { return chars_.size(); }
  bool empty() const { return chars_.empty(); }
  // The range of the input this piece covers.
  Span original() const { return original_; }

  // Original range of normalized [begin, end); an empty range maps to itself (Hugging Face
  // quirk: an empty normalized range is used as if it were an original one).
  Span OriginalRange(size_t begin, size_t end) const;
  NormalizedString Slice(size_t begin, size_t end) const;

  // One replacement step, as Hugging Face's transform: each item is (char, change), where
  // change 0 replaces the next old char, +1 inserts a char (aligned like the char before
  // it), and -n replaces the next old char and removes the n after it. `initial_offset` old
  // chars are dropped first. Old chars not consumed by the items are removed.
  void Transform(const std::vector<std::pair<char32_t, int>>& items, size_t initial_offset = 0);

  // Convenience transforms.
  void Filter(const std::function<bool(char32_t)>& keep);
  void Map(const std::function<char32_t(char32_t)>& f);
  void Prepend(const CodePoints& s);                 // no-op on an empty string
  void Append(const CodePoints& s);                  // no-op on an empty string
  // Every non-overlapping occurrence of `from` (left to right) becomes `to`; each char of
  // `to` aligns to the last char of the occurrence. `from` must not be empty.
  void Replace(const CodePoints& from, const CodePoints& to);
  void Lowercase();                                  // full lowercase mapping (U+0130 -> "i\u0307")
  void Nfd();
  void Nfkd();
  void Nfc();
  void Nfkc();
  void StripLeft();
  void StripRight();

  // Direct access for single-pass transforms that keep the one-alignment-per-char invariant.
  CodePoints& mutable_chars() { return chars_; }
  std::vector<Span>& mutable_alignments() { return align_; }

  // Splits into pieces around the chars for which `is_delim` holds, keeping the delimiters
  // as `behavior` says. Empty pieces are left out.
  std::vector<NormalizedString> Split(const std::function<bool(char32_t)>& is_delim,
                                      SplitBehavior behavior) const;
  // The same, with explicit (range, is_match) pieces covering the whole string.
  std::vector<NormalizedString> SplitMatches(
      const std::vector<std::pair<std::pair<size_t, size_t>, bool>>& matches,
      SplitBehavior behavior) const;

 private:
  CodePoints chars_;
  std::vector<Span> align_;
  Span original_;
};

}  // namespace mlaas::tokenizers
