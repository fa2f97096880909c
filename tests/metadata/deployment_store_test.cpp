#include "metadata/deployment_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "metadata/backend_test.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;

class DeploymentStoreTest : public BackendTest {
 protected:
  std::unique_ptr<DeploymentStore> Open() { return OpenWith(&OpenDeploymentStore); }
};

INSTANTIATE_TEST_SUITE_P(Backends, DeploymentStoreTest, ::testing::Values("sqlite", "postgresql"), BackendName);

DeploymentRecord Record(const std::string& name) {
  DeploymentRecord r;
  r.name = name;
  r.incarnation = "inc-" + name;
  r.owner = "alice";
  r.labels = {"gpu", "eu"};
  r.gpus = 1;
  DeploymentVersionRecord v;
  v.id = "0f1e";
  v.version = "1";
  v.sequence = 1;
  v.request = {{"name", name}, {"model", {{"path", "models/m"}}}, {"text", "ünïcode \u0001"}};
  v.canary_percent = 30;
  v.created_ms = 1234;
  r.versions.push_back(v);
  r.next_number = 2;
  return r;
}

TEST_P(DeploymentStoreTest, RecordsRoundTripAndEveryWriteBumpsTheRevision) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  auto r0 = a->DeploymentsRevision();
  ASSERT_TRUE(r0.has_value());
  auto missing = a->GetDeployment("m");
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());

  auto rev = a->PutDeployment(Record("m"));
  ASSERT_TRUE(rev.has_value()) << rev.error().ToString();
  EXPECT_GT(*rev, *r0);
  EXPECT_EQ(*b->DeploymentsRevision(), *rev);  // another process sees the change
  auto got = b->GetDeployment("m");
  ASSERT_TRUE(got.has_value() && got->has_value());
  const DeploymentRecord& d = **got;
  EXPECT_EQ(d.owner, "alice");
  EXPECT_EQ(d.labels, (std::vector<std::string>{"gpu", "eu"}));
  EXPECT_EQ(d.gpus, 1);
  EXPECT_EQ(d.next_number, 2);
  EXPECT_EQ(d.revision, *rev);
  ASSERT_EQ(d.versions.size(), 1u);
  EXPECT_EQ(d.versions[0].id, "0f1e");
  EXPECT_EQ(d.versions[0].version, "1");
  EXPECT_EQ(d.versions[0].sequence, 1);
  EXPECT_EQ(d.versions[0].request, Record("m").versions[0].request);
  EXPECT_EQ(d.versions[0].canary_percent, 30);
  EXPECT_EQ(d.incarnation, "inc-m");
  EXPECT_EQ(d.versions[0].created_ms, 1234);

  auto other = a->PutDeployment(Record("n"));
  ASSERT_TRUE(other.has_value());
  auto all = b->ListDeployments();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "m");
  EXPECT_EQ((*all)[1].name, "n");

  ASSERT_TRUE(b->DeleteDeployment("n", *other).ok());
  EXPECT_GT(*a->DeploymentsRevision(), *other);
  EXPECT_EQ(a->DeleteDeployment("n", *other).code(), StatusCode::kNotFound);
  EXPECT_EQ(a->ListDeployments()->size(), 1u);
}

TEST_P(DeploymentStoreTest, AWriteFromAStaleReadIsAConflict) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  DeploymentRecord r = Record("m");
  auto first = a->PutDeployment(r);
  ASSERT_TRUE(first.has_value());
  // Creating it again (revision 0) conflicts with the stored one.
  Status again = b->PutDeployment(r).status();
  EXPECT_TRUE(IsConflict(again)) << again.ToString();

  r.revision = *first;
  r.next_number = 3;
  auto second = b->PutDeployment(r);
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  // `a` still holds the first revision: both its write and its delete lose.
  r.revision = *first;
  EXPECT_TRUE(IsConflict(a->PutDeployment(r).status()));
  EXPECT_TRUE(IsConflict(a->DeleteDeployment("m", *first)));
  EXPECT_EQ((*a->GetDeployment("m"))->next_number, 3);
  // A lost write changes nothing, not even the database-wide revision.
  EXPECT_EQ(*a->DeploymentsRevision(), *second);
}

