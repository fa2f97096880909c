// `mlaas serve` and `mlaas worker`: the composition root that opens the metadata store and
// object storage, registers the task types and runs the API server and/or task workers.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mlaas::cli {

// Every server setting, with its default; flags and MLAAS_* environment variables fill it.
struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string data_dir = "data";
  std::string web_dir;   // the built web app (default: the one this build made, MLAAS_WEB_DIR)
  std::string database;  // default: sqlite://<data_dir>/mlaas.db
  std::string storage;   // the server's own object store: "" (<data_dir>/objects) or s3://bucket/prefix
  uint64_t storage_cache_bytes = 20ull << 30;  // local copies of S3 objects (models, indexes) kept at most
  std::vector<std::string> s3_buckets;          // S3 buckets users other than admins may name (auth on)
  int workers = 2;
  std::vector<std::string> labels;  // this process's workers' capability labels (besides cpu/gpu)
  int gpus = -1;                     // GPUs its workers offer to tasks (-1: the CUDA devices seen)
  int health_port = 0;               // `mlaas worker`: /healthz and /readyz on this port (0: none)
  std::string advertise_url;         // `mlaas serve`: where other API servers reach this one
  // Where this process serves the store of a data-parallel group it leads, gathered through the
  // database (default: 127.0.0.1 with SQLite, this host's name with PostgreSQL).
  std::string group_host;
  std::string log_level = "info";
  uint64_t max_body_bytes = 16u << 20;
  uint64_t max_upload_bytes = 10ull << 30;
  int http_threads = 256;
  int max_connections = 1024;
  std::string auth = "auto";  // on, off, auto (on unless host is a loopback address)
  int task_max_attempts = 3;
  int task_lease_seconds = 30;
  std::string port_file;
  std::string device = "cpu";  // where models run: cpu, cuda, cuda:N
  int threads = 0;             // libtorch intra-op threads (0: one per core)
  int model_cache = 4;         // loaded models kept for prediction
  uint64_t model_cache_bytes = 2ull << 30;  // and their weights' bytes at most (0: no limit)
  std::string dtype = "float32";  // float32 or bfloat16
  // Memory bounds of models (docs/security.md); each model's float32 weight bytes are computed
  // from its config before it is allocated. 0 for the byte limits: half the machine's memory.
  uint64_t max_model_bytes = 0;        // one model (prediction or deployment)
  uint64_t deployments_bytes = 0;      // all deployed versions together
  int max_deployed_versions = 64;      // deployed versions (loading, serving, failed)
  int max_loading_models = 2;          // model loads at once in the process
  int64_t max_queued_tasks = 1000;     // tasks waiting at once (0: no limit); beyond: 429
  double task_retention_days = 30;     // finished tasks older are deleted (0: kept forever)
  int max_event_streams = 0;           // open task event streams (0: half of http_threads)
  int max_compute_requests = 0;        // prediction/search requests at once (0: a quarter of http_threads)
  // Search over a plain dataset (no vector store): embedded on the request, so bounded.
  int64_t max_inline_search_documents = 10000;
  uint64_t max_inline_search_bytes = 16ull << 20;
  int max_inline_searches = 2;         // background search work at once (store loads, embeddings); beyond: 429
  double search_wait_seconds = 60;     // a search's wait for that work; then 503
  uint64_t max_vector_store_bytes = 0;  // a saved store's files loaded at most (0: half the memory)
};

// Registers the options of `serve` (api=true) or `worker` (api=false) on `cmd`.
void AddServerOptions(CLI::App& cmd, ServerConfig& config, bool api);

// Runs until SIGINT/SIGTERM; returns the process exit code.
int RunServer(const ServerConfig& config, bool api);

}  // namespace mlaas::cli
