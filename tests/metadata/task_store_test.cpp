#include "metadata/task_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "metadata/pg_db.h"
#include "metadata/sqlite_db.h"
#include "testutil/postgres_server.h"
#include "testutil/temp_dir.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;
using mlaas::testing::TempDir;

// Every test runs on both backends: SQLite in a temporary file, and a database of its own on a
// PostgreSQL 15 server started for the suite on loopback (tests/testutil/postgres_server.h).
class TaskStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      auto url = testing::FreshTestDatabase();
      ASSERT_TRUE(url.has_value()) << url.error().ToString();
      url_ = *url;
    } else {
      url_ = (dir_ / "mlaas.db").string();
    }
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<TaskStore> Open() {
    StoreOptions o;
    o.url = url_;
    o.now_ms = [this] { return now_.load(); };
    auto s = OpenTaskStore(o);
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    return s.has_value() ? std::move(s).value() : nullptr;
  }

  TaskRecord Submit(const std::string& type = "dataset_stats", int max_attempts = 3) {
    auto t = store_->Create({type, json{{"n", 1}}, max_attempts});
    EXPECT_TRUE(t.has_value());
    return *t;
  }

  TempDir dir_;
  std::string url_;
  std::atomic<int64_t> now_{1'000'000};
  std::unique_ptr<TaskStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, TaskStoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_P(TaskStoreTest, CreateAndGet) {
  TaskRecord t = Submit();
  EXPECT_EQ(t.state, TaskState::kQueued);
  EXPECT_EQ(t.type, "dataset_stats");
  EXPECT_EQ(t.params, json({{"n", 1}}));
  EXPECT_EQ(t.submitted_ms, 1'000'000);
  EXPECT_EQ(t.attempts, 0);
  EXPECT_EQ(t.max_attempts, 3);
  auto got = store_->Get(t.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, t.id);
  EXPECT_EQ(store_->Get("nope").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Create({"", {}, 1}).error().code(), StatusCode::kInvalidArgument);
}

