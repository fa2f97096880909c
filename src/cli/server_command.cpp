#include "cli/server_command.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <spdlog/spdlog.h>
#include <thread>
#include <httplib.h>
#include <torch/cuda.h>

#include "api/api_server.h"
#include "api/schemas.h"
#include "auth/authenticator.h"
#include "catalog/catalog.h"
#include "storage/hub_object_store.h"
#include "storage/prefixed_object_store.h"
#include "storage/s3_object_store.h"
#include "metadata/catalog_store.h"
#include "common/file_util.h"
#include "common/json_file.h"
#include "common/logging.h"
#include "common/net.h"
#include "dataset/dataset_stats.h"
#include "importer/model_import.h"
#include "metadata/account_store.h"
#include "metadata/deployment_store.h"
#include "metadata/task_store.h"
#include "nlp_tasks/tokenizer_task.h"
#include "predict/model_cache.h"
#include "predict/nlp_predictor.h"
#include "serve/deployments.h"
#include "sweep/sweep.h"
#include "vector/index_task.h"
#include "vector/searcher.h"
#include "train/data_parallel.h"
#include "train/train_spec.h"
#include "train/train_task.h"
#include "train/trainer.h"
#include "storage/local_object_store.h"
#include "tasks/leftovers.h"
#include "tasks/resources.h"
#include "tasks/task_manager.h"
#include "common/text.h"
#include "common/time_util.h"

#ifndef MLAAS_VERSION
#define MLAAS_VERSION "dev"
#endif

