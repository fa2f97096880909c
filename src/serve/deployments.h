// mlaas::serve — deployments: named, versioned models loaded once and kept warm, each version
// with its own dynamic batcher (batcher.h). A new version loads beside the serving one and
// takes the traffic only when it is ready (or a share of it, as a canary, until promoted);
// a version that fails to load reports why and the others keep serving.
//
// Deployments are records in the metadata database (metadata/deployment_store.h), shared by
// every API server of that database: each server loads the versions of the deployments it may
// host (the deployment's resources.labels and resources.gpus against the server's labels and
// GPUs), follows changes made through other servers within a second (it polls the database's
// deployments revision), and reports what it holds in a heartbeat with its URL, so that a
// server can send a request for a deployment it does not hold to one that does (Locate). A
// restarted server loads what the records say. No libtorch in this header: the API and the CLI
// include it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "metadata/deployment_store.h"
#include "predict/servable_model.h"
#include "serve/infer_request.h"
#include "storage/storage_registry.h"

namespace mlaas::serve {

struct ServeOptions {
  metadata::DeploymentStore* store = nullptr;  // the deployments' records (required)
  std::string host_id;               // this server among the hosts (empty: a new UUID)
  std::string url;                   // where other servers reach it (empty: never sent requests)
  std::vector<std::string> labels{};  // what this server offers deployments' resources.labels
  int gpus = 0;                       // ... and resources.gpus
  std::chrono::milliseconds sync_interval{1000};  // how often the records are checked for changes
  std::chrono::milliseconds host_timeout{10000};  // a host silent this long is not sent requests
  std::filesystem::path scratch;     // copies of models from remote stores
  std::string device = "cpu";        // default device of a deployment
  std::string dtype = "float32";     // default dtype
  size_t max_text_bytes = 256 * 1024;  // one input text at most
  // Bounds (docs/security.md): model versions deployed (loading, serving or failed) at once;
  // all deployed versions' weights together (bytes from each model's config, reserved before
  // its load; one model's size is bounded for every load, predict::SetLoadLimits). 0: no limit.
  size_t max_versions = 64;
  uint64_t max_total_bytes = 0;
};

struct InferResult {
  std::string version;
  std::vector<nlohmann::json> predictions;        // one per input (predict.h's shapes)
  std::shared_ptr<const predict::ServableModel> model;
};

// A deployment version as the Open Inference Protocol describes it.
struct ModelView {
  std::string name;
  std::vector<std::string> versions;  // ready versions
  std::string version;                // the one asked for, or the serving one
  bool ready = false;
  std::shared_ptr<const predict::ServableModel> model;  // when ready
};

class DeploymentManager {
 public:
  DeploymentManager(const storage::StorageRegistry& storage, ServeOptions options);
  // Waits for loads in progress and unloads everything.
  ~DeploymentManager();
  DeploymentManager(const DeploymentManager&) = delete;
  DeploymentManager& operator=(const DeploymentManager&) = delete;

  // Where other servers reach this one (ServeOptions::url), once its port is known; before Start.
  void Advertise(std::string url);
  // Loads what the records hold for this server (in the background) and starts following them.
  Status Start();

  // {"name", "version"?, "model": {path, storage_type, objective}, "tokenizer"?: {path,
  // storage_type}, "device"?, "dtype"?, "batching"?: {...}, "max_memory_bytes"?,
  // "canary_percent"?, "resources"?: {"labels", "gpus"}, "owner"?}. A name belongs to who
  // deployed it first (AlreadyExists for another owner). Checks the request and that the files
  // exist, records the new version, then loads it in the background on every server that may
  // host it: returns the deployment's view with the new version "loading" (or "pending" while
  // no server that may host it is up).
  Result<nlohmann::json> Deploy(const nlohmann::json& request);
  Result<nlohmann::json> Get(const std::string& name) const;
  nlohmann::json List() const;
  Status Undeploy(const std::string& name);
  // The canary takes all the traffic (the version it replaces is unloaded) / is dropped.
  Result<nlohmann::json> Promote(const std::string& name);
  Result<nlohmann::json> Rollback(const std::string& name);

  // Tokenizes on the caller's thread, then batches with other requests to the same version.
  Result<InferResult> Infer(const std::string& name, InferRequest request);

  // Who deployed `name` ("" on a server without accounts); NotFound for an unknown one.
  Result<std::string> Owner(const std::string& name) const;
  // The deploy request of the newest version of each deployment whose model block has
  // "catalog": {"reference": `reference`} (deployments that follow a catalog alias).
  std::vector<nlohmann::json> Following(const std::string& reference) const;

  // NotFound for an unknown name or version; ready=false while loading or failed. Unavailable
  // for a deployment this server does not host (Locate says where it is served).
  Result<ModelView> Model(const std::string& name, const std::optional<std::string>& version) const;
  // Where requests for `name` (and `version`, if given) are answered: here, when this server
  // serves it; otherwise the URLs of other live servers that serve it (empty: none does).
  struct Placement {
    bool here = false;
    std::vector<std::string> urls{};
  };
  Placement Locate(const std::string& name, const std::optional<std::string>& version) const;
  // True when no deployment this server hosts is still loading its first version.
  bool Ready() const;

  // Prometheus families of every loaded version (inference counts, durations, batch sizes,
  // queue depth, load time).
  std::string RenderMetrics() const;

  // Blocks until no version is loading (tests, orderly shutdown); false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::serve
