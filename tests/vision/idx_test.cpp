// The IDX reader against hand-made files: plain and gzip, images with their labels, and the
// bad ones: wrong magic, unsupported type, sizes that do not match the bytes, label count
// mismatch, zero images, a gzip bomb, a truncated gzip.
#include "vision/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace mlaas::vision {
namespace {

std::string Idx(const std::vector<uint32_t>& dims, const std::string& values) {
  std::string out{0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims) out += std::string{char(d >> 24), char(d >> 16), char(d >> 8), char(d)};
  return out + values;
}

std::string Gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(IdxTest, ReadsImagesAndLabelsPlainOrGzipped) {
  std::string pixels;
  for (int i = 0; i < 3 * 2 * 4; ++i) pixels += static_cast<char>(i * 10);
  const std::string images = Idx({3, 2, 4}, pixels), labels = Idx({3}, std::string{7, 0, 9});
  for (bool gz : {false, true}) {
    auto ds = ReadIdxDataset(gz ? Gzip(images) : images, gz ? Gzip(labels) : labels);
    ASSERT_TRUE(ds.has_value()) << ds.error().ToString();
    ASSERT_EQ(ds->images.size(), 3u);
    EXPECT_EQ(ds->labels, (std::vector<int64_t>{7, 0, 9}));
    EXPECT_EQ(ds->images[1].width, 4);
    EXPECT_EQ(ds->images[1].height, 2);
    EXPECT_EQ(ds->images[1].channels, 1);
    EXPECT_EQ(ds->images[1].pixels[0], 80);
  }
}

TEST(IdxTest, BadFilesAreClearErrors) {
  const std::string labels = Idx({2}, std::string{1, 2});
  struct Case {
    const char* what;
    std::string images, labels;
    const char* says;
  };
  std::string magic = Idx({2, 1, 1}, "ab");
  magic[0] = 1;
  std::string type = Idx({2, 1, 1}, "ab");
  type[2] = 0x0D;
  const std::vector<Case> cases = {
      {"wrong magic", magic, labels, "magic"},
      {"float values", type, labels, "0x0d"},
      {"fewer bytes than dims", Idx({2, 28, 28}, "abc"), labels, "holds 3"},
      {"more bytes than dims", Idx({2, 1, 1}, "abcd"), labels, "holds 4"},
      {"label count", Idx({3, 1, 1}, "abc"), labels, "3 images but 2 labels"},
      {"zero images", Idx({0, 28, 28}, ""), Idx({0}, ""), "no images"},
      {"labels as images", labels, labels, "idx3"},
      {"a text file", "hello", labels, "magic"},
      {"truncated header", std::string{0, 0, 8, 3, 0}, labels, "truncated"},
      {"truncated gzip", Gzip(Idx({2, 1, 1}, "ab")).substr(0, 12), labels, "gzip"},
      {"huge dims", Idx({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, ""), labels, "more than are read"},
  };
  for (const auto& c : cases) {
    auto r = ReadIdxDataset(c.images, c.labels);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << c.what << ": " << r.error().ToString();
    EXPECT_NE(r.error().message().find(c.says), std::string::npos) << c.what << ": " << r.error().ToString();
  }
  // A gzip bomb: 64 MiB of zeros in a few KB is refused at the bound, not inflated whole.
  const std::string bomb = Gzip(Idx({1, 8192, 8192}, std::string(8192u * 8192u, '\0')));
  EXPECT_LT(bomb.size(), 200000u);
  auto r = ParseIdx(bomb, {.max_bytes = 1 << 20});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("inflates to more than"), std::string::npos) << r.error().ToString();
}

// The shape alone (what the catalog records of an IDX dataset): read from the header and checked
// against the length, plain or gzip (inflated and counted, bounded as ParseIdx is).
TEST(IdxTest, TheShapeIsReadWithoutKeepingTheValues) {
  const std::string images = Idx({3, 2, 4}, std::string(24, '\7'));
  for (bool gz : {false, true}) {
    auto shape = IdxShape(gz ? Gzip(images) : images);
    ASSERT_TRUE(shape.has_value()) << shape.error().ToString();
    EXPECT_EQ(*shape, (std::vector<int64_t>{3, 2, 4}));
  }
  auto short_file = IdxShape(Gzip(Idx({3, 2, 4}, std::string(23, '\7'))));
  ASSERT_FALSE(short_file.has_value());
  EXPECT_NE(short_file.error().message().find("holds 23"), std::string::npos) << short_file.error().ToString();
  EXPECT_FALSE(IdxShape("not idx").has_value());
  const std::string bomb = Gzip(Idx({1, 8192, 8192}, std::string(8192u * 8192u, '\0')));
  auto big = IdxShape(bomb, {.max_bytes = 1 << 20});
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().message().find("inflates to more than"), std::string::npos);
  auto counted = IdxShape(bomb, {.max_bytes = 1u << 27});  // counted, not kept: the whole 64 MiB
  ASSERT_TRUE(counted.has_value()) << counted.error().ToString();
  EXPECT_EQ(*counted, (std::vector<int64_t>{1, 8192, 8192}));
}

}  // namespace
}  // namespace mlaas::vision
