// mlaas::serve — deployments: named, versioned models loaded once and kept warm, each version
// with its own dynamic batcher (batcher.h). A new version loads beside the serving one and
// takes the traffic only when it is ready (or a share of it, as a canary, until promoted);
// a version that fails to load reports why and the others keep serving. Deployments are
// recorded in a state file (written atomically) and restored when the server starts.
// No libtorch in this header: the API and the CLI include it.
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
#include "predict/servable_model.h"
#include "serve/infer_request.h"
#include "storage/storage_registry.h"

namespace mlaas::serve {

struct ServeOptions {
  std::filesystem::path state_file;  // deployments restored at start; empty: not recorded
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

  // Re-deploys what the state file records (loading in the background).
  Status Restore();

  // {"name", "version"?, "model": {path, storage_type, objective}, "tokenizer"?: {path,
  // storage_type}, "device"?, "dtype"?, "batching"?: {...}, "max_memory_bytes"?,
  // "canary_percent"?, "owner"?}. A name belongs to who deployed it first (AlreadyExists for
  // another owner). Checks the request and that the files exist, then loads in the
  // background: returns the deployment's view with the new version "loading".
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

  // NotFound for an unknown name or version; ready=false while loading or failed.
  Result<ModelView> Model(const std::string& name, const std::optional<std::string>& version) const;
  // True when no deployment is still loading its first version.
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
