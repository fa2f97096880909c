// The metadata in PostgreSQL (issue 24), end to end: two API servers and a standalone worker on
// one database started by the test (tests/testutil/postgres_server.h). Tasks submitted through
// either server run once each on the worker, both servers report them, and a database restart
// in the middle loses and repeats nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <set>
#include <thread>

#include "e2e/server_process.h"
#include "testutil/postgres_server.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;

TEST(PostgresE2eTest, TwoServersAndAWorkerShareOneDatabaseThroughARestart) {
  PostgresServer postgres;
  ASSERT_TRUE(postgres.Start().ok());
  auto url = postgres.FreshDatabase("mlaas");
  ASSERT_TRUE(url.has_value()) << url.error().ToString();
  TempDir dir;
  const auto data_a = dir.path() / "a", data_b = dir.path() / "b";
  // API servers only (--workers 0): the work is the standalone worker's.
  ServerProcess a(data_a, {"--workers", "0", "--database", *url});
  ServerProcess b(data_b, {"--workers", "0", "--database", *url});
  ASSERT_TRUE(a.Start().ok()) << a.Log();
  ASSERT_TRUE(b.Start().ok()) << b.Log();
  auto ca = a.Client(), cb = b.Client();
  // The objects are each server's own (local storage); the worker reads server a's.
  for (auto* c : {ca.get(), cb.get()}) ASSERT_EQ(c->Call("PUT", "/api/v1/objects/d.csv", "a\n1\n2\n3\n")->status, 201);

  WorkerProcess worker(data_a, {"--database", *url});
  ASSERT_TRUE(worker.Start().ok());
  const auto log = [&] { return worker.Log(); };

  std::vector<std::string> ids;
  const auto submit = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto t = (ids.size() % 2 ? cb : ca)->Post("/api/v1/ml/utilities/dataset/stats", {{"dataset", {{"path", "d.csv"}}}});
      ASSERT_TRUE(t.has_value()) << t.error().ToString();
      ids.push_back((*t)["task_id"]);
    }
  };
  submit(10);
  // The worker is up once it has run the first ones.
  for (const auto& id : ids) ASSERT_EQ(WaitForTaskEnd(*ca, id)["task_status"], "succeeded") << log();
  // The database goes away for two seconds while the worker polls and the servers take more
  // tasks: their calls wait and retry (metadata/pg_db.h), none fails.
  ASSERT_TRUE(postgres.Stop().ok());
  std::thread restart([&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_TRUE(postgres.Resume().ok());
  });
  submit(10);
  restart.join();
  // Either server lists every task, whichever took it.
  auto listed = cb->Get("/api/v1/tasks?limit=100");
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ((*listed)["tasks"].size(), 20u);

  for (const auto& id : ids) {
    json t = WaitForTaskEnd(*ca, id);
    ASSERT_EQ(t["task_status"], "succeeded") << t.dump() << "\nworker: " << log();
    EXPECT_EQ(t["dataset"]["rows"], 3) << t.dump();
    EXPECT_EQ(t["stats"]["attempts"], 1) << "run once: " << t.dump();
  }
  // Server b reports the same outcomes.
  auto seen = cb->Get("/api/v1/tasks?limit=100&status=succeeded");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ((*seen)["tasks"].size(), 20u);

  // A SIGTERM stops the worker cleanly, within 30 s.
  ::kill(worker.pid(), SIGTERM);
  const int status = worker.WaitExit(std::chrono::seconds(30));
  EXPECT_NE(status, -1) << "the worker did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PostgresE2eTest, AnUnreachableDatabaseIsAClearErrorWithoutThePassword) {
  TempDir dir;
  ServerProcess server(dir.path() / "data", {"--database", "postgresql://mlaas:s3cret@127.0.0.1:1/db?connect_timeout=2"});
  EXPECT_FALSE(server.Start().ok());
  const std::string log = server.Log();
  EXPECT_NE(log.find("PostgreSQL"), std::string::npos) << log;
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
}

}  // namespace
}  // namespace mlaas::testing