// Many writers appending versions through compare-and-swap, each retrying on a conflict: every
// append lands once, in some order, with no lost update.
TEST_P(DeploymentStoreTest, ConcurrentReadModifyWritesLoseNothing) {
  constexpr int kThreads = 4, kEach = 10;
  {
    auto s = Open();
    ASSERT_TRUE(s);
    DeploymentRecord r = Record("m");
    r.versions.clear();
    ASSERT_TRUE(s->PutDeployment(r).has_value());
  }
  std::atomic<int> conflicts{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto s = Open();
      if (!s) return;
      for (int i = 0; i < kEach; ++i) {
        for (;;) {
          auto got = s->GetDeployment("m");
          if (!got.has_value() || !got->has_value()) {
            ++failures;
            break;
          }
          DeploymentRecord r = **got;
          DeploymentVersionRecord v;
          v.version = std::to_string(t) + "-" + std::to_string(i);
          v.sequence = r.next_number;
          r.versions.push_back(v);
          r.next_number++;
          Status st = s->PutDeployment(r).status();
          if (st.ok()) break;
          if (!IsConflict(st)) {
            ++failures;
            break;
          }
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = Open();
  auto final = s->GetDeployment("m");
  ASSERT_TRUE(final.has_value() && final->has_value());
  EXPECT_EQ((*final)->versions.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ((*final)->next_number, 2 + kThreads * kEach);
}

TEST_P(DeploymentStoreTest, HostsBeatWithWhatTheyHoldAndLeave) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  ServingHost h;
  h.id = "host-a";
  h.url = "http://10.0.0.1:8080";
  h.labels = {"cpu", "gpu"};
  h.gpus = 2;
  h.replicas = {{"m", {{"1", "ready"}, {"2", "loading"}}}};
  ASSERT_TRUE(a->BeatHost(h).ok());
  h.replicas["m"]["2"] = "ready";
  ASSERT_TRUE(a->BeatHost(h).ok());  // replaced, not added
  ServingHost other;
  other.id = "host-b";
  other.url = "http://10.0.0.2:8080";
  ASSERT_TRUE(b->BeatHost(other).ok());

  auto hosts = b->Hosts();
  ASSERT_TRUE(hosts.has_value());
  ASSERT_EQ(hosts->size(), 2u);
  const ServingHost& got = (*hosts)[0];
  EXPECT_EQ(got.id, "host-a");
  EXPECT_EQ(got.url, "http://10.0.0.1:8080");
  EXPECT_EQ(got.labels, (std::vector<std::string>{"cpu", "gpu"}));
  EXPECT_EQ(got.gpus, 2);
  EXPECT_EQ(got.replicas, json({{"m", {{"1", "ready"}, {"2", "ready"}}}}));
  EXPECT_GE(got.age_ms, 0);
  EXPECT_LT(got.age_ms, 60'000);

  ASSERT_TRUE(a->RemoveHost("host-a").ok());
  hosts = b->Hosts();
  ASSERT_TRUE(hosts.has_value());
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0].id, "host-b");
}

// PostgreSQL tells every other server of a committed write at once (LISTEN/NOTIFY); a write that
// lost its compare-and-swap tells nobody. SQLite cannot tell: its callers poll.
TEST_P(DeploymentStoreTest, CommittedWritesAreHeardByTheOtherServers) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  std::atomic<int> heard{0};
  auto feed = b->Subscribe([&] { ++heard; });
  if (GetParam() == "sqlite") {
    EXPECT_EQ(feed, nullptr);
    return;
  }
  ASSERT_NE(feed, nullptr);
  auto wait_for = [&](int n) {
    for (int i = 0; i < 500 && heard.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return heard.load();
  };
  auto revision = a->PutDeployment(Record("m"));
  ASSERT_TRUE(revision.has_value()) << revision.error().ToString();
  EXPECT_EQ(wait_for(1), 1);
  DeploymentRecord stale = Record("m");  // revision 0: another write came first
  EXPECT_TRUE(IsConflict(a->PutDeployment(stale).status()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(heard.load(), 1);
  ASSERT_TRUE(a->DeleteDeployment("m", *revision).ok());
  EXPECT_EQ(wait_for(2), 2);
  feed.reset();  // stopped: nothing more is heard
  ASSERT_TRUE(a->PutDeployment(Record("n")).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(heard.load(), 2);
}

}  // namespace
}  // namespace mlaas::metadata
