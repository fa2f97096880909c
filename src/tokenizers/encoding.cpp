#include "tokenizers/encoding.h"

#include <algorithm>

namespace mlaas::tokenizers {

void Encoding::Push(uint32_t id, std::string token, std::pair<uint32_t, uint32_t> offset,
                    uint32_t type_id, std::optional<uint32_t> word, std::optional<uint32_t> sequence,
                    bool special, bool attention) {
  ids.push_back(id);
  tokens.push_back(std::move(token));
  offsets.push_back(offset);
  type_ids.push_back(type_id);
  word_ids.push_back(word);
  sequence_ids.push_back(sequence);
  special_tokens_mask.push_back(special ? 1 : 0);
  attention_mask.push_back(attention ? 1 : 0);
}

namespace {
void AppendFields(Encoding& a, const Encoding& b) {
  auto cat = [](auto& x, const auto& y) { x.insert(x.end(), y.begin(), y.end()); };
  cat(a.ids, b.ids);
  cat(a.type_ids, b.type_ids);
  cat(a.tokens, b.tokens);
  cat(a.offsets, b.offsets);
  cat(a.special_tokens_mask, b.special_tokens_mask);
  cat(a.attention_mask, b.attention_mask);
  cat(a.word_ids, b.word_ids);
  cat(a.sequence_ids, b.sequence_ids);
}
}  // namespace

void Encoding::Merge(const Encoding& other) {
  // As the reference's merge_with: every window of ours is combined with the other (and
  // with each of its windows), then we are combined with each of its windows; combining
  // recurses, so windows may carry windows of their own.
  std::vector<Encoding> merged;
  for (const auto& self_o : overflowing) {
    Encoding e = self_o;
    e.Merge(other);
    merged.push_back(std::move(e));
    for (const auto& other_o : other.overflowing) {
      Encoding f = self_o;
      f.Merge(other_o);
      merged.push_back(std::move(f));
    }
  }
  for (const auto& other_o : other.overflowing) {
    Encoding e = *this;
    e.Merge(other_o);
    merged.push_back(std::move(e));
  }
  AppendFields(*this, other);
  overflowing = std::move(merged);
}

Encoding Encoding::Slice(size_t begin, size_t end) const {
  Encoding e;
  auto cut = [&](auto& dst, const auto& src) {
    dst.assign(src.begin() + static_cast<ptrdiff_t>(begin), src.begin() + static_cast<ptrdiff_t>(end));
  };
  cut(e.ids, ids);
  cut(e.type_ids, type_ids);
  cut(e.tokens, tokens);
  cut(e.offsets, offsets);
  cut(e.special_tokens_mask, special_tokens_mask);
  cut(e.attention_mask, attention_mask);
  cut(e.word_ids, word_ids);
  cut(e.sequence_ids, sequence_ids);
  return e;
}

void Encoding::Truncate(size_t max_len, size_t stride, Direction direction) {
  const size_t len = size();
  if (max_len >= len) return;
  if (max_len == 0) {
    Encoding all = *this;
    all.overflowing.clear();
    *this = Encoding();
    overflowing.push_back(std::move(all));
    return;
  }
  const size_t step = max_len - std::min(stride, max_len - 1);
  std::vector<std::pair<size_t, size_t>> windows;
  if (direction == Direction::kRight) {
    for (size_t s = 0;; s += step) {
      size_t e = std::min(s + max_len, len);
      windows.push_back({s, e});
      if (e == len) break;
    }
  } else {
    for (size_t stop = len;; stop = stop > step ? stop - step : 0) {
      size_t start = stop > max_len ? stop - max_len : 0;
      if (start >= stop) break;
      windows.push_back({start, stop});
      if (start == 0) break;
    }
  }
  Encoding first = Slice(windows[0].first, windows[0].second);
  for (size_t i = 1; i < windows.size(); ++i) {
    first.overflowing.push_back(Slice(windows[i].first, windows[i].second));
  }
  *this = std::move(first);
}

void Encoding::Pad(size_t target, const PaddingParams& p) {
  for (auto& o : overflowing) o.Pad(target, p);
  if (size() >= target) return;
  const size_t k = target - size();
  auto pad = [&](auto& v, const auto& value) {
    if (p.direction == Direction::kLeft) {
      v.insert(v.begin(), k, value);
    } else {
      v.insert(v.end(), k, value);
    }
  };
  pad(ids, p.pad_id);
  pad(type_ids, p.pad_type_id);
  pad(tokens, p.pad_token);
  pad(offsets, std::pair<uint32_t, uint32_t>{0, 0});
  pad(special_tokens_mask, uint8_t{1});
  pad(attention_mask, uint8_t{0});
  pad(word_ids, std::optional<uint32_t>());
  pad(sequence_ids, std::optional<uint32_t>());
}

void Encoding::SetTypeIds(uint32_t type_id) {
  std::fill(type_ids.begin(), type_ids.end(), type_id);
}

void Encoding::SetSequenceId(uint32_t seq) {
  for (auto& s : sequence_ids) s = seq;
}

}  // namespace mlaas::tokenizers
