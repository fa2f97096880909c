// The task queue (issue 24): tasks claimed and completed per second by 1, 2 and 4 workers on
// PostgreSQL (started here on loopback, tests/testutil/postgres_server.h) against SQLite, the
// embedded default. Each worker is a TaskManager with one worker thread and a store connection
// of its own (what a separate `mlaas worker` process has); the tasks do nothing, so what is
// measured is the queue: claim (SKIP LOCKED / SQLite's write lock), the start log line, finish.
//
//   queue_bench [--tasks N]   (default 1000 per run)
#include <chrono>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "metadata/task_store.h"
#include "tasks/task_manager.h"
#include "testutil/postgres_server.h"
#include "testutil/temp_dir.h"

using namespace mlaas;
using nlohmann::json;

namespace {

// Seconds for `workers` managers to run `n` queued no-op tasks.
Result<double> Drain(const std::string& url, int workers, int n) {
  MLAAS_ASSIGN_OR_RETURN(auto submitter, metadata::OpenTaskStore({url, nullptr}));
  for (int i = 0; i < n; ++i) MLAAS_RETURN_IF_ERROR(submitter->Create({"noop", json{{"i", i}}, 1}).status());
  std::vector<std::unique_ptr<metadata::TaskStore>> stores;
  std::vector<std::unique_ptr<tasks::TaskManager>> managers;
  for (int w = 0; w < workers; ++w) {
    MLAAS_ASSIGN_OR_RETURN(auto store, metadata::OpenTaskStore({url, nullptr}));
    tasks::TaskManagerOptions o;
    o.workers = 1;
    o.finished_retention_ms = 0;
    auto m = std::make_unique<tasks::TaskManager>(*store, o);
    m->Register("noop", [](tasks::TaskContext&) -> Result<json> { return json::object(); });
    stores.push_back(std::move(store));
    managers.push_back(std::move(m));
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto& m : managers) MLAAS_RETURN_IF_ERROR(m->Start());
  for (;;) {
    MLAAS_ASSIGN_OR_RETURN(int64_t done, submitter->Count(metadata::TaskState::kSucceeded));
    if (done >= n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& m : managers) m->Stop();
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 1000;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--tasks") == 0) n = std::atoi(argv[i + 1]);
  spdlog::set_level(spdlog::level::warn);
  testing::PostgresServer postgres;
  if (Status st = postgres.Start(); !st.ok()) {
    std::cerr << "cannot start PostgreSQL: " << st.ToString() << "\n";
    return 1;
  }
  testing::TempDir dir;
  std::cout << "no-op tasks claimed and completed per second (" << n << " queued, then drained)\n";
  std::cout << "workers  SQLite tasks/s  PostgreSQL tasks/s  PostgreSQL/SQLite\n";
  for (int workers : {1, 2, 4}) {
    const std::string sqlite = (dir.path() / ("q" + std::to_string(workers) + ".db")).string();
    auto pg_url = postgres.FreshDatabase("q" + std::to_string(workers));
    if (!pg_url.has_value()) {
      std::cerr << pg_url.error().ToString() << "\n";
      return 1;
    }
    auto s = Drain(sqlite, workers, n);
    auto p = Drain(*pg_url, workers, n);
    if (!s.has_value() || !p.has_value()) {
      std::cerr << (s.has_value() ? p.error() : s.error()).ToString() << "\n";
      return 1;
    }
    const double sr = n / *s, pr = n / *p;
    std::cout << std::setw(7) << workers << std::fixed << std::setprecision(0) << std::setw(16) << sr << std::setw(20)
              << pr << std::setprecision(2) << std::setw(19) << pr / sr << "\n";
  }
  return 0;
}
