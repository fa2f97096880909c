// The S3 store against a real S3 protocol server on loopback: s3rver (npm, tests/storage/s3),
// started here (it does not check signatures: s3_interop_test.cpp does, with botocore).
// Objects written and read back, ranged and parallel reads, listings with prefixes, delimiters
// and continuation (10,000 keys), multipart uploads with parts in flight together (and their
// abort: nothing visible), batch deletes of awkward names, and a missing bucket.
#include "storage/s3_object_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "testutil/s3rver.h"
#include "testutil/temp_dir.h"

namespace mlaas::storage {
namespace {

namespace fs = std::filesystem;
using mlaas::testing::TempDir;

class S3Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!mlaas::testing::HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
    dir_ = new TempDir();
    server_ = new mlaas::testing::S3rver();
    Status started = server_->Start(dir_->path(), {"test-bucket"});
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  static S3Options Options() {
    S3Options o;
    o.endpoint = server_->endpoint();
    o.access_key = "S3RVER";
    o.secret_key = "S3RVER";
    o.path_style = true;
    o.part_bytes = 5u << 20;
    o.read_chunk_bytes = 1u << 20;
    o.retries = 1;
    return o;
  }
  static std::string Pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
    return s;
  }
  static inline TempDir* dir_ = nullptr;
  static inline mlaas::testing::S3rver* server_ = nullptr;
};

TEST_F(S3Test, WritesReadsListsAndDeletesObjects) {
  S3ObjectStore s3(Options());
  EXPECT_EQ(*s3.KeyForPath("s3://test-bucket/data/a.csv"), "test-bucket/data/a.csv");
  EXPECT_FALSE(s3.KeyForPath("s3://Bad_Bucket/x").has_value());
  EXPECT_FALSE(s3.KeyForPath("s3://test-bucket/../x").has_value());
  ASSERT_TRUE(s3.PutString("test-bucket/data/a.csv", "text,label\nhello,pos\n").has_value());
  auto text = s3.GetString("test-bucket/data/a.csv");
  ASSERT_TRUE(text.has_value()) << text.error().ToString();
  EXPECT_EQ(*text, "text,label\nhello,pos\n");
  auto info = s3.Stat("test-bucket/data/a.csv");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->size, 21u);
  EXPECT_EQ(s3.Stat("test-bucket/data/none").error().code(), StatusCode::kNotFound);
  // A larger object read in ranged chunks, and after a seek.
  const std::string big = Pattern(3'500'000);
  ASSERT_TRUE(s3.PutString("test-bucket/blobs/big.bin", big).has_value());
  auto reader = s3.Open("test-bucket/blobs/big.bin");
  ASSERT_TRUE(reader.has_value());
  std::string back, buf(300'000, '\0');
  for (;;) {
    auto n = (*reader)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.has_value()) << n.error().ToString();
    if (*n == 0) break;
    back.append(buf.data(), *n);
  }
  EXPECT_TRUE(back == big);
  ASSERT_TRUE((*reader)->Seek(3'000'000).ok());
  auto n = (*reader)->Read(buf.data(), 10);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(std::string(buf.data(), *n), big.substr(3'000'000, 10));
  // Listings: prefix, delimiter, continuation.
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(s3.PutString("test-bucket/many/k" + std::to_string(100 + i), "x").has_value());
  ListOptions l;
  l.prefix = "test-bucket/many/";
  l.max_keys = 10;
  std::vector<std::string> keys;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = s3.List(l);
    ASSERT_TRUE(page.has_value()) << page.error().ToString();
    for (const auto& o : page->objects) keys.push_back(o.key);
    if (!page->is_truncated) break;
    l.continuation_token = page->next_continuation_token;
  }
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_EQ(keys.front(), "test-bucket/many/k100");
  ListOptions d;
  d.prefix = "test-bucket/";
  d.delimiter = "/";
  auto top = s3.List(d);
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(top->common_prefixes, (std::vector<std::string>{"test-bucket/blobs/", "test-bucket/data/", "test-bucket/many/"}));
  // Delete, and a delete of what is not there.
  ASSERT_TRUE(s3.Delete("test-bucket/data/a.csv").ok());
  EXPECT_EQ(s3.Stat("test-bucket/data/a.csv").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(s3.Delete("test-bucket/data/a.csv").code(), StatusCode::kNotFound);
  // Localize: a temporary local copy.
  auto local = s3.Localize("test-bucket/blobs/big.bin");
  ASSERT_TRUE(local.has_value());
  EXPECT_TRUE(local->temporary());
  EXPECT_EQ(fs::file_size(local->path()), big.size());
}

