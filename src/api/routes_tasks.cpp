// Task endpoints: list, show, cancel, logs and the server-sent event stream.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "api/schemas.h"
#include "api/ownership.h"
#include "api/server_state.h"
#include "api/task_view.h"
#include "common/text.h"
#include "common/time_util.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

// The task {id} of the request, NotFound when it does not exist or the caller may not see it.
Result<metadata::TaskRecord> VisibleTask(ServerState& s, const RequestContext& ctx) {
  const std::string id = ctx.path_params.at("id");
  auto t = s.services.task_store.Get(id);
  if (t.has_value() && !MaySee(s, ctx, *t)) return NotFound("task " + id + " does not exist");  // as an unknown one
  return t;
}

// Writes one server-sent event per call, blocking until the task changes; ends the stream
// with an "end" event once the task has finished.
class TaskEventStream {
 public:
  TaskEventStream(ServerState& s, std::string id, std::string home, std::shared_ptr<void> slot)
      : s_(s), id_(std::move(id)), home_(std::move(home)), slot_(std::move(slot)) {}

  // Never throws: an error ends the stream (cpp-httplib then closes the connection).
  bool operator()(size_t, httplib::DataSink& sink) {
    try {
      return WriteNext(sink);
    } catch (const std::exception& e) {
      spdlog::error("event stream of task {}: {}", id_, e.what());
    } catch (...) {
      spdlog::error("event stream of task {}: unknown error", id_);
    }
    return false;
  }

 private:
  bool WriteNext(httplib::DataSink& sink) {
    for (;;) {
      if (s_.stopping) {
        sink.done();
        return true;
      }
      uint64_t seen = s_.services.tasks.version();
      auto t = s_.services.task_store.Get(id_);
      if (!t.has_value()) {
        Write(sink, "event: error\ndata: " + DumpJson(ErrorBody(t.error(), "")) + "\n\n");
        sink.done();
        return true;
      }
      if (t->revision != last_revision_) {
        last_revision_ = t->revision;
        bool end = metadata::IsTerminal(t->state);
        std::string event = std::string("event: ") + (end ? "end" : "task") +
                            "\nid: " + std::to_string(t->revision) +
                            "\ndata: " + DumpJson(TaskToJson(*t, NowMs(), false)) + "\n\n";
        if (!Write(sink, event)) return false;
        if (end) sink.done();
        return true;
      }
      // Local changes wake us at once; changes made by other processes are seen by polling
      // the store once a second.
      s_.services.tasks.WaitForChange(seen, std::chrono::seconds(1));
      if (!sink.is_writable()) return false;
      if (NowMs() - last_write_ms_ > 15000 && !Write(sink, ": keep-alive\n\n")) return false;
    }
  }

  bool Write(httplib::DataSink& sink, const std::string& text) {
    last_write_ms_ = NowMs();
    const std::string safe = StripHome(home_, RedactServerPaths(s_, text));
    return sink.write(safe.data(), safe.size());
  }

  ServerState& s_;
  std::string id_;
  std::string home_;  // cut out of what the stream shows (ownership.h)
  std::shared_ptr<void> slot_;  // this stream's place in ServerState::event_streams, while any copy lives
  int64_t last_revision_ = -1;
  int64_t last_write_ms_ = 0;
};

}  // namespace