namespace mlaas::cli {

namespace fs = std::filesystem;

void AddServerOptions(CLI::App& cmd, ServerConfig& c, bool api) {
  if (api) {
    cmd.add_option("--host", c.host, "Address to listen on")
        ->envname("MLAAS_HOST")
        ->capture_default_str();
    cmd.add_option("--auth", c.auth,
                   "Check API tokens on every route: on, off, or auto (on unless --host is a loopback address)")
        ->envname("MLAAS_AUTH")
        ->check(CLI::IsMember({"on", "off", "auto"}))
        ->capture_default_str();
    cmd.add_option("--port", c.port, "Port to listen on (0: any free port)")
        ->envname("MLAAS_PORT")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    cmd.add_option("--port-file", c.port_file,
                   "Write the port actually bound to this file (useful with --port 0)")
        ->envname("MLAAS_PORT_FILE");
    cmd.add_option("--max-body-bytes", c.max_body_bytes, "Largest JSON request body accepted")
        ->envname("MLAAS_MAX_BODY_BYTES")
        ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 32))
        ->capture_default_str();
    cmd.add_option("--max-upload-bytes", c.max_upload_bytes,
                   "Largest object accepted by PUT /api/v1/objects/{key}")
        ->envname("MLAAS_MAX_UPLOAD_BYTES")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 50))
        ->capture_default_str();
    cmd.add_option("--http-threads", c.http_threads,
                   "Connection threads kept ready (a keep-alive client or an event stream holds one); "
                   "more start while all are busy, up to --max-connections")
        ->envname("MLAAS_HTTP_THREADS")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    cmd.add_option("--max-connections", c.max_connections,
                   "Connections served at once (slow clients cannot hold every thread); beyond, they wait")
        ->envname("MLAAS_MAX_CONNECTIONS")
        ->check(CLI::Range(1, 65536))
        ->capture_default_str();
    cmd.add_option("--max-event-streams", c.max_event_streams,
                   "Task event streams open at once (0: half of --http-threads); beyond: 429")
        ->envname("MLAAS_MAX_EVENT_STREAMS")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
    cmd.add_option("--max-compute-requests", c.max_compute_requests,
                   "Prediction, search and vector-store requests in progress at once (0: a quarter "
                   "of --http-threads); beyond: 429")
        ->envname("MLAAS_MAX_COMPUTE_REQUESTS")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
  }
  cmd.add_option("--data-dir", c.data_dir,
                 "Data directory: objects/ (local storage), tmp/ and the default database")
      ->envname("MLAAS_DATA_DIR")
      ->capture_default_str();
  cmd.add_option("--web-dir", c.web_dir, "The built web app served at / (default: the one this build made)")
      ->envname("MLAAS_WEB_DIR");
  cmd.add_option("--database", c.database,
                 "Metadata database: a SQLite file path or sqlite:///path (default: <data-dir>/mlaas.db), or "
                 "PostgreSQL as postgresql://user:password@host:port/db shared by several servers and workers "
                 "(docs/deploy.md)")
      ->envname("MLAAS_DATABASE");
  cmd.add_option("--storage", c.storage,
                 "The server's own object store (objects API, task outputs, checkpoints, catalog): "
                 "s3://bucket/prefix (S3 configured as in docs/storage.md); default: <data-dir>/objects")
      ->envname("MLAAS_STORAGE");
  cmd.add_option("--storage-cache-bytes", c.storage_cache_bytes,
                 "Local copies of S3 objects (model and index files) kept in <data-dir>/cache at most, "
                 "least recently used out")
      ->envname("MLAAS_STORAGE_CACHE_BYTES")
      ->capture_default_str();
  if (api) {
    cmd.add_option("--advertise-url", c.advertise_url,
                   "Where the other API servers of the database reach this one, to hand it inference requests for "
                   "the deployments it serves (default: http://<host>:<port>, with this machine's name when "
                   "listening on every address)")
        ->envname("MLAAS_ADVERTISE_URL");
    cmd.add_option("--s3-buckets", c.s3_buckets,
                   "S3 buckets that users other than admins may read and write with the server's "
                   "credentials (with auth on; admins may use any)")
        ->envname("MLAAS_S3_BUCKETS")
        ->delimiter(',');
  }
  if (!api) {
    cmd.add_option("--health-port", c.health_port,
                   "Answer GET /healthz (the process is up) and /readyz (the database answers, the workers run) "
                   "on this port, on every address, for probes such as Kubernetes' (0: no port)")
        ->envname("MLAAS_HEALTH_PORT")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
  }
  cmd.add_option("--workers", c.workers,
                 api ? "Task worker threads in this process (0: only queue tasks)"
                     : "Task worker threads")
      ->envname("MLAAS_WORKERS")
      ->check(CLI::Range(api ? 0 : 1, 256))
      ->capture_default_str();
  cmd.add_option("--labels", c.labels,
                 api ? "Capability labels of this server, comma-separated (besides cpu, and gpu when it has GPUs): "
                       "its workers run only tasks whose resources.labels it all has, and it loads only the "
                       "deployments whose resources.labels it all has"
                     : "Capability labels of this process's workers, comma-separated (besides cpu, and gpu when it "
                       "has GPUs): they run only tasks whose resources.labels they all have")
      ->envname("MLAAS_WORKER_LABELS")
      ->delimiter(',');
  cmd.add_option("--gpus", c.gpus,
                 api ? "GPUs this server offers to tasks and deployments asking resources.gpus (-1: the CUDA "
                       "devices it sees)"
                     : "GPUs this process's workers offer to tasks asking resources.gpus (-1: the CUDA devices it sees)")
      ->envname("MLAAS_WORKER_GPUS")
      ->check(CLI::Range(-1, 64))
      ->capture_default_str();
  cmd.add_option("--group-host", c.group_host,
                 "Address at which the other members reach this process when it leads a data-parallel group "
                 "gathered through the database for a task asking resources.workers > 1 (default: 127.0.0.1 "
                 "with SQLite, this machine's name with PostgreSQL; docs/deploy.md)")
      ->envname("MLAAS_GROUP_HOST");
  cmd.add_option("--task-max-attempts", c.task_max_attempts,
                 "Times a task is started before an interrupted task is failed")
      ->envname("MLAAS_TASK_MAX_ATTEMPTS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd.add_option("--task-lease-seconds", c.task_lease_seconds,
                 "A worker that stops renewing its task for this long loses it to another")
      ->envname("MLAAS_TASK_LEASE_SECONDS")
      ->check(CLI::Range(3, 86400))
      ->capture_default_str();
  cmd.add_option("--max-queued-tasks", c.max_queued_tasks, "Tasks waiting at once (0: no limit); beyond: 429")
      ->envname("MLAAS_MAX_QUEUED_TASKS")
      ->check(CLI::Range(int64_t{0}, int64_t{100'000'000}))
      ->capture_default_str();
  cmd.add_option("--task-retention-days", c.task_retention_days,
                 "Finished tasks (and their logs) older than this are deleted (0: kept forever)")
      ->envname("MLAAS_TASK_RETENTION_DAYS")
      ->check(CLI::Range(0.0, 36500.0))
      ->capture_default_str();
  cmd.add_option("--device", c.device, "Where models run: cpu, cuda or cuda:N (cuda needs a CUDA build of libtorch)")
      ->envname("MLAAS_DEVICE")
      ->capture_default_str();
  cmd.add_option("--threads", c.threads, "libtorch threads per forward/backward pass (0: one per core)")
      ->envname("MLAAS_THREADS")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd.add_option("--dtype", c.dtype,
                 "Inference weights/activations: float32, or bfloat16 (~1.6x faster on CPUs with AVX512-BF16)")
      ->envname("MLAAS_DTYPE")
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->capture_default_str();
  cmd.add_option("--max-model-bytes", c.max_model_bytes,
                 "One model's float32 weights at most, computed from its config before anything is allocated "
                 "(training: 4x, for gradients and optimizer state; 0: half the memory)")
      ->envname("MLAAS_MAX_MODEL_BYTES")
      ->capture_default_str();
  if (api) {
    cmd.add_option("--model-cache", c.model_cache, "Models kept loaded for prediction (least recently used out)")
        ->envname("MLAAS_MODEL_CACHE")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    cmd.add_option("--model-cache-bytes", c.model_cache_bytes,
                   "Memory budget of the prediction cache: weights' bytes of the models kept (0: no limit; "
                   "deployed models are not counted)")
        ->envname("MLAAS_MODEL_CACHE_BYTES")
        ->capture_default_str();
    cmd.add_option("--deployments-bytes", c.deployments_bytes,
                   "All deployed model versions' weights together at most (0: half the memory)")
        ->envname("MLAAS_DEPLOYMENTS_BYTES")
        ->capture_default_str();
    cmd.add_option("--max-deployed-versions", c.max_deployed_versions,
                   "Model versions deployed at once (loading, serving or failed) in the whole database, "
                   "every server's: a platform limit, checked by the server a deployment is made through "
                   "(set it alike on every server)")
        ->envname("MLAAS_MAX_DEPLOYED_VERSIONS")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd.add_option("--max-inline-search-documents", c.max_inline_search_documents,
                   "Documents of a plain dataset searched without a vector store (beyond: 400, build a store)")
        ->envname("MLAAS_MAX_INLINE_SEARCH_DOCUMENTS")
        ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
        ->capture_default_str();
    cmd.add_option("--max-inline-search-bytes", c.max_inline_search_bytes,
                   "Size of a plain dataset searched without a vector store (beyond: 400)")
        ->envname("MLAAS_MAX_INLINE_SEARCH_BYTES")
        ->capture_default_str();
    cmd.add_option("--max-inline-searches", c.max_inline_searches,
                   "Search work in the background at once: vector stores loading, plain datasets embedding, "
                   "lexical indexes building (beyond: 429)")
        ->envname("MLAAS_MAX_INLINE_SEARCHES")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd.add_option("--search-wait-seconds", c.search_wait_seconds,
                   "How long a search waits for its store to load or its dataset to embed; then 503 while "
                   "the work goes on, and a retry gets its result")
        ->envname("MLAAS_SEARCH_WAIT_SECONDS")
        ->check(CLI::Range(0.0, 3600.0))
        ->capture_default_str();
    cmd.add_option("--max-vector-store-bytes", c.max_vector_store_bytes,
                   "A vector store's index and documents at most, as loaded for search (0: half the memory)")
        ->envname("MLAAS_MAX_VECTOR_STORE_BYTES")
        ->capture_default_str();
    cmd.add_option("--max-loading-models", c.max_loading_models, "Models loading at once (others wait up to 60 s)")
        ->envname("MLAAS_MAX_LOADING_MODELS")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
  }
  cmd.add_option("--log-level", c.log_level, "trace, debug, info, warn, error, critical or off")
      ->envname("MLAAS_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
}