TEST_F(S3Test, MultipartUploadsCompleteOrLeaveNothing) {
  S3ObjectStore s3(Options());
  const std::string big = Pattern(12'000'000);  // three parts of 5 MiB at most
  {
    auto w = s3.Create("test-bucket/multi/model.safetensors");
    ASSERT_TRUE(w.has_value());
    for (size_t at = 0; at < big.size(); at += 1'000'000) ASSERT_TRUE((*w)->Write(std::string_view(big).substr(at, 1'000'000)).ok());
    auto info = (*w)->Commit();
    ASSERT_TRUE(info.has_value()) << info.error().ToString();
    EXPECT_EQ(info->size, big.size());
  }
  auto back = s3.GetString("test-bucket/multi/model.safetensors", 64u << 20);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_TRUE(*back == big);
  {  // not committed: aborted, nothing visible
    auto w = s3.Create("test-bucket/multi/partial.bin");
    ASSERT_TRUE(w.has_value());
    ASSERT_TRUE((*w)->Write(big).ok());
  }
  EXPECT_EQ(s3.Stat("test-bucket/multi/partial.bin").error().code(), StatusCode::kNotFound);
}

TEST_F(S3Test, PartsGoUpTogetherAndRangesComeDownInParallel) {
  S3Options o = Options();
  o.concurrency = 3;
  S3ObjectStore s3(o);
  const std::string big = Pattern(27'000'000);  // six parts of 5 MiB, three in flight at a time
  auto w = s3.Create("test-bucket/parallel/big.bin");
  ASSERT_TRUE(w.has_value());
  for (size_t at = 0; at < big.size(); at += 3'333'333)
    ASSERT_TRUE((*w)->Write(std::string_view(big).substr(at, 3'333'333)).ok());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  // Down in 1 MiB ranges, three threads writing at their offsets.
  auto stat = s3.Stat("test-bucket/parallel/big.bin");
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->size, big.size());
  EXPECT_FALSE(stat->etag.empty());
  EXPECT_EQ(stat->etag.find('"'), std::string::npos) << "ETags are kept without their quotes";
  TempDir local;
  ASSERT_TRUE(s3.Download(*stat, local.path() / "big.bin").ok());
  std::ifstream in(local.path() / "big.bin", std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == big) << "the parallel download differs";
  // A reader reads ahead; a seek mid-way throws the read-ahead away.
  auto r = s3.Open("test-bucket/parallel/big.bin");
  ASSERT_TRUE(r.has_value());
  std::string head(2'500'000, '\0');
  size_t have = 0;
  while (have < head.size()) {
    auto n = (*r)->Read(head.data() + have, head.size() - have);
    ASSERT_TRUE(n.has_value() && *n > 0);
    have += *n;
  }
  EXPECT_TRUE(head == big.substr(0, head.size()));
  ASSERT_TRUE((*r)->Seek(20'000'123).ok());
  std::string mid(100, '\0');
  ASSERT_EQ(*(*r)->Read(mid.data(), mid.size()), 100u);
  EXPECT_EQ(mid, big.substr(20'000'123, 100));
  // A stale ETag is refused, not mixed into the copy.
  ObjectInfo stale = *stat;
  stale.etag = "0123456789abcdef0123456789abcdef";
  auto refused = s3.Download(stale, local.path() / "stale.bin");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  EXPECT_FALSE(fs::exists(local.path() / "stale.bin"));
}

