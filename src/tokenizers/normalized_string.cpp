#include "tokenizers/normalized_string.h"

#include <utf8proc.h>

#include <algorithm>
#include <optional>

#include "tokenizers/unicode_tables.h"

namespace mlaas::tokenizers {

NormalizedString::NormalizedString(const char32_t* begin, const char32_t* end, uint32_t shift)
    : chars_(begin, end) {
  align_.reserve(chars_.size());
  for (uint32_t i = 0; i < chars_.size(); ++i) align_.push_back({shift + i, shift + i + 1});
  original_ = {shift, shift + static_cast<uint32_t>(chars_.size())};
}

Span NormalizedString::OriginalRange(size_t begin, size_t end) const {
  if (begin >= end) return {static_cast<uint32_t>(begin), static_cast<uint32_t>(begin)};
  return {align_[begin].start, align_[end - 1].end};
}

NormalizedString NormalizedString::Slice(size_t begin, size_t end) const {
  NormalizedString out;
  out.chars_.assign(chars_.begin() + static_cast<ptrdiff_t>(begin),
                    chars_.begin() + static_cast<ptrdiff_t>(end));
  out.align_.assign(align_.begin() + static_cast<ptrdiff_t>(begin),
                    align_.begin() + static_cast<ptrdiff_t>(end));
  out.original_ = begin < end ? Span{align_[begin].start, align_[end - 1].end}
                              : Span{original_.start, original_.start};
  return out;
}

void NormalizedString::Transform(const std::vector<std::pair<char32_t, int>>& items,
                                 size_t initial_offset) {
  CodePoints chars;
  std::vector<Span> align;
  chars.reserve(items.size());
  align.reserve(items.size());
  size_t old = std::min(initial_offset, chars_.size());  // old chars consumed so far
  for (const auto& [c, change] : items) {
    Span a;
    if (change > 0) {
      // An inserted char takes the alignment of the last old char consumed (replaced or
      // removed), or an empty span at the very start.
      a = old > 0 ? align_[old - 1] : Span{original_.start, original_.start};
    } else {
      a = old < align_.size() ? align_[old] : Span{original_.end, original_.end};
      old = std::min(align_.size(), old + 1 + static_cast<size_t>(-change));
    }
    chars.push_back(c);
    align.push_back(a);
  }
  chars_ = std::move(chars);
  align_ = std::move(align);
}

void NormalizedString::Filter(const std::function<bool(char32_t)>& keep) {
  // Hugging Face folds removed chars into the change of the char kept before them; with
  // per-char alignments the result is the same: kept chars keep their own alignment.
  CodePoints chars;
  std::vector<Span> align;
  for (size_t i = 0; i < chars_.size(); ++i) {
    if (keep(chars_[i])) {
      chars.push_back(chars_[i]);
      align.push_back(align_[i]);
    }
  }
  chars_ = std::move(chars);
  align_ = std::move(align);
}

void NormalizedString::Map(const std::function<char32_t(char32_t)>& f) {
  for (auto& c : chars_) c = f(c);
}

void NormalizedString::Prepend(const CodePoints& s) {
  if (chars_.empty() || s.empty()) return;
  // Every prepended char aligns to the first char's original range.
  Span first = align_[0];
  chars_.insert(chars_.begin(), s.begin(), s.end());
  align_.insert(align_.begin(), s.size(), first);
}

void NormalizedString::Append(const CodePoints& s) {
  if (chars_.empty() || s.empty()) return;
  Span last = align_.back();
  chars_.insert(chars_.end(), s.begin(), s.end());
  align_.insert(align_.end(), s.size(), last);
}

void NormalizedString::Replace(const CodePoints& from, const CodePoints& to) {
  if (from.empty()) return;
  CodePoints chars;
  std::vector<Span> align;
  size_t i = 0;
  while (i < chars_.size()) {
    if (i + from.size() <= chars_.size() &&
        std::equal(from.begin(), from.end(), chars_.begin() + static_cast<ptrdiff_t>(i))) {
      Span last = align_[i + from.size() - 1];
      for (char32_t c : to) {
        chars.push_back(c);
        align.push_back(last);
      }
      i += from.size();
      continue;
    }
    chars.push_back(chars_[i]);
    align.push_back(align_[i]);
    ++i;
  }
  chars_ = std::move(chars);
  align_ = std::move(align);
}

void NormalizedString::Lowercase() {
  std::vector<std::pair<char32_t, int>> items;
  items.reserve(chars_.size() + 1);
  for (char32_t c : chars_) {
    if (c == 0x130) {  // the one multi-char lowercase mapping
      items.push_back({U'i', 0});
      items.push_back({0x307, 1});
    } else if (c < 0x80) {
      items.push_back({c >= 'A' && c <= 'Z' ? c + 32 : c, 0});
    } else {
      items.push_back({tables::LowercaseSingle(c), 0});
    }
  }
  Transform(items);
}

namespace {

// Canonical combining class in the reference's Unicode 9.0 data.
int Ccc(char32_t c) {
  if (c < 0x300 || tables::IsCccZeroV9(c)) return 0;
  return utf8proc_get_property(static_cast<int32_t>(c))->combining_class;
}

// The (char, change) stream of a full decomposition with canonical ordering, as the
// reference's alignment-aware iterator produces it: the first char of a decomposition
// replaces the source char, the others are insertions, and reordering moves the tags with
// their chars (alignments are then assigned by position).
std::vector<std::pair<char32_t, int>> DecomposeStream(const CodePoints& in, bool compat) {
  std::vector<std::pair<char32_t, int>> out;
  out.reserve(in.size() + in.size() / 4);
  size_t pending = 0;  // start of the run of chars not yet reordered
  auto flush = [&](size_t end) {
    std::stable_sort(out.begin() + static_cast<ptrdiff_t>(pending),
                     out.begin() + static_cast<ptrdiff_t>(end),
                     [](const auto& a, const auto& b) { return Ccc(a.first) < Ccc(b.first); });
  };
  auto push = [&](char32_t c, int tag) {
    if (Ccc(c) == 0) {
      flush(out.size());
      pending = out.size();
    }
    out.push_back({c, tag});
  };
  utf8proc_int32_t buf[32];
  const auto options =
      static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
  for (char32_t c : in) {
    utf8proc_ssize_t n = 0;
    if (c >= 0xA0 && c != 0x11938) {  // U+11938 has no decomposition in Unicode 9.0
      n = utf8proc_decompose_char(static_cast<int32_t>(c), buf, 32, options, nullptr);
    }
    if (n <= 0) {
      push(c, 0);
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) push(static_cast<char32_t>(buf[k]), k == 0 ? 0 : 1);
  }
  flush(out.size());
  return out;
}

char32_t ComposePair(char32_t a, char32_t b) {
  utf8proc_int32_t buf[2] = {static_cast<int32_t>(a), static_cast<int32_t>(b)};
  utf8proc_ssize_t n = utf8proc_normalize_utf32(
      buf, 2, static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  return n == 1 ? static_cast<char32_t>(buf[0]) : 0;
}

// Canonical composition of a decomposed stream. A composite keeps its first part's tag, and
// every part it absorbs lowers the tag by one (that part is consumed, not inserted).
std::vector<std::pair<char32_t, int>> ComposeStream(
    const std::vector<std::pair<char32_t, int>>& in) {
  std::vector<std::pair<char32_t, int>> out, buffer;
  std::optional<std::pair<char32_t, int>> composee;
  std::optional<int> last_ccc;
  for (const auto& [ch, tag] : in) {
    int cls = Ccc(ch);
    if (!composee) {
      if (cls != 0) {
        out.push_back({ch, tag});
      } else {
        composee = std::pair{ch, tag};
      }
      continue;
    }
    if (last_ccc && *last_ccc >= cls) {  // blocked
      if (cls == 0) {
        out.push_back(*composee);
        out.insert(out.end(), buffer.begin(), buffer.end());
        buffer.clear();
        composee = std::pair{ch, tag};
        last_ccc.reset();
      } else {
        buffer.push_back({ch, tag});
        last_ccc = cls;
      }
      continue;
    }
    if (char32_t r = ComposePair(composee->first, ch)) {
      composee = std::pair{r, composee->second + tag - 1};
      continue;
    }
    if (!last_ccc && cls == 0) {
      out.push_back(*composee);
      composee = std::pair{ch, tag};
      continue;
    }
    buffer.push_back({ch, tag});
    last_ccc = cls;
  }
  if (composee) out.push_back(*composee);
  out.insert(out.end(), buffer.begin(), buffer.end());
  return out;
}

}  // namespace

void NormalizedString::Nfd() { Transform(DecomposeStream(chars_, false)); }
void NormalizedString::Nfkd() { Transform(DecomposeStream(chars_, true)); }
void NormalizedString::Nfc() { Transform(ComposeStream(DecomposeStream(chars_, false))); }
void NormalizedString::Nfkc() { Transform(ComposeStream(DecomposeStream(chars_, true))); }

void NormalizedString::StripLeft() {
  size_t n = 0;
  while (n < chars_.size() && IsWhitespace(chars_[n])) ++n;
  chars_.erase(chars_.begin(), chars_.begin() + static_cast<ptrdiff_t>(n));
  align_.erase(align_.begin(), align_.begin() + static_cast<ptrdiff_t>(n));
}

void NormalizedString::StripRight() {
  size_t n = chars_.size();
  while (n > 0 && IsWhitespace(chars_[n - 1])) --n;
  chars_.resize(n);
  align_.resize(n);
}

std::vector<NormalizedString> NormalizedString::Split(const std::function<bool(char32_t)>& is_delim,
                                                      SplitBehavior behavior) const {
  // Each delimiter char is its own match; the runs between them are non-matches.
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> matches;
  size_t run = 0;
  for (size_t i = 0; i < chars_.size(); ++i) {
    if (!is_delim(chars_[i])) continue;
    if (run < i) matches.push_back({{run, i}, false});
    matches.push_back({{i, i + 1}, true});
    run = i + 1;
  }
  if (run < chars_.size() || matches.empty()) matches.push_back({{run, chars_.size()}, false});
  return SplitMatches(matches, behavior);
}

std::vector<NormalizedString> NormalizedString::SplitMatches(
    const std::vector<std::pair<std::pair<size_t, size_t>, bool>>& matches,
    SplitBehavior behavior) const {
  std::vector<std::pair<size_t, size_t>> ranges;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& [r, m] : matches) ranges.push_back(r);
      break;
    case SplitBehavior::kRemoved:
      for (const auto& [r, m] : matches) {
        if (!m) ranges.push_back(r);
      }
      break;
    case SplitBehavior::kContiguous: {
      bool prev = false;
      for (const auto& [r, m] : matches) {
        if (m == prev && !ranges.empty()) {
          ranges.back().second = r.second;
        } else {
          ranges.push_back(r);
        }
        prev = m;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool prev = false;
      for (const auto& [r, m] : matches) {
        if (m && !prev && !ranges.empty()) {
          ranges.back().second = r.second;
        } else {
          ranges.push_back(r);
        }
        prev = m;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool prev = false;
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        const auto& [r, m] = *it;
        if (m && !prev && !ranges.empty()) {
          ranges.back().first = r.first;
        } else {
          ranges.push_back(r);
        }
        prev = m;
      }
      std::reverse(ranges.begin(), ranges.end());
      break;
    }
  }
  std::vector<NormalizedString> out;
  out.reserve(ranges.size());
  for (const auto& [b, e] : ranges) {
    if (b < e) out.push_back(Slice(b, e));
  }
  return out;
}

}  // namespace mlaas::tokenizers
