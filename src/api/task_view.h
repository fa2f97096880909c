// The JSON view of a task that the task endpoints return: SPEC.md's training-output shape
// (task_id, task_status, stats{submitted, elapsed, ...}) plus the task's result fields.
#pragma once

#include <nlohmann/json.hpp>

#include "metadata/task_store.h"

namespace mlaas::api {

// `now_ms` gives the elapsed time of a task still running. With `detail`, the request
// parameters are included too.
nlohmann::json TaskToJson(const metadata::TaskRecord& task, int64_t now_ms, bool detail);

}  // namespace mlaas::api
