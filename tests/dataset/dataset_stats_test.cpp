#include "dataset/dataset_stats.h"

#include <gtest/gtest.h>

#include "storage/local_object_store.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::dataset {
namespace {

using nlohmann::json;

TEST(ColumnStatsTest, CountsLengthsTokensAndNumbers) {
  ColumnStats c("x");
  c.Add("hello world", false);
  c.Add("", false);
  c.Add("3.5", false);
  c.Add("-1", false);
  c.Add("caf\xC3\xA9", false);
  c.Add("", true);
  json j = c.ToJson();
  EXPECT_EQ(j["non_empty"], 4);
  EXPECT_EQ(j["empty"], 2);
  EXPECT_EQ(j["characters"], 11 + 3 + 2 + 4);
  EXPECT_EQ(j["min_length"], 2);
  EXPECT_EQ(j["max_length"], 11);
  EXPECT_EQ(j["tokens"], 5);
  EXPECT_EQ(j["numeric"]["count"], 2);
  EXPECT_EQ(j["numeric"]["min"], -1.0);
  EXPECT_EQ(j["numeric"]["max"], 3.5);
  EXPECT_EQ(j["distinct"], 4);
  EXPECT_FALSE(j["distinct_is_estimate"]);
}

TEST(ColumnStatsTest, TopValuesAreMostFrequentFirst) {
  ColumnStats c("label");
  for (int i = 0; i < 5; ++i) c.Add("BA", false);
  for (int i = 0; i < 2; ++i) c.Add("[NoSite]", false);
  c.Add("LNF", false);
  json top = c.ToJson()["top_values"];
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], json({{"value", "BA"}, {"count", 5}}));
  EXPECT_EQ(top[1]["value"], "[NoSite]");
  // A cell of megabytes is shown cut (a task's result is stored, listed and streamed).
  for (int i = 0; i < 3; ++i) c.Add(std::string(5 << 20, 'x'), false);
  top = c.ToJson()["top_values"];
  EXPECT_EQ(top[1]["value"], std::string(256, 'x') + "...");
  EXPECT_EQ(top[1]["count"], 3);
  EXPECT_LT(c.ToJson().dump().size(), 2000u);
}

TEST(ColumnStatsTest, EstimatesDistinctCountsOfLargeColumns) {
  ColumnStats c("id");
  const int n = 50000;
  for (int i = 0; i < n; ++i) c.Add("id-" + std::to_string(i), false);
  for (int i = 0; i < n; ++i) c.Add("id-" + std::to_string(i), false);  // duplicates
  json j = c.ToJson();
  EXPECT_TRUE(j["distinct_is_estimate"]);
  double est = j["distinct"].get<double>();
  EXPECT_NEAR(est, n, n * 0.06);  // 4096 registers: ~1.6% standard error
  EXPECT_FALSE(j.contains("top_values"));
}

class DatasetStatsTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.Add(std::move(storage::LocalObjectStore::Create(dir_ / "objects", dir_ / "tmp"))
                      .value());
    store_ = std::move(metadata::OpenTaskStore({(dir_ / "db.sqlite").string(), nullptr})).value();
    tasks::TaskManagerOptions o;
    o.poll_interval_ms = 20;
    manager_ = std::make_unique<tasks::TaskManager>(*store_, o);
    manager_->Register(kDatasetStatsTask, MakeDatasetStatsHandler(registry_));
    ASSERT_TRUE(manager_->Start().ok());
  }

  metadata::TaskRecord Run(const json& params) {
    auto t = manager_->Submit(kDatasetStatsTask, params);
    EXPECT_TRUE(t.has_value());
    EXPECT_TRUE(mlaas::testing::WaitFor([&] {
      return metadata::IsTerminal(store_->Get(t->id)->state);
    }));
    return *store_->Get(t->id);
  }

  void Put(const std::string& key, const std::string& data) {
    ASSERT_TRUE((*registry_.Get("local"))->PutString(key, data).has_value());
  }

  mlaas::testing::TempDir dir_;
  storage::StorageRegistry registry_;
  std::unique_ptr<metadata::TaskStore> store_;
  std::unique_ptr<tasks::TaskManager> manager_;
};

TEST_F(DatasetStatsTaskTest, ReportsRowsColumnsAndTokens) {
  Put("datasets/aff.csv",
      "text,label\n"
      "\"Bari INFN, Via E Orabona 4, I-70125 Bari, Italy\",BA\n"
      "\"INAF IASF Milano, Italy\",[NoSite]\n"
      "\"Frascati Natl Lab INFN LNF\",LNF\n");
  auto t = Run(json{{"dataset", {{"path", "datasets/aff.csv"}, {"storage_type", "local"}}}});
  ASSERT_EQ(t.state, metadata::TaskState::kSucceeded) << t.error.dump();
  const json& d = t.result["dataset"];
  EXPECT_EQ(d["rows"], 3);
  EXPECT_EQ(d["format"], "csv");
  EXPECT_EQ(d["path"], "datasets/aff.csv");
  ASSERT_EQ(d["columns"].size(), 2u);
  EXPECT_EQ(d["columns"][0]["name"], "text");
  EXPECT_EQ(d["columns"][0]["tokens"], 9 + 4 + 5);
  EXPECT_EQ(d["columns"][1]["distinct"], 3);
  EXPECT_EQ(d["tokens"], 18 + 3);
  EXPECT_EQ(t.progress["fraction"], 1.0);
}

TEST_F(DatasetStatsTaskTest, SelectsColumnsOfJsonl) {
  Put("d.jsonl", "{\"abstract\": \"a b c\", \"id\": 1}\n{\"abstract\": \"d\", \"id\": 2}\n");
  auto t = Run(json{{"dataset", {{"path", "d.jsonl"},
                                 {"loader_kwargs", {{"columns", {"abstract"}}}}}}});
  ASSERT_EQ(t.state, metadata::TaskState::kSucceeded) << t.error.dump();
  EXPECT_EQ(t.result["dataset"]["columns"].size(), 1u);
  EXPECT_EQ(t.result["dataset"]["tokens"], 4);
}

TEST_F(DatasetStatsTaskTest, FailsClearlyOnBadData) {
  Put("bad.csv", "a,b\n1,2\n3\n");
  auto bad = Run(json{{"dataset", {{"path", "bad.csv"}}}});
  EXPECT_EQ(bad.state, metadata::TaskState::kFailed);
  EXPECT_EQ(bad.error["code"], "invalid_argument");
  EXPECT_EQ(bad.error["field"], "dataset.path");
  EXPECT_NE(bad.error["message"].get<std::string>().find("line 3"), std::string::npos);

  auto missing = Run(json{{"dataset", {{"path", "nope.csv"}}}});
  EXPECT_EQ(missing.state, metadata::TaskState::kFailed);
  EXPECT_EQ(missing.error["code"], "not_found");

  auto escape = Run(json{{"dataset", {{"path", "../../etc/passwd"}}}});
  EXPECT_EQ(escape.state, metadata::TaskState::kFailed);
  EXPECT_EQ(escape.error["field"], "dataset.path");
}

}  // namespace
}  // namespace mlaas::dataset
