#include "predict/answer_spans.h"

#include "tokenizers/unicode.h"
#include "tokenizers/unicode_tables.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <sstream>

namespace mlaas::predict {

void TypeWindowsAsTheFirst(std::vector<tokenizers::Encoding>& windows) {
  for (size_t w = 1; w < windows.size(); ++w) {
    for (size_t k = 0; k < windows[w].type_ids.size() && k < windows[0].type_ids.size(); ++k)
      windows[w].type_ids[k] = windows[0].type_ids[k];
  }
}

std::optional<AnswerSpan> BestSpan(const std::vector<AnswerWindow>& windows, int64_t max_tokens, SpanScore score) {
  std::optional<AnswerSpan> best;
  for (size_t w = 0; w < windows.size(); ++w) {
    const AnswerWindow& win = windows[w];
    std::vector<size_t> context;
    for (size_t k = 0; k < win.context_offsets.size(); ++k)
      if (win.context_offsets[k]) context.push_back(k);
    if (context.empty()) continue;
    std::vector<double> s(context.size()), e(context.size());
    for (size_t i = 0; i < context.size(); ++i) {
      s[i] = win.start[context[i]];
      e[i] = win.end[context[i]];
    }
    if (score == SpanScore::kProbProduct) {  // softmax over the context tokens (and [CLS])
      for (auto [v, logits] : {std::pair{&s, win.start}, std::pair{&e, win.end}}) {
        double m = *std::max_element(v->begin(), v->end());
        if (win.cls) m = std::max(m, static_cast<double>(logits[*win.cls]));
        double sum = win.cls ? std::exp(logits[*win.cls] - m) : 0.0;
        for (double& x : *v) sum += (x = std::exp(x - m));
        for (double& x : *v) x /= sum;
      }
    }
    for (size_t i = 0; i < context.size(); ++i) {
      for (size_t j = i; j < context.size() && static_cast<int64_t>(context[j] - context[i]) < max_tokens; ++j) {
        const double v = score == SpanScore::kProbProduct ? s[i] * e[j] : s[i] + e[j];
        if (!best || v > best->score) {
          best = AnswerSpan{v, w, context[i], context[j], win.context_offsets[context[i]]->first,
                            win.context_offsets[context[j]]->second};
        }
      }
    }
  }
  return best;
}

namespace {

// Python's str.isspace, which str.split() splits on: the White_Space property and the
// information separators U+001C-U+001F.
bool PythonSpace(char32_t c) { return tokenizers::IsWhitespace(c) || (c >= 0x1C && c <= 0x1F); }
// Python's \w in a str pattern: letters, numbers and the underscore (not combining marks).
bool PythonWordChar(char32_t c) { return c == U'_' || tokenizers::IsLetter(c) || tokenizers::IsNumber(c); }

// Unicode's Cased and Case_Ignorable properties, as str.lower()'s final-sigma rule reads them.
bool Cased(char32_t c) {
  const std::string_view g = tokenizers::GeneralCategory(c);
  return g == "Lu" || g == "Ll" || g == "Lt";
}
bool CaseIgnorable(char32_t c) {
  const std::string_view g = tokenizers::GeneralCategory(c);
  if (g == "Mn" || g == "Me" || g == "Cf" || g == "Lm" || g == "Sk") return true;
  switch (c) {  // Word_Break MidLetter, MidNumLet and Single_Quote
    case U'\'': case U'.': case U':': case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018: case 0x2019:
    case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default:
      return false;
  }
}

// str.lower(): the full lowercase mapping, and a capital sigma ending a word (a cased letter
// before it, none after it, case-ignorable characters skipped) becomes the final sigma.
tokenizers::CodePoints PythonLower(const tokenizers::CodePoints& s) {
  auto cased_towards = [&](size_t i, int step) {
    for (size_t k = i; step < 0 ? k-- > 0 : ++k < s.size();)
      if (!CaseIgnorable(s[k])) return Cased(s[k]);
    return false;
  };
  tokenizers::CodePoints out;
  out.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x3A3) {
      out.push_back(cased_towards(i, -1) && !cased_towards(i, +1) ? 0x3C2 : 0x3C3);
    } else if (c == 0x130) {  // the one multi-character mapping
      out.push_back(U'i');
      out.push_back(0x307);
    } else {
      out.push_back(c < 0x80 ? static_cast<char32_t>(std::tolower(static_cast<int>(c)))
                             : tokenizers::tables::LowercaseSingle(c));
    }
  }
  return out;
}

}  // namespace

