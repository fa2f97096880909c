// The metadata in PostgreSQL (issue 24), end to end: two API servers and a standalone worker on
// one database started by the test (tests/testutil/postgres_server.h). Tasks submitted through
// either server run once each on the worker, both servers report them, and a database restart
// in the middle loses and repeats nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fcntl.h>

#include <chrono>
#include <fstream>
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

  pid_t worker = 0;
  std::string bin = MlaasBinary(), data_arg = data_a.string(), db_arg = *url;
  std::vector<char*> argv = {bin.data(), const_cast<char*>("worker"), const_cast<char*>("--data-dir"), data_arg.data(),
                             const_cast<char*>("--database"), db_arg.data(), nullptr};
  const std::string worker_log = (dir.path() / "worker.log").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, worker_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  ASSERT_EQ(posix_spawn(&worker, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Killed if the test stops early (a failed ASSERT).
  std::unique_ptr<pid_t, void (*)(pid_t*)> worker_guard(&worker, [](pid_t* pid) {
    ::kill(*pid, SIGKILL);
    waitpid(*pid, nullptr, 0);
  });
  const auto log = [&] {
    std::ifstream in(worker_log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };

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
  ::kill(worker, SIGTERM);
  int status = 0;
  bool exited = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!exited && std::chrono::steady_clock::now() < deadline) {
    exited = waitpid(worker, &status, WNOHANG) == worker;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!exited) ::kill(worker, SIGKILL);
  worker_guard.release();
  EXPECT_TRUE(exited) << "the worker did not stop on SIGTERM";
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
