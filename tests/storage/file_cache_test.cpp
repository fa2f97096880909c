// The bounded cache of remote objects' bytes: hits and misses by key and ETag, least recently
// used out, objects larger than the bound never kept, one fetch for concurrent askers, private
// copies that survive eviction, and what a restart finds.
#include "storage/file_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "testutil/temp_dir.h"

namespace mlaas::storage {
namespace {

namespace fs = std::filesystem;
using mlaas::testing::TempDir;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Origin {
  std::atomic<int> fetches{0};
  // Writes `content` as the object's bytes.
  std::function<Status(const fs::path&)> Serve(const std::string& content) {
    return [this, content](const fs::path& file) {
      ++fetches;
      std::ofstream(file, std::ios::binary) << content;
      return Status::Ok();
    };
  }
};

ObjectInfo Info(const std::string& key, const std::string& etag, uint64_t size) { return ObjectInfo{key, size, 0, etag}; }

TEST(FileCacheTest, HitsByKeyAndEtagAndEvictsTheLeastRecentlyUsed) {
  TempDir dir;
  auto cache = FileCache::Open(dir.path() / "cache", 250);
  ASSERT_TRUE(cache.has_value());
  Origin origin;
  const std::string a(100, 'a'), b(100, 'b'), c(100, 'c');
  {
    auto first = (*cache)->Get(Info("m/a", "e1", 100), origin.Serve(a));
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(ReadAll(first->path()), a);
    EXPECT_TRUE(first->temporary()) << "the caller owns its copy";
  }
  ASSERT_TRUE((*cache)->Get(Info("m/a", "e1", 100), origin.Serve(a)).has_value());
  EXPECT_EQ(origin.fetches.load(), 1) << "a hit";
  // A new ETag is a new object.
  ASSERT_TRUE((*cache)->Get(Info("m/a", "e2", 100), origin.Serve(b)).has_value());
  EXPECT_EQ(origin.fetches.load(), 2);
  // a@e1 was used before a@e2: a third entry evicts it.
  ASSERT_TRUE((*cache)->Get(Info("m/c", "e1", 100), origin.Serve(c)).has_value());
  EXPECT_EQ(origin.fetches.load(), 3);
  const FileCacheStats st = (*cache)->stats();
  EXPECT_EQ(st.entries, 2u);
  EXPECT_LE(st.bytes, 250u);
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_EQ(st.hits, 1u);
  auto again = (*cache)->Get(Info("m/a", "e2", 100), origin.Serve(b));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(ReadAll(again->path()), b);
  EXPECT_EQ(origin.fetches.load(), 3) << "a@e2 was kept";
  ASSERT_TRUE((*cache)->Get(Info("m/a", "e1", 100), origin.Serve(a)).has_value());
  EXPECT_EQ(origin.fetches.load(), 4) << "a@e1 had been evicted";
}

TEST(FileCacheTest, ACopyOutlivesItsEvictionAndLargeObjectsAreNotKept) {
  TempDir dir;
  auto cache = FileCache::Open(dir.path() / "cache", 150);
  ASSERT_TRUE(cache.has_value());
  Origin origin;
  auto held = (*cache)->Get(Info("x", "1", 100), origin.Serve(std::string(100, 'x')));
  ASSERT_TRUE(held.has_value());
  ASSERT_TRUE((*cache)->Get(Info("y", "1", 100), origin.Serve(std::string(100, 'y'))).has_value());  // evicts x
  EXPECT_EQ((*cache)->stats().evictions, 1u);
  EXPECT_EQ(ReadAll(held->path()), std::string(100, 'x')) << "a load in progress keeps its bytes";
  // Larger than the whole cache: fetched for the caller only.
  auto big = (*cache)->Get(Info("big", "1", 1000), origin.Serve(std::string(1000, 'z')));
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(fs::file_size(big->path()), 1000u);
  EXPECT_EQ((*cache)->stats().entries, 1u);
  const fs::path copy = big->path();
  { auto gone = std::move(big).value(); }
  EXPECT_FALSE(fs::exists(copy)) << "the caller's copy goes with it";
}

TEST(FileCacheTest, ConcurrentAskersShareOneFetchAndFailuresKeepNothing) {
  TempDir dir;
  auto cache = FileCache::Open(dir.path() / "cache", 1 << 20);
  ASSERT_TRUE(cache.has_value());
  std::atomic<int> fetches{0};
  auto slow = [&](const fs::path& file) {
    ++fetches;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::ofstream(file, std::ios::binary) << "weights";
    return Status::Ok();
  };
  std::vector<std::thread> askers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    askers.emplace_back([&] {
      auto got = (*cache)->Get(Info("model.safetensors", "e", 7), slow);
      if (got.has_value() && ReadAll(got->path()) == "weights") ++ok;
    });
  for (auto& t : askers) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(fetches.load(), 1);
  auto failed = (*cache)->Get(Info("broken", "e", 5), [](const fs::path&) { return Unavailable("the origin went away"); });
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*cache)->stats().entries, 1u);
}

TEST(FileCacheTest, ARestartFindsTheEntriesAndDropsHalfWrittenOnes) {
  TempDir dir;
  Origin origin;
  {
    auto cache = FileCache::Open(dir.path() / "cache", 1000);
    ASSERT_TRUE(cache.has_value());
    ASSERT_TRUE((*cache)->Get(Info("k", "e", 3), origin.Serve("abc")).has_value());
  }
  // What a crashed process left: its session folder (links, a half-written fetch), unlocked.
  fs::create_directories(dir.path() / "cache" / "session-crashed");
  std::ofstream(dir.path() / "cache" / "session-crashed" / "partial-fetch") << "half";
  auto cache = FileCache::Open(dir.path() / "cache", 1000);
  ASSERT_TRUE(cache.has_value());
  EXPECT_EQ((*cache)->stats().entries, 1u);
  EXPECT_EQ((*cache)->stats().bytes, 3u);
  EXPECT_FALSE(fs::exists(dir.path() / "cache" / "session-crashed"));
  auto hit = (*cache)->Get(Info("k", "e", 3), origin.Serve("abc"));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(origin.fetches.load(), 1) << "kept across the restart";
  // Another process on the same directory (a worker beside the server) with a smaller bound
  // evicts down to it, but the first one's copies stay readable and its next ask is a miss,
  // not an error.
  auto smaller = FileCache::Open(dir.path() / "cache", 2);
  ASSERT_TRUE(smaller.has_value());
  EXPECT_EQ((*smaller)->stats().entries, 0u);
  EXPECT_EQ(ReadAll(hit->path()), "abc") << "a live session's copies survive another's start";
  auto refetched = (*cache)->Get(Info("k", "e", 3), origin.Serve("abc"));
  ASSERT_TRUE(refetched.has_value()) << refetched.error().ToString();
  EXPECT_EQ(ReadAll(refetched->path()), "abc");
  EXPECT_EQ(origin.fetches.load(), 2);
}

}  // namespace
}  // namespace mlaas::storage
