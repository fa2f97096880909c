#include "tasks/leftovers.h"

#include <gtest/gtest.h>

#include <sys/time.h>

#include "common/time_util.h"
#include "tasks/task_manager.h"
#include "testutil/temp_dir.h"

namespace mlaas::tasks {
namespace {

namespace fs = std::filesystem;
using metadata::TaskState;
using mlaas::testing::TempDir;
using nlohmann::json;

// Sets the modification time of `p` (itself, not a link's target) to `ms`.
void Touch(const fs::path& p, int64_t ms) {
  struct timeval tv[2];
  tv[0].tv_sec = tv[1].tv_sec = ms / 1000;
  tv[0].tv_usec = tv[1].tv_usec = (ms % 1000) * 1000;
  ASSERT_EQ(::lutimes(p.c_str(), tv), 0) << p;
}

class LeftoversTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(metadata::OpenTaskStore({(dir_ / "mlaas.db").string(), nullptr})).value();
    fs::create_directories(tmp_);
    fs::create_directories(checkpoints_);
  }

  std::string Task(TaskState end) {
    // A type of its own, so that the claim below takes this task and no other.
    auto t = store_->Create({"t" + std::to_string(++tasks_), json::object(), 3}).value();
    if (end == TaskState::kQueued) return t.id;
    EXPECT_TRUE(store_->ClaimNext(owner_, {t.type}, 600'000)->has_value());
    if (end != TaskState::kRunning) {
      EXPECT_TRUE(store_->Finish(t.id, owner_, end, json(), json()).ok());
    }
    return t.id;
  }
  fs::path Checkpoint(const std::string& id) { return dir_.Write("checkpoints/" + id + "/current/state.json", "{}").parent_path().parent_path(); }

  TempDir dir_;
  fs::path tmp_ = dir_ / "tmp", checkpoints_ = dir_ / "checkpoints";
  std::unique_ptr<metadata::TaskStore> store_;
  int tasks_ = 0;
  std::string owner_ = "some-other-host:1:1";  // alive for all we know: only its lease tells
};

TEST_F(LeftoversTest, RemovesCheckpointsOfEndedAndUnknownTasksOnly) {
  const auto queued = Checkpoint(Task(TaskState::kQueued));
  const auto running = Checkpoint(Task(TaskState::kRunning));
  const auto succeeded = Checkpoint(Task(TaskState::kSucceeded));
  const auto failed = Checkpoint(Task(TaskState::kFailed));
  const auto cancelled = Checkpoint(Task(TaskState::kCancelled));
  const auto unknown = Checkpoint("00000000-0000-4000-8000-000000000000");
  auto r = SweepLeftovers(*store_, {.checkpoint_root = checkpoints_, .before_ms = NowMs()});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->checkpoints_removed, 4);
  EXPECT_TRUE(fs::exists(queued / "current/state.json"));
  EXPECT_TRUE(fs::exists(running / "current/state.json"));
  for (const auto& p : {succeeded, failed, cancelled, unknown}) EXPECT_FALSE(fs::exists(p)) << p;
}

TEST_F(LeftoversTest, RemovesTemporaryFilesOlderThanTheStart) {
  const int64_t start = NowMs();
  const auto old_file = dir_.Write("tmp/put-1234", "partial upload");
  const auto old_dir = dir_.Write("tmp/train-abc/model.safetensors", "weights").parent_path();
  const auto new_file = dir_.Write("tmp/put-5678", "upload of this process");
  Touch(old_file, start - 60'000);
  Touch(old_dir, start - 60'000);
  Touch(new_file, start + 1000);
  // A link into the objects is removed itself, never what it leads to.
  const auto target = dir_.Write("objects/keep.csv", "a\n1\n");
  fs::create_symlink(target, tmp_ / "link");
  Touch(tmp_ / "link", start - 60'000);

  auto r = SweepLeftovers(*store_, {.tmp_dir = tmp_, .before_ms = start});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_FALSE(r->tmp_skipped);
  EXPECT_EQ(r->tmp_removed, 3);
  EXPECT_FALSE(fs::exists(old_file));
  EXPECT_FALSE(fs::exists(old_dir));
  EXPECT_FALSE(fs::is_symlink(tmp_ / "link"));
  EXPECT_TRUE(fs::exists(new_file));
  EXPECT_TRUE(fs::exists(target));
}

// An atomic write interrupted by a crash leaves `<name>.tmp-<8 hex>` beside the object.
TEST_F(LeftoversTest, RemovesHalfWrittenObjectsOlderThanTheStart) {
  const int64_t start = NowMs();
  const auto partial = dir_.Write("objects/stores/s/index.faiss.tmp-0a1b2c3d", "half an index");
  const auto fresh = dir_.Write("objects/stores/s/manifest.json.tmp-99aa88bb", "being written now");
  const auto object = dir_.Write("objects/stores/s/index.faiss", "the index");
  const auto lookalike = dir_.Write("objects/data/report.tmp-notes", "a user's file");
  const auto lookalike2 = dir_.Write("objects/data/x.tmp-0a1b2c3", "seven digits");
  for (const auto& p : {partial, object, lookalike, lookalike2}) Touch(p, start - 60'000);
  Touch(fresh, start + 1000);
  auto r = SweepLeftovers(*store_, {.objects_dir = dir_ / "objects", .before_ms = start});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->partial_objects_removed, 1);
  EXPECT_FALSE(fs::exists(partial));
  for (const auto& p : {fresh, object, lookalike, lookalike2}) EXPECT_TRUE(fs::exists(p)) << p;
}

TEST_F(LeftoversTest, LeavesTemporaryFilesAloneWhileALiveProcessRunsATask) {
  const int64_t start = NowMs();
  const auto old_file = dir_.Write("tmp/index-1", "being built by a worker");
  Touch(old_file, start - 60'000);
  Task(TaskState::kRunning);  // held under a current lease by another process
  auto r = SweepLeftovers(*store_, {.tmp_dir = tmp_, .checkpoint_root = checkpoints_, .before_ms = start});
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->tmp_skipped);
  EXPECT_TRUE(fs::exists(old_file));

  // A task held by a dead process of this host does not count: the sweep goes ahead.
  TempDir other;
  auto store2 = std::move(metadata::OpenTaskStore({(other / "db").string(), nullptr})).value();
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  const std::string dead = std::string(host) + ":999999999:12345";
  ASSERT_TRUE(TaskManager::OwnerIsDead(dead));
  ASSERT_TRUE(store2->Create({"x", json::object(), 3}).has_value());
  ASSERT_TRUE(store2->ClaimNext(dead, {"x"}, 600'000)->has_value());
  r = SweepLeftovers(*store2, {.tmp_dir = tmp_, .before_ms = start});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->tmp_skipped);
  EXPECT_FALSE(fs::exists(old_file));
}

TEST_F(LeftoversTest, MissingDirectoriesAreNotAnError) {
  auto r = SweepLeftovers(*store_, {.tmp_dir = dir_ / "none", .checkpoint_root = dir_ / "nope", .before_ms = NowMs()});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->tmp_removed + r->checkpoints_removed, 0);
}

}  // namespace
}  // namespace mlaas::tasks
