#include "dataset/dataset_stats.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <functional>

#include "common/text.h"

namespace mlaas::dataset {
namespace {

using nlohmann::json;

constexpr int kHllBits = 12;  // 4096 registers
constexpr size_t kShownValueBytes = 256;

uint64_t CountCodePoints(std::string_view s) {
  uint64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

uint64_t CountWords(std::string_view s) {
  uint64_t n = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::optional<double> ParseNumber(std::string_view s) {
  s = Trim(s);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

uint64_t Mix(uint64_t h) {  // splitmix64 finaliser: spreads std::hash's bits for the sketch
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

}  // namespace

void ColumnStats::Add(std::string_view value, bool missing) {
  if (missing || value.empty()) {
    ++empty_;
    return;
  }
  ++non_empty_;
  uint64_t len = CountCodePoints(value);
  characters_ += len;
  min_length_ = std::min(min_length_, len);
  max_length_ = std::max(max_length_, len);
  tokens_ += CountWords(value);
  if (auto num = ParseNumber(value)) {
    if (numeric_ == 0) num_min_ = num_max_ = *num;
    num_min_ = std::min(num_min_, *num);
    num_max_ = std::max(num_max_, *num);
    num_sum_ += *num;
    ++numeric_;
  }
  uint64_t h = Mix(std::hash<std::string_view>{}(value));
  size_t reg = h >> (64 - kHllBits);
  uint64_t rest = (h << kHllBits) | (1ULL << (kHllBits - 1));
  hll_[reg] = std::max<uint8_t>(hll_[reg], static_cast<uint8_t>(std::countl_zero(rest) + 1));
  if (!exact_overflow_) {
    if (auto it = exact_.find(value); it != exact_.end()) {
      ++it->second;
    } else if (exact_.size() < kMaxExactValues) {
      exact_.emplace(std::string(value), 1);
    } else {
      exact_overflow_ = true;
      exact_.clear();
    }
  }
}

json ColumnStats::ToJson() const {
  json j = {{"name", name_}, {"non_empty", non_empty_}, {"empty", empty_},
            {"characters", characters_}, {"tokens", tokens_}};
  if (non_empty_ > 0) {
    j["min_length"] = min_length_;
    j["max_length"] = max_length_;
    j["mean_length"] = static_cast<double>(characters_) / static_cast<double>(non_empty_);
  }
  if (numeric_ > 0) {
    j["numeric"] = {{"count", numeric_}, {"min", num_min_}, {"max", num_max_},
                    {"mean", num_sum_ / static_cast<double>(numeric_)}};
  }
  if (!exact_overflow_) {
    j["distinct"] = exact_.size();
    j["distinct_is_estimate"] = false;
    std::vector<std::pair<std::string, uint64_t>> top(exact_.begin(), exact_.end());
    std::stable_sort(top.begin(), top.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (top.size() > 10) top.resize(10);
    json values = json::array();
    // A value is shown cut to 256 bytes ("..." marks a cut): a cell of megabytes must not make
    // the task's stored result as big (it is kept, listed and streamed with the task).
    for (const auto& [v, n] : top) values.push_back({{"value", Utf8Cut(v, kShownValueBytes)}, {"count", n}});
    j["top_values"] = values;
  } else {
    constexpr double m = 1 << kHllBits;
    double sum = 0;
    int zeros = 0;
    for (uint8_t r : hll_) {
      sum += std::ldexp(1.0, -r);
      zeros += r == 0;
    }
    double estimate = (0.7213 / (1 + 1.079 / m)) * m * m / sum;
    if (estimate <= 2.5 * m && zeros > 0) estimate = m * std::log(m / zeros);
    j["distinct"] = static_cast<uint64_t>(std::llround(estimate));
    j["distinct_is_estimate"] = true;
  }
  return j;
}

DatasetStats::DatasetStats(const std::vector<std::string>& columns) {
  for (const auto& c : columns) columns_.emplace_back(c);
}

void DatasetStats::Add(const Row& row) {
  ++rows_;
  for (size_t i = 0; i < columns_.size() && i < row.values.size(); ++i) {
    columns_[i].Add(row.values[i], i < row.missing.size() && row.missing[i]);
  }
}

json DatasetStats::ToJson() const {
  uint64_t chars = 0, tokens = 0;
  json cols = json::array();
  for (const auto& c : columns_) {
    chars += c.characters();
    tokens += c.tokens();
    cols.push_back(c.ToJson());
  }
  return {{"rows", rows_}, {"characters", chars}, {"tokens", tokens}, {"columns", cols}};
}

tasks::TaskHandler MakeDatasetStatsHandler(const storage::StorageRegistry& storage) {
  return [&storage](tasks::TaskContext& ctx) -> Result<json> {
    const json& block = ctx.params().value("dataset", json::object());
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(block, "dataset"));
    MLAAS_ASSIGN_OR_RETURN(ReaderOptions options, ReaderOptionsFromRequest(block, ref.key));
    const json kw = block.value("loader_kwargs", json::object());
    if (kw.contains("columns") && kw["columns"].is_array()) {
      for (const auto& c : kw["columns"]) {
        if (c.is_string()) options.columns.push_back(c.get<std::string>());
      }
    }
    auto source = ref.store->Open(ref.key);
    if (!source.has_value()) return source.error().WithField("dataset.path");
    const uint64_t size = (*source)->info().size;
    ctx.Log("info", "reading " + ref.key + " (" + FormatBytes(size) + ", " +
                        std::string(FormatName(options.format)) + ")");
    auto reader = OpenRecordReader(std::move(source).value(), options);
    if (!reader.has_value()) return reader.error().WithField("dataset.path");

    DatasetStats stats((*reader)->columns());
    Row row;
    for (;;) {
      auto more = (*reader)->Next(row);
      if (!more.has_value()) return more.error().WithField("dataset.path");
      if (!*more) break;
      stats.Add(row);
      if (stats.rows() % 4096 == 0) {
        MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
        double fraction = size ? static_cast<double>((*reader)->bytes_read()) / size : 0.0;
        ctx.ReportProgress({.fraction = fraction,
                            .step = static_cast<int64_t>(stats.rows()),
                            .message = std::to_string(stats.rows()) + " rows read"});
      }
    }
    ctx.ReportProgress({.fraction = 1.0,
                        .step = static_cast<int64_t>(stats.rows()),
                        .message = std::to_string(stats.rows()) + " rows read"});
    json out = stats.ToJson();
    out["path"] = ref.key;
    out["storage_type"] = ref.store->storage_type();
    out["format"] = FormatName(options.format);
    out["bytes"] = size;
    ctx.Log("info", "read " + std::to_string(stats.rows()) + " rows");
    return json{{"dataset", out}};
  };
}

}  // namespace mlaas::dataset
