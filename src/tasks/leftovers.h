// mlaas::tasks — what a crash leaves in the data directory, removed at start.
//
// A process killed mid-task leaves temporary files (uploads being written, a training
// task's output directory, an index being built) under <data-dir>/tmp, and checkpoints under
// <data-dir>/checkpoints/<task id> that no attempt will resume once the task has ended.
#pragma once

#include <cstdint>
#include <filesystem>

#include "common/result.h"
#include "metadata/task_store.h"

namespace mlaas::tasks {

struct LeftoverDirs {
  std::filesystem::path tmp_dir{};          // entries last changed before `before_ms` go
  std::filesystem::path checkpoint_root{};  // <task id> entries of ended or unknown tasks go
  // Files written atomically beside their final name (`<name>.tmp-<8 hex>`, see
  // common/file_util.h) below this directory (the objects) that a crash left half-written.
  std::filesystem::path objects_dir{};
  int64_t before_ms = 0;                  // this process's start
};

struct LeftoverReport {
  int64_t tmp_removed = 0;
  int64_t checkpoints_removed = 0;
  int64_t partial_objects_removed = 0;
  // The temporary files (and partial objects) were left alone: a live process (a `mlaas worker`, another server
  // on the same data directory) is running a task and may be using them.
  bool tmp_skipped = false;
};

// Call at start, before this process runs tasks. Checkpoints of queued and running tasks
// stay (their next attempt resumes from them). A directory that does not exist is not an
// error; errors name no server path.
Result<LeftoverReport> SweepLeftovers(metadata::TaskStore& store, const LeftoverDirs& dirs);

}  // namespace mlaas::tasks