namespace {

// How long a shutdown waits for the running tasks to stop.
constexpr auto kShutdownGrace = std::chrono::seconds(60);

// Stops the task manager after a shutdown signal. A task that does not stop within
// kShutdownGrace (work that cannot be interrupted) does not keep the process alive: it exits,
// and the task, still recorded as running here, goes back to the queue when its lease runs out
// (or at this server's next start), as after a SIGKILL.
void StopTasksWithin(tasks::TaskManager& manager) {
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, kShutdownGrace, [&] { return stopped; })) {
      spdlog::error("the running tasks did not stop within {} s of the shutdown: exiting without them (they are "
                    "queued again when their lease runs out)",
                    kShutdownGrace.count());
      spdlog::default_logger()->flush();
      std::_Exit(1);
    }
  });
  manager.Stop();
  {
    std::lock_guard lock(mu);
    stopped = true;
  }
  cv.notify_all();
  watchdog.join();
}

// Blocks SIGINT/SIGTERM in every thread and turns them into a call of `on_signal` from a
// dedicated thread, so shutdown runs as ordinary code rather than in a signal handler.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void()> on_signal) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, on_signal = std::move(on_signal)] {
      int sig = 0;
      sigwait(&set_, &sig);
      if (!done_) {
        spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        on_signal();
      }
    });
  }
  ~SignalWatcher() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// A shutdown request that may arrive before the code that acts on it is ready: a signal
// received during startup is remembered and acted on as soon as an action is installed.
class StopRequest {
 public:
  void Request() {
    std::lock_guard lock(mu_);
    requested_ = true;
    if (action_) action_();
  }
  void OnRequest(std::function<void()> action) {
    std::lock_guard lock(mu_);
    action_ = std::move(action);
    if (requested_ && action_) action_();
  }

 private:
  std::mutex mu_;
  bool requested_ = false;
  std::function<void()> action_;
};

Status WritePortFile(const std::string& path, int port) {
  fs::path tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) return Internal("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Internal("cannot write " + path + ": " + ec.message());
  return Status::Ok();
}

uint64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 8ull << 30;
}

// A byte limit whose 0 means half the machine's memory.
uint64_t OrHalfTheMemory(uint64_t bytes) { return bytes > 0 ? bytes : PhysicalMemoryBytes() / 2; }

// Each connection is a descriptor: lift the soft limit (Debian's is 1,024) towards the hard one,
// so --max-connections is not capped below its value by accept() failing.
void RaiseOpenFileLimit(rlim_t wanted) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= wanted) return;
  rlimit raised = lim;
  raised.rlim_cur = lim.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, lim.rlim_max);
  if (raised.rlim_cur > lim.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    spdlog::warn("cannot raise the open-file limit to {}", raised.rlim_cur);
  }
  if (raised.rlim_cur < wanted) {
    spdlog::warn("open-file limit {} is below --max-connections + 1024 ({}): raise it (ulimit -n)",
                 raised.rlim_cur, wanted);
  }
}

int Fail(const Status& st) {
  spdlog::critical("{}", st.ToString());
  return 1;
}

