#include "dataset/record_reader.h"

#include <algorithm>

#include "common/json_file.h"
#include "common/text.h"

namespace mlaas::dataset {
namespace {

using nlohmann::json;

constexpr size_t kChunkBytes = 256 * 1024;

Status LineError(int64_t line, const std::string& what) {
  return InvalidArgument("line " + std::to_string(line) + ": " + what);
}

// Buffered byte input with one-byte lookahead.
class Input {
 public:
  explicit Input(std::unique_ptr<storage::ObjectReader> src) : src_(std::move(src)) {
    buf_.resize(kChunkBytes);
  }
  // Next byte, or -1 at the end; sets error() on a read failure.
  int Get() {
    if (pos_ == end_ && !Fill()) return -1;
    ++consumed_;
    return static_cast<unsigned char>(buf_[pos_++]);
  }
  int Peek() {
    if (pos_ == end_ && !Fill()) return -1;
    return static_cast<unsigned char>(buf_[pos_]);
  }
  uint64_t consumed() const { return consumed_; }
  const Status& error() const { return error_; }
  // The next line, without its '\n', into `line`; false at the end of the data. A line longer
  // than `max_bytes` is an error naming `line_no`.
  Result<bool> ReadLine(std::string& line, size_t max_bytes, int64_t line_no) {
    line.clear();
    int c = Get();
    if (c < 0) {
      MLAAS_RETURN_IF_ERROR(error_);
      return false;
    }
    while (c >= 0 && c != '\n') {
      line.push_back(static_cast<char>(c));
      if (line.size() > max_bytes) return LineError(line_no, "the line is longer than " + FormatBytes(max_bytes));
      c = Get();
    }
    MLAAS_RETURN_IF_ERROR(error_);
    return true;
  }

 private:
  bool Fill() {
    if (eof_) return false;
    auto n = src_->Read(buf_.data(), buf_.size());
    if (!n.has_value()) {
      error_ = n.error();
      eof_ = true;
      return false;
    }
    if (*n == 0) {
      eof_ = true;
      return false;
    }
    pos_ = 0;
    end_ = *n;
    return true;
  }

  std::unique_ptr<storage::ObjectReader> src_;
  std::string buf_;
  size_t pos_ = 0, end_ = 0;
  uint64_t consumed_ = 0;
  bool eof_ = false;
  Status error_;
};

// Maps the source's columns to the selected ones.
Result<std::vector<size_t>> Project(const std::vector<std::string>& available,
                                    const std::vector<std::string>& wanted) {
  std::vector<size_t> index;
  if (wanted.empty()) {
    for (size_t i = 0; i < available.size(); ++i) index.push_back(i);
    return index;
  }
  for (const auto& w : wanted) {
    auto it = std::find(available.begin(), available.end(), w);
    if (it == available.end()) {
      std::string names;
      for (const auto& a : available) names += (names.empty() ? "" : ", ") + a;
      return InvalidArgument("column '" + w + "' is not in the dataset (columns: " + names + ")");
    }
    index.push_back(static_cast<size_t>(it - available.begin()));
  }
  return index;
}

Status CheckUtf8(std::string& value, Utf8Policy policy, int64_t line) {
  if (IsValidUtf8(value)) return Status::Ok();
  if (policy == Utf8Policy::kError) {
    return LineError(line, "invalid UTF-8 (set loader_kwargs.encoding_errors to \"replace\" "
                           "to substitute U+FFFD)");
  }
  value = SanitizeUtf8(value);
  return Status::Ok();
}

class CsvReader final : public RecordReader {
 public:
  CsvReader(std::unique_ptr<storage::ObjectReader> src, ReaderOptions opts)
      : in_(std::move(src)), opts_(std::move(opts)) {}

