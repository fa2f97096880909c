#include "metadata/catalog_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "metadata/backend_test.h"

namespace mlaas::metadata {
namespace {

using mlaas::testing::TempDir;

class CatalogStoreTest : public BackendTest {
 protected:
  std::unique_ptr<CatalogStore> Open() { return OpenWith(&OpenCatalogStore); }
};

INSTANTIATE_TEST_SUITE_P(Backends, CatalogStoreTest, ::testing::Values("sqlite", "postgresql"), BackendName);

CatalogEntryRecord Entry(const std::string& name, const std::string& owner, const std::string& visibility,
                         int64_t updated_ms = 1000) {
  CatalogEntryRecord e;
  e.kind = "model";
  e.name = name;
  e.owner = owner;
  e.visibility = visibility;
  e.created_ms = e.updated_ms = updated_ms;
  return e;
}

// Reserves and completes a version of `name`; returns its number.
int64_t AddVersion(CatalogStore& s, const std::string& name, int64_t now_ms = 2000) {
  auto n = s.ReserveVersion("model", name, "alice", now_ms);
  EXPECT_TRUE(n.has_value()) << n.error().ToString();
  CatalogVersionRecord v;
  v.kind = "model";
  v.name = name;
  v.version = *n;
  v.digest = "sha256:" + std::to_string(*n);
  v.files = {{"config.json", 10, std::string(64, 'a')}};
  v.size = 10;
  v.created_ms = now_ms;
  EXPECT_TRUE(s.CompleteVersion(v).ok());
  return *n;
}

TEST_P(CatalogStoreTest, EntriesAreUniquePerKindAndKeepTheirFields) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  auto e = Entry("bert-small", "alice", "private");
  e.tags = {"nlp", "demo"};
  e.description = "a small model";
  ASSERT_TRUE(s->CreateEntry(e).ok());
  const Status dup = s->CreateEntry(Entry("bert-small", "bob", "public"));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.field(), "name");
  auto dataset = Entry("bert-small", "bob", "public");
  dataset.kind = "dataset";
  EXPECT_TRUE(s->CreateEntry(dataset).ok()) << "a dataset may share a model's name";
  auto got = s->GetEntry("model", "bert-small");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->owner, "alice");
  EXPECT_EQ(got->tags, (std::vector<std::string>{"nlp", "demo"}));
  EXPECT_EQ(got->latest_version, 0);
  got->visibility = "public";
  got->description = "changed";
  ASSERT_TRUE(s->UpdateEntry(*got).ok());
  EXPECT_EQ(s->GetEntry("model", "bert-small")->visibility, "public");
  EXPECT_EQ(s->GetEntry("model", "nope").error().code(), StatusCode::kNotFound);
}

TEST_P(CatalogStoreTest, VersionsAreNumberedAndInvisibleUntilComplete) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->CreateEntry(Entry("m", "alice", "private")).ok());
  EXPECT_EQ(AddVersion(*s, "m"), 1);
  auto pending = s->ReserveVersion("model", "m", "alice", 3000);
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(*pending, 2);
  EXPECT_EQ(s->GetVersion("model", "m", 2).error().code(), StatusCode::kNotFound) << "still being copied";
  auto listed = s->ListVersions("model", "m");
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(listed->front().files.empty()) << "a listing counts the files, it does not read them";
  EXPECT_EQ(listed->front().file_count, 1);
  EXPECT_EQ(s->GetVersion("model", "m", 1)->files.size(), 1u);
  EXPECT_EQ(s->GetVersion("model", "m", 1)->file_count, 1);
  EXPECT_EQ(s->GetEntry("model", "m")->latest_version, 1);
  // A reservation a crash left is found and dropped; the next registration takes its number.
  auto stale = s->StaleReservations(4000);
  ASSERT_TRUE(stale.has_value());
  ASSERT_EQ(stale->size(), 1u);
  EXPECT_EQ((*stale)[0].version, 2);
  ASSERT_TRUE(s->DropVersion("model", "m", 2).ok());
  EXPECT_EQ(AddVersion(*s, "m"), 2);
  auto v = s->GetVersion("model", "m", 2);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->digest, "sha256:2");
  ASSERT_EQ(v->files.size(), 1u);
  EXPECT_EQ(v->files[0].path, "config.json");
  EXPECT_EQ(s->GetEntry("model", "m")->latest_version, 2);
  EXPECT_EQ(s->ReserveVersion("model", "nope", "alice", 1).error().code(), StatusCode::kNotFound);
  // Deleting the entry takes its versions along; the name registered again does not reuse
  // their numbers (nor their storage paths).
  ASSERT_TRUE(s->DeleteEntry("model", "m").ok());
  EXPECT_TRUE(s->ListVersions("model", "m")->empty());
  ASSERT_TRUE(s->CreateEntry(Entry("m", "bob", "private")).ok());
  EXPECT_EQ(AddVersion(*s, "m"), 3);
}

