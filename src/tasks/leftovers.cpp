#include "tasks/leftovers.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>


#include "common/file_util.h"
#include "common/time_util.h"
#include "tasks/task_manager.h"

namespace mlaas::tasks {
namespace {

namespace fs = std::filesystem;

// Whether a process still alive holds a running task (its lease current, its owner not
// known to be dead).
Result<bool> SomeoneIsRunningTasks(metadata::TaskStore& store) {
  metadata::TaskQuery q;
  q.state = metadata::TaskState::kRunning;
  q.limit = 1000;
  const int64_t now = NowMs();
  for (;;) {
    MLAAS_ASSIGN_OR_RETURN(metadata::TaskPage page, store.List(q));
    for (const auto& t : page.tasks) {
      if (t.lease_expires_ms >= now && !TaskManager::OwnerIsDead(t.lease_owner)) return true;
    }
    if (page.next_cursor.empty()) return false;
    q.cursor = page.next_cursor;
  }
}

// Last change of `p` itself (not what a directory holds), in ms; -1 when it is gone.
int64_t ChangedMs(const fs::path& p) {
  struct stat st{};
  if (::lstat(p.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

bool Remove(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);  // a symbolic link is removed, never followed
  if (ec) spdlog::warn("cannot remove {}: {}", p.string(), ec.message());
  return !ec;
}

std::vector<fs::path> Entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path());
  return out;
}

}  // namespace

Result<LeftoverReport> SweepLeftovers(metadata::TaskStore& store, const LeftoverDirs& dirs) {
  LeftoverReport report;
  if (!dirs.tmp_dir.empty() || !dirs.objects_dir.empty()) {
    MLAAS_ASSIGN_OR_RETURN(report.tmp_skipped, SomeoneIsRunningTasks(store));
  }
  if (!dirs.tmp_dir.empty() && !report.tmp_skipped) {
    for (const auto& p : Entries(dirs.tmp_dir)) {
      const int64_t changed = ChangedMs(p);
      if (changed >= 0 && changed < dirs.before_ms && Remove(p)) ++report.tmp_removed;
    }
  }
  if (!dirs.objects_dir.empty() && !report.tmp_skipped) {
    std::vector<fs::path> partial;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dirs.objects_dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec) && !it->is_symlink(ec) && IsAtomicWriteTemporary(it->path().filename().string()))
        partial.push_back(it->path());
    }
    for (const auto& p : partial) {
      const int64_t changed = ChangedMs(p);
      if (changed >= 0 && changed < dirs.before_ms && Remove(p)) ++report.partial_objects_removed;
    }
  }
  if (!dirs.checkpoint_root.empty()) {
    for (const auto& p : Entries(dirs.checkpoint_root)) {
      auto task = store.Get(p.filename().string());
      bool ended = task.has_value() ? metadata::IsTerminal(task->state)
                                    : task.error().code() == StatusCode::kNotFound;
      if (!task.has_value() && !ended) return task.error().WithContext("sweeping checkpoints");
      if (ended && Remove(p)) ++report.checkpoints_removed;
    }
  }
  return report;
}

}  // namespace mlaas::tasks