// The object stores: the server's own ("local" in requests: <data-dir>/objects, or the keys
// under --storage s3://bucket/prefix), the Hugging Face Hub (read-only, through its cache:
// HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HUB_OFFLINE) and S3 when configured
// (MLAAS_S3_ENDPOINT, AWS_* or ~/.aws/credentials). docs/storage.md.
Status OpenStorage(const ServerConfig& c, const fs::path& data, storage::StorageRegistry& registry) {
  std::optional<storage::S3Options> s3 = storage::S3OptionsFromEnv();
  if (s3 || !c.storage.empty()) {
    MLAAS_ASSIGN_OR_RETURN(auto cache, storage::FileCache::Open(data / "cache", c.storage_cache_bytes));
    if (!s3) s3 = storage::S3Options{};  // AWS, region us-east-1, no credentials: public buckets
    s3->scratch = data / "tmp";
    s3->cache = cache;
    spdlog::info("s3 storage: {}", s3->endpoint.empty() ? "AWS, region " + s3->region : s3->endpoint);
  }
  if (c.storage.empty()) {
    MLAAS_ASSIGN_OR_RETURN(auto local, storage::LocalObjectStore::Create(data / "objects", data / "tmp"));
    registry.Add(std::move(local));
  } else {
    if (!StartsWith(c.storage, "s3://"))
      return InvalidArgument("--storage must be s3://bucket/prefix (or left out for <data-dir>/objects): '" + c.storage + "'");
    auto store = std::make_unique<storage::S3ObjectStore>(*s3);
    auto root = store->KeyForPath(c.storage);
    if (!root.has_value()) return root.error().WithContext("--storage");
    std::string prefix = *root + "/";
    // The bucket must answer now, not at the first upload.
    storage::ListOptions probe;
    probe.prefix = prefix;
    probe.max_keys = 1;
    if (auto listed = store->List(probe); !listed.has_value()) return listed.error().WithContext("--storage " + c.storage);
    spdlog::info("the server's objects are in {}", c.storage);
    registry.Add(std::make_unique<storage::PrefixedObjectStore>(std::move(store), prefix, "local"));
  }
  registry.Add(std::make_unique<storage::HubObjectStore>(storage::HubOptionsFromEnv()));
  if (s3) registry.Add(std::make_unique<storage::S3ObjectStore>(*s3));
  return Status::Ok();
}

// A worker's probe endpoints (--health-port): GET /healthz answers while the process runs;
// GET /readyz answers 200 while the database answers and the workers run, 503 otherwise (and
// once shutdown began), with the same body shape as the API server's.
class HealthServer {
 public:
  // `working`: whether the task workers run (a group member other than rank 0: whether it follows).
  static Result<std::unique_ptr<HealthServer>> Start(int port, metadata::TaskStore& store,
                                                     std::function<bool()> working) {
    std::unique_ptr<HealthServer> h(new HealthServer());
    h->server_.new_task_queue = [] { return new httplib::ThreadPool(2); };
    h->server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(nlohmann::json{{"status", "ok"}, {"version", MLAAS_VERSION}}.dump(), "application/json");
    });
    HealthServer* self = h.get();
    h->server_.Get("/readyz", [self, &store, working](const httplib::Request&, httplib::Response& res) {
      const Status db = store.Ping();
      const bool runs = working();
      nlohmann::json checks = {{"metadata", db.ok() ? "ok" : db.message()},
                               {"tasks", runs ? "ok" : "the task manager is not running"}};
      if (self->stopping_) checks["shutdown"] = "the worker is stopping";
      const bool ready = db.ok() && runs && !self->stopping_;
      res.status = ready ? 200 : 503;
      res.set_content(nlohmann::json{{"status", ready ? "ready" : "not ready"}, {"checks", checks}}.dump(),
                      "application/json");
    });
    if (!h->server_.bind_to_port("0.0.0.0", port))
      return Unavailable("cannot listen on port " + std::to_string(port) + " for --health-port");
    h->thread_ = std::thread([self] { self->server_.listen_after_bind(); });
    // httplib's stop() does nothing until the accept loop runs: a stop right after start must
    // not be lost (the destructor would wait for ever).
    for (int i = 0; i < 5000 && !h->server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    spdlog::info("worker probes on port {}: /healthz, /readyz", port);
    return h;
  }
  ~HealthServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  void SetStopping() { stopping_ = true; }

 private:
  HealthServer() = default;
  httplib::Server server_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// A data-parallel group member other than rank 0: runs each task rank 0 hands it, detached from