// Two movers of the same alias at once: every move is recorded, and the trail is a chain
// (each move starts where the one before it ended).
TEST_P(CatalogStoreTest, AliasMovesUnderConcurrencyLeaveAConsistentTrail) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->CreateEntry(Entry("m", "alice", "private")).ok());
  AddVersion(*s, "m");
  AddVersion(*s, "m");
  EXPECT_EQ(s->MoveAlias("model", "m", "champion", 3, "alice", 1).error().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->MoveAlias("model", "m", "champion", 0, "alice", 1).error().code(), StatusCode::kNotFound);
  constexpr int kMoves = 50;
  std::vector<std::thread> movers;
  for (int who = 0; who < 2; ++who) {
    movers.emplace_back([&, who] {
      // Each store connection is its own, as two server processes would have.
      auto mine = Open();
      for (int i = 0; i < kMoves; ++i) {
        auto e = mine->MoveAlias("model", "m", "champion", who + 1, who == 0 ? "alice" : "admin", 10 + i);
        EXPECT_TRUE(e.has_value()) << e.error().ToString();
      }
    });
  }
  for (auto& t : movers) t.join();
  auto events = s->AliasEvents("model", "m", 0, 1000);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->size(), 2u * kMoves);
  int64_t at = 0;
  for (const auto& e : *events) {
    EXPECT_EQ(e.from_version, at) << "move " << e.seq;
    at = e.to_version;
  }
  auto aliases = s->ListAliases("model", "m");
  ASSERT_EQ(aliases->size(), 1u);
  EXPECT_EQ((*aliases)[0].version, at);
  auto deleted = s->MoveAlias("model", "m", "champion", 0, "alice", 99);
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(deleted->from_version, at);
  EXPECT_EQ(deleted->to_version, 0);
  EXPECT_TRUE(s->ListAliases("model", "m")->empty());
  EXPECT_EQ(s->AliasEvents("model", "m", events->back().seq, 10)->size(), 1u);
}

TEST_P(CatalogStoreTest, ListingFiltersHidesOthersPrivateEntriesAndPagesWithACursor) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  for (int i = 0; i < 25; ++i) {
    auto e = Entry("m" + std::to_string(100 + i), i % 2 ? "alice" : "bob", i % 3 ? "public" : "private", 1000 + i % 7);
    e.tags = {i % 2 ? "odd" : "even"};
    e.description = i == 7 ? "the special 100% one" : "";
    e.objective = i < 10 ? "text-classification" : "masked-lm";
    ASSERT_TRUE(s->CreateEntry(e).ok());
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s->Count("model", "m110", CatalogCounter::kDownloads, 1).ok());
  ASSERT_TRUE(s->Count("model", "m120", CatalogCounter::kPredictions, 3).ok());

  auto all_pages = [&](CatalogQuery q) {
    std::vector<std::string> names;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = s->ListEntries(q);
      EXPECT_TRUE(page.has_value()) << page.error().ToString();
      for (const auto& e : page->entries) names.push_back(e.name);
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    return names;
  };
  for (CatalogSort sort : {CatalogSort::kRecent, CatalogSort::kPopular, CatalogSort::kName}) {
    CatalogQuery q{.kind = "model", .viewer = "alice", .sort = sort, .limit = 4};
    auto names = all_pages(q);
    // alice sees every public entry and her own private ones, each once.
    std::set<std::string> unique(names.begin(), names.end());
    EXPECT_EQ(unique.size(), names.size());
    size_t expected = 0;
    for (int i = 0; i < 25; ++i) expected += (i % 3 || i % 2) ? 1 : 0;
    EXPECT_EQ(names.size(), expected);
    if (sort == CatalogSort::kPopular) {
      EXPECT_EQ(names[0], "m110");
      EXPECT_EQ(names[1], "m120");
    }
    if (sort == CatalogSort::kName) {
      EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    }
  }
  EXPECT_EQ(all_pages({.kind = "model", .sees_all = true, .limit = 7}).size(), 25u);
  EXPECT_EQ(all_pages({.kind = "model", .text = "100%", .sees_all = true}), std::vector<std::string>{"m107"})
      << "LIKE's wildcards are matched literally";
  EXPECT_EQ(all_pages({.kind = "model", .text = "M12", .sees_all = true}).size(), 5u) << "case-insensitive";
  EXPECT_EQ(all_pages({.kind = "model", .objective = "text-classification", .tag = "odd", .sees_all = true}).size(), 5u);
  EXPECT_EQ(all_pages({.kind = "model", .owner = "bob", .visibility = "private", .viewer = "alice"}).size(), 0u);
  CatalogQuery bad{.kind = "model", .sort = CatalogSort::kName, .cursor = "garbage"};
  EXPECT_EQ(s->ListEntries(bad).error().field(), "cursor");
  // A cursor of one sort is refused by another.
  auto first = s->ListEntries({.kind = "model", .sees_all = true, .sort = CatalogSort::kRecent, .limit = 2});
  EXPECT_EQ(s->ListEntries({.kind = "model", .sees_all = true, .sort = CatalogSort::kName, .cursor = first->next_cursor})
                .error()
                .field(),
            "cursor");
}

}  // namespace
}  // namespace mlaas::metadata
