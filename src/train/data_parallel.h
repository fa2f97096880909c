// mlaas::train — data-parallel training over torch's c10d (issue 24): several processes, each
// with a replica of the model and a shard of every batch, whose gradients are averaged (Gloo)
// before each optimizer step, so they end with the weights one process would reach with the
// same global batch.
//
// A group is configured as torchrun and Kubeflow's PyTorchJob configure theirs: WORLD_SIZE,
// RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Rank 0 serves the rendezvous store (c10d's
// TCPStore) at MASTER_ADDR:MASTER_PORT; each training run opens a Gloo process group of its own
// under a key of the run, so a failed run leaves nothing behind for the next. GLOO_SOCKET_IFNAME
// picks the network interface Gloo uses (default: the address MASTER_ADDR is reached from, or
// loopback when it is a loopback address).
//
// `mlaas worker` with WORLD_SIZE > 1 is one member of such a group (cli/server_command.cpp):
// rank 0 claims tasks asking resources.workers = WORLD_SIZE and hands each to the others
// through the store (Publish / NextTask). Workers started without WORLD_SIZE instead gather
// for such a task through the database (TaskStore::JoinGroup), and form a group for that task
// only: its rank 0 hosts the store on a free port (Host) and tells the others where; they Join
// and say they arrived. No libtorch in this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"

namespace mlaas::train {

struct DataParallelConfig {
  int world_size = 1;  // 1: not data-parallel
  int rank = 0;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 0;
  // How long a collective or the rendezvous waits for the slowest member
  // (MLAAS_GROUP_TIMEOUT_SECONDS; it must cover a member reading the data while the others wait).
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// From the environment of torchrun / PyTorchJob. world_size 1 when WORLD_SIZE is unset or 1;
// InvalidArgument naming the variable when one is malformed or missing.
Result<DataParallelConfig> DataParallelConfigFromEnv();

// True when this build has c10d's Gloo process group (Debian's libtorch does).
bool DataParallelAvailable();

class DataParallelGroup {
 public:
  // Connects to the rendezvous store (rank 0 starts it) and waits until every member did.
  // Unavailable when that does not happen within config.timeout.
  static Result<std::unique_ptr<DataParallelGroup>> Join(const DataParallelConfig& config);
  // Rank 0 of a group gathered for one task: serves the store at config.master_addr and
  // config.master_port (0: a free port; config().master_port tells which) without waiting.
  static Result<std::unique_ptr<DataParallelGroup>> Host(const DataParallelConfig& config);
  // A member that joined a hosted group says so; rank 0 waits until every other member did
  // (Unavailable after config.timeout; `stop` returning true ends the wait with Cancelled).
  Status Arrived();
  // A member of a group gathered for one task takes its local rank, as torchrun gives
  // LOCAL_RANK: its place among the members on this host (same host name), in the order they
  // ask; config().local_rank says it from then on (the GPU it trains on: cuda:<local rank>).
  Status TakeLocalRank();
  Status WaitForMembers(const std::function<bool()>& stop);
  ~DataParallelGroup();
  DataParallelGroup(const DataParallelGroup&) = delete;
  DataParallelGroup& operator=(const DataParallelGroup&) = delete;

  const DataParallelConfig& config() const;
  int rank() const { return config().rank; }
  int world_size() const { return config().world_size; }

  // Rank 0: hands a task ({"id", "type", "params", "submitted_by", "attempt"}) to the others,
  // who run it with it. Returns the task's number in the group's sequence.
  Result<int64_t> Publish(const nlohmann::json& task);
  // The number of the last task published (0: none yet): a member that (re)joins follows from
  // the next one.
  Result<int64_t> LastPublished();
  // The others say they follow (after reading LastPublished): from then on, and for as long as
  // the group object lives, a heartbeat of theirs advances in the store a few times a second.
  // Rank 0 waits until every other member's heartbeat has advanced since the call began before
  // it hands out a task, so that no member misses it and a member restarted by its launcher (a
  // PyTorchJob's restart policy) is back first. Unavailable
  // naming how many are missing after config.timeout; `stop` returning true ends the wait with
  // Cancelled.
  Status Following();
  Status WaitForFollowers(const std::function<bool()>& stop = nullptr);

  // A member whose own share of run `run_key` failed (its data, its memory: not the group) says
  // why, so that rank 0 fails the task with that error rather than retrying it as a lost member.
  // MemberFailure: what a member said of the run, waiting up to `grace` for it (a member whose
  // training failed reports before it leaves the run, so before rank 0's collectives fail; one
  // that failed before the run began, long before rank 0 stops waiting for it); nullopt if none did.
  Status ReportFailure(const std::string& run_key, const std::string& message);
  Result<std::optional<std::string>> MemberFailure(const std::string& run_key, std::chrono::milliseconds grace);
  // The others: task number `n` once rank 0 published it; nullopt when `wait` passed first.
  // Unavailable once the store is gone (rank 0 stopped).
  Result<std::optional<nlohmann::json>> NextTask(int64_t n, std::chrono::milliseconds wait);

  struct Impl;  // c10d's objects (data_parallel.cpp, used by the trainer)
  Impl& impl() { return *impl_; }

 private:
  explicit DataParallelGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::train