// the queue (rank 0 holds the lease and records the outcome), until stopped or until rank 0 is
// gone (exit 1: a supervisor such as PyTorchJob restarts the group).
int RunFollower(const ServerConfig& c, metadata::TaskStore& store, tasks::TaskManager& manager,
                train::DataParallelGroup& group, StopRequest& stop) {
  std::unique_ptr<HealthServer> health;
  if (c.health_port > 0) {
    auto started = HealthServer::Start(c.health_port, store, [] { return true; });
    if (!started.has_value()) return Fail(started.error());
    health = std::move(started).value();
  }
  spdlog::info("mlaas {} worker: rank {} of a data-parallel group of {}, running what rank 0 hands it", MLAAS_VERSION,
               group.rank(), group.world_size());
  std::atomic<bool> quit{false};
  std::atomic<int> exit_code{0};
  std::promise<void> stopped;
  std::once_flag once;
  stop.OnRequest([&] { std::call_once(once, [&] { stopped.set_value(); }); });
  // From the next task on: what rank 0 handed out before this member (re)joined is not its.
  auto last = group.LastPublished();
  if (!last.has_value()) return Fail(last.error());
  if (Status st = group.Following(); !st.ok()) return Fail(st);
  std::thread follow([&, first = *last + 1] {
    for (int64_t n = first; !quit;) {
      auto next = group.NextTask(n, std::chrono::seconds(1));
      if (!next.has_value()) {
        spdlog::error("{}", next.error().ToString());
        exit_code = 1;
        stop.Request();
        return;
      }
      if (!next->has_value()) {
        // Rank 0 went on without this member (it was still busy, or slow to join): the tasks it
        // missed have failed; follow from the latest.
        auto latest = group.LastPublished();
        if (latest.has_value() && *latest > n) {
          spdlog::warn("rank 0 handed out tasks {} to {} while this member was busy; following from {}", n,
                       *latest - 1, *latest);
          n = *latest;
        }
        continue;
      }
      // Rank 0 went on while this member was busy: the task has failed (its run was keyed by
      // the number it was handed out under, which the handler reads as the latest).
      if (auto latest = group.LastPublished(); latest.has_value() && *latest > n) {
        spdlog::warn("task number {} was handed out while this member was busy; following from {}", n, *latest);
        n = *latest;
        continue;
      }
      const int64_t number = n++;
      const nlohmann::json& t = **next;
      metadata::TaskRecord r;
      r.id = t.value("id", "");
      r.type = t.value("type", "");
      r.params = t.value("params", nlohmann::json::object());
      r.submitted_by = t.value("submitted_by", "");
      r.attempts = t.value("attempt", 1);
      r.state = metadata::TaskState::kRunning;
      spdlog::info("task {} ({}): training as rank {} of {}", r.id, r.type, group.rank(), group.world_size());
      const std::string id = r.id;
      const std::string run_key = id + "/" + std::to_string(r.attempts) + "/" + std::to_string(number);
      auto result = manager.RunDetached(std::move(r));
      if (result.has_value()) {
        spdlog::info("task {}: this rank's share is done", id);
      } else {
        spdlog::warn("task {}: {}", id, result.error().ToString());
        // Whatever failed here that is not the group's (a throw included) fails the task on
        // rank 0 with this error, rather than a retry as if this member were lost.
        if (!train::IsGroupFailure(result.error())) (void)group.ReportFailure(run_key, result.error().message());
      }
    }
  });
  stopped.get_future().wait();
  stop.OnRequest(nullptr);
  quit = true;
  if (health) health->SetStopping();
  StopTasksWithin(manager);  // asks a task in progress to stop
  follow.join();
  return exit_code;
}

// Where other API servers reach this one by default: the address it listens on or, when that
// is every address, this machine's name.
std::string DefaultUrl(const std::string& host, int port) {
  std::string name = host;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    char buf[256] = {};
    name = ::gethostname(buf, sizeof(buf) - 1) == 0 ? buf : "localhost";
  }
  if (name.find(':') != std::string::npos) name = "[" + name + "]";  // an IPv6 address
  return "http://" + name + ":" + std::to_string(port);
}

// Releases before 0.9 kept deployments in <data>/deployments.json: they move into the database
// once (each version deployed again) and the file is renamed *.imported.
void ImportDeploymentsFile(const fs::path& file, serve::DeploymentManager& deployments) {
  if (!fs::exists(file)) return;
  auto state = ReadJsonFile(file, "the deployments state file");
  if (!state.has_value() || !state->is_object() || !state->contains("deployments") || !(*state)["deployments"].is_array()) {
    spdlog::error("{} is not a deployments file; left as it is", file.string());
    return;
  }
  int imported = 0;
  // Versions whose failure may pass (the database, a limit): the file keeps them (only them) for
  // the next start.
  nlohmann::json retry = nlohmann::json::array();
  for (const auto& d : (*state)["deployments"]) {
    if (!d.is_object() || !d.contains("versions") || !d["versions"].is_array()) continue;
    const auto& versions = d["versions"];
    for (size_t i = 0; i < versions.size(); ++i) {
      nlohmann::json v = versions[i];
      // That file kept each version's original request: only its last version, beside another,
      // can still be a canary.
      if (v.is_object() && (i + 1 < versions.size() || versions.size() == 1)) v.erase("canary_percent");
      auto r = deployments.Deploy(v);
      if (r.has_value()) {
        ++imported;
        continue;
      }
      spdlog::error("cannot import a deployment of {}: {}", file.string(), r.error().ToString());
      const StatusCode code = r.error().code();
      if (code != StatusCode::kInvalidArgument && code != StatusCode::kAlreadyExists)
        retry.push_back({{"name", v.value("name", "")}, {"versions", {v}}});
    }
  }
  if (!retry.empty()) {
    if (Status st = WriteFileAtomic(file, nlohmann::json{{"deployments", retry}}.dump(2)); !st.ok())
      spdlog::error("cannot rewrite {}: {}", file.string(), st.ToString());
    spdlog::warn("{} keeps {} version(s), imported at the next start", file.string(), retry.size());
    return;
  }
  std::error_code ec;
  fs::rename(file, fs::path(file.string() + ".imported"), ec);
  spdlog::info("imported {} deployment version(s) from {} into the database", imported, file.string());
}

