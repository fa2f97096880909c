// Extractive question answering's answers: the best span of a context over the windows a long
// context is cut into, as transformers' question-answering pipeline and run_qa's
// post-processing pick it, and SQuAD's exact-match / F1 scores. No libtorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizers/encoding.h"

namespace mlaas::predict {

// The windows of a (question, context) pair with the first window's token types: the
// tokenizer's post-processing types the first window only (as Hugging Face's does), so that a
// question's tokens and its context's keep their types in every window.
void TypeWindowsAsTheFirst(std::vector<tokenizers::Encoding>& windows);

// One window of a (question, context) pair: per token its start and end scores (logits or
// probabilities), and its code point offsets into the context for context tokens (none for the
// question, special and padding tokens).
struct AnswerWindow {
  const float* start = nullptr;
  const float* end = nullptr;
  std::vector<std::optional<std::pair<uint32_t, uint32_t>>> context_offsets;
  // kProbProduct: the [CLS] token, which the pipeline's softmax counts beside the context tokens
  // (it is never an answer). None: not counted.
  std::optional<size_t> cls;
};

struct AnswerSpan {
  double score = 0;
  size_t window = 0;
  size_t start_token = 0, end_token = 0;
  uint32_t start = 0, end = 0;  // code points of the context: [start, end)
};

enum class SpanScore {
  kLogitSum,     // start + end logits (run_qa's post-processing)
  kProbProduct,  // p(start) x p(end), each a softmax over the window's context tokens (the pipeline)
};

// The best span over every window: start and end within the context, end not before start, at
// most `max_tokens` tokens long. None when no window has a context token.
std::optional<AnswerSpan> BestSpan(const std::vector<AnswerWindow>& windows, int64_t max_tokens, SpanScore score);

// SQuAD's answer normalisation, as its evaluation script runs it on Python 3 strings: Unicode
// lower case, ASCII punctuation removed, the articles a / an / the removed where they are whole
// words (Python's \b), Unicode whitespace collapsed.
std::string NormalizeAnswer(std::string_view s);
// The best over the gold answers of exact match (0 or 1) and of token-overlap F1 (SQuAD v1.1's
// script: no common token, F1 0).
double ExactMatch(std::string_view prediction, const std::vector<std::string>& answers);
double AnswerF1(std::string_view prediction, const std::vector<std::string>& answers);

// The combining marks (general category M*) of a text that no token covers: a tokenizer that
// strips accents (BERT's uncased ones read "e" + U+0301 as "e") leaves them out of every token's
// offsets, as Hugging Face's does. `covered`: the tokens' code point offsets.
std::vector<bool> DroppedMarks(const std::vector<char32_t>& text, const std::vector<std::pair<uint32_t, uint32_t>>& covered);
// A span's end moved past the dropped marks right after it, so that an answer or an entity cut at
// a token's end keeps the accents of its last letter.
uint32_t PastDroppedMarks(const std::vector<bool>& dropped, uint32_t end);

// The UTF-8 of code points [begin, end) of `text`.
std::string CodePointSlice(std::string_view text, uint32_t begin, uint32_t end);

}  // namespace mlaas::predict
