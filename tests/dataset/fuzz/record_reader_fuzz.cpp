// libFuzzer target: the CSV/TSV, JSON Lines and CoNLL dataset readers over any bytes: no crash,
// leak, sanitizer report or unbounded allocation; every row read has one value per column.
// The first byte picks the options: bit 0 the format (CSV / JSONL), bits 1-2 the delimiter,
// bit 3 no header (CSV) or CoNLL instead of JSONL, bit 4 invalid UTF-8 replaced, bit 5 a small field limit, bit 6 a column
// selection, bit 7 a source that returns a few bytes per read (chunk boundaries everywhere).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dataset/record_reader.h"

using namespace mlaas;

namespace {

class BytesReader final : public storage::ObjectReader {
 public:
  BytesReader(std::string data, size_t max_read) : data_(std::move(data)), max_read_(max_read) {
    info_.key = "fuzz";
    info_.size = data_.size();
  }
  const storage::ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override {
    const size_t take = std::min({n, max_read_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, take);
    pos_ += take;
    return take;
  }

 private:
  std::string data_;
  size_t max_read_, pos_ = 0;
  storage::ObjectInfo info_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  dataset::ReaderOptions o;
  o.format = !(flags & 1) ? dataset::Format::kCsv : flags & 8 ? dataset::Format::kConll : dataset::Format::kJsonl;
  o.delimiter = ",\t;|"[(flags >> 1) & 3];
  o.header = !(flags & 8);
  o.utf8 = flags & 16 ? dataset::Utf8Policy::kReplace : dataset::Utf8Policy::kError;
  if (flags & 32) o.max_field_bytes = 64;
  if (flags & 64) o.columns = {"text", o.header ? "label" : "0"};
  if ((flags & 64) && o.format == dataset::Format::kConll) o.columns = {"tags", "tokens"};
  auto source = std::make_unique<BytesReader>(std::string(reinterpret_cast<const char*>(data) + 1, size - 1),
                                              flags & 128 ? 3 : SIZE_MAX);
  auto reader = dataset::OpenRecordReader(std::move(source), o);
  if (!reader.has_value()) return 0;
  const size_t columns = (*reader)->columns().size();
  if (!o.columns.empty() && columns != o.columns.size()) std::abort();
  dataset::Row row;
  for (;;) {
    auto more = (*reader)->Next(row);
    if (!more.has_value() || !*more) break;
    if (row.values.size() != columns || row.missing.size() != columns) std::abort();
    if ((*reader)->bytes_read() > size - 1) std::abort();
  }
  return 0;
}
