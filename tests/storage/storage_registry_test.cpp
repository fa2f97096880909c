#include "storage/storage_registry.h"

#include <gtest/gtest.h>

#include "storage/local_object_store.h"
#include "testutil/temp_dir.h"

namespace mlaas::storage {
namespace {

using nlohmann::json;

class StorageRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.Add(std::move(LocalObjectStore::Create(dir_ / "objects", dir_ / "tmp")).value());
  }
  mlaas::testing::TempDir dir_;
  StorageRegistry registry_;
};

TEST_F(StorageRegistryTest, ResolvesLocalBlocks) {
  auto ref = registry_.Resolve(json{{"path", "datasets/a.csv"}, {"storage_type", "local"}},
                               "dataset");
  ASSERT_TRUE(ref.has_value()) << ref.error().ToString();
  EXPECT_EQ(ref->key, "datasets/a.csv");
  EXPECT_EQ(ref->store->storage_type(), "local");
  // storage_type defaults to local.
  EXPECT_EQ(registry_.Resolve(json{{"path", "m/x"}}, "model")->key, "m/x");
}

TEST_F(StorageRegistryTest, ErrorsNameTheField) {
  auto bad_path = registry_.Resolve(json{{"path", "../../etc/passwd"}}, "dataset");
  EXPECT_EQ(bad_path.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_path.error().field(), "dataset.path");
  auto missing = registry_.Resolve(json{{"storage_type", "local"}}, "model_save");
  EXPECT_EQ(missing.error().field(), "model_save.path");
  auto s3 = registry_.Resolve(json{{"path", "b/k"}, {"storage_type", "s3"}}, "dataset");
  EXPECT_EQ(s3.error().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s3.error().field(), "dataset.storage_type");
  auto hub = registry_.Resolve(json{{"path", "bert-base-uncased"},
                                    {"storage_type", "hugging_face_hub"}}, "model");
  EXPECT_EQ(hub.error().code(), StatusCode::kUnimplemented);
  auto ftp = registry_.Resolve(json{{"path", "x"}, {"storage_type", "ftp"}}, "dataset");
  EXPECT_EQ(ftp.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ftp.error().field(), "dataset.storage_type");
}

}  // namespace
}  // namespace mlaas::storage
