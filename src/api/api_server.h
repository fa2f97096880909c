// mlaas::api — the HTTP front-end: REST API of SPEC.md, task endpoints, object upload and
// download, health, Prometheus metrics and the OpenAPI document. Handlers parse and
// validate, call one library function and render the result; no business logic lives here.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "catalog/catalog.h"
#include "common/result.h"
#include "metadata/task_store.h"
#include "predict/nlp_predictor.h"
#include "serve/deployments.h"
#include "vector/searcher.h"
#include "storage/storage_registry.h"
#include "tasks/task_manager.h"

namespace mlaas::api {

struct ApiOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port (see ApiServer::Bind)
  size_t max_body_bytes = 16u << 20;        // JSON request bodies
  uint64_t max_upload_bytes = 10ull << 30;  // PUT /api/v1/objects/{key}
  int http_threads = 64;                    // connection threads kept ready
  int max_connections = 1024;               // connections served at once (more threads start under load)
  int max_event_streams = 0;                // open task event streams (0: half of http_threads)
  int max_compute_requests = 0;             // prediction and search requests in progress (0: a quarter of http_threads)
  int read_timeout_s = 30;
  int write_timeout_s = 30;
  int keep_alive_timeout_s = 5;
  std::string version = "dev";
  // The server's data directory (absolute): never shown to clients. Responses name objects by
  // their keys; any path under it that reaches a response is cut back to the key.
  std::string data_dir;
  // The built web app (index.html, assets/) served at /; empty: / is a page of links.
  std::string web_dir;
  // S3 buckets that users other than admins may name (with auth on; ownership.h MayUseBucket).
  std::vector<std::string> s3_buckets{};
};

// The services the API fronts. They must outlive the server.
struct ApiServices {
  storage::StorageRegistry& storage;
  metadata::TaskStore& task_store;
  tasks::TaskManager& tasks;
  // Synchronous NLP prediction; null: the predict route answers 501.
  predict::NlpPredictor* nlp_predictor = nullptr;
  // Deployments and the Open Inference Protocol v2; null: those routes answer 501.
  serve::DeploymentManager* deployments = nullptr;
  // Vector-store search; null: that route answers 501.
  vector::VectorSearcher* vector_searcher = nullptr;
  // Tokens and access (auth on); null: auth off, every request is the local admin.
  auth::Authenticator* authenticator = nullptr;
  // The model and dataset registry; null: the catalog routes answer 501.
  catalog::Catalog* catalog = nullptr;
};

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> Create(const ApiOptions& options,
                                                   ApiServices services);
  ~ApiServer();

  // Binds the listening socket; returns the port (useful with port 0).
  Result<int> Bind();
  // Serves until Stop(); call Bind() first.
  Status Serve();
  // Stops accepting, ends event streams and returns from Serve(). Thread-safe.
  void Stop();

  // The OpenAPI 3 document describing every route.
  nlohmann::json OpenApi() const;

  struct State;  // defined in server_state.h, internal to the module

 private:
  explicit ApiServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace mlaas::api