  Status Init() {
    std::vector<std::string> first;
    int64_t first_line = 0;
    MLAAS_ASSIGN_OR_RETURN(bool any, ReadRecord(first, first_line));
    if (!any) return InvalidArgument("the dataset is empty");
    // A UTF-8 byte order mark is not part of the first column's name.
    if (StartsWith(first[0], "\xEF\xBB\xBF")) first[0].erase(0, 3);
    if (opts_.header) {
      all_columns_ = first;
    } else {
      for (size_t i = 0; i < first.size(); ++i) all_columns_.push_back(std::to_string(i));
      pending_ = std::move(first);
      pending_line_ = first_line;
    }
    MLAAS_ASSIGN_OR_RETURN(index_, Project(all_columns_, opts_.columns));
    for (size_t i : index_) columns_.push_back(all_columns_[i]);
    return Status::Ok();
  }

  const std::vector<std::string>& columns() const override { return columns_; }
  uint64_t bytes_read() const override { return in_.consumed(); }

  Result<bool> Next(Row& row) override {
    int64_t line = 0;
    if (pending_) {
      fields_ = std::move(*pending_);
      pending_.reset();
      line = pending_line_;
    } else {
      MLAAS_ASSIGN_OR_RETURN(bool any, ReadRecord(fields_, line));
      if (!any) return false;
    }
    if (fields_.size() != all_columns_.size()) {
      return LineError(line, "expected " + std::to_string(all_columns_.size()) +
                                 " fields but found " + std::to_string(fields_.size()) +
                                 " (check the delimiter and the quoting)");
    }
    row.values.resize(index_.size());
    row.missing.assign(index_.size(), false);
    row.structured.assign(index_.size(), false);
    row.line = line;
    for (size_t i = 0; i < index_.size(); ++i) {
      row.values[i] = std::move(fields_[index_[i]]);
      MLAAS_RETURN_IF_ERROR(CheckUtf8(row.values[i], opts_.utf8, line));
    }
    return true;
  }

 private:
  // Reads one RFC 4180 record, skipping blank lines. False at the end of the input.
  Result<bool> ReadRecord(std::vector<std::string>& fields, int64_t& start_line) {
    fields.clear();
    int c = in_.Get();
    while (c == '\n' || c == '\r') {
      if (c == '\n' || in_.Peek() != '\n') ++line_;
      c = in_.Get();
    }
    if (c < 0) {
      MLAAS_RETURN_IF_ERROR(in_.error());
      return false;
    }
    start_line = line_;
    const int delim = static_cast<unsigned char>(opts_.delimiter);
    std::string field;
    size_t record_bytes = 0;
    for (;;) {
      if (fields.size() == opts_.max_fields) {
        return LineError(start_line, "the record has more than " + std::to_string(opts_.max_fields) +
                                         " fields (check the delimiter)");
      }
      field.clear();
      if (c == '"') {
        int64_t quote_line = line_;
        for (;;) {
          c = in_.Get();
          if (c < 0) {
            MLAAS_RETURN_IF_ERROR(in_.error());
            return LineError(quote_line, "unterminated quoted field");
          }
          if (c == '"') {
            if (in_.Peek() != '"') break;
            in_.Get();
          } else if (c == '\n') {
            ++line_;
          }
          field.push_back(static_cast<char>(c));
          if (field.size() > opts_.max_field_bytes) return TooLong(quote_line);
        }
        c = in_.Get();
        if (c != delim && c != '\n' && c != '\r' && c >= 0) {
          return LineError(line_, "unexpected character after a closing quote (a quote inside "
                                  "a quoted field must be doubled)");
        }
      } else {
        while (c >= 0 && c != delim && c != '\n' && c != '\r') {
          field.push_back(static_cast<char>(c));
          if (field.size() > opts_.max_field_bytes) return TooLong(line_);
          c = in_.Get();
        }
      }
      record_bytes += field.size();
      if (record_bytes > opts_.max_record_bytes) {
        return LineError(start_line, "the record is longer than " + FormatBytes(opts_.max_record_bytes));
      }
      fields.push_back(field);
      if (c == delim) {
        c = in_.Get();
        continue;
      }
      if (c == '\r' && in_.Peek() == '\n') in_.Get();
      if (c >= 0) ++line_;
      MLAAS_RETURN_IF_ERROR(in_.error());
      return true;
    }
  }

