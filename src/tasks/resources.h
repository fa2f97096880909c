// What a task asks of the worker that runs it: the request's `resources` block.
//
//   "resources": {"gpus": 1, "labels": ["a100", "eu-west"], "workers": 1}
//
// A worker claims a task only when it has at least `gpus` GPUs and every one of `labels`
// (metadata::WorkerCapabilities: "cpu" always, "gpu" when it has GPUs, plus the free-form labels
// it was started with). `workers` is how many processes train the task together, data-parallel
// (train/data_parallel.h): the rank 0 of a torchrun group of exactly that size claims it, or
// workers gather for it through the store (TaskStore::JoinGroup).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "metadata/task_store.h"

namespace mlaas::tasks {

inline constexpr int kMaxTaskGpus = 64;
inline constexpr size_t kMaxTaskLabels = 16;
inline constexpr int kMaxTaskWorkers = 1024;

// A capability label: 1 to 63 of [A-Za-z0-9._-], starting with a letter or digit.
bool IsValidLabel(const std::string& label);

// The requirements of a task's params (`resources`, absent: none). InvalidArgument naming the
// field (resources.gpus, resources.labels[2], ...) for a malformed block.
Result<metadata::TaskRequirements> ParseResources(const nlohmann::json& params);

// A worker's capabilities: "cpu", "gpu" when gpus > 0, and `labels` (each checked with
// IsValidLabel; InvalidArgument naming "labels" otherwise), sorted and without duplicates.
Result<metadata::WorkerCapabilities> MakeCapabilities(int gpus, const std::vector<std::string>& labels);

}  // namespace mlaas::tasks
