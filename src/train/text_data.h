// mlaas::train — training data for the NLP objectives: rows read from a dataset, a seeded
// (stratified) train/test split, typo augmentation, compact tokenized examples, and
// length-bucketed batches. No libtorch here.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dataset/record_reader.h"
#include "tokenizers/tokenizer.h"
#include "train/train_spec.h"

namespace mlaas::train {

// One row: text (or anchor), pair (second text or positive; may be empty), label name and,
// for sentence embeddings, an optional hard negative. Token classification: the words and
// their tags, and as text the words joined by single spaces.
struct TextExample {
  std::string text;
  std::string pair;
  std::string label;
  std::string negative = {};
  std::vector<std::string> words = {}, tags = {};
  // Question answering: text is the question, pair the context; the gold answers and the first
  // one's start (code points of the context).
  std::vector<std::string> answers = {};
  int64_t answer_start = -1;
  int64_t line = 0;  // where the row starts in the dataset (errors name it)
};

struct ReadStats {
  int64_t rows = 0;
  int64_t skipped = 0;  // rows whose text (or label) was missing or empty
};

// Reads the columns the objective needs (Columns(spec)) from `reader`, whose columns must be
// exactly those, in order. Token classification: the tokens column holds a JSON array of
// strings (or a text, split at whitespace), the tags column a JSON array of strings or
// integers, as many as the tokens (InvalidArgument naming the line and the column otherwise). `on_rows` is called every few thousand rows (return false to stop:
// Cancelled).
Result<std::vector<TextExample>> ReadExamples(dataset::RecordReader& reader, const TrainSpec& spec,
                                              ReadStats* stats, const std::function<bool(int64_t)>& on_rows);

// Next-sentence prediction's two classes, in transformers' order (class 0: the pair text
// follows the text).
inline constexpr std::string_view kIsNext = "is_next", kNotNext = "not_next";

// Next-sentence pairs from documents (each example's text; sentences end at ., ! or ? before
// whitespace, and at line ends): every two consecutive sentences give a pair, half of them
// (seeded) with the second replaced by a sentence of another document, as BERT's pre-training
// draws them (is_next / not_next). A single document gives true pairs only.
std::vector<TextExample> SampleNextSentencePairs(const std::vector<TextExample>& documents, uint64_t seed);

// Splits the indexes of examples in `strata` (a class each; one value: no stratification) into a
// training and a held-out side, `fraction` of each stratum held out (every stratum with two or
// more examples keeps one on each side), seeded; each side in index order.
void SplitIndices(const std::vector<int64_t>& strata, double fraction, uint64_t seed, std::vector<size_t>& train,
                  std::vector<size_t>& eval);

// Splits off `fraction` of the examples for evaluation, seeded; stratified by label (each
// class keeps its share, every class with two or more examples keeps one on each side).
void SplitExamples(std::vector<TextExample> all, double fraction, uint64_t seed, bool stratify,
                   std::vector<TextExample>& train, std::vector<TextExample>& eval);

// A copy of `text` with realistic typing errors: each ASCII letter is, with probability `rate`,
// replaced by a keyboard neighbour, dropped, swapped with the next letter, doubled, or followed
// by a space. Multi-byte UTF-8 characters are kept intact.
std::string AddTypos(std::string_view text, double rate, std::mt19937_64& rng);

// Appends `copies` typo-corrupted copies of each example (seeded).
void AugmentWithTypos(std::vector<TextExample>& examples, int64_t copies, double rate, uint64_t seed);

// A tokenized example, compact: ids, token types, and per-token flags.
struct TokenizedExample {
  enum Flag : uint8_t { kSpecial = 1, kWordStart = 2 };
  std::vector<int32_t> ids;
  std::vector<uint8_t> type_ids;
  std::vector<uint8_t> flags;
  std::vector<int32_t> ids2;  // sentence-embedding: the positive's ids
  std::vector<int32_t> ids3;  // sentence-embedding: the hard negative's ids (empty: none)
  int64_t label = -1;         // class id (classification)
  // Token classification: each token's class id (the first token of a word; kIgnoreLabel for
  // the others and the special tokens), and per word its class id and its first token (-1:
  // none, the word was cut off by truncation or is empty).
  std::vector<int32_t> token_labels, word_labels, word_tokens;
  static constexpr int32_t kIgnoreLabel = -100;
  // Question answering, one window of a context: the answer's first and last token (0, 0: not
  // in this window), the example it comes from, and each token's code point span of the context
  // (kNoOffset: a question, special or padding token).
  int32_t start_position = 0, end_position = 0;
  int32_t example = -1;
  std::vector<std::pair<uint32_t, uint32_t>> context_offsets;
  static constexpr std::pair<uint32_t, uint32_t> kNoOffset = {UINT32_MAX, UINT32_MAX};
  size_t length() const { return std::max({ids.size(), ids2.size(), ids3.size()}); }
};

// Tokenizes with truncation to `max_length` (the tokenizer's truncation is replaced), with the
// tokenizer's special tokens or without.
// `label_ids` maps label names to class ids (classification, token classification: the tags).
// Token classification encodes the joined words and gives each word's label to its first
// token. Calls `on_progress(done)`.
Result<std::vector<TokenizedExample>> Tokenize(const std::vector<TextExample>& examples, const TrainSpec& spec,
                                               tokenizers::Tokenizer& tokenizer, size_t max_length,
                                               bool add_special_tokens, const std::map<std::string, int64_t>& label_ids,
                                               const std::function<bool(size_t)>& on_progress);

// Question answering: each (question, context) encoded with the context cut into windows of
// `max_length` tokens overlapping by `stride` (truncation only_second, as run_qa prepares
// SQuAD), every window an example with the answer's tokens (0, 0 when the window does not hold
// the whole answer) and the context offsets; every window typed as the first. InvalidArgument
// naming question_column and the line for a question too long to leave a window of context
// that moves by at least `stride` tokens (a window count bounded by the context's length).
// The special tokens around a (question, context) pair, at most ([CLS] q [SEP] c [SEP]; RoBERTa's
// <s> q </s></s> c </s>).
inline constexpr size_t kQuestionSpecialTokens = 4;
Result<std::vector<TokenizedExample>> TokenizeQuestions(const std::vector<TextExample>& examples, const TrainSpec& spec,
                                                        tokenizers::Tokenizer& tokenizer, size_t max_length,
                                                        size_t stride, const std::function<bool(size_t)>& on_progress);

// The batches of one epoch, as index lists into the examples: examples shuffled (seed, epoch),
// grouped into pools of 50 batches sorted by length so that each batch pads little, and the
// batches shuffled. Deterministic in (seed, epoch). `shuffle` false: in length order.
std::vector<std::vector<size_t>> MakeBatches(const std::vector<TokenizedExample>& examples, int64_t batch_size,
                                             uint64_t seed, int64_t epoch, bool shuffle);

}  // namespace mlaas::train
