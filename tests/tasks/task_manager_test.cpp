#include "tasks/task_manager.h"
#include "tasks/resources.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "testutil/postgres_server.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::tasks {
namespace {

using metadata::TaskState;
using mlaas::testing::TempDir;
using mlaas::testing::WaitFor;
using nlohmann::json;

class TaskManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = metadata::OpenTaskStore({(dir_ / "mlaas.db").string(), nullptr});
    ASSERT_TRUE(s.has_value());
    store_ = std::move(s).value();
  }

  std::unique_ptr<TaskManager> Make(int workers = 2, TaskManagerOptions o = {}) {
    o.workers = workers;
    o.poll_interval_ms = 20;
    o.progress_interval_ms = 0;
    o.lease_ms = 3000;
    o.recover_interval_ms = 100;
    auto m = std::make_unique<TaskManager>(*store_, o);
    m->Register("sum", [](TaskContext& ctx) -> Result<json> {
      int64_t total = 0;
      for (const auto& v : ctx.params().at("values")) total += v.get<int64_t>();
      ctx.ReportProgress({.fraction = 1.0, .message = "added"});
      ctx.Log("info", "sum is " + std::to_string(total));
      return json{{"sum", total}};
    });
    m->Register("fail", [](TaskContext&) -> Result<json> {
      return InvalidArgument("column 'x' does not exist", "dataset.loader_kwargs.text_column");
    });
    m->Register("throw", [](TaskContext&) -> Result<json> {
      throw std::runtime_error("boom");
    });
    m->Register("loop", [this](TaskContext& ctx) -> Result<json> {
      int64_t step = 0;
      while (!ctx.cancelled()) {
        ctx.ReportProgress({.step = ++step, .message = "looping"});
        loop_steps_ = step;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      handed_back_ = ctx.handed_back() ? 1 : 0;
      MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
      return json::object();
    });
    return m;
  }

  TaskState StateOf(const std::string& id) { return store_->Get(id)->state; }
  bool Reaches(const std::string& id, TaskState s) {
    return WaitFor([&] { return StateOf(id) == s; });
  }

  TempDir dir_;
  std::unique_ptr<metadata::TaskStore> store_;
  std::atomic<int64_t> loop_steps_{0};
  std::atomic<int> handed_back_{-1};  // what the last "loop" saw when it stopped
};

TEST_F(TaskManagerTest, RunsTasksAndRecordsResults) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit("sum", json{{"values", {1, 2, 3}}});
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(Reaches(t->id, TaskState::kSucceeded));
  auto r = store_->Get(t->id);
  EXPECT_EQ(r->result, json({{"sum", 6}}));
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(r->progress["fraction"], 1.0);
  EXPECT_EQ(r->progress["message"], "added");
  EXPECT_TRUE(r->progress.contains("elapsed_seconds"));
  EXPECT_GE(r->finished_ms, r->started_ms);
  auto logs = store_->Logs(t->id, 0, 10);
  ASSERT_GE(logs->size(), 3u);
  EXPECT_NE(logs->at(0).message.find("attempt 1 of 3"), std::string::npos);
  EXPECT_EQ(logs->at(1).message, "sum is 6");
  EXPECT_EQ(logs->back().message, "succeeded");
}

TEST_F(TaskManagerTest, FailuresKeepCodeMessageAndField) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit("fail", json::object());
  ASSERT_TRUE(Reaches(t->id, TaskState::kFailed));
  auto r = store_->Get(t->id);
  EXPECT_EQ(r->error["code"], "invalid_argument");
  EXPECT_EQ(r->error["field"], "dataset.loader_kwargs.text_column");

  auto thrown = m->Submit("throw", json::object());
  ASSERT_TRUE(Reaches(thrown->id, TaskState::kFailed));
  EXPECT_EQ(store_->Get(thrown->id)->error["message"], "unexpected error: boom");
}