  Status TooLong(int64_t line) const {
    return LineError(line, "a field is longer than " + FormatBytes(opts_.max_field_bytes));
  }

  Input in_;
  ReaderOptions opts_;
  int64_t line_ = 1;
  std::vector<std::string> all_columns_, columns_;
  std::vector<size_t> index_;
  std::vector<std::string> fields_;
  std::optional<std::vector<std::string>> pending_;
  int64_t pending_line_ = 0;
};

class JsonlReader final : public RecordReader {
 public:
  JsonlReader(std::unique_ptr<storage::ObjectReader> src, ReaderOptions opts)
      : in_(std::move(src)), opts_(std::move(opts)) {}

  Status Init() {
    MLAAS_ASSIGN_OR_RETURN(bool any, ReadObject(first_, first_line_));
    if (!any) return InvalidArgument("the dataset is empty");
    has_first_ = true;
    std::vector<std::string> available;
    for (auto it = first_.begin(); it != first_.end(); ++it) available.push_back(it.key());
    if (opts_.columns.empty()) {
      columns_ = available;
    } else {
      MLAAS_RETURN_IF_ERROR(Project(available, opts_.columns).status());
      columns_ = opts_.columns;
    }
    return Status::Ok();
  }

  const std::vector<std::string>& columns() const override { return columns_; }
  uint64_t bytes_read() const override { return in_.consumed(); }

  Result<bool> Next(Row& row) override {
    json obj;
    int64_t line = 0;
    if (has_first_) {
      obj = std::move(first_);
      line = first_line_;
      has_first_ = false;
    } else {
      MLAAS_ASSIGN_OR_RETURN(bool any, ReadObject(obj, line));
      if (!any) return false;
    }
    row.values.assign(columns_.size(), std::string());
    row.missing.assign(columns_.size(), false);
    row.structured.assign(columns_.size(), false);
    row.line = line;
    for (size_t i = 0; i < columns_.size(); ++i) {
      auto it = obj.find(columns_[i]);
      if (it == obj.end() || it->is_null()) {
        row.missing[i] = true;
      } else if (it->is_string()) {
        row.values[i] = it->get<std::string>();
      } else {
        row.values[i] = it->dump();
        row.structured[i] = it->is_structured();
      }
    }
    return true;
  }

 private:
  Result<bool> ReadObject(json& out, int64_t& line_no) {
    std::string line;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool any, in_.ReadLine(line, opts_.max_field_bytes, line_));
      if (!any) return false;
      line_no = line_++;
      if (Trim(line).empty()) continue;
      MLAAS_RETURN_IF_ERROR(CheckUtf8(line, opts_.utf8, line_no));
      // Bounded before parsing: a value nested thousands deep would overflow the stack when
      // copied or dumped.
      auto parsed = ParseJsonText(line, "the record", {}, {.max_bytes = opts_.max_field_bytes,
                                                          .max_depth = opts_.max_json_depth});
      if (!parsed.has_value()) return LineError(line_no, parsed.error().message());
      out = std::move(parsed).value();
      if (!out.is_object()) {
        return LineError(line_no, "expected a JSON object, found " + std::string(out.type_name()));
      }
      if (out.size() > opts_.max_fields) {
        return LineError(line_no, "the object has more than " + std::to_string(opts_.max_fields) + " keys");
      }
      return true;
    }
  }

  Input in_;
  ReaderOptions opts_;
  int64_t line_ = 1;
  std::vector<std::string> columns_;
  json first_;
  int64_t first_line_ = 0;
  bool has_first_ = false;
};

// CoNLL: one token per line, its tag in the last whitespace-separated column (columns between,
// such as CoNLL-2003's part of speech and chunk, are ignored), a blank line after each sentence,
// "-DOCSTART-" lines skipped. Each sentence is a record {"tokens": [...], "tags": [...]}.
class ConllReader final : public RecordReader {
 public:
  ConllReader(std::unique_ptr<storage::ObjectReader> src, ReaderOptions opts)
      : in_(std::move(src)), opts_(std::move(opts)) {}

