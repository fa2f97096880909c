#include "dataset/record_reader.h"

#include <gtest/gtest.h>

namespace mlaas::dataset {
namespace {

using nlohmann::json;

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lines;
};

Result<Table> ReadAll(const std::string& data, ReaderOptions o = {}) {
  MLAAS_ASSIGN_OR_RETURN(auto r, OpenRecordReader(storage::MemoryReader(data), o));
  Table t;
  t.columns = r->columns();
  Row row;
  for (;;) {
    MLAAS_ASSIGN_OR_RETURN(bool more, r->Next(row));
    if (!more) break;
    t.rows.push_back(row.values);
    t.lines.push_back(row.line);
  }
  return t;
}

void ExpectError(const std::string& data, const std::string& fragment, ReaderOptions o = {}) {
  auto t = ReadAll(data, o);
  ASSERT_FALSE(t.has_value()) << data;
  EXPECT_EQ(t.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.error().message().find(fragment), std::string::npos) << t.error().message();
}

TEST(CsvReaderTest, ReadsRfc4180) {
  auto t = ReadAll(
      "text,label\r\n"
      "plain,1\r\n"
      "\"quoted, with comma\",2\r\n"
      "\"say \"\"hi\"\"\",3\n"
      "\"two\nlines\",4\n"
      "\n"
      ",5\n"
      "last,6");
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  EXPECT_EQ(t->columns, (std::vector<std::string>{"text", "label"}));
  ASSERT_EQ(t->rows.size(), 6u);
  EXPECT_EQ(t->rows[1][0], "quoted, with comma");
  EXPECT_EQ(t->rows[2][0], "say \"hi\"");
  EXPECT_EQ(t->rows[3][0], "two\nlines");
  EXPECT_EQ(t->rows[4][0], "");
  EXPECT_EQ(t->rows[5], (std::vector<std::string>{"last", "6"}));
  // Lines count physical lines, including the one inside a quoted field and the blank one.
  EXPECT_EQ(t->lines, (std::vector<int64_t>{2, 3, 4, 5, 8, 9}));
}

TEST(CsvReaderTest, TrailingEmptyFieldAndBom) {
  auto t = ReadAll("\xEF\xBB\xBF" "a,b\n1,\n");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->columns[0], "a");
  EXPECT_EQ(t->rows[0], (std::vector<std::string>{"1", ""}));
}

TEST(CsvReaderTest, DelimiterHeaderlessAndProjection) {
  ReaderOptions o;
  o.delimiter = '\t';
  o.header = false;
  auto t = ReadAll("x\ty\tz\n1\t2\t3\n", o);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->columns, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(t->rows.size(), 2u);

  ReaderOptions p;
  p.columns = {"c", "a"};
  auto s = ReadAll("a,b,c\n1,2,3\n", p);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->columns, (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(s->rows[0], (std::vector<std::string>{"3", "1"}));

  ReaderOptions missing;
  missing.columns = {"abstract"};
  ExpectError("a,b\n1,2\n", "column 'abstract' is not in the dataset (columns: a, b)", missing);
}

TEST(CsvReaderTest, ReportsMalformedRowsWithLineNumbers) {
  ExpectError("a,b\n1,2\n3\n", "line 3: expected 2 fields but found 1");
  ExpectError("a,b\n1,2\n\"open,3\n4,5\n", "line 3: unterminated quoted field");
  ExpectError("a,b\n\"x\"y,2\n", "line 2: unexpected character after a closing quote");
  ExpectError("", "the dataset is empty");
  ExpectError("a,b\n\xff\xfe,2\n", "line 2: invalid UTF-8");
  ReaderOptions small;
  small.max_field_bytes = 8;
  ExpectError("a\n0123456789\n", "longer than", small);
  ReaderOptions quote;
  quote.delimiter = '"';
  ExpectError("a\n", "delimiter", quote);
}

TEST(CsvReaderTest, ReplacesInvalidUtf8WhenAsked) {
  ReaderOptions o;
  o.utf8 = Utf8Policy::kReplace;
  auto t = ReadAll("a\nok\xff" "end\n", o);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->rows[0][0], "ok\xEF\xBF\xBD" "end");
}

TEST(JsonlReaderTest, ReadsObjectsLineByLine) {
  ReaderOptions o;
  o.format = Format::kJsonl;
  auto t = ReadAll(
      "{\"text\": \"hello\", \"label\": 1, \"meta\": {\"a\": [1]}}\n"
      "\n"
      "{\"text\": \"caf\\u00e9\", \"label\": null}\n"
      "{\"label\": 2, \"extra\": true}\n",
      o);
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  EXPECT_EQ(t->columns, (std::vector<std::string>{"label", "meta", "text"}));  // sorted keys
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_EQ(t->rows[0], (std::vector<std::string>{"1", "{\"a\":[1]}", "hello"}));
  EXPECT_EQ(t->rows[1][2], "caf\xC3\xA9");
  EXPECT_EQ(t->lines, (std::vector<int64_t>{1, 3, 4}));
}

