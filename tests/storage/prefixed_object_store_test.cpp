// A store seen under a prefix of another: keys, listings and paths without the root, errors
// for keys that are not keys. Over a local store here (the server runs it over S3).
#include "storage/prefixed_object_store.h"

#include <gtest/gtest.h>

#include "storage/local_object_store.h"
#include "testutil/temp_dir.h"

namespace mlaas::storage {
namespace {

using mlaas::testing::TempDir;

TEST(PrefixedObjectStoreTest, KeysAndListingsAreRelativeToTheRoot) {
  TempDir dir;
  auto local = LocalObjectStore::Create(dir.path() / "objects", dir.path() / "tmp");
  ASSERT_TRUE(local.has_value());
  LocalObjectStore* inner = local->get();
  PrefixedObjectStore store(std::move(local).value(), "lab/platform/", "local");
  EXPECT_EQ(store.storage_type(), "local");
  auto put = store.PutString("models/m/config.json", "{}");
  ASSERT_TRUE(put.has_value());
  EXPECT_EQ(put->key, "models/m/config.json");
  EXPECT_TRUE(inner->Stat("lab/platform/models/m/config.json").has_value());
  ASSERT_TRUE(store.PutString("models/m/model.safetensors", "w").has_value());
  ASSERT_TRUE(store.PutString("data/a.csv", "a").has_value());
  EXPECT_EQ(*store.GetString("data/a.csv"), "a");
  auto stat = store.Stat("models/m/config.json");
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->key, "models/m/config.json");
  auto reader = store.Open("data/a.csv");
  ASSERT_TRUE(reader.has_value());
  EXPECT_EQ((*reader)->info().key, "data/a.csv");

  auto top = store.List({.prefix = "", .delimiter = "/", .max_keys = 100, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(top->common_prefixes, (std::vector<std::string>{"data/", "models/"}));
  auto files = store.List({.prefix = "models/", .delimiter = "", .max_keys = 1, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(files.has_value());
  ASSERT_EQ(files->objects.size(), 1u);
  EXPECT_EQ(files->objects[0].key, "models/m/config.json");
  ASSERT_TRUE(files->is_truncated);
  auto next = store.List({.prefix = "models/", .delimiter = "", .max_keys = 1, .continuation_token = files->next_continuation_token,
                          .start_after = ""});
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(next->objects.size(), 1u);
  EXPECT_EQ(next->objects[0].key, "models/m/model.safetensors");
  auto after = store.List({.prefix = "", .delimiter = "", .max_keys = 10, .continuation_token = "", .start_after = "data/a.csv"});
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->objects.size(), 2u);

  ASSERT_TRUE(store.DeleteMany({"models/m/config.json", "models/m/model.safetensors", "models/m/never"}).ok());
  EXPECT_FALSE(inner->Stat("lab/platform/models/m/config.json").has_value());
  ASSERT_TRUE(store.Delete("data/a.csv").ok());
  EXPECT_EQ(store.Delete("data/a.csv").code(), StatusCode::kNotFound);
}

TEST(PrefixedObjectStoreTest, PathsAreKeysUnderTheRootAndNothingElse) {
  TempDir dir;
  auto local = LocalObjectStore::Create(dir.path() / "objects", dir.path() / "tmp");
  ASSERT_TRUE(local.has_value());
  PrefixedObjectStore store(std::move(local).value(), "root/", "local");
  EXPECT_EQ(*store.KeyForPath("models/m/"), "models/m");
  EXPECT_EQ(*store.KeyForPath("./data/a.csv"), "data/a.csv");
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../b", "a//b", ".", "\xff\xfe"})
    EXPECT_FALSE(store.KeyForPath(bad).has_value()) << bad;
  EXPECT_FALSE(store.Stat("../root-sibling").has_value());
  EXPECT_FALSE(store.PutString("a/../../escape", "x").has_value());
}

}  // namespace
}  // namespace mlaas::storage