TEST_F(S3Test, BatchDeletesRemoveAwkwardNamesAndIgnoreMissingOnes) {
  S3ObjectStore s3(Options());
  const std::vector<std::string> keys = {"test-bucket/batch/a&b<c>.txt", "test-bucket/batch/quote\"'s.txt",
                                         "test-bucket/batch/space and ünïcode.txt", "test-bucket/batch/keep.txt"};
  for (const auto& k : keys) ASSERT_TRUE(s3.PutString(k, k).has_value()) << k;
  std::vector<std::string> gone(keys.begin(), keys.end() - 1);
  gone.push_back("test-bucket/batch/never-there.txt");
  ASSERT_TRUE(s3.DeleteMany(gone).ok());
  auto left = s3.List({.prefix = "test-bucket/batch/", .delimiter = "", .max_keys = 100, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(left.has_value());
  ASSERT_EQ(left->objects.size(), 1u);
  EXPECT_EQ(left->objects[0].key, "test-bucket/batch/keep.txt");
}

TEST_F(S3Test, AListingOfTenThousandKeysPagesThroughEveryOne) {
  S3ObjectStore s3(Options());
  constexpr int kKeys = 10'000;
  auto key = [](int i) {
    char name[64];
    std::snprintf(name, sizeof(name), "test-bucket/tenk/d%02d/k%05d", i % 7, i);
    return std::string(name);
  };
  std::vector<std::thread> writers;
  std::atomic<int> next{0}, failed{0};
  for (int t = 0; t < 8; ++t)
    writers.emplace_back([&] {
      for (int i; (i = next++) < kKeys;)
        if (!s3.PutString(key(i), "x").has_value()) ++failed;
    });
  for (auto& t : writers) t.join();
  ASSERT_EQ(failed.load(), 0);
  std::vector<std::string> expected;
  for (int i = 0; i < kKeys; ++i) expected.push_back(key(i));
  std::sort(expected.begin(), expected.end());
  std::vector<std::string> listed;
  ListOptions l{.prefix = "test-bucket/tenk/", .delimiter = "", .max_keys = 1000, .continuation_token = "", .start_after = ""};
  int pages = 0;
  for (;; ++pages) {
    auto page = s3.List(l);
    ASSERT_TRUE(page.has_value()) << page.error().ToString();
    for (const auto& o : page->objects) listed.push_back(o.key);
    if (!page->is_truncated) break;
    ASSERT_FALSE(page->next_continuation_token.empty());
    l.continuation_token = page->next_continuation_token;
  }
  EXPECT_EQ(pages + 1, kKeys / 1000);
  std::vector<std::string> extra;
  std::set_difference(listed.begin(), listed.end(), expected.begin(), expected.end(), std::back_inserter(extra));
  EXPECT_TRUE(listed == expected) << listed.size() << " keys listed; first unexpected: " << (extra.empty() ? "" : extra.front());
  // Rolled up by the delimiter: the seven directories.
  auto dirs = s3.List({.prefix = "test-bucket/tenk/", .delimiter = "/", .max_keys = 1000, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(dirs.has_value());
  EXPECT_EQ(dirs->common_prefixes.size(), 7u);
  EXPECT_TRUE(dirs->objects.empty());
  // And gone in ten batch requests.
  ASSERT_TRUE(s3.DeleteMany(listed).ok());
  auto after = s3.List({.prefix = "test-bucket/tenk/", .delimiter = "", .max_keys = 10, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->objects.empty());
}

// (s3rver does not check signatures, so wrong credentials are not tested here.)
TEST_F(S3Test, AMissingBucketIsAClearError) {
  S3ObjectStore s3(Options());
  auto missing = s3.List({.prefix = "no-such-bucket/", .delimiter = "", .max_keys = 10, .continuation_token = "", .start_after = ""});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound) << missing.error().ToString();
  EXPECT_NE(missing.error().message().find("NoSuchBucket"), std::string::npos) << missing.error().ToString();
  auto put = s3.PutString("no-such-bucket/x", "x");
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), StatusCode::kNotFound) << put.error().ToString();
}

}  // namespace
}  // namespace mlaas::storage
