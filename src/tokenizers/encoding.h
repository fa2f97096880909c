// The result of encoding one input (a text or a pair): ids, tokens, offsets (code points
// into the input), type ids, masks, word ids, and the windows cut off by truncation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlaas::tokenizers {

enum class Direction { kLeft, kRight };

struct PaddingParams {
  std::optional<size_t> fixed_length;  // none: pad to the longest in the batch
  Direction direction = Direction::kRight;
  size_t pad_to_multiple_of = 0;
  uint32_t pad_id = 0;
  uint32_t pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

enum class TruncationStrategy { kLongestFirst, kOnlyFirst, kOnlySecond };

struct TruncationParams {
  size_t max_length = 512;
  TruncationStrategy strategy = TruncationStrategy::kLongestFirst;
  size_t stride = 0;
  Direction direction = Direction::kRight;
  // Keep what lies beyond max_length as Encoding::overflowing windows, as the reference does.
  // Callers that read only the first window turn it off: a truncated pair combines every
  // window of one text with every window of the other, which grows with the product of their
  // lengths (two 1 MB texts: about a million 512-token encodings).
  bool overflowing = true;
  // Stop tokenizing a sequence once its whole words give max_length tokens, as the reference
  // (tokenizers 0.23) does: its windows then cover only that much of the text. Off where the
  // windows must cover the whole text (question answering's contexts).
  bool stop_early = true;
};

struct Encoding {
  std::vector<uint32_t> ids;
  std::vector<uint32_t> type_ids;
  std::vector<std::string> tokens;
  std::vector<std::pair<uint32_t, uint32_t>> offsets;
  std::vector<uint8_t> special_tokens_mask;
  std::vector<uint8_t> attention_mask;
  std::vector<std::optional<uint32_t>> word_ids;
  std::vector<std::optional<uint32_t>> sequence_ids;
  std::vector<Encoding> overflowing;

  size_t size() const { return ids.size(); }
  void Push(uint32_t id, std::string token, std::pair<uint32_t, uint32_t> offset, uint32_t type_id,
            std::optional<uint32_t> word, std::optional<uint32_t> sequence, bool special,
            bool attention = true);
  // Appends `other`'s tokens (and combines the overflowing windows pairwise, as the
  // reference's merge does).
  void Merge(const Encoding& other);
  // Keeps the first (Right) or last (Left) `max_len` tokens; the rest become overflowing
  // windows that overlap by `stride` tokens. Requires stride < max_len when cutting.
  void Truncate(size_t max_len, size_t stride, Direction direction);
  // Pads this encoding and its overflowing windows to `target` tokens.
  void Pad(size_t target, const PaddingParams& p);
  void SetTypeIds(uint32_t type_id);
  void SetSequenceId(uint32_t seq);
  Encoding Slice(size_t begin, size_t end) const;
};

}  // namespace mlaas::tokenizers