TEST_F(TaskManagerTest, AnythingAHandlerThrowsFailsTheTaskWithoutAServerPath) {
  auto m = Make();
  m->Register("throw_int", [](TaskContext&) -> Result<json> { throw 42; });
  m->Register("throw_fs", [](TaskContext&) -> Result<json> {
    throw std::filesystem::filesystem_error("cannot remove", "/srv/secret/data/checkpoints/x",
                                            std::make_error_code(std::errc::permission_denied));
  });
  m->Register("throw_multiline", [](TaskContext&) -> Result<json> {
    throw std::runtime_error("bad shape\nframe #0 at /build/libtorch/aten/x.cpp:12");
  });
  m->Register("throw_type_error", [](TaskContext&) -> Result<json> {
    return json(json::parse("[]").at("do_lower_case").get<bool>());  // nlohmann type_error
  });
  ASSERT_TRUE(m->Start().ok());
  auto failed_with = [&](const std::string& type) {
    auto t = m->Submit(type, json::object());
    EXPECT_TRUE(Reaches(t->id, TaskState::kFailed)) << type;
    return store_->Get(t->id)->error;
  };
  EXPECT_EQ(failed_with("throw_int")["message"], "unexpected error of unknown type");
  json fs_error = failed_with("throw_fs");
  EXPECT_EQ(fs_error["code"], "internal");
  EXPECT_EQ(fs_error["message"], "unexpected file system error: Permission denied");
  EXPECT_EQ(failed_with("throw_multiline")["message"], "unexpected error: bad shape");
  EXPECT_NE(failed_with("throw_type_error")["message"].get<std::string>().find("unexpected error: "),
            std::string::npos);
  // The workers survived all of it.
  auto t = m->Submit("sum", json{{"values", {2, 2}}});
  ASSERT_TRUE(Reaches(t->id, TaskState::kSucceeded));
}

TEST_F(TaskManagerTest, AFullQueueRefusesNewTasksUntilOneLeavesIt) {
  TaskManagerOptions o;
  o.max_queued_tasks = 3;
  auto m = Make(/*workers=*/0, o);
  ASSERT_TRUE(m->Start().ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(m->Submit("sum", json{{"values", {i}}})->id);
  auto refused = m->Submit("sum", json{{"values", {9}}});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.error().message().find("queue is full"), std::string::npos);
  EXPECT_EQ(store_->Count(TaskState::kQueued).value(), 3) << "a refused task is not stored";
  ASSERT_TRUE(m->Cancel(ids[0]).has_value());
  EXPECT_TRUE(m->Submit("sum", json{{"values", {9}}}).has_value());
  EXPECT_FALSE(m->Submit("sum", json{{"values", {9}}}).has_value());
}

TEST_F(TaskManagerTest, OversizedRequestObjectsAreRefusedNamingTheField) {
  TaskManagerOptions o;
  o.max_object_field_bytes = 1000;
  o.max_params_bytes = 5000;
  auto m = Make(0, o);
  json kwargs = {{"text_column", "text"}, {"junk", std::string(2000, 'x')}};
  auto refused = m->Submit("sum", json{{"values", {1}}, {"dataset", {{"path", "a.csv"}, {"loader_kwargs", kwargs}}}});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.error().field(), "dataset.loader_kwargs");
  // Strings and arrays count only towards the whole request.
  json labels = json::array();
  for (int i = 0; i < 1000; ++i) labels.push_back("label-" + std::to_string(i));
  refused = m->Submit("sum", json{{"values", {1}}, {"model", {{"labels", labels}}}});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().field(), "model");
  EXPECT_NE(refused.error().message().find("a task may hold"), std::string::npos);
  // Within the bounds, accepted.
  kwargs["junk"] = std::string(500, 'x');
  EXPECT_TRUE(m->Submit("sum", json{{"values", {1}}, {"dataset", {{"loader_kwargs", kwargs}}}}).has_value());
}

