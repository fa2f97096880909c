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
#include <vector>

#include "common/result.h"
#include "dataset/record_reader.h"
#include "tokenizers/tokenizer.h"
#include "train/train_spec.h"

namespace mlaas::train {

// One row: text (or anchor), pair (second text or positive; may be empty), label name and,
// for sentence embeddings, an optional hard negative.
struct TextExample {
  std::string text;
  std::string pair;
  std::string label;
  std::string negative = {};
};

struct ReadStats {
  int64_t rows = 0;
  int64_t skipped = 0;  // rows whose text (or label) was missing or empty
};

// Reads the columns the objective needs (Columns(spec)) from `reader`, whose columns must be
// exactly those, in order. `on_rows` is called every few thousand rows (return false to stop:
// Cancelled).
Result<std::vector<TextExample>> ReadExamples(dataset::RecordReader& reader, const TrainSpec& spec,
                                              ReadStats* stats, const std::function<bool(int64_t)>& on_rows);

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
  size_t length() const { return std::max({ids.size(), ids2.size(), ids3.size()}); }
};

// Tokenizes with truncation to `max_length` (the tokenizer's truncation is replaced), with the
// tokenizer's special tokens or without.
// `label_ids` maps label names to class ids (classification). Calls `on_progress(done)`.
Result<std::vector<TokenizedExample>> Tokenize(const std::vector<TextExample>& examples, const TrainSpec& spec,
                                               tokenizers::Tokenizer& tokenizer, size_t max_length,
                                               bool add_special_tokens, const std::map<std::string, int64_t>& label_ids,
                                               const std::function<bool(size_t)>& on_progress);

// The batches of one epoch, as index lists into the examples: examples shuffled (seed, epoch),
// grouped into pools of 50 batches sorted by length so that each batch pads little, and the
// batches shuffled. Deterministic in (seed, epoch). `shuffle` false: in length order.
std::vector<std::vector<size_t>> MakeBatches(const std::vector<TokenizedExample>& examples, int64_t batch_size,
                                             uint64_t seed, int64_t epoch, bool shuffle);

}  // namespace mlaas::train
