// mlaas::metadata — deployments shared by every API server of one database (issue 24).
//
// A deployment's record is what its users asked for: its owner, the hosts it is pinned to
// (labels, GPUs) and its versions, each with its deploy request and traffic share. Every API
// server reads the records and loads the versions it may host (serve/deployments.h); each one
// reports what it holds in its host entry (a heartbeat with its URL), so that a server that does
// not host a deployment can forward its requests to one that does. Records are written by
// compare-and-swap on their revision; every write bumps one database-wide revision, which
// servers poll to notice changes cheaply. Whether a version loads is each server's own affair
// (its heartbeat says): a version that fails on one server may load on another. Implementations: SQLite and PostgreSQL, beside the
// task store. Thread-safe; several processes may share the database.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "metadata/task_store.h"

namespace mlaas::metadata {

struct DeploymentVersionRecord {
  std::string id;  // unique (a deployment made again under the same name reuses version names)
  std::string version;
  int64_t sequence = 0;  // deploy order within the deployment
  nlohmann::json request = nlohmann::json::object();  // the deploy request (its own version aside)
  int canary_percent = 100;  // < 100: a canary's share of the traffic until promoted
  int64_t created_ms = 0;
};

struct DeploymentRecord {
  std::string name;
  std::string incarnation;  // set when the name is deployed anew (after an undeploy, another one)
  std::string owner;
  std::vector<std::string> labels{};  // a host serves it only with every one (sorted)
  int gpus = 0;                       // ... and at least this many GPUs
  std::vector<DeploymentVersionRecord> versions{};  // in deploy order
  int64_t next_number = 1;  // the next automatic version number
  int64_t revision = 0;     // 0: not stored yet
  int64_t updated_ms = 0;
};

// An API server that hosts deployments, as its last heartbeat described it.
struct ServingHost {
  std::string id;   // unique per process
  std::string url;  // where other servers reach it ("http://host:port")
  std::vector<std::string> labels{};
  int gpus = 0;
  // What it holds: {"<deployment>": {"<version>": "loading" | "ready" | "failed"}}.
  nlohmann::json replicas = nlohmann::json::object();
  int64_t age_ms = 0;  // since its last heartbeat, by the database's clock (Hosts() fills it)
};

class DeploymentStore {
 public:
  virtual ~DeploymentStore() = default;

  virtual Result<std::vector<DeploymentRecord>> ListDeployments() = 0;
  virtual Result<std::optional<DeploymentRecord>> GetDeployment(const std::string& name) = 0;
  // Stores `record` when the stored one still has record.revision (0: when none is stored) and
  // returns its new revision. Aborted-like FailedPrecondition (IsConflict) when another write
  // came first: read it again and retry.
  virtual Result<int64_t> PutDeployment(const DeploymentRecord& record) = 0;
  // Deletes `name` when it still has `revision`; conflicts likewise; NotFound when absent.
  virtual Status DeleteDeployment(const std::string& name, int64_t revision) = 0;
  // Bumped by every write of any deployment: unchanged means nothing to reload.
  virtual Result<int64_t> DeploymentsRevision() = 0;

  // Records a heartbeat of `host` (inserted or replaced), and forgets hosts silent for an hour.
  virtual Status BeatHost(const ServingHost& host) = 0;
  // Every host heard from, with its age.
  virtual Result<std::vector<ServingHost>> Hosts() = 0;
  virtual Status RemoveHost(const std::string& id) = 0;

  // Calls on_change (from a thread of its own) soon after any server wrote a deployment
  // (PostgreSQL: LISTEN mlaas_deployments, notified by each write's transaction), and once after
  // a lost connection came back. The feed stops when the returned handle is destroyed. nullptr
  // when the store cannot tell (SQLite): callers poll.
  virtual std::unique_ptr<ChangeFeed> Subscribe(std::function<void()> on_change) {
    (void)on_change;
    return nullptr;
  }
};

// Whether `st` is a lost compare-and-swap (PutDeployment, DeleteDeployment).
bool IsConflict(const Status& st);

// Opens (creating and migrating when needed) the deployment store of the database options.url.
Result<std::unique_ptr<DeploymentStore>> OpenDeploymentStore(const StoreOptions& options);

// The record's versions as stored (a JSON array) and back; private to the stores and their tests.
std::string DeploymentVersionsJson(const std::vector<DeploymentVersionRecord>& versions);
std::vector<DeploymentVersionRecord> ParseDeploymentVersions(const std::string& text);

}  // namespace mlaas::metadata