std::string NormalizeAnswer(std::string_view s) {
  // lower(), after reading invalid UTF-8 (not from a JSON request) as U+FFFD.
  auto decoded = tokenizers::DecodeUtf8(s, tokenizers::InvalidUtf8::kReplace);
  if (!decoded.has_value()) return "";
  // remove_punc(): string.punctuation, the ASCII punctuation.
  tokenizers::CodePoints text;
  for (char32_t c : PythonLower(*decoded))
    if (c >= 0x80 || !std::ispunct(static_cast<int>(c))) text.push_back(c);
  // remove_articles(): \b(a|an|the)\b, a run of word characters that is an article, becomes a space.
  tokenizers::CodePoints kept;
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    while (j < text.size() && PythonWordChar(text[j])) ++j;
    if (j == i) {
      kept.push_back(text[i++]);
      continue;
    }
    const tokenizers::CodePoints word(text.begin() + static_cast<std::ptrdiff_t>(i),
                                      text.begin() + static_cast<std::ptrdiff_t>(j));
    if (word == tokenizers::CodePoints{U'a'} || word == tokenizers::CodePoints{U'a', U'n'} ||
        word == tokenizers::CodePoints{U't', U'h', U'e'}) {
      kept.push_back(U' ');
    } else {
      kept.insert(kept.end(), word.begin(), word.end());
    }
    i = j;
  }
  // white_space_fix(): split on whitespace, joined by one space.
  std::string out;
  for (size_t i = 0; i < kept.size();) {
    if (PythonSpace(kept[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < kept.size() && !PythonSpace(kept[j])) ++j;
    if (!out.empty()) out.push_back(' ');
    out += tokenizers::EncodeUtf8(kept.data() + i, kept.data() + j);
    i = j;
  }
  return out;
}

double ExactMatch(std::string_view prediction, const std::vector<std::string>& answers) {
  const std::string p = NormalizeAnswer(prediction);
  for (const auto& a : answers)
    if (NormalizeAnswer(a) == p) return 1.0;
  return 0.0;
}

double AnswerF1(std::string_view prediction, const std::vector<std::string>& answers) {
  auto tokens = [](const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string w;
    while (in >> w) out.push_back(w);
    return out;
  };
  const auto p = tokens(NormalizeAnswer(prediction));
  double best = 0;
  for (const auto& answer : answers) {
    const auto g = tokens(NormalizeAnswer(answer));
    std::map<std::string, int> counts;
    for (const auto& t : g) ++counts[t];
    int common = 0;
    for (const auto& t : p)
      if (counts[t]-- > 0) ++common;
    if (common == 0) continue;
    const double precision = static_cast<double>(common) / static_cast<double>(p.size());
    const double recall = static_cast<double>(common) / static_cast<double>(g.size());
    best = std::max(best, 2 * precision * recall / (precision + recall));
  }
  return best;
}

std::vector<bool> DroppedMarks(const std::vector<char32_t>& text, const std::vector<std::pair<uint32_t, uint32_t>>& covered) {
  std::vector<bool> dropped(text.size());
  for (size_t i = 0; i < text.size(); ++i) dropped[i] = tokenizers::GeneralCategory(text[i]).front() == 'M';
  for (const auto& [begin, end] : covered)
    for (uint32_t i = begin; i < end && i < dropped.size(); ++i) dropped[i] = false;
  return dropped;
}

uint32_t PastDroppedMarks(const std::vector<bool>& dropped, uint32_t end) {
  while (end < dropped.size() && dropped[end]) ++end;
  return end;
}

std::string CodePointSlice(std::string_view text, uint32_t begin, uint32_t end) {
  size_t cp = 0, from = text.size(), to = text.size();
  for (size_t i = 0; i <= text.size(); ++i) {
    const bool boundary = i == text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (!boundary) continue;
    if (cp == begin) from = i;
    if (cp == end) {
      to = i;
      break;
    }
    ++cp;
  }
  return from <= to ? std::string(text.substr(from, to - from)) : std::string();
}

}  // namespace mlaas::predict