TEST_F(TaskManagerTest, FinishedTasksOlderThanTheRetentionAreDeleted) {
  // Retention 0 keeps everything, however often the sweep would run.
  TaskManagerOptions o;
  o.finished_retention_ms = 0;
  o.retention_interval_ms = 10;
  auto keep = Make(1, o);
  ASSERT_TRUE(keep->Start().ok());
  auto kept = keep->Submit("sum", json{{"values", {1}}});
  ASSERT_TRUE(Reaches(kept->id, TaskState::kSucceeded));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(StateOf(kept->id), TaskState::kSucceeded);
  keep->Stop();

  o.finished_retention_ms = 300;
  o.retention_interval_ms = 50;
  auto m = Make(1, o);
  ASSERT_TRUE(m->Start().ok());
  auto done = m->Submit("sum", json{{"values", {1}}});
  ASSERT_TRUE(Reaches(done->id, TaskState::kSucceeded));
  const std::string waiting = store_->Create({"no_handler_here", json::object(), 3})->id;
  EXPECT_TRUE(WaitFor([&] { return !store_->Get(done->id).has_value(); }));
  EXPECT_EQ(store_->Get(done->id).error().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Get(kept->id).error().code(), StatusCode::kNotFound);
  EXPECT_EQ(StateOf(waiting), TaskState::kQueued) << "only finished tasks are deleted";
}

TEST_F(TaskManagerTest, HandlersLearnWhetherTheirTaskWillResume) {
  auto m = Make(1);
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit("loop", json::object());
  ASSERT_TRUE(WaitFor([&] { return loop_steps_ > 3; }));
  m->Stop();  // handed back: it will run again
  EXPECT_EQ(handed_back_, 1);
  loop_steps_ = 0;
  auto m2 = Make(1);
  ASSERT_TRUE(m2->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return loop_steps_ > 3; }));
  ASSERT_TRUE(m2->Cancel(t->id).has_value());  // cancelled: it ends here
  ASSERT_TRUE(Reaches(t->id, TaskState::kCancelled));
  EXPECT_EQ(handed_back_, 0);
}

// A handler that says its failure is the attempt's (RetryLater) sends the task back to the queue
// with the attempt counted; it runs again, and fails for good once it used max_attempts.
TEST_F(TaskManagerTest, AnAttemptThatAsksToRetryRunsAgainUntilTheAttemptsAreUsed) {
  auto m = Make(1);
  std::atomic<int> runs{0};
  m->Register("flaky", [&runs](TaskContext& ctx) -> Result<json> {
    ++runs;
    if (ctx.attempt() < ctx.params().value("succeed_at", 99)) {
      ctx.RetryLater();
      EXPECT_EQ(ctx.handed_back(), ctx.attempt() < 3) << "checkpoints stay for a next attempt, if any";
      return Unavailable("a member of the group went away");
    }
    return json{{"attempt", ctx.attempt()}};
  });
  std::atomic<int> handbacks{0};
  m->Register("handback", [&handbacks](TaskContext& ctx) -> Result<json> {
    if (++handbacks < 3) {
      ctx.RetryLater(/*count_attempt=*/false);
      return Unavailable("another member stopped");
    }
    return json{{"attempt", ctx.attempt()}};
  });
  ASSERT_TRUE(m->Start().ok());
  auto ok = m->Submit("flaky", json{{"succeed_at", 2}});
  ASSERT_TRUE(ok.has_value());
  ASSERT_TRUE(Reaches(ok->id, TaskState::kSucceeded));
  EXPECT_EQ(store_->Get(ok->id)->attempts, 2);
  EXPECT_EQ(store_->Get(ok->id)->result, (json{{"attempt", 2}}));
  auto logs = store_->Logs(ok->id, 0, 100);
  ASSERT_TRUE(logs.has_value());
  bool said = false;
  for (const auto& l : *logs) said = said || l.message.find("goes back to the queue") != std::string::npos;
  EXPECT_TRUE(said);
  auto never = m->Submit("flaky", json::object());
  ASSERT_TRUE(never.has_value());
  ASSERT_TRUE(Reaches(never->id, TaskState::kFailed));
  auto failed = store_->Get(never->id);
  EXPECT_EQ(failed->attempts, 3);
  EXPECT_EQ(failed->error["code"], "unavailable") << failed->error.dump();
  EXPECT_NE(failed->error["message"].get<std::string>().find("went away"), std::string::npos);
  EXPECT_EQ(runs.load(), 5);
  // Not counted (a member stopped gracefully): handed back as at a shutdown.
  auto uncounted = m->Submit("handback", json::object());
  ASSERT_TRUE(uncounted.has_value());
  ASSERT_TRUE(Reaches(uncounted->id, TaskState::kSucceeded));
  EXPECT_EQ(store_->Get(uncounted->id)->attempts, 1) << "no attempt used by the hand-backs";
}