TEST(JsonlReaderTest, MarksMissingValues) {
  ReaderOptions o;
  o.format = Format::kJsonl;
  o.columns = {"text"};
  auto r = OpenRecordReader(storage::MemoryReader("{\"text\":\"a\"}\n{\"text\":null}\n{}\n"), o);
  ASSERT_TRUE(r.has_value());
  Row row;
  std::vector<bool> missing;
  while (*(*r)->Next(row)) missing.push_back(row.missing[0]);
  EXPECT_EQ(missing, (std::vector<bool>{false, true, true}));
}

TEST(JsonlReaderTest, ReportsBadLines) {
  ReaderOptions o;
  o.format = Format::kJsonl;
  ExpectError("{\"a\":1}\n{\"a\":\n", "line 2: the record is not valid JSON", o);
  ExpectError("{\"a\":1}\n[1,2]\n", "line 2: expected a JSON object, found array", o);
  ExpectError("{\"a\":\"\xff\"}\n", "line 1: invalid UTF-8", o);
}

TEST(JsonlReaderTest, DeepNestingIsAClearErrorNotACrash) {
  ReaderOptions o;
  o.format = Format::kJsonl;
  // 100000 levels: dumping this value for a column would overflow the stack.
  const std::string deep = "{\"a\":1}\n{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}\n";
  ExpectError(deep, "line 2: the record nests deeper than 64 levels", o);
  // At the limit, nested values are read (as their JSON text).
  const std::string ok = "{\"a\":" + std::string(63, '[') + std::string(63, ']') + "}\n";
  auto t = ReadAll(ok, o);
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  EXPECT_EQ(t->rows[0][0], std::string(63, '[') + std::string(63, ']'));
}

TEST(JsonlReaderTest, ObjectsWithTooManyKeysAreRefused) {
  ReaderOptions o;
  o.format = Format::kJsonl;
  o.max_fields = 3;
  EXPECT_TRUE(ReadAll("{\"a\":1,\"b\":2,\"c\":3}\n", o).has_value());
  ExpectError("{\"a\":1}\n{\"a\":1,\"b\":2,\"c\":3,\"d\":4}\n", "line 2: the object has more than 3 keys", o);
}

TEST(CsvReaderTest, ARowOfManyCommasIsAClearError) {
  // 100000 commas would be 100001 strings; the default bound stops it at the record.
  ExpectError("a,b\n1,2\n" + std::string(100000, ',') + "\n", "line 3: the record has more than 10000 fields");
  // A header as wide is refused the same way.
  ExpectError(std::string(100000, ',') + "\n", "line 1: the record has more than 10000 fields");
  ReaderOptions o;
  o.max_fields = 3;
  EXPECT_TRUE(ReadAll("a,b,c\n1,2,3\n", o).has_value());
  ExpectError("a,b,c\n1,2,3,4\n", "line 2: the record has more than 3 fields", o);
}

TEST(CsvReaderTest, RecordBytesAreBounded) {
  ReaderOptions o;
  o.max_field_bytes = 100;
  o.max_record_bytes = 250;
  const std::string f(90, 'x');
  EXPECT_TRUE(ReadAll("a,b\n" + f + "," + f + "\n", o).has_value());
  // Every field within its bound, the record not; a quoted field spanning lines counts too.
  ExpectError("a,b,c\n" + f + "," + f + "," + f + "\n", "line 2: the record is longer than 250 B", o);
  ExpectError("a,b,c\n1,2,3\n\"" + f + "\n\"," + f + "," + f + "\n", "line 3: the record is longer", o);
}

// A source that produces a large CSV on the fly, to show memory does not follow file size.
class GeneratedCsv final : public storage::ObjectReader {
 public:
  explicit GeneratedCsv(int64_t rows) : rows_(rows) { info_.size = 0; }
  const storage::ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override {
    size_t filled = 0;
    while (filled < n) {
      if (pending_.empty()) {
        if (next_ > rows_) break;
        pending_ = next_ == 0 ? "id,text\n"
                              : std::to_string(next_) + ",\"row number " + std::to_string(next_) +
                                    ", with a comma\"\n";
        ++next_;
      }
      size_t take = std::min(n - filled, pending_.size());
      std::copy_n(pending_.data(), take, buf + filled);
      pending_.erase(0, take);
      filled += take;
    }
    return filled;
  }

 private:
  int64_t rows_, next_ = 0;
  std::string pending_;
  storage::ObjectInfo info_;
};

TEST(CsvReaderTest, StreamsManyRows) {
  auto r = OpenRecordReader(std::make_unique<GeneratedCsv>(200000), {});
  ASSERT_TRUE(r.has_value());
  Row row;
  int64_t n = 0;
  while (*(*r)->Next(row)) {
    ++n;
    ASSERT_EQ(row.values[0], std::to_string(n));
  }
  EXPECT_EQ(n, 200000);
  EXPECT_GT((*r)->bytes_read(), 200000u * 20);
}

