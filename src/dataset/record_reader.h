// mlaas::dataset — streaming readers of tabular datasets (CSV/TSV and JSON Lines), and of
// CoNLL token/tag files as records {"tokens": [...], "tags": [...]} (JSON arrays as text).
//
// Readers pull bytes from an ObjectReader in fixed-size chunks, so memory use does not grow
// with the file: a 1 GB dataset is read with a few hundred KB, and one record is bounded
// (ReaderOptions: field and record bytes, fields per record, JSON nesting). Malformed input is
// an InvalidArgument naming the line ("line 17: unterminated quoted field"), never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "storage/object_store.h"

namespace mlaas::dataset {

enum class Format { kCsv, kJsonl, kConll };
std::string_view FormatName(Format format);  // "csv" / "jsonl" / "conll"

// What to do with bytes that are not valid UTF-8.
enum class Utf8Policy {
  kError,    // fail naming the line (default: data is never changed silently)
  kReplace,  // replace each invalid sequence with U+FFFD
};

struct ReaderOptions {
  Format format = Format::kCsv;
  char delimiter = ',';                // CSV only
  bool header = true;                  // CSV only: without one, columns are named 0, 1, ...
  std::vector<std::string> columns;    // select and order these columns; empty: all
  Utf8Policy utf8 = Utf8Policy::kError;
  size_t max_field_bytes = 16u << 20;  // one field (CSV) or line (JSONL) may not exceed this
  size_t max_fields = 10000;           // fields of one CSV record, keys of one JSONL object, tokens of a CoNLL sentence
  size_t max_record_bytes = 64u << 20; // all the fields of one CSV record (a CoNLL sentence) together
  size_t max_json_depth = 64;          // JSONL: arrays and objects inside one another
};

struct Row {
  std::vector<std::string> values;  // aligned with RecordReader::columns()
  std::vector<bool> missing;        // JSONL: key absent or null. CSV: always false
  std::vector<bool> structured;     // JSONL: an array or an object (values holds its JSON). CSV: always false
  int64_t line = 0;                 // 1-based line where the record starts
};

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  virtual const std::vector<std::string>& columns() const = 0;
  // Reads the next record into `row`; false at the end of the data.
  virtual Result<bool> Next(Row& row) = 0;
  // Bytes consumed from the source so far (for progress against ObjectInfo::size).
  virtual uint64_t bytes_read() const = 0;
};

// Opens a reader; reads the header (CSV) or the first record (JSONL) to learn the columns.
// InvalidArgument when a selected column does not exist (the message lists those that do).
Result<std::unique_ptr<RecordReader>> OpenRecordReader(
    std::unique_ptr<storage::ObjectReader> source, const ReaderOptions& options);

// Reader options from a request's dataset block: "format" ("csv" | "tsv" | "jsonl" | "conll"
// (.conll, .iob, .bio); guessed
// from the key's extension when absent) and loader_kwargs.delimiter / header /
// encoding_errors ("strict" | "replace"). Errors name the field under `field`.
Result<ReaderOptions> ReaderOptionsFromRequest(const nlohmann::json& dataset_block,
                                               const std::string& key,
                                               const std::string& field = "dataset");

// Replaces every invalid UTF-8 sequence of `s` with U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace mlaas::dataset