// Two processes' task managers (here two in one process, on one store) gather for a task asking
// resources.workers = 2: one takes rank 0, claims it and says where its group meets; the other
// runs it detached with that address. A manager running a task of the data-parallel types takes
// no seat meanwhile.
TEST_F(TaskManagerTest, IdleManagersGatherForATaskAskingTwoWorkers) {
  std::mutex mu;
  std::map<int, std::string> seen;  // rank -> the group address it saw ("" for rank 0)
  std::atomic<bool> hold{false};
  const auto make = [&] {
    TaskManagerOptions o;
    o.gather_groups = true;
    auto m = Make(2, o);
    m->Register("group", [&](TaskContext& ctx) -> Result<json> {
      if (!ctx.group()) {  // a single-worker run of the type: holds its process while `hold`
        while (hold && !ctx.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return json::object();
      }
      const metadata::GroupSeat& seat = *ctx.group();
      EXPECT_EQ(seat.world, 2);
      EXPECT_EQ(seat.attempt, 1);
      {
        std::lock_guard lock(mu);
        seen[seat.rank] = ctx.group_address();
      }
      if (seat.rank == 0) {  // as a real group does, rank 0 waits for the member to arrive
        MLAAS_RETURN_IF_ERROR(ctx.PublishGroupAddress("10.1.2.3:4567"));
        if (!WaitFor([&] {
              std::lock_guard lock(mu);
              return seen.count(1) > 0;
            }))
          return Unavailable("the member did not arrive");
      }
      return json{{"rank", seat.rank}};
    });
    m->AllowDataParallel("group");
    return m;
  };
  auto a = make(), b = make();
  ASSERT_TRUE(a->Start().ok());
  // `a` alone is busy with a single-worker run of the type: it takes no seat, so the pair waits.
  hold = true;
  auto busy = a->Submit("group", json::object());
  ASSERT_TRUE(busy.has_value());
  ASSERT_TRUE(Reaches(busy->id, TaskState::kRunning));
  auto pair = a->Submit("group", json{{"resources", {{"workers", 2}}}});
  ASSERT_TRUE(pair.has_value());
  ASSERT_TRUE(b->Start().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(StateOf(pair->id), TaskState::kQueued) << "one seat taken, by b; a trains";
  hold = false;
  ASSERT_TRUE(Reaches(busy->id, TaskState::kSucceeded));
  ASSERT_TRUE(Reaches(pair->id, TaskState::kSucceeded));
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return seen.size() == 2;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(seen[0], "") << "rank 0 hosts";
  EXPECT_EQ(seen[1], "10.1.2.3:4567") << "the member got rank 0's address";
  EXPECT_EQ(store_->Get(pair->id)->result["rank"], 0) << "rank 0 records the outcome";
  EXPECT_EQ(store_->Get(pair->id)->attempts, 1);
}

// A group that does not fill up: the seated worker leaves it after the gather timeout, runs
// the training waiting behind it, and does not come back to that task at once.
TEST_F(TaskManagerTest, ASeatLeavesAGroupThatDoesNotFillUpAndItsWorkerTrainsOtherTasks) {
  TaskManagerOptions o;
  o.gather_groups = true;
  o.group_gather_timeout_ms = 1500;
  auto m = Make(2, o);
  m->Register("group", [](TaskContext&) -> Result<json> { return json::object(); });
  m->AllowDataParallel("group");
  ASSERT_TRUE(m->Start().ok());
  auto pair = m->Submit("group", json{{"resources", {{"workers", 2}}}});
  ASSERT_TRUE(pair.has_value());
  const auto logged = [&](const std::string& what) {
    auto logs = store_->Logs(pair->id, 0, 100);
    if (!logs.has_value()) return false;
    for (const auto& l : *logs)
      if (l.message.find(what) != std::string::npos) return true;
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return logged("took rank 0 of the 2"); }));
  auto single = m->Submit("group", json::object());
  ASSERT_TRUE(single.has_value());
  ASSERT_TRUE(Reaches(single->id, TaskState::kSucceeded)) << "trained once the seat was given up";
  EXPECT_TRUE(logged("left rank 0 after waiting"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto logs = store_->Logs(pair->id, 0, 100);
  ASSERT_TRUE(logs.has_value());
  int took = 0;
  for (const auto& l : *logs) took += l.message.find("took rank") != std::string::npos ? 1 : 0;
  EXPECT_EQ(took, 1) << "not back at once";
  EXPECT_EQ(StateOf(pair->id), TaskState::kQueued);
  ASSERT_TRUE(m->Cancel(pair->id).has_value());
}

// One training at a time per process: the second stays queued rather than holding the other
// worker, so a task of another type runs meanwhile (two trainings once starved every other task).
TEST_F(TaskManagerTest, ASecondTrainingTaskStaysQueuedAndOtherTasksRun) {
  auto m = Make(2);
  std::atomic<int> training{0};
  std::atomic<int> most{0};
  m->Register("train", [&](TaskContext& ctx) -> Result<json> {
    most = std::max(most.load(), ++training);
    while (!ctx.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    --training;
    MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
    return json::object();
  });
  m->AllowDataParallel("train");
  ASSERT_TRUE(m->Start().ok());
  auto first = m->Submit("train", json::object());
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(Reaches(first->id, TaskState::kRunning));
  auto second = m->Submit("train", json::object());
  ASSERT_TRUE(second.has_value());
  auto sum = m->Submit("sum", json{{"values", {2, 3}}});
  ASSERT_TRUE(sum.has_value());
  ASSERT_TRUE(Reaches(sum->id, TaskState::kSucceeded)) << "another type's task runs beside the training";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(StateOf(second->id), TaskState::kQueued);
  ASSERT_TRUE(m->Cancel(first->id).has_value());
  ASSERT_TRUE(Reaches(second->id, TaskState::kRunning)) << "the second runs once the first ends";
  ASSERT_TRUE(m->Cancel(second->id).has_value());
  ASSERT_TRUE(Reaches(second->id, TaskState::kCancelled));
  EXPECT_EQ(most, 1);
}

TEST_F(TaskManagerTest, ValidatorsRefuseBadParamsAtSubmit) {
  auto m = Make();
  m->Register(
      "checked", [](TaskContext&) -> Result<json> { return json::object(); },
      [](const json& params) {
        return params.contains("n") ? Status::Ok() : InvalidArgument("n is required", "n");
      });
  auto refused = m->Submit("checked", json::object());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().field(), "n");
  auto all = store_->List({});
  ASSERT_TRUE(all.has_value());
  for (const auto& t : all->tasks) EXPECT_NE(t.type, "checked") << "a refused task is not stored";
  EXPECT_TRUE(m->Submit("checked", json{{"n", 1}}).has_value());
}

TEST_F(TaskManagerTest, UnknownTypesAreRefused) {
  auto m = Make();
  EXPECT_EQ(m->Submit("nope", json::object()).error().code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(m->HasType("sum"));
  EXPECT_EQ(m->Types().size(), 4u);
}

TEST_F(TaskManagerTest, CancelStopsARunningTaskCooperatively) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit("loop", json::object());
  ASSERT_TRUE(WaitFor([&] { return loop_steps_ > 3; }));
  auto c = m->Cancel(t->id);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->cancel_requested);
  ASSERT_TRUE(Reaches(t->id, TaskState::kCancelled));
  EXPECT_EQ(store_->Get(t->id)->error["code"], "cancelled");
  EXPECT_EQ(m->Cancel(t->id).error().code(), StatusCode::kFailedPrecondition);
}

TEST_F(TaskManagerTest, CancelFromAnotherProcessIsSeenThroughTheStore) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit("loop", json::object());
  ASSERT_TRUE(WaitFor([&] { return loop_steps_ > 3; }));
  ASSERT_TRUE(store_->RequestCancel(t->id).has_value());  // not through the manager
  ASSERT_TRUE(Reaches(t->id, TaskState::kCancelled));
}