TEST_P(TaskStoreTest, FullLifecycle) {
  TaskRecord t = Submit();
  auto claimed = store_->ClaimNext("w1", {"dataset_stats"}, 30'000);
  ASSERT_TRUE(claimed.has_value() && claimed->has_value());
  EXPECT_EQ((*claimed)->id, t.id);
  EXPECT_EQ((*claimed)->state, TaskState::kRunning);
  EXPECT_EQ((*claimed)->attempts, 1);
  EXPECT_EQ((*claimed)->lease_owner, "w1");
  EXPECT_EQ((*claimed)->lease_expires_ms, 1'030'000);

  now_ += 1000;
  json progress = {{"fraction", 0.5}, {"message", "half"}};
  auto hb = store_->Heartbeat(t.id, "w1", 30'000, &progress);
  ASSERT_TRUE(hb.has_value());
  EXPECT_FALSE(*hb);
  EXPECT_EQ(store_->Get(t.id)->progress, progress);
  EXPECT_EQ(store_->Get(t.id)->updated_ms, 1'001'000);
  // Another worker cannot touch it.
  EXPECT_EQ(store_->Heartbeat(t.id, "w2", 30'000, nullptr).error().code(),
            StatusCode::kFailedPrecondition);

  now_ += 1000;
  ASSERT_TRUE(store_->Finish(t.id, "w1", TaskState::kSucceeded, json{{"rows", 3}}, json()).ok());
  auto done = store_->Get(t.id);
  EXPECT_EQ(done->state, TaskState::kSucceeded);
  EXPECT_EQ(done->result, json({{"rows", 3}}));
  EXPECT_EQ(done->finished_ms, 1'002'000);
  EXPECT_TRUE(done->lease_owner.empty());
  EXPECT_EQ(store_->Finish(t.id, "w1", TaskState::kFailed, json(), json()).code(),
            StatusCode::kFailedPrecondition);
}

TEST_P(TaskStoreTest, ClaimsOldestFirstAndOnlyKnownTypes) {
  TaskRecord a = Submit("a");
  TaskRecord b = Submit("b");
  TaskRecord c = Submit("a");
  EXPECT_FALSE(store_->ClaimNext("w", {"zzz"}, 1000)->has_value());
  EXPECT_EQ((*store_->ClaimNext("w", {"a", "b"}, 1000))->id, a.id);
  EXPECT_EQ((*store_->ClaimNext("w", {"b"}, 1000))->id, b.id);
  EXPECT_EQ((*store_->ClaimNext("w", {"a"}, 1000))->id, c.id);
  EXPECT_FALSE(store_->ClaimNext("w", {"a", "b"}, 1000)->has_value());
}

TEST_P(TaskStoreTest, ConcurrentClaimsNeverDoubleClaim) {
  for (int i = 0; i < 60; ++i) Submit();
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::vector<std::thread> workers;
  // Two store instances on one file: as two processes would share it.
  auto other = Open();
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      TaskStore* s = (w % 2 == 0) ? store_.get() : other.get();
      for (;;) {
        auto t = s->ClaimNext("w" + std::to_string(w), {"dataset_stats"}, 1000);
        ASSERT_TRUE(t.has_value()) << t.error().ToString();
        if (!t->has_value()) break;
        std::lock_guard lock(mu);
        claimed.insert((*t)->id);
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(claimed.size(), 60u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), 60u);
}

TEST_P(TaskStoreTest, CancelQueuedRunningAndFinished) {
  TaskRecord queued = Submit();
  auto c1 = store_->RequestCancel(queued.id);
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(c1->state, TaskState::kCancelled);
  EXPECT_GT(c1->finished_ms, 0);
  EXPECT_EQ(c1->error["code"], "cancelled");
  // A cancelled task is never claimed.
  EXPECT_FALSE(store_->ClaimNext("w", {"dataset_stats"}, 1000)->has_value());

  TaskRecord running = Submit();
  ASSERT_TRUE(store_->ClaimNext("w", {"dataset_stats"}, 1000)->has_value());
  auto c2 = store_->RequestCancel(running.id);
  EXPECT_EQ(c2->state, TaskState::kRunning);
  EXPECT_TRUE(c2->cancel_requested);
  EXPECT_TRUE(*store_->Heartbeat(running.id, "w", 1000, nullptr));
  ASSERT_TRUE(store_->Finish(running.id, "w", TaskState::kCancelled, json(),
                             json{{"code", "cancelled"}}).ok());

  EXPECT_EQ(store_->RequestCancel(running.id).error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RequestCancel("missing").error().code(), StatusCode::kNotFound);
}

TEST_P(TaskStoreTest, RecoversExpiredLeasesAndDeadOwners) {
  TaskRecord t1 = Submit();
  TaskRecord t2 = Submit();
  ASSERT_TRUE(store_->ClaimNext("alive", {"dataset_stats"}, 10'000)->has_value());
  ASSERT_TRUE(store_->ClaimNext("dead", {"dataset_stats"}, 10'000)->has_value());
  auto is_dead = [](const std::string& owner) { return owner == "dead"; };

  // Only the dead owner's task comes back at once.
  EXPECT_EQ(store_->RecoverAbandoned(is_dead).value(), 1);
  EXPECT_EQ(store_->Get(t2.id)->state, TaskState::kQueued);
  EXPECT_EQ(store_->Get(t2.id)->attempts, 1);
  EXPECT_EQ(store_->Get(t1.id)->state, TaskState::kRunning);
  auto logs = store_->Logs(t2.id, 0, 10);
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_NE(logs->at(0).message.find("re-queued"), std::string::npos);

  // The live owner's lease runs out when it stops renewing.
  now_ += 10'001;
  EXPECT_EQ(store_->RecoverAbandoned(is_dead).value(), 1);
  EXPECT_EQ(store_->Get(t1.id)->state, TaskState::kQueued);
  // The old owner lost it.
  EXPECT_EQ(store_->Finish(t1.id, "alive", TaskState::kSucceeded, json(), json()).code(),
            StatusCode::kFailedPrecondition);
}

TEST_P(TaskStoreTest, GivesUpAfterMaxAttempts) {
  TaskRecord t = Submit("dataset_stats", 2);
  auto dead = [](const std::string&) { return true; };
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto c = store_->ClaimNext("w", {"dataset_stats"}, 1000);
    ASSERT_TRUE(c->has_value());
    EXPECT_EQ((*c)->attempts, attempt);
    EXPECT_EQ(store_->RecoverAbandoned(dead).value(), 1);
  }
  auto final_state = store_->Get(t.id);
  EXPECT_EQ(final_state->state, TaskState::kFailed);
  EXPECT_EQ(final_state->error["code"], "interrupted");
  EXPECT_GT(final_state->finished_ms, 0);
}

TEST_P(TaskStoreTest, ReleaseReturnsTaskWithoutUsingAnAttempt) {
  TaskRecord t = Submit();
  ASSERT_TRUE(store_->ClaimNext("w", {"dataset_stats"}, 1000)->has_value());
  ASSERT_TRUE(store_->Release(t.id, "w").ok());
  auto r = store_->Get(t.id);
  EXPECT_EQ(r->state, TaskState::kQueued);
  EXPECT_EQ(r->attempts, 0);
  EXPECT_EQ(store_->Release(t.id, "w").code(), StatusCode::kFailedPrecondition);
  // A cancel asked while the attempt was ending wins: cancelled, not queued for ever.
  ASSERT_TRUE(store_->ClaimNext("w", {"dataset_stats"}, 1000)->has_value());
  ASSERT_TRUE(store_->RequestCancel(t.id).has_value());
  ASSERT_TRUE(store_->Release(t.id, "w").ok());
  r = store_->Get(t.id);
  EXPECT_EQ(r->state, TaskState::kCancelled);
  EXPECT_EQ(r->error["code"], "cancelled");
  EXPECT_GT(r->finished_ms, 0);
}

TEST_P(TaskStoreTest, ListFiltersAndPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(Submit(i % 2 ? "odd" : "even").id);
  ASSERT_TRUE(store_->RequestCancel(ids[0]).has_value());

  TaskQuery q;
  q.limit = 3;
  std::vector<std::string> seen;
  for (;;) {
    auto page = store_->List(q);
    ASSERT_TRUE(page.has_value());
    for (auto& t : page->tasks) seen.push_back(t.id);
    if (page->next_cursor.empty()) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));  // newest first

  TaskQuery by_type;
  by_type.type = "odd";
  EXPECT_EQ(store_->List(by_type)->tasks.size(), 3u);
  TaskQuery by_state;
  by_state.state = TaskState::kCancelled;
  auto cancelled = store_->List(by_state);
  ASSERT_EQ(cancelled->tasks.size(), 1u);
  EXPECT_EQ(cancelled->tasks[0].id, ids[0]);

  TaskQuery bad;
  bad.cursor = "garbage!";
  EXPECT_EQ(store_->List(bad).error().field(), "cursor");
  bad.cursor.clear();
  bad.limit = 0;
  EXPECT_EQ(store_->List(bad).error().field(), "limit");
}

TEST_P(TaskStoreTest, LogsAndCounts) {
  TaskRecord t = Submit();
  ASSERT_TRUE(store_->AppendLog(t.id, "info", "one").ok());
  ASSERT_TRUE(store_->AppendLog(t.id, "warn", "two").ok());
  ASSERT_TRUE(store_->AppendLog(t.id, "info", std::string(20000, 'x')).ok());
  auto logs = store_->Logs(t.id, 0, 100);
  ASSERT_EQ(logs->size(), 3u);
  EXPECT_EQ(logs->at(0).seq, 1);
  EXPECT_EQ(logs->at(1).level, "warn");
  EXPECT_EQ(logs->at(2).message.size(), 8192u);
  EXPECT_EQ(store_->Logs(t.id, 2, 100)->size(), 1u);
  EXPECT_EQ(store_->AppendLog("missing", "info", "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Logs("missing", 0, 10).error().code(), StatusCode::kNotFound);

  Submit();
  auto counts = store_->CountByState();
  EXPECT_EQ(counts->at(TaskState::kQueued), 2);
  EXPECT_EQ(counts->at(TaskState::kRunning), 0);
  EXPECT_TRUE(store_->Ping().ok());
}

TEST_P(TaskStoreTest, SurvivesReopen) {
  TaskRecord t = Submit();
  ASSERT_TRUE(store_->ClaimNext("w", {"dataset_stats"}, 1000)->has_value());
  store_.reset();
  store_ = Open();
  auto r = store_->Get(t.id);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->state, TaskState::kRunning);
  EXPECT_EQ(r->lease_owner, "w");
}

TEST_P(TaskStoreTest, ADatabaseRestartIsRiddenOutWithoutLosingOrDoublingWork) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "PostgreSQL only: a SQLite file does not restart";
  TaskRecord before = Submit();
  ASSERT_TRUE(store_->Get(before.id).has_value());  // the pool holds an open connection now
  testing::PostgresServer* postgres = testing::SharedPostgres().value();
  ASSERT_TRUE(postgres->Stop().ok());
  // The server comes back after a second; calls made meanwhile wait and retry with backoff.
  std::thread restart([postgres] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_TRUE(postgres->Resume().ok());
  });
  auto created = store_->Create({"dataset_stats", json{{"n", 2}}, 3});
  restart.join();
  ASSERT_TRUE(created.has_value()) << created.error().ToString();
  auto claimed = store_->ClaimNext("w", {"dataset_stats"}, 10'000);
  ASSERT_TRUE(claimed.has_value() && claimed->has_value()) << claimed.error().ToString();
  EXPECT_EQ((*claimed)->id, before.id);
  EXPECT_EQ(store_->Count(TaskState::kQueued).value(), 1) << "the task created during the outage, once";
  EXPECT_TRUE(store_->Finish(before.id, "w", TaskState::kSucceeded, json{{"ok", true}}, json()).ok());
}

TEST(OpenTaskStoreTest, RejectsUnknownUrls) {
  // A PostgreSQL URL with no server behind it: unreachable, after the retries.
  EXPECT_EQ(OpenTaskStore({"postgresql://mlaas@127.0.0.1:1/db?connect_timeout=1", nullptr}).error().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(OpenTaskStore({"mongodb://x", nullptr}).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenTaskStore({"", nullptr}).error().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(OpenTaskStore({"/nonexistent-dir/x/y.db", nullptr}).has_value());
}

TEST(OpenTaskStoreTest, AcceptsSqliteUrl) {
  TempDir dir;
  auto s = OpenTaskStore({"sqlite://" + (dir / "a.db").string(), nullptr});
  ASSERT_TRUE(s.has_value()) << s.error().ToString();
  EXPECT_TRUE((*s)->Ping().ok());
}

}  // namespace
}  // namespace mlaas::metadata

namespace mlaas::metadata {
namespace {

TEST_P(TaskStoreTest, EveryChangeBumpsTheRevisionEvenWithinOneMillisecond) {
  // A frozen clock: every change happens "in the same millisecond".
  now_ = 5;
  auto& store = store_;
  auto t = store->Create({"x", nlohmann::json::object(), 3}).value();
  int64_t r0 = t.revision;
  ASSERT_TRUE(store->ClaimNext("w", {"x"}, 1000)->has_value());
  int64_t r1 = store->Get(t.id)->revision;
  EXPECT_GT(r1, r0);
  ASSERT_TRUE(store->Heartbeat(t.id, "w", 1000, nullptr).has_value());
  EXPECT_EQ(store->Get(t.id)->revision, r1);  // a bare heartbeat is not a visible change
  nlohmann::json p = {{"fraction", 0.5}};
  ASSERT_TRUE(store->Heartbeat(t.id, "w", 1000, &p).has_value());
  int64_t r2 = store->Get(t.id)->revision;
  EXPECT_GT(r2, r1);
  ASSERT_TRUE(store->RequestCancel(t.id).has_value());
  int64_t r3 = store->Get(t.id)->revision;
  EXPECT_GT(r3, r2);
  ASSERT_TRUE(store->Finish(t.id, "w", TaskState::kCancelled, nlohmann::json(), nlohmann::json()).ok());
  EXPECT_GT(store->Get(t.id)->revision, r3);
}

}  // namespace
}  // namespace mlaas::metadata

namespace mlaas::metadata {
namespace {

TEST_P(TaskStoreTest, DeletesOnlyTasksThatFinishedBeforeTheCutoffWithTheirLogs) {
  std::atomic<int64_t>& now = now_;
  now = 1000;
  auto& store = store_;
  auto finish = [&](TaskState state) {
    auto t = store->Create({"x", nlohmann::json::object(), 3}).value();
    EXPECT_TRUE(store->ClaimNext("w", {"x"}, 1'000'000)->has_value());
    EXPECT_TRUE(store->AppendLog(t.id, "info", "hello").ok());
    EXPECT_TRUE(store->Finish(t.id, "w", state, nlohmann::json(), nlohmann::json()).ok());
    return t.id;
  };
  const std::string old_ok = finish(TaskState::kSucceeded);
  const std::string old_failed = finish(TaskState::kFailed);
  const std::string old_cancelled = finish(TaskState::kCancelled);
  const std::string queued = store->Create({"y", nlohmann::json::object(), 3})->id;
  auto running = store->Create({"x", nlohmann::json::object(), 3}).value();
  ASSERT_TRUE(store->ClaimNext("w", {"x"}, 1'000'000)->has_value());
  now = 5000;
  const std::string recent = finish(TaskState::kSucceeded);
  EXPECT_EQ(store->Count(TaskState::kQueued).value(), 1);
  EXPECT_EQ(store->Count(TaskState::kSucceeded).value(), 2);

  auto deleted = store->DeleteFinishedBefore(4000);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().ToString();
  EXPECT_EQ(*deleted, 3);
  for (const auto& id : {old_ok, old_failed, old_cancelled}) {
    EXPECT_EQ(store->Get(id).error().code(), StatusCode::kNotFound) << id;
    EXPECT_EQ(store->Logs(id, 0, 10).error().code(), StatusCode::kNotFound) << id;
  }
  EXPECT_EQ(store->Get(queued)->state, TaskState::kQueued);
  EXPECT_EQ(store->Get(running.id)->state, TaskState::kRunning);
  EXPECT_EQ(store->Get(recent)->state, TaskState::kSucceeded);
  EXPECT_EQ(store->Logs(recent, 0, 10)->size(), 1u);
  EXPECT_EQ(store->DeleteFinishedBefore(4000).value(), 0);
  // The deleted tasks' log lines went with them: only the recent task's line is left.
  if (GetParam() == "postgresql") {
    auto db = PgDb::Connect(url_);
    ASSERT_TRUE(db.has_value());
    auto r = db->Query("SELECT COUNT(*) FROM task_logs");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->Int(0, 0), 1);
  } else {
    auto db = SqliteDb::Open(url_);
    ASSERT_TRUE(db.has_value());
    auto q = db->Prepare("SELECT COUNT(*) FROM task_logs");
    ASSERT_TRUE(q.has_value() && q->Step().value());
    EXPECT_EQ(q->Int(0), 1);
  }
}

}  // namespace
}  // namespace mlaas::metadata

namespace mlaas::metadata {
namespace {

TEST_P(TaskStoreTest, ClaimsOnlyTasksWhoseResourcesTheWorkerOffers) {
  auto gpu_task = store_->Create({"train", json::object(), 3, "", {.gpus = 2, .labels = {}}});
  auto fast_task = store_->Create({"train", json::object(), 3, "", {.gpus = 0, .labels = {"cpu", "fast"}}});
  auto plain = store_->Create({"train", json::object(), 3, "", {}});
  ASSERT_TRUE(gpu_task.has_value() && fast_task.has_value() && plain.has_value());
  EXPECT_EQ(gpu_task->requirements.gpus, 2);
  EXPECT_EQ(fast_task->requirements.labels, (std::vector<std::string>{"cpu", "fast"}));
  // A CPU worker without labels passes over the two it cannot run, oldest first.
  auto cpu = store_->ClaimNext("cpu", {"train"}, 30'000, {.gpus = 0, .labels = {"cpu"}});
  ASSERT_TRUE(cpu.has_value() && cpu->has_value()) << (cpu.has_value() ? "" : cpu.error().ToString());
  EXPECT_EQ((*cpu)->id, plain->id);
  EXPECT_FALSE(store_->ClaimNext("cpu", {"train"}, 30'000, {.gpus = 0, .labels = {"cpu"}})->has_value());
  // One GPU is not two; labels are all required.
  EXPECT_FALSE(store_->ClaimNext("gpu1", {"train"}, 30'000, {.gpus = 1, .labels = {"gpu", "fast"}})->has_value());
  EXPECT_FALSE(store_->ClaimNext("none", {"train"}, 30'000, {})->has_value());
  auto fast = store_->ClaimNext("fast", {"train"}, 30'000, {.gpus = 0, .labels = {"cpu", "fast", "x"}});
  ASSERT_TRUE(fast.has_value() && fast->has_value());
  EXPECT_EQ((*fast)->id, fast_task->id);
  auto big = store_->ClaimNext("gpu4", {"train"}, 30'000, {.gpus = 4, .labels = {"gpu"}});
  ASSERT_TRUE(big.has_value() && big->has_value());
  EXPECT_EQ((*big)->id, gpu_task->id);
  EXPECT_EQ((*big)->requirements.gpus, 2) << "requirements read back with the claim";
  // A task for a data-parallel group of 2 goes to the rank 0 of such a group only, which also
  // takes single-worker tasks.
  auto pair = store_->Create({"train", json::object(), 3, "", {.gpus = 0, .labels = {}, .workers = 2}});
  auto single = store_->Create({"train", json::object(), 3, "", {}});
  ASSERT_TRUE(pair.has_value() && single.has_value());
  EXPECT_EQ(pair->requirements.workers, 2);
  auto alone = store_->ClaimNext("one", {"train"}, 30'000, {});
  ASSERT_TRUE(alone.has_value() && alone->has_value());
  EXPECT_EQ((*alone)->id, single->id) << "a lone worker passes over the pair's task";
  EXPECT_FALSE(store_->ClaimNext("g4", {"train"}, 30'000, {.gpus = 0, .labels = {}, .workers = 4})->has_value())
      << "a group of 4 is not a group of 2";
  auto group = store_->ClaimNext("g2", {"train"}, 30'000, {.gpus = 0, .labels = {}, .workers = 2});
  ASSERT_TRUE(group.has_value() && group->has_value());
  EXPECT_EQ((*group)->id, pair->id);
  // Kept across a reopen.
  store_ = Open();
  EXPECT_EQ(store_->Get(fast_task->id)->requirements.labels, (std::vector<std::string>{"cpu", "fast"}));
}

// The rendezvous through the database: workers take the lowest free rank of the oldest task
// they can run that asks for a group; rank 0 claims it once every rank is seated, which gives
// the seats that attempt; rank 0 tells the others where its group meets.
TEST_P(TaskStoreTest, WorkersGatherForATaskAskingSeveralAndRankZeroClaimsItWhenComplete) {
  auto single = store_->Create({"train", json::object(), 3, "", {}});
  auto trio = store_->Create({"train", json{{"n", 3}}, 3, "", {.gpus = 0, .labels = {}, .workers = 3}});
  auto labelled = store_->Create({"train", json::object(), 3, "", {.gpus = 0, .labels = {"big"}, .workers = 2}});
  ASSERT_TRUE(single.has_value() && trio.has_value() && labelled.has_value());
  EXPECT_FALSE(store_->JoinGroup("w0", {"other"}, 30'000, {})->has_value()) << "only the types named";
  auto s0 = store_->JoinGroup("w0", {"train"}, 30'000, {});
  auto s1 = store_->JoinGroup("w1", {"train"}, 30'000, {});
  ASSERT_TRUE(s0.has_value() && s0->has_value()) << (s0.has_value() ? "" : s0.error().ToString());
  ASSERT_TRUE(s1.has_value() && s1->has_value());
  EXPECT_EQ((*s0)->task_id, trio->id) << "the oldest task asking a group; single-worker tasks are not gathered for";
  EXPECT_EQ((*s1)->task_id, trio->id);
  EXPECT_EQ((*s0)->rank, 0);
  EXPECT_EQ((*s1)->rank, 1);
  EXPECT_EQ((*s0)->world, 3);
  EXPECT_NE((*s0)->id, (*s1)->id);
  // Not complete: rank 0 cannot claim, a member cannot claim at all.
  EXPECT_FALSE(store_->ClaimGathered(**s0, "w0", 30'000)->has_value());
  EXPECT_FALSE(store_->ClaimGathered(**s1, "w1", 30'000).has_value());
  auto g = store_->RenewSeat((*s0)->id, "w0", 30'000);
  ASSERT_TRUE(g.has_value()) << g.error().ToString();
  EXPECT_EQ(g->seated, 2);
  EXPECT_EQ(g->attempt, 0);
  EXPECT_EQ(g->state, TaskState::kQueued);
  EXPECT_FALSE(store_->RenewSeat((*s0)->id, "someone else", 30'000).has_value()) << "a seat is its holder's";
  // The labelled task needs a worker with its label; the trio's third seat goes to the next.
  auto big = store_->JoinGroup("w2", {"train"}, 30'000, {.gpus = 0, .labels = {"cpu", "big"}});
  ASSERT_TRUE(big.has_value() && big->has_value());
  EXPECT_EQ((*big)->task_id, trio->id) << "the oldest first, whatever the worker could also run";
  auto s3 = store_->JoinGroup("w3", {"train"}, 30'000, {});
  ASSERT_TRUE(s3.has_value());
  EXPECT_FALSE(s3->has_value()) << "the trio is complete and the pair needs the label";
  auto pair0 = store_->JoinGroup("w3", {"train"}, 30'000, {.gpus = 0, .labels = {"big"}});
  ASSERT_TRUE(pair0.has_value() && pair0->has_value());
  EXPECT_EQ((*pair0)->task_id, labelled->id);
  // Rank 0 claims the complete trio: one attempt, the seats become that attempt's group.
  auto claimed = store_->ClaimGathered(**s0, "w0", 30'000);
  ASSERT_TRUE(claimed.has_value() && claimed->has_value()) << (claimed.has_value() ? "" : claimed.error().ToString());
  EXPECT_EQ((*claimed)->id, trio->id);
  EXPECT_EQ((*claimed)->state, TaskState::kRunning);
  EXPECT_EQ((*claimed)->attempts, 1);
  EXPECT_EQ((*claimed)->lease_owner, "w0");
  EXPECT_EQ((*claimed)->params, (json{{"n", 3}}));
  EXPECT_FALSE(store_->ClaimGathered(**s0, "w0", 30'000)->has_value()) << "claimed once";
  auto member = store_->RenewSeat((*s1)->id, "w1", 30'000);
  ASSERT_TRUE(member.has_value());
  EXPECT_EQ(member->attempt, 1);
  EXPECT_EQ(member->state, TaskState::kRunning);
  EXPECT_EQ(member->address, "") << "rank 0 has not said where yet";
  ASSERT_TRUE(store_->SetGroupAddress((*s0)->id, "w0", "10.0.0.7:41234").ok());
  EXPECT_FALSE(store_->SetGroupAddress((*s1)->id, "w0", "x:1").ok()) << "only the seat's holder";
  member = store_->RenewSeat((*s1)->id, "w1", 30'000);
  ASSERT_TRUE(member.has_value());
  EXPECT_EQ(member->address, "10.0.0.7:41234");
  EXPECT_EQ(member->seated, 0) << "the claimed seats no longer gather";
  // Leaving: the seat is gone; leaving twice is fine.
  auto left = store_->LeaveGroup((*s1)->id, "w1");
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(*left);
  left = store_->LeaveGroup((*s1)->id, "w1");
  ASSERT_TRUE(left.has_value());
  EXPECT_FALSE(*left) << "already gone";
  auto claimed_seat = store_->LeaveGroup((*big)->id, "w2", /*only_while_gathering=*/true);
  ASSERT_TRUE(claimed_seat.has_value());
  EXPECT_FALSE(*claimed_seat) << "a seat rank 0 claimed with is not given up as a gathering one";
  auto gone = store_->RenewSeat((*s1)->id, "w1", 30'000);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), StatusCode::kFailedPrecondition);
  // The attempt ends and the task is handed back: a new group gathers for the next attempt
  // from rank 0 again, whatever seats of the old one remain.
  ASSERT_TRUE(store_->Release(trio->id, "w0").ok());
  auto again = store_->JoinGroup("w5", {"train"}, 30'000, {});
  ASSERT_TRUE(again.has_value() && again->has_value());
  EXPECT_EQ((*again)->task_id, trio->id);
  EXPECT_EQ((*again)->rank, 0);
  // The new group fills and claims the same attempt number the old one had, while two seats of
  // the old group (w0's, w2's) are still there: they go.
  ASSERT_TRUE(store_->JoinGroup("w6", {"train"}, 30'000, {})->has_value());
  ASSERT_TRUE(store_->JoinGroup("w7", {"train"}, 30'000, {})->has_value());
  auto reclaimed = store_->ClaimGathered(**again, "w5", 30'000);
  ASSERT_TRUE(reclaimed.has_value() && reclaimed->has_value())
      << (reclaimed.has_value() ? "" : reclaimed.error().ToString());
  EXPECT_EQ((*reclaimed)->attempts, 1);
  auto now_group = store_->RenewSeat((*again)->id, "w5", 30'000);
  ASSERT_TRUE(now_group.has_value());
  EXPECT_EQ(now_group->members, 3) << "the new group's three, not the old one's";
  EXPECT_FALSE(store_->RenewSeat((*s0)->id, "w0", 30'000).has_value()) << "the old group's seats went";
  EXPECT_EQ(store_->Get(single->id)->state, TaskState::kQueued) << "gathering never touches single-worker tasks";
  // A worker that gave up on a task passes over it.
  auto other = store_->Create({"train", json::object(), 3, "", {.gpus = 0, .labels = {}, .workers = 2}});
  ASSERT_TRUE(other.has_value());
  // (w8 could join the labelled pair, older, with one of two seated.)
  auto skipping = store_->JoinGroup("w8", {"train"}, 30'000, {.gpus = 0, .labels = {"big"}}, {labelled->id});
  ASSERT_TRUE(skipping.has_value() && skipping->has_value());
  EXPECT_EQ((*skipping)->task_id, other->id);
}

// An attempt that ends without ending its task (a group lost a member) goes back to the queue
// with the attempt counted, and fails once the attempts are used.
TEST_P(TaskStoreTest, RequeueCountsTheAttemptAndFailsWhenTheyAreUsed) {
  TaskRecord t = Submit("dataset_stats", 2);
  ASSERT_TRUE(store_->ClaimNext("w", {"dataset_stats"}, 1000)->has_value());
  const json error = {{"code", "unavailable"}, {"message", "a member went away"}};
  EXPECT_EQ(store_->Requeue(t.id, "other", error).error().code(), StatusCode::kFailedPrecondition);
  auto first = store_->Requeue(t.id, "w", error);
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  EXPECT_EQ(*first, TaskState::kQueued);
  auto r = store_->Get(t.id);
  EXPECT_EQ(r->state, TaskState::kQueued);
  EXPECT_EQ(r->attempts, 1);
  EXPECT_TRUE(r->error.is_null());
  EXPECT_EQ(r->lease_owner, "");
  auto again = store_->ClaimNext("w2", {"dataset_stats"}, 1000);
  ASSERT_TRUE(again.has_value() && again->has_value());
  EXPECT_EQ((*again)->attempts, 2);
  auto last = store_->Requeue(t.id, "w2", error);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, TaskState::kFailed);
  r = store_->Get(t.id);
  EXPECT_EQ(r->state, TaskState::kFailed);
  EXPECT_EQ(r->error, error);
  EXPECT_GT(r->finished_ms, 0);
  // A cancel asked while the attempt was ending wins.
  TaskRecord c = Submit("dataset_stats", 3);
  ASSERT_TRUE(store_->ClaimNext("w", {"dataset_stats"}, 1000)->has_value());
  ASSERT_TRUE(store_->RequestCancel(c.id).has_value());
  auto cancelled = store_->Requeue(c.id, "w", error);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(*cancelled, TaskState::kCancelled);
  EXPECT_EQ(store_->Get(c.id)->error["code"], "cancelled");
}

TEST_P(TaskStoreTest, ASeatNotRenewedExpiresAndItsRankIsTakenAgain) {
  auto pair = store_->Create({"train", json::object(), 3, "", {.gpus = 0, .labels = {}, .workers = 2}});
  ASSERT_TRUE(pair.has_value());
  auto s0 = store_->JoinGroup("w0", {"train"}, 10'000, {});
  ASSERT_TRUE(s0.has_value() && s0->has_value());
  now_ += 5'000;
  auto s1 = store_->JoinGroup("w1", {"train"}, 10'000, {});
  ASSERT_TRUE(s1.has_value() && s1->has_value());
  EXPECT_EQ((*s1)->rank, 1);
  // Rank 0's holder died: its seat expires; the group is no longer complete, and the next
  // worker takes rank 0.
  now_ += 6'000;
  auto g = store_->RenewSeat((*s1)->id, "w1", 10'000);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->seated, 1);
  EXPECT_FALSE(store_->RenewSeat((*s0)->id, "w0", 10'000).has_value()) << "expired";
  EXPECT_FALSE(store_->ClaimGathered(**s0, "w0", 10'000)->has_value()) << "an expired rank 0 cannot claim";
  auto s2 = store_->JoinGroup("w2", {"train"}, 10'000, {});
  ASSERT_TRUE(s2.has_value() && s2->has_value());
  EXPECT_EQ((*s2)->rank, 0);
  auto claimed = store_->ClaimGathered(**s2, "w2", 10'000);
  ASSERT_TRUE(claimed.has_value() && claimed->has_value());
  // A cancelled task tells its gatherers so.
  auto other = store_->Create({"train", json::object(), 3, "", {.gpus = 0, .labels = {}, .workers = 2}});
  ASSERT_TRUE(other.has_value());
  auto s3 = store_->JoinGroup("w3", {"train"}, 10'000, {});
  ASSERT_TRUE(s3.has_value() && s3->has_value());
  EXPECT_EQ((*s3)->task_id, other->id);
  ASSERT_TRUE(store_->RequestCancel(other->id).has_value());
  auto cancelled = store_->RenewSeat((*s3)->id, "w3", 10'000);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->state, TaskState::kCancelled);
}

TEST_P(TaskStoreTest, ConcurrentJoinsNeverSeatMoreThanTheGroupAsks) {
  auto pair = store_->Create({"train", json::object(), 3, "", {.gpus = 0, .labels = {}, .workers = 2}});
  ASSERT_TRUE(pair.has_value());
  std::vector<std::unique_ptr<TaskStore>> stores;
  for (int i = 0; i < 6; ++i) stores.push_back(Open());
  std::atomic<int> seated{0};
  std::mutex mu;
  std::set<int> ranks;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; ++round) {
        auto s = stores[static_cast<size_t>(i)]->JoinGroup("w" + std::to_string(i), {"train"}, 30'000, {});
        if (s.has_value() && s->has_value()) {
          ++seated;
          std::lock_guard lock(mu);
          EXPECT_TRUE(ranks.insert((*s)->rank).second) << "rank " << (*s)->rank << " seated twice";
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seated.load(), 2);
  EXPECT_EQ(ranks, (std::set<int>{0, 1}));
}

TEST_P(TaskStoreTest, SubscribersHearOfOtherProcessesChangesAndOfALostConnection) {
  std::mutex mu;
  std::condition_variable cv;
  int queued = 0, changed = 0;
  auto listener = Open();
  auto feed = listener->Subscribe([&](bool is_queued) {
    std::lock_guard lock(mu);
    ++(is_queued ? queued : changed);
    cv.notify_all();
  });
  if (GetParam() == "sqlite") {
    EXPECT_EQ(feed, nullptr) << "SQLite cannot tell: its users poll";
    return;
  }
  ASSERT_NE(feed, nullptr);
  const auto wait_for = [&](const std::function<bool()>& done) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), done);
  };
  TaskRecord t = Submit();  // Subscribe returned once it listens  // through another store: another process
  ASSERT_TRUE(wait_for([&] { return queued >= 1; })) << "a new task wakes idle workers";
  // Each change is heard (one at a time: notes that arrive together make one call).
  ASSERT_TRUE(store_->ClaimNext("w", {"dataset_stats"}, 30'000).value().has_value());
  ASSERT_TRUE(wait_for([&] { return changed >= 1; })) << "the claim";
  json progress = {{"fraction", 0.5}};
  ASSERT_TRUE(store_->Heartbeat(t.id, "w", 30'000, &progress).has_value());
  ASSERT_TRUE(wait_for([&] { return changed >= 2; })) << "the progress";
  ASSERT_TRUE(store_->Finish(t.id, "w", TaskState::kSucceeded, json::object(), json()).ok());
  ASSERT_TRUE(wait_for([&] { return changed >= 3; })) << "the end";
  // The database restarts: the feed reconnects and says so (what it missed may include work).
  testing::PostgresServer* postgres = testing::SharedPostgres().value();
  const int queued_before = queued;
  ASSERT_TRUE(postgres->Stop().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(postgres->Resume().ok());
  ASSERT_TRUE(wait_for([&] { return queued > queued_before; })) << "told once it listens again";
  Submit();
  ASSERT_TRUE(wait_for([&] { return queued > queued_before + 1; })) << "and hears new work after the restart";
  feed.reset();  // stops the feed's thread
}

}  // namespace
}  // namespace mlaas::metadata

namespace mlaas::metadata {
namespace {

// On PostgreSQL, leases are timed by the database server's clock: a worker whose host clock is an
// hour behind still claims for the lease it asked, and no other host takes its task early.
TEST(PgTaskStoreClockTest, LeasesFollowTheDatabaseClockWhateverTheHostsSay) {
  auto url = testing::FreshTestDatabase();
  ASSERT_TRUE(url.has_value()) << url.error().ToString();
  const auto real = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  StoreOptions behind_options{*url, nullptr, [&] { return real() - 3'600'000; }};
  StoreOptions on_time_options{*url, nullptr, nullptr};
  auto behind = OpenTaskStore(behind_options);
  auto on_time = OpenTaskStore(on_time_options);
  ASSERT_TRUE(behind.has_value() && on_time.has_value());
  auto t = (*on_time)->Create({"dataset_stats", json::object(), 3});
  ASSERT_TRUE(t.has_value());
  auto claimed = (*behind)->ClaimNext("slow-host", {"dataset_stats"}, 30'000);
  ASSERT_TRUE(claimed.has_value() && claimed->has_value());
  // The database runs on this host: its clock is the real one.
  EXPECT_NEAR(static_cast<double>((*claimed)->lease_expires_ms), static_cast<double>(real() + 30'000), 5'000.0);
  EXPECT_NEAR(static_cast<double>((*claimed)->started_ms), static_cast<double>(real()), 5'000.0);
  auto recovered = (*on_time)->RecoverAbandoned([](const std::string&) { return false; });
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(*recovered, 0) << "the lease runs 30 s from the database's now, not from an hour ago";
  EXPECT_EQ((*on_time)->Get(t->id)->state, TaskState::kRunning);
}

}  // namespace
}  // namespace mlaas::metadata