  Status Init() {
    const std::vector<std::string> available = {"tokens", "tags"};
    MLAAS_ASSIGN_OR_RETURN(index_, Project(available, opts_.columns));
    for (size_t i : index_) columns_.push_back(available[i]);
    MLAAS_ASSIGN_OR_RETURN(has_first_, ReadSentence(first_, first_line_));
    if (!has_first_) return InvalidArgument("the dataset holds no sentence");
    return Status::Ok();
  }

  const std::vector<std::string>& columns() const override { return columns_; }
  uint64_t bytes_read() const override { return in_.consumed(); }

  Result<bool> Next(Row& row) override {
    Sentence s;
    int64_t line = 0;
    if (has_first_) {
      s = std::move(first_);
      line = first_line_;
      has_first_ = false;
    } else {
      MLAAS_ASSIGN_OR_RETURN(bool any, ReadSentence(s, line));
      if (!any) return false;
    }
    row.values.assign(columns_.size(), std::string());
    row.missing.assign(columns_.size(), false);
    row.structured.assign(columns_.size(), true);  // the words and tags as JSON arrays
    row.line = line;
    for (size_t i = 0; i < columns_.size(); ++i) row.values[i] = (index_[i] == 0 ? s.tokens : s.tags).dump();
    return true;
  }

 private:
  struct Sentence {
    json tokens = json::array(), tags = json::array();
  };

  // Reads the next line (without its end) into `line`; false at the end of the data.
  Result<bool> ReadLine(std::string& line) {
    MLAAS_ASSIGN_OR_RETURN(bool any, in_.ReadLine(line, opts_.max_field_bytes, line_));
    if (any && !line.empty() && line.back() == '\r') line.pop_back();
    return any;
  }

  Result<bool> ReadSentence(Sentence& out, int64_t& first_line) {
    out = Sentence();
    size_t bytes = 0;
    std::string line;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool any, ReadLine(line));
      const int64_t line_no = line_++;
      if (!any) return !out.tokens.empty();
      if (line_no == 1 && StartsWith(line, "\xEF\xBB\xBF")) line.erase(0, 3);  // a UTF-8 byte order mark
      const std::string_view trimmed = Trim(line);
      if (trimmed.empty()) {
        if (!out.tokens.empty()) return true;
        continue;
      }
      if (StartsWith(trimmed, "-DOCSTART-")) continue;
      MLAAS_RETURN_IF_ERROR(CheckUtf8(line, opts_.utf8, line_no));
      const std::string_view fields = Trim(line);
      const size_t first_end = fields.find_first_of(" \t");
      const size_t last_start = fields.find_last_of(" \t");
      if (first_end == std::string_view::npos)
        return LineError(line_no, "expected a token and its tag separated by a space or a tab");
      if (out.tokens.empty()) first_line = line_no;
      out.tokens.push_back(std::string(fields.substr(0, first_end)));
      out.tags.push_back(std::string(fields.substr(last_start + 1)));
      bytes += fields.size();
      if (bytes > opts_.max_record_bytes)
        return LineError(line_no, "the sentence is longer than " + FormatBytes(opts_.max_record_bytes));
      if (out.tokens.size() > opts_.max_fields)
        return LineError(line_no, "the sentence has more than " + std::to_string(opts_.max_fields) + " tokens");
    }
  }

  Input in_;
  ReaderOptions opts_;
  int64_t line_ = 1;
  std::vector<size_t> index_;
  std::vector<std::string> columns_;
  Sentence first_;
  int64_t first_line_ = 0;
  bool has_first_ = false;
};

}  // namespace

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kCsv: return "csv";
    case Format::kJsonl: return "jsonl";
    case Format::kConll: return "conll";
  }
  return "?";
}