TEST_F(TaskManagerTest, QueuedTasksCanBeCancelledBeforeTheyRun) {
  auto m = Make(/*workers=*/0);
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit("sum", json{{"values", {1}}});
  auto c = m->Cancel(t->id);
  EXPECT_EQ(c->state, TaskState::kCancelled);
}

TEST_F(TaskManagerTest, StopHandsRunningTasksBack) {
  auto m = Make(1);
  ASSERT_TRUE(m->Start().ok());
  auto t = m->Submit("loop", json::object());
  ASSERT_TRUE(WaitFor([&] { return loop_steps_ > 3; }));
  m->Stop();
  auto r = store_->Get(t->id);
  EXPECT_EQ(r->state, TaskState::kQueued);
  EXPECT_EQ(r->attempts, 0);
  // A new manager picks it up again.
  loop_steps_ = 0;
  auto m2 = Make(1);
  ASSERT_TRUE(m2->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return loop_steps_ > 3; }));
  EXPECT_EQ(StateOf(t->id), TaskState::kRunning);
  ASSERT_TRUE(m2->Cancel(t->id).has_value());
  ASSERT_TRUE(Reaches(t->id, TaskState::kCancelled));
}

TEST_F(TaskManagerTest, RecoversTasksOfADeadProcessAtStart) {
  auto t = store_->Create({"sum", json{{"values", {4, 5}}}, 3});
  // Claimed by a process of this host that no longer exists.
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::string dead_owner = std::string(host) + ":999999999:12345";
  ASSERT_TRUE(TaskManager::OwnerIsDead(dead_owner));
  ASSERT_TRUE(store_->ClaimNext(dead_owner, {"sum"}, 600'000)->has_value());

  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  ASSERT_TRUE(Reaches(t->id, TaskState::kSucceeded));
  auto r = store_->Get(t->id);
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(r->result["sum"], 9);
}

TEST_F(TaskManagerTest, OwnerIdentityIsThisProcess) {
  auto m = Make(0);
  EXPECT_FALSE(TaskManager::OwnerIsDead(m->owner_id()));
  EXPECT_FALSE(TaskManager::OwnerIsDead("some-other-host:1:1"));  // only a lease can tell
  EXPECT_FALSE(TaskManager::OwnerIsDead("garbage"));
}

TEST_F(TaskManagerTest, WaitForChangeWakesOnProgress) {
  auto m = Make();
  ASSERT_TRUE(m->Start().ok());
  uint64_t v = m->version();
  auto t = m->Submit("sum", json{{"values", {1}}});
  EXPECT_NE(m->WaitForChange(v, std::chrono::seconds(10)), v);
  ASSERT_TRUE(Reaches(t->id, TaskState::kSucceeded));
}

TEST_F(TaskManagerTest, ManyTasksAllComplete) {
  auto m = Make(3);
  ASSERT_TRUE(m->Start().ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(m->Submit("sum", json{{"values", {i, 1}}})->id);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(Reaches(ids[i], TaskState::kSucceeded));
    EXPECT_EQ(store_->Get(ids[i])->result["sum"], static_cast<int64_t>(i) + 1);
  }
  EXPECT_EQ(m->running_count(), 0u);
}

TEST_F(TaskManagerTest, WorkersRunOnlyTasksWhoseResourcesTheyOffer) {
  TaskManagerOptions o;
  o.capabilities = MakeCapabilities(0, {"fast"}).value();
  auto m = Make(2, o);
  ASSERT_TRUE(m->Start().ok());
  auto gpu = m->Submit("sum", json{{"values", {1}}, {"resources", {{"gpus", 1}}}});
  auto slow = m->Submit("sum", json{{"values", {2}}, {"resources", {{"labels", {"slow"}}}}});
  auto fast = m->Submit("sum", json{{"values", {3}}, {"resources", {{"labels", {"fast", "cpu"}}}}});
  ASSERT_TRUE(gpu.has_value() && slow.has_value() && fast.has_value());
  EXPECT_EQ(gpu->requirements.gpus, 1);
  ASSERT_TRUE(Reaches(fast->id, TaskState::kSucceeded)) << "a task this worker can run is not held up by older ones";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(StateOf(gpu->id), TaskState::kQueued) << "no GPU here";
  EXPECT_EQ(StateOf(slow->id), TaskState::kQueued) << "no 'slow' label here";
  // A malformed block is refused at submit, naming the field.
  auto bad = m->Submit("sum", json{{"values", {1}}, {"resources", {{"labels", {"not ok"}}}}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().field(), "resources.labels[0]");
}

// On PostgreSQL, workers sleep on LISTEN rather than polling: a task queued by another process
// starts at once although the worker polls only every minute, and that process's watchers
// (progress streams) hear of the task's end without polling either.
TEST(TaskManagerPostgresTest, IdleWorkersWakeOnNotifyAndWatchersSeeOtherProcessesChanges) {
  auto url = testing::FreshTestDatabase();
  ASSERT_TRUE(url.has_value()) << url.error().ToString();
  auto front_store = metadata::OpenTaskStore({*url, nullptr});
  auto worker_store = metadata::OpenTaskStore({*url, nullptr});
  ASSERT_TRUE(front_store.has_value() && worker_store.has_value());
  TaskManagerOptions o;
  o.poll_interval_ms = 60'000;
  o.progress_interval_ms = 0;
  o.workers = 0;
  TaskManager front(**front_store, o);  // an API server that only queues
  o.workers = 1;
  TaskManager worker(**worker_store, o);
  const auto sum = [](TaskContext& ctx) -> Result<json> {
    ctx.ReportProgress({.fraction = 1.0});
    return json{{"sum", ctx.params().at("values")[0]}};
  };
  front.Register("sum", sum);
  worker.Register("sum", sum);
  ASSERT_TRUE(front.Start().ok());
  ASSERT_TRUE(worker.Start().ok());
  // The worker's first look at the queue (at start) found nothing; from now on only a NOTIFY
  // (or a minute's poll) wakes it.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 3; ++i) {
    auto t = front.Submit("sum", json{{"values", {i}}});
    ASSERT_TRUE(t.has_value()) << t.error().ToString();
    const uint64_t seen = front.version();  // its own change counted, and maybe the echo of its NOTIFY
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    metadata::TaskState state = metadata::TaskState::kQueued;
    uint64_t version = front.version();
    while (std::chrono::steady_clock::now() < deadline &&
           (state = (*front_store)->Get(t->id)->state) != metadata::TaskState::kSucceeded) {
      version = front.WaitForChange(version, std::chrono::milliseconds(100));
    }
    ASSERT_EQ(state, metadata::TaskState::kSucceeded) << "task " << i << " did not start within 10 s";
    // The front-end hears changes from the database (notes that arrive together count once: its
    // own submit's echo and the worker's claim, progress and end make at least one).
    EXPECT_TRUE(WaitFor([&] { return front.version() >= seen + 1; })) << front.version() - seen;
  }
  worker.Stop();
  front.Stop();
}

}  // namespace
}  // namespace mlaas::tasks