void AddTaskRoutes(ServerState& s) {
  auto& store = s.services.task_store;

  s.router.Add(
      {.method = "GET",
       .access = Access::kRead,
       .pattern = "/api/v1/tasks",
       .tag = "tasks",
       .summary = "List tasks, newest first",
       .query = {{"status", {{"type", "string"},
                             {"enum", {"queued", "running", "succeeded", "failed", "cancelled"}}},
                  "only tasks in this state"},
                 {"type", {{"type", "string"}}, "only tasks of this type"},
                 {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 50}},
                  "tasks per page"},
                 {"cursor", {{"type", "string"}}, "next_cursor of the previous page"}},
       .responses = {{200, "a page of tasks: {tasks, next_cursor}"}, {400, "bad query parameter"}},
       .handler = [&s, &store](RequestContext& ctx) {
         metadata::TaskQuery q;
         if (!SeesAll(s, ctx)) q.submitted_by = ctx.principal.user;
         if (auto status = ctx.Query("status")) {
           auto state = metadata::ParseTaskState(*status);
           if (!state) {
             ctx.Error(InvalidArgument("query parameter 'status' must be one of: queued, running, "
                                       "succeeded, failed, cancelled", "status"));
             return;
           }
           q.state = state;
         }
         q.type = ctx.Query("type").value_or("");
         auto limit = IntQuery(ctx, "limit", 50, 1, 1000);
         if (!limit.has_value()) return ctx.Error(limit.error());
         q.limit = static_cast<size_t>(*limit);
         q.cursor = ctx.Query("cursor").value_or("");
         auto page = store.List(q);
         if (!page.has_value()) return ctx.Error(page.error());
         json tasks = json::array();
         int64_t now = NowMs();
         for (const auto& t : page->tasks) tasks.push_back(TaskToJson(t, now, false));
         json out = {{"tasks", tasks}};
         out["next_cursor"] = page->next_cursor.empty() ? json() : json(page->next_cursor);
         ctx.Json(200, out);
       }});

  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/api/v1/tasks/{id}",
                .tag = "tasks",
                .summary = "A task: status, stats, progress and, once finished, its result",
                .responses = {{200, "the task"}, {404, "no such task"}},
                .response_schema = schemas::TaskView(),
                .handler = [&s](RequestContext& ctx) {
                  auto t = VisibleTask(s, ctx);
                  if (!t.has_value()) return ctx.Error(t.error());
                  ctx.Json(200, TaskToJson(*t, NowMs(), true));
                }});

  s.router.Add(
      {.method = "POST",
       .access = Access::kWrite,
       .pattern = "/api/v1/tasks/{id}/cancel",
       .tag = "tasks",
       .summary = "Cancel a task: a queued task at once, a running one at its next check",
       .responses = {{200, "the task is cancelled"},
                     {202, "the running task was asked to stop"},
                     {404, "no such task"},
                     {409, "the task has already finished"}},
       .response_schema = schemas::TaskView(),
       .handler = [&s](RequestContext& ctx) {
         if (auto seen = VisibleTask(s, ctx); !seen.has_value()) return ctx.Error(seen.error());
         auto t = s.services.tasks.Cancel(ctx.path_params["id"]);
         if (!t.has_value()) return ctx.Error(t.error());
         ctx.Json(t->state == metadata::TaskState::kCancelled ? 200 : 202,
                  TaskToJson(*t, NowMs(), false));
       }});

  s.router.Add(
      {.method = "GET",
       .access = Access::kRead,
       .pattern = "/api/v1/tasks/{id}/logs",
       .tag = "tasks",
       .summary = "A task's log lines",
       .query = {{"after", {{"type", "integer"}, {"minimum", 0}}, "only lines with seq > after"},
                 {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000}}, "lines"}},
       .responses = {{200, "{logs: [{seq, time, level, message}], next_after}"},
                     {404, "no such task"}},
       .handler = [&s, &store](RequestContext& ctx) {
         auto after = IntQuery(ctx, "after", 0, 0, INT64_MAX);
         if (!after.has_value()) return ctx.Error(after.error());
         auto limit = IntQuery(ctx, "limit", 1000, 1, 10000);
         if (!limit.has_value()) return ctx.Error(limit.error());
         if (auto seen = VisibleTask(s, ctx); !seen.has_value()) return ctx.Error(seen.error());
         auto logs = store.Logs(ctx.path_params["id"], *after, static_cast<size_t>(*limit));
         if (!logs.has_value()) return ctx.Error(logs.error());
         json lines = json::array();
         int64_t last = *after;
         for (const auto& l : *logs) {
           lines.push_back({{"seq", l.seq}, {"time", FormatIsoUtc(l.time_ms)},
                            {"level", l.level}, {"message", l.message}});
           last = l.seq;
         }
         ctx.Json(200, {{"logs", lines}, {"next_after", last}});
       }});

  s.router.Add(
      {.method = "GET",
       .access = Access::kRead,
       .pattern = "/api/v1/tasks/{id}/events",
       .tag = "tasks",
       .summary = "Server-sent events with the task's progress until it ends",
       .responses = {{200, "text/event-stream: `task` events, then one `end` event"},
                     {404, "no such task"},
                     {429, "too many event streams are open (Retry-After)"}},
       .produces = "text/event-stream",
       .handler = [&s](RequestContext& ctx) {
         const std::string id = ctx.path_params["id"];
         if (auto t = VisibleTask(s, ctx); !t.has_value()) return ctx.Error(t.error());
         auto slot = s.event_streams.TryAcquire();
         if (!slot) {
           ctx.res.set_header("Retry-After", "5");
           ctx.res.set_header("Connection", "close");
           return ctx.Error(ResourceExhausted(
               std::to_string(s.event_streams.limit()) + " task event streams are open, the most this server allows; "
               "retry later or poll GET /api/v1/tasks/{id}"));
         }
         ctx.res.status = 200;
         ctx.res.set_header("Cache-Control", "no-cache");
         ctx.res.set_header("X-Accel-Buffering", "no");
         ctx.res.set_chunked_content_provider("text/event-stream", TaskEventStream(s, id, HomeOf(s, ctx), std::move(slot)));
       }});
}

}  // namespace mlaas::api