// Where this process's workers host the groups they lead (ServerConfig::group_host).
std::string GroupHost(const ServerConfig& c, const std::string& database_url) {
  if (!c.group_host.empty()) return c.group_host;
  // SQLite: every process of the database is on this machine. PostgreSQL: workers may be on
  // others, even when this process reaches the database on loopback.
  if (!StartsWith(database_url, "postgres")) return "127.0.0.1";
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "127.0.0.1";
  return name;
}

}  // namespace

int RunServer(const ServerConfig& c, bool api) {
  // Before any thread exists, so that every thread inherits the blocked signal mask.
  StopRequest stop;
  SignalWatcher signals([&] { stop.Request(); });

  const int64_t start_ms = NowMs();
  if (Status st = InitLogging(c.log_level); !st.ok()) return Fail(st);
  std::error_code ec;
  fs::create_directories(c.data_dir, ec);
  if (ec) return Fail(Internal("cannot create data directory " + c.data_dir + ": " + ec.message()));
  const fs::path data = fs::weakly_canonical(fs::absolute(c.data_dir));

  metadata::StoreOptions store_options;
  store_options.url = c.database.empty() ? (data / "mlaas.db").string() : c.database;
  auto store = metadata::OpenTaskStore(store_options);
  if (!store.has_value()) return Fail(store.error().WithContext("opening the metadata store"));

  storage::StorageRegistry storage;
  auto opened_storage = OpenStorage(c, data, storage);
  if (!opened_storage.ok()) return Fail(opened_storage);

  // The model and dataset registry (docs/catalog.md): records beside the tasks, files in the
  // local store under catalog/.
  auto catalog_records = metadata::OpenCatalogStore(store_options);
  if (!catalog_records.has_value()) return Fail(catalog_records.error().WithContext("opening the catalog"));
  catalog::Catalog catalog(**catalog_records, **storage.Get("local"));
  if (Status st = catalog.SweepAbandoned(); !st.ok()) spdlog::warn("catalog: {}", st.ToString());

  tasks::TaskManagerOptions task_options;
  task_options.workers = c.workers;
  const int gpus = c.gpus >= 0 ? c.gpus : static_cast<int>(torch::cuda::device_count());
  auto capabilities = tasks::MakeCapabilities(gpus, c.labels);
  if (!capabilities.has_value()) return Fail(capabilities.error().WithContext("--labels"));
  task_options.capabilities = *capabilities;
  // A member of a data-parallel group (WORLD_SIZE > 1, as torchrun and PyTorchJob set it;
  // docs/deploy.md): rank 0 leads, claiming besides single-worker tasks the ones that ask
  // resources.workers = WORLD_SIZE; the others run what it hands them.
  std::unique_ptr<train::DataParallelGroup> group;
  if (!api) {
    auto dp = train::DataParallelConfigFromEnv();
    if (!dp.has_value()) return Fail(dp.error().WithContext("the data-parallel environment"));
    if (dp->world_size > 1) {
      spdlog::info("joining the data-parallel group of {} at {}:{} as rank {}", dp->world_size, dp->master_addr,
                   dp->master_port, dp->rank);
      auto joined = train::DataParallelGroup::Join(*dp);
      if (!joined.has_value()) return Fail(joined.error());
      group = std::move(joined).value();
      task_options.capabilities.workers = dp->world_size;
      // One task at a time: the group trains what rank 0 runs, and a second task of rank 0 would
      // hold the training lock while the others wait for it in a collective.
      if (task_options.workers != 1) spdlog::info("a data-parallel group member runs one task at a time (--workers 1)");
      task_options.workers = 1;
    }
  }
  // Not in a torchrun group: idle workers gather through the database for tasks asking
  // resources.workers > 1, forming a group for each such task (docs/deploy.md).
  task_options.gather_groups = group == nullptr && train::DataParallelAvailable() && c.workers > 0;
  auto group_env = train::DataParallelConfigFromEnv();
  if (!group_env.has_value() && group_env.error().field() == "MLAAS_GROUP_TIMEOUT_SECONDS") return Fail(group_env.error());
  const std::chrono::milliseconds group_timeout =
      group_env.has_value() ? group_env->timeout : std::chrono::milliseconds(std::chrono::minutes(5));
  // A seat waits as long for its group to fill up before its worker goes back to other work.
  task_options.group_gather_timeout_ms = group_timeout.count();
  task_options.max_attempts = c.task_max_attempts;
  task_options.lease_ms = int64_t{c.task_lease_seconds} * 1000;
  task_options.max_queued_tasks = c.max_queued_tasks;
  task_options.finished_retention_ms = static_cast<int64_t>(c.task_retention_days * 24 * 3600 * 1000);
  // What a crash left behind (temporary files, checkpoints of ended tasks), before any task runs.
  // Only the API server sweeps temporary files: a worker started beside a live server must not
  // take the server's uploads in progress.
  auto swept = tasks::SweepLeftovers(**store, {.tmp_dir = api ? data / "tmp" : fs::path(),
                                               .checkpoint_root = data / "checkpoints",
                                               .objects_dir = api && c.storage.empty() ? data / "objects" : fs::path(),
                                               .before_ms = start_ms});
  if (!swept.has_value()) {
    spdlog::warn("cannot sweep what an earlier run left: {}", swept.error().ToString());
  } else if (swept->tmp_removed + swept->checkpoints_removed + swept->partial_objects_removed > 0) {
    spdlog::info("removed what an earlier run left: {} temporary entries, {} checkpoint directories, {} half-written "
                 "objects{}",
                 swept->tmp_removed, swept->checkpoints_removed, swept->partial_objects_removed,
                 swept->tmp_skipped ? " (temporary files kept: another process runs tasks)" : "");
  }
  tasks::TaskManager manager(**store, task_options);
  manager.Register(dataset::kDatasetStatsTask, dataset::MakeDatasetStatsHandler(storage));
  manager.Register(nlp_tasks::kTrainTokenizerTask, nlp_tasks::MakeTrainTokenizerHandler(storage));
  const train::TrainTaskOptions train_options{.scratch = data / "tmp",
                                              .checkpoint_root = data / "checkpoints",
                                              .max_model_bytes = OrHalfTheMemory(c.max_model_bytes),
                                              .checkpoint_store = c.storage.empty() ? nullptr : *storage.Get("local"),
                                              .data_parallel = group.get(),
                                              .group_host = GroupHost(c, store_options.url),
                                              .group_timeout = group_timeout};
  // The trained model is registered in the catalog by whoever records the task's outcome: not by
  // the members of a data-parallel group other than rank 0, which write nothing.
  const bool follower = group != nullptr && group->rank() > 0;
  const auto registering = [&](tasks::TaskHandler train) -> tasks::TaskHandler {
    if (follower) return train;
    auto registered = catalog::RegisteringTrainedModels(train, catalog, storage, auth::LocalAdmin().user);
    return [train, registered](tasks::TaskContext& ctx) {
      return ctx.group() && ctx.group()->rank > 0 ? train(ctx) : registered(ctx);
    };
  };
  manager.Register(train::kTrainNlpModelTask, registering(train::MakeTrainNlpModelHandler(storage, train_options)),
                   train::MakeTrainNlpModelValidator(storage));
  manager.Register(train::kTrainCvModelTask, registering(train::MakeTrainCvModelHandler(storage, train_options)),
                   train::MakeTrainCvModelValidator(storage));
  // Hyperparameter sweeps run NLP training trials, on coordinator threads of their own.
  manager.Register(sweep::kSweepTask, registering(sweep::MakeSweepHandler(manager, train::kTrainNlpModelTask)),
                   sweep::MakeSweepValidator(
                       train::MakeTrainNlpModelValidator(storage),
                       [](const nlohmann::json& params) { return train::ParseTrainSpec(params).status(); },
                       api::schemas::ModelTrain()));
  manager.RunOnCoordinators(sweep::kSweepTask);
  // Only training runs data-parallel: other tasks asking resources.workers > 1 are refused.
  manager.AllowDataParallel(train::kTrainNlpModelTask);
  manager.AllowDataParallel(train::kTrainCvModelTask);
  manager.Register(importer::kImportModelTask, importer::MakeImportModelHandler(storage, data / "tmp"),
                   importer::MakeImportModelValidator(storage));
  manager.Register(vector::kVectorIndexTask, vector::MakeVectorIndexHandler(storage, data / "tmp"),
                   vector::MakeVectorIndexValidator(storage));

  // Every model load in this process, API or worker (index tasks load embedding models).
  predict::SetLoadLimits(c.max_loading_models, std::chrono::seconds(60), OrHalfTheMemory(c.max_model_bytes));

  if (!api && group != nullptr && group->rank() > 0) return RunFollower(c, **store, manager, *group, stop);
  if (!api) {
    if (Status st = manager.Start(); !st.ok()) return Fail(st);
    std::unique_ptr<HealthServer> health;
    if (c.health_port > 0) {
      auto started = HealthServer::Start(c.health_port, **store, [&manager] { return manager.started(); });
      if (!started.has_value()) {
        manager.Stop();
        return Fail(started.error());
      }
      health = std::move(started).value();
    }
    spdlog::info("mlaas {} worker: {} thread(s), {} GPU(s), labels {}, data directory {}", MLAAS_VERSION, c.workers,
                 task_options.capabilities.gpus, Join(task_options.capabilities.labels, ","), data.string());
    std::promise<void> stopped;
    stop.OnRequest([&stopped] { stopped.set_value(); });
    stopped.get_future().wait();
    stop.OnRequest(nullptr);
    if (health) health->SetStopping();
    StopTasksWithin(manager);
    return 0;
  }

  api::ApiOptions options;
  options.host = c.host;
  options.port = c.port;
  options.max_body_bytes = c.max_body_bytes;
  options.max_upload_bytes = c.max_upload_bytes;
  options.http_threads = c.http_threads;
  options.max_connections = std::max(c.max_connections, c.http_threads);
  RaiseOpenFileLimit(static_cast<rlim_t>(options.max_connections) + 1024);
  options.max_event_streams = c.max_event_streams;
  options.max_compute_requests = c.max_compute_requests;
  options.version = MLAAS_VERSION;
  options.data_dir = data.string();
  options.s3_buckets = c.s3_buckets;
#ifdef MLAAS_WEB_DIR
  options.web_dir = c.web_dir.empty() ? std::string(MLAAS_WEB_DIR) : c.web_dir;
#else
  options.web_dir = c.web_dir;
#endif
  if (!options.web_dir.empty() && !fs::exists(fs::path(options.web_dir) / "index.html")) {
    spdlog::warn("no web app in {} (build it: cmake --build, with npm); / shows a page of links", options.web_dir);
    options.web_dir.clear();
  }
  predict::PredictorOptions predict_options;
  predict_options.device = c.device;
  predict_options.dtype = c.dtype;
  predict_options.threads = c.threads > 0 ? c.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  predict_options.cache_capacity = static_cast<size_t>(c.model_cache);
  predict_options.scratch = data / "tmp";
  predict_options.cache_max_bytes = c.model_cache_bytes;
  // One cache, one budget, for every model prediction and search load (deployments hold theirs).
  predict_options.cache = std::make_shared<predict::ModelCache>(predict_options.cache_capacity, c.model_cache_bytes);
  predict::NlpPredictor predictor(storage, predict_options);
  // Deployments: records shared by every API server of the database (docs/serving.md).
  auto deployment_records = metadata::OpenDeploymentStore(store_options);
  if (!deployment_records.has_value()) return Fail(deployment_records.error().WithContext("opening the deployments"));
  serve::ServeOptions serve_options;
  serve_options.store = deployment_records->get();
  serve_options.labels = task_options.capabilities.labels;
  serve_options.gpus = task_options.capabilities.gpus;
  serve_options.scratch = data / "tmp";
  serve_options.device = c.device;
  serve_options.dtype = c.dtype;
  serve_options.max_versions = static_cast<size_t>(c.max_deployed_versions);
  serve_options.max_total_bytes = OrHalfTheMemory(c.deployments_bytes);
  serve::DeploymentManager deployments(storage, serve_options);
  vector::VectorSearcher searcher(storage, data / "tmp",
                                  {.max_documents = static_cast<size_t>(c.max_inline_search_documents),
                                   .max_bytes = c.max_inline_search_bytes,
                                   .max_concurrent = static_cast<size_t>(c.max_inline_searches),
                                   .max_store_bytes = OrHalfTheMemory(c.max_vector_store_bytes),
                                   .max_wait = std::chrono::milliseconds(static_cast<int64_t>(c.search_wait_seconds * 1000))},
                                  predict_options.cache);
  // Accounts: with auth on, every route checks the caller's token (docs/security.md).
  const bool auth_on = c.auth == "on" || (c.auth == "auto" && !IsLoopbackAddress(c.host));
  std::unique_ptr<metadata::AccountStore> accounts;
  std::unique_ptr<auth::Authenticator> authenticator;
  if (auth_on) {
    auto opened = metadata::OpenAccountStore(store_options);
    if (!opened.has_value()) return Fail(opened.error().WithContext("opening the account store"));
    accounts = std::move(opened).value();
    authenticator = std::make_unique<auth::Authenticator>(*accounts);
    const char* env_token = std::getenv("MLAAS_ADMIN_TOKEN");
    auto where = authenticator->Bootstrap(env_token ? env_token : "", data / "admin-token");
    if (!where.has_value()) return Fail(where.error().WithContext("the admin token"));
    spdlog::info("auth on: every route checks its caller's token; {}", *where);
  } else {
    spdlog::warn("auth off: every client that reaches {}:{} may use every route (mlaas serve --auth on checks tokens)",
                 c.host, c.port);
  }
  auto server = api::ApiServer::Create(
      options, {storage, **store, manager, &predictor, &deployments, &searcher, authenticator.get(), &catalog});
  if (!server.has_value()) return Fail(server.error());
  auto port = (*server)->Bind();
  if (!port.has_value()) return Fail(port.error());
  const std::string advertised = c.advertise_url.empty() ? DefaultUrl(c.host, *port) : c.advertise_url;
  if (!StartsWith(advertised, "http://") || advertised.size() <= 7 || advertised.find('/', 7) != std::string::npos)
    return Fail(InvalidArgument("--advertise-url must be http://host:port", "advertise_url"));
  if (StartsWith(store_options.url, "postgres") && IsLoopbackAddress(HostOfAuthority(advertised.substr(7))))
    spdlog::warn("this server tells the others of the database to reach it at {}: only processes on this machine can "
                 "(set --advertise-url, or --host)", advertised);
  deployments.Advertise(advertised);
  if (Status st = deployments.Start(); !st.ok()) return Fail(st.WithContext("loading the deployments"));
  ImportDeploymentsFile(data / "deployments.json", deployments);
  if (Status st = manager.Start(); !st.ok()) return Fail(st);
  if (!c.port_file.empty()) {
    if (Status st = WritePortFile(c.port_file, *port); !st.ok()) return Fail(st);
  }
  api::ApiServer* s = server->get();
  stop.OnRequest([s] { s->Stop(); });
  spdlog::info("mlaas {} listening on http://{}:{} (data directory {}, {} task worker(s))",
               MLAAS_VERSION, c.host, *port, data.string(), c.workers);
  Status served = (*server)->Serve();
  stop.OnRequest(nullptr);
  StopTasksWithin(manager);
  if (!served.ok()) return Fail(served);
  spdlog::info("stopped");
  return 0;
}

}  // namespace mlaas::cli
