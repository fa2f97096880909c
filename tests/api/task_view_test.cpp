#include "api/task_view.h"

#include <gtest/gtest.h>

namespace mlaas::api {
namespace {

using nlohmann::json;

metadata::TaskRecord Finished() {
  metadata::TaskRecord t;
  t.id = "0751bf4c-95f7-4463-bc47-dd901561e1df";
  t.type = "nlp_train_model";
  t.state = metadata::TaskState::kSucceeded;
  t.submitted_ms = 1694586648000;                          // 2023-09-13T06:30:48
  t.started_ms = t.submitted_ms + 1000;
  t.finished_ms = t.started_ms + (86400 + 2 * 3600 + 20 * 60 + 31) * 1000LL;
  t.attempts = 1;
  t.max_attempts = 3;
  t.params = {{"model", {{"path", "m"}}}};
  t.result = {{"history", {{"loss", {1.67, 1.46}}, {"accuracy", {0.67, 0.70}}}},
              {"evaluation", {{"loss", 1.16}, {"accuracy", 0.76}}},
              {"dataset", {{"samples_train", 51227}}},
              {"stats", {{"tokens_per_second", 1900}, {"device", "cpu"}}},
              {"task_status", "must not override"}};
  return t;
}

TEST(TaskViewTest, HasTheSpecTrainingOutputShape) {
  json v = TaskToJson(Finished(), 0, false);
  EXPECT_EQ(v["task_id"], "0751bf4c-95f7-4463-bc47-dd901561e1df");
  EXPECT_EQ(v["task_status"], "succeeded");
  EXPECT_EQ(v["stats"]["submitted"], "2023-09-13T06:30:48");
  EXPECT_EQ(v["stats"]["elapsed"], "1 day, 2:20:31");
  EXPECT_EQ(v["stats"]["tokens_per_second"], 1900);  // result stats join the task's stats
  EXPECT_EQ(v["stats"]["device"], "cpu");
  EXPECT_EQ(v["history"]["loss"], json({1.67, 1.46}));
  EXPECT_EQ(v["evaluation"]["accuracy"], 0.76);
  EXPECT_EQ(v["dataset"]["samples_train"], 51227);
  EXPECT_FALSE(v.contains("request"));
  EXPECT_EQ(TaskToJson(Finished(), 0, true)["request"]["model"]["path"], "m");
}

TEST(TaskViewTest, RunningTasksCountElapsedToNow) {
  metadata::TaskRecord t;
  t.id = "x";
  t.state = metadata::TaskState::kRunning;
  t.submitted_ms = 1000;
  t.started_ms = 2000;
  t.cancel_requested = true;
  json v = TaskToJson(t, 2000 + 65'000, false);
  EXPECT_EQ(v["stats"]["elapsed"], "0:01:05");
  EXPECT_TRUE(v["cancel_requested"]);
  EXPECT_FALSE(v["stats"].contains("finished"));

  metadata::TaskRecord queued;
  queued.submitted_ms = 1000;
  EXPECT_EQ(TaskToJson(queued, 99'000, false)["stats"]["elapsed"], "0:00:00");
}

}  // namespace
}  // namespace mlaas::api
