// mlaas::train's data-parallel group inside one process: two members on loopback, a thread
// each. What rank 0 waits for before it hands out a task (every other member's heartbeat
// moving, not its last beats), and what a collective throws once the other member is gone (and
// what it throws when it is refused before it starts).
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "train/data_parallel.h"
#include "train/run_group.h"

namespace mlaas::train {
namespace {

using namespace std::chrono_literals;

// Rank 0 hosting on a free port, rank 1 joined to it.
std::pair<std::unique_ptr<DataParallelGroup>, std::unique_ptr<DataParallelGroup>> Form(std::chrono::milliseconds timeout) {
  DataParallelConfig c{.world_size = 2, .rank = 0, .master_addr = "127.0.0.1", .master_port = 0, .timeout = timeout};
  auto zero = DataParallelGroup::Host(c);
  EXPECT_TRUE(zero.has_value()) << zero.error().ToString();
  if (!zero.has_value()) return {};
  c.rank = 1;
  c.master_port = (*zero)->config().master_port;
  auto one = DataParallelGroup::Join(c);
  EXPECT_TRUE(one.has_value()) << one.error().ToString();
  if (!one.has_value()) return {};
  return {std::move(zero).value(), std::move(one).value()};
}

// Both members' runs of `key`, each opened while the other opens it (Gloo's rendezvous).
std::pair<std::unique_ptr<RunGroup>, std::unique_ptr<RunGroup>> OpenRuns(DataParallelGroup& zero, DataParallelGroup& one,
                                                                         const std::string& key) {
  auto other = std::async(std::launch::async, [&one, key] { return RunGroup::Open(one, key); });
  auto mine = RunGroup::Open(zero, key);
  auto theirs = other.get();
  EXPECT_TRUE(mine.has_value()) << mine.error().ToString();
  EXPECT_TRUE(theirs.has_value()) << theirs.error().ToString();
  if (!mine.has_value() || !theirs.has_value()) return {};
  return {std::move(mine).value(), std::move(theirs).value()};
}

TEST(DataParallelGroupTest, RankZeroWaitsForAHeartbeatThatMovesNotForTheLastBeats) {
  if (!DataParallelAvailable()) GTEST_SKIP() << "no c10d Gloo in this libtorch";
  auto [zero, one] = Form(1s);
  ASSERT_TRUE(zero && one);
  // Joined but not following yet: no heartbeat.
  Status st = zero->WaitForFollowers();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("1 of the 1 other members"), std::string::npos) << st.message();
  ASSERT_TRUE(one->Following().ok());
  EXPECT_TRUE(zero->WaitForFollowers().ok());
  EXPECT_TRUE(zero->WaitForFollowers().ok()) << "the heartbeat goes on";
  // The member goes: its beats a moment ago do not make it live.
  one.reset();
  st = zero->WaitForFollowers();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(zero->WaitForFollowers([] { return true; }).code(), StatusCode::kCancelled);
}

// A follower waiting in a long store read (Gloo's rendezvous, which waits for rank 0's keys)
// still beats: its heartbeat has a connection of its own, so rank 0 sees it live.
TEST(DataParallelGroupTest, AFollowerBlockedInTheStoreStillBeats) {
  if (!DataParallelAvailable()) GTEST_SKIP() << "no c10d Gloo in this libtorch";
  auto [zero, one] = Form(5s);
  ASSERT_TRUE(zero && one);
  ASSERT_TRUE(one->Following().ok());
  auto theirs = std::async(std::launch::async, [&one = one] { return RunGroup::Open(*one, "task/4"); });
  std::this_thread::sleep_for(300ms);  // rank 1 is now waiting in the rendezvous for rank 0
  const auto began = std::chrono::steady_clock::now();
  const Status live = zero->WaitForFollowers([&] { return std::chrono::steady_clock::now() - began > 1500ms; });
  EXPECT_TRUE(live.ok()) << live.ToString();
  auto mine = RunGroup::Open(*zero, "task/4");  // lets rank 1's rendezvous end
  ASSERT_TRUE(mine.has_value()) << mine.error().ToString();
  auto joined = theirs.get();
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
}

// Members gathered for one task on one host take local ranks 0 and 1 (each its own GPU), as
// torchrun numbers the processes of a node.
TEST(DataParallelGroupTest, MembersOnOneHostTakeDistinctLocalRanks) {
  if (!DataParallelAvailable()) GTEST_SKIP() << "no c10d Gloo in this libtorch";
  auto [zero, one] = Form(3s);
  ASSERT_TRUE(zero && one);
  ASSERT_TRUE(one->TakeLocalRank().ok());
  ASSERT_TRUE(zero->TakeLocalRank().ok());
  EXPECT_EQ(one->config().local_rank, 0);
  EXPECT_EQ(zero->config().local_rank, 1);
}

// A member's own failure of a run reaches rank 0 under that run's key only.
TEST(DataParallelGroupTest, AMembersReportedFailureReachesRankZeroForThatRunOnly) {
  if (!DataParallelAvailable()) GTEST_SKIP() << "no c10d Gloo in this libtorch";
  auto [zero, one] = Form(3s);
  ASSERT_TRUE(zero && one);
  auto none = zero->MemberFailure("task/1/1", 100ms);
  ASSERT_TRUE(none.has_value()) << none.error().ToString();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(one->ReportFailure("task/1/1", "no data/reviews.csv in local storage").ok());
  auto said = zero->MemberFailure("task/1/1", 100ms);
  ASSERT_TRUE(said.has_value() && said->has_value());
  EXPECT_EQ(**said, "rank 1: no data/reviews.csv in local storage");
  auto other = zero->MemberFailure("task/1/2", 100ms);
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->has_value()) << "another run of the task";
}