Result<std::unique_ptr<RecordReader>> OpenRecordReader(
    std::unique_ptr<storage::ObjectReader> source, const ReaderOptions& options) {
  if (options.format == Format::kCsv) {
    if (options.delimiter == '"' || options.delimiter == '\n' || options.delimiter == '\r') {
      return InvalidArgument("the delimiter cannot be a quote or a newline");
    }
    auto r = std::make_unique<CsvReader>(std::move(source), options);
    MLAAS_RETURN_IF_ERROR(r->Init());
    return std::unique_ptr<RecordReader>(std::move(r));
  }
  if (options.format == Format::kConll) {
    auto r = std::make_unique<ConllReader>(std::move(source), options);
    MLAAS_RETURN_IF_ERROR(r->Init());
    return std::unique_ptr<RecordReader>(std::move(r));
  }
  auto r = std::make_unique<JsonlReader>(std::move(source), options);
  MLAAS_RETURN_IF_ERROR(r->Init());
  return std::unique_ptr<RecordReader>(std::move(r));
}

Result<ReaderOptions> ReaderOptionsFromRequest(const json& block, const std::string& key,
                                               const std::string& field) {
  ReaderOptions o;
  std::string format;
  if (block.contains("format") && block["format"].is_string()) {
    format = block["format"].get<std::string>();
  } else {
    std::string lower = ToLower(key);
    auto ends = [&](std::string_view ext) {
      return lower.size() >= ext.size() && lower.compare(lower.size() - ext.size(), ext.size(), ext) == 0;
    };
    if (ends(".csv")) format = "csv";
    else if (ends(".tsv") || ends(".tab")) format = "tsv";
    else if (ends(".jsonl") || ends(".ndjson") || ends(".json")) format = "jsonl";
    else if (ends(".conll") || ends(".iob") || ends(".bio")) format = "conll";
    else {
      return InvalidArgument("cannot tell the format of '" + key +
                                 "' from its extension; set format to csv, tsv, jsonl or conll",
                             field + ".format");
    }
  }
  if (format == "csv") {
    o.format = Format::kCsv;
  } else if (format == "tsv") {
    o.format = Format::kCsv;
    o.delimiter = '\t';
  } else if (format == "jsonl") {
    o.format = Format::kJsonl;
  } else if (format == "conll") {
    o.format = Format::kConll;
  } else {
    return InvalidArgument("format '" + format + "' is not a tabular format (use csv, tsv, jsonl or conll)",
                           field + ".format");
  }
  const json kw = block.value("loader_kwargs", json::object());
  if (kw.contains("delimiter")) {
    const json& d = kw["delimiter"];
    if (!d.is_string() || d.get<std::string>().size() != 1) {
      return InvalidArgument("must be a single character", field + ".loader_kwargs.delimiter");
    }
    o.delimiter = d.get<std::string>()[0];
    if (o.format == Format::kCsv && (o.delimiter == '"' || o.delimiter == '\n' || o.delimiter == '\r'))
      return InvalidArgument("cannot be a quote or a newline", field + ".loader_kwargs.delimiter");
  }
  if (kw.contains("header")) {
    if (!kw["header"].is_boolean()) {
      return InvalidArgument("must be a boolean", field + ".loader_kwargs.header");
    }
    o.header = kw["header"].get<bool>();
  }
  if (kw.contains("encoding_errors")) {
    const json& e = kw["encoding_errors"];
    if (e == "strict") {
      o.utf8 = Utf8Policy::kError;
    } else if (e == "replace") {
      o.utf8 = Utf8Policy::kReplace;
    } else {
      return InvalidArgument("must be \"strict\" or \"replace\"",
                             field + ".loader_kwargs.encoding_errors");
    }
  }
  return o;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    // Find the longest valid sequence starting at i (1..4 bytes).
    size_t len = 0;
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (want > 0 && i + want <= s.size() && IsValidUtf8(s.substr(i, want))) len = want;
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace mlaas::dataset
