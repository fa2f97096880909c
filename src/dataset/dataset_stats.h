// Column statistics of a dataset, and the built-in "dataset_stats" task that computes them
// over a dataset in the object store (rows, per-column lengths, tokens, numeric ranges,
// distinct values and the most frequent ones).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dataset/record_reader.h"
#include "storage/storage_registry.h"
#include "tasks/task_manager.h"

namespace mlaas::dataset {

// Accumulates statistics of one column. Memory is bounded: exact value counts are kept for
// the first kMaxExactValues distinct values, then a HyperLogLog sketch (4096 registers,
// about 1.6% error) estimates the distinct count.
class ColumnStats {
 public:
  static constexpr size_t kMaxExactValues = 1000;

  explicit ColumnStats(std::string name) : name_(std::move(name)) {}
  void Add(std::string_view value, bool missing);
  nlohmann::json ToJson() const;
  uint64_t characters() const { return characters_; }
  uint64_t tokens() const { return tokens_; }

 private:
  std::string name_;
  uint64_t non_empty_ = 0, empty_ = 0, characters_ = 0, tokens_ = 0;
  uint64_t min_length_ = UINT64_MAX, max_length_ = 0;
  uint64_t numeric_ = 0;
  double num_min_ = 0, num_max_ = 0, num_sum_ = 0;
  std::map<std::string, uint64_t, std::less<>> exact_;
  bool exact_overflow_ = false;
  std::array<uint8_t, 4096> hll_{};
};

class DatasetStats {
 public:
  explicit DatasetStats(const std::vector<std::string>& columns);
  void Add(const Row& row);
  uint64_t rows() const { return rows_; }
  // {"rows", "characters", "tokens", "columns": [{"name", "non_empty", ...}, ...]}
  nlohmann::json ToJson() const;

 private:
  std::vector<ColumnStats> columns_;
  uint64_t rows_ = 0;
};

// Task type name and handler. Params: {"dataset": {path, storage_type, format?,
// loader_kwargs?: {delimiter, header, encoding_errors, columns: [..]}}}. Result:
// {"dataset": {path, storage_type, format, bytes, rows, characters, tokens, columns}}.
inline constexpr const char* kDatasetStatsTask = "dataset_stats";
tasks::TaskHandler MakeDatasetStatsHandler(const storage::StorageRegistry& storage);

}  // namespace mlaas::dataset