TEST(DataParallelGroupTest, ACollectiveThrowsGroupLostOnceTheOtherMemberIsGone) {
  if (!DataParallelAvailable()) GTEST_SKIP() << "no c10d Gloo in this libtorch";
  auto [zero, one] = Form(3s);
  ASSERT_TRUE(zero && one);
  auto [mine, theirs] = OpenRuns(*zero, *one, "task/1");
  ASSERT_TRUE(mine && theirs);
  auto summed = std::async(std::launch::async, [&g = *theirs] { return g.Sum({3.0, 4.0}); });
  EXPECT_EQ(mine->Sum({1.0, 2.0}), (std::vector<double>{4.0, 6.0}));
  EXPECT_EQ(summed.get(), (std::vector<double>{4.0, 6.0}));
  theirs.reset();  // rank 1's run ends (its process died)
  EXPECT_THROW(mine->Sum({1.0}), GroupLost);
}

// A collective that cannot even be enqueued (here: a tensor on a device Gloo does not serve) is
// an error of the training, not a lost member: it must not be GroupLost, which sends the task
// back to the queue to fail the same way again.
TEST(DataParallelGroupTest, ACollectiveRefusedAtEnqueueIsNotAGroupLost) {
  if (!DataParallelAvailable()) GTEST_SKIP() << "no c10d Gloo in this libtorch";
  auto [zero, one] = Form(3s);
  ASSERT_TRUE(zero && one);
  auto [mine, theirs] = OpenRuns(*zero, *one, "task/2");
  ASSERT_TRUE(mine && theirs);
  const torch::Tensor meta = torch::empty({4}, torch::TensorOptions().device(torch::kMeta));
  auto outcome = [](const std::function<void()>& collective) -> std::string {
    try {
      collective();
    } catch (const GroupLost&) {
      return "group lost";
    } catch (const std::exception&) {
      return "refused";
    }
    return "ran";
  };
  for (RunGroup* g : {mine.get(), theirs.get()}) {
    EXPECT_EQ(outcome([&] { g->Average({meta}); }), "refused");
    EXPECT_EQ(outcome([&] { g->Broadcast({meta}); }), "refused");
  }
  // Nothing was enqueued, so the run goes on.
  auto summed = std::async(std::launch::async, [&g = *theirs] { return g.Sum({1.0}); });
  EXPECT_EQ(mine->Sum({2.0}), (std::vector<double>{3.0}));
  EXPECT_EQ(summed.get(), (std::vector<double>{3.0}));
}

}  // namespace
}  // namespace mlaas::train