TEST(ReaderOptionsTest, FromRequestBlocks) {
  auto csv = ReaderOptionsFromRequest(json::object(), "datasets/x.CSV");
  EXPECT_EQ(csv->format, Format::kCsv);
  auto tsv = ReaderOptionsFromRequest(json::object(), "x.tsv");
  EXPECT_EQ(tsv->delimiter, '\t');
  auto jl = ReaderOptionsFromRequest(json::object(), "x.jsonl");
  EXPECT_EQ(jl->format, Format::kJsonl);
  auto explicit_fmt = ReaderOptionsFromRequest(
      json{{"format", "csv"}, {"loader_kwargs", {{"delimiter", ";"}, {"header", false},
                                                 {"encoding_errors", "replace"}}}},
      "data.txt");
  ASSERT_TRUE(explicit_fmt.has_value());
  EXPECT_EQ(explicit_fmt->delimiter, ';');
  EXPECT_FALSE(explicit_fmt->header);
  EXPECT_EQ(explicit_fmt->utf8, Utf8Policy::kReplace);

  EXPECT_EQ(ReaderOptionsFromRequest(json::object(), "data.bin").error().field(),
            "dataset.format");
  EXPECT_EQ(ReaderOptionsFromRequest(json{{"format", "vector_store"}}, "x").error().field(),
            "dataset.format");
  EXPECT_EQ(ReaderOptionsFromRequest(json{{"loader_kwargs", {{"delimiter", ";;"}}}}, "x.csv")
                .error()
                .field(),
            "dataset.loader_kwargs.delimiter");
  for (const char* quote_or_newline : {"\"", "\n", "\r"})
    EXPECT_EQ(ReaderOptionsFromRequest(json{{"loader_kwargs", {{"delimiter", quote_or_newline}}}}, "x.csv")
                  .error()
                  .field(),
              "dataset.loader_kwargs.delimiter");
  EXPECT_EQ(ReaderOptionsFromRequest(json{{"loader_kwargs", {{"encoding_errors", "x"}}}}, "x.csv")
                .error()
                .field(),
            "dataset.loader_kwargs.encoding_errors");
}

TEST(SanitizeUtf8Test, ReplacesEachBadByte) {
  EXPECT_EQ(SanitizeUtf8("a\xff\xfe" "b"), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("\xC3"), "\xEF\xBF\xBD");
}

// CoNLL: token first, tag last, blank lines between sentences, -DOCSTART- skipped, CRLF and
// tabs accepted; each sentence a record of two JSON arrays.
TEST(ConllReaderTest, ReadsSentencesAsTokensAndTags) {
  ReaderOptions o;
  o.format = Format::kConll;
  auto t = ReadAll("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\n\n\n"
                   "Peter\tB-PER\nBlackburn\tI-PER\nZ\u00fcrich B-LOC", o);
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  EXPECT_EQ(t->columns, std::vector<std::string>({"tokens", "tags"}));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(json::parse(t->rows[0][0]), json({"EU", "rejects"}));
  EXPECT_EQ(json::parse(t->rows[0][1]), json({"B-ORG", "O"}));
  EXPECT_EQ(json::parse(t->rows[1][0]), json({"Peter", "Blackburn", "Z\u00fcrich"}));
  EXPECT_EQ(json::parse(t->rows[1][1]), json({"B-PER", "I-PER", "B-LOC"}));
  EXPECT_EQ(t->lines, std::vector<int64_t>({3, 7}));
  auto bom = ReadAll("\xEF\xBB\xBF-DOCSTART- O\n\nEU B-ORG\n", o);  // a byte order mark is not a token
  ASSERT_TRUE(bom.has_value());
  ASSERT_EQ(bom->rows.size(), 1u);
  EXPECT_EQ(json::parse(bom->rows[0][0]), json({"EU"}));
  o.columns = {"tags"};
  auto tags = ReadAll("a O\n", o);
  ASSERT_TRUE(tags.has_value());
  EXPECT_EQ(tags->rows[0], std::vector<std::string>({"[\"O\"]"}));
}

TEST(ConllReaderTest, RefusesWhatIsNotTokenAndTag) {
  ReaderOptions o;
  o.format = Format::kConll;
  ExpectError("EU B-ORG\nrejects\n", "line 2: expected a token and its tag", o);
  ExpectError("\n\n-DOCSTART- O\n", "no sentence", o);
  ExpectError("a O\n\xff O\n", "line 2: invalid UTF-8", o);
  o.max_fields = 2;
  ExpectError("a O\nb O\nc O\n", "more than 2 tokens", o);
  o.columns = {"words"};
  ExpectError("a O\n", "column 'words' is not in the dataset", o);
  auto guessed = ReaderOptionsFromRequest(json::object(), "ner/train.conll");
  ASSERT_TRUE(guessed.has_value());
  EXPECT_EQ(guessed->format, Format::kConll);
  EXPECT_EQ(FormatName(Format::kConll), "conll");
}

}  // namespace
}  // namespace mlaas::dataset
