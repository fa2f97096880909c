// Health, readiness, Prometheus metrics, the OpenAPI document and the landing page.
#include <filesystem>
#include <sstream>

#include "common/file_util.h"
#include "storage/object_store.h"

#include "api/server_state.h"
#include "api/task_view.h"
#include "serve/serve_metrics.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

constexpr const char* kLandingPage = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mlaas</title></head>
<body><h1>mlaas</h1>
<p>Machine Learning as a Service. This server speaks the REST API described in
<a href="/openapi.json">/openapi.json</a>.</p>
<ul>
<li><a href="/api/v1/tasks">/api/v1/tasks</a> &mdash; tasks (training, indexing, dataset statistics)</li>
<li><a href="/api/v1/ml/utilities/s3/object">/api/v1/ml/utilities/s3/object</a> &mdash; objects in storage</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></li>
</ul>
<p>From a shell: <code>mlaas --help</code>.</p>
</body></html>
)html";

// What every page and file of the web app is sent with: scripts only from this server (no
// inline script runs, whatever a model card holds), no framing, no sniffing, no referrer. Images
// may also be blob: URLs, which the app makes of files it fetched with the token (an <img> can
// send no Authorization header).
void WebHeaders(RequestContext& ctx) {
  ctx.res.set_header("Content-Security-Policy",
                     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                     "connect-src 'self'; font-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                     "frame-ancestors 'none'");
  ctx.res.set_header("X-Content-Type-Options", "nosniff");
  ctx.res.set_header("X-Frame-Options", "DENY");
  ctx.res.set_header("Referrer-Policy", "no-referrer");
}

std::string WebContentType(const std::string& name) {
  const auto ends = [&](std::string_view suffix) { return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".woff2")) return "font/woff2";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

// Sends <web_dir>/<rel> (a validated relative path); false when there is no such file.
bool ServeWebFile(ServerState& s, RequestContext& ctx, const std::string& rel) {
  const std::filesystem::path file = std::filesystem::path(s.options.web_dir) / rel;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return false;
  auto text = ReadFile(file, 32u << 20);
  if (!text.has_value()) return false;
  ctx.res.status = 200;
  ctx.res.set_content(std::move(text).value(), WebContentType(rel));
  return true;
}

}  // namespace

void AddSystemRoutes(ServerState& s) {
  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = "/healthz",
                .tag = "system",
                .summary = "Liveness: the process is up and answering",
                .responses = {{200, "alive"}},
                .handler = [&s](RequestContext& ctx) {
                  ctx.Json(200, {{"status", "ok"}, {"version", s.options.version}});
                }});

  s.router.Add(
      {.method = "GET",
       .access = Access::kPublic,
       .pattern = "/readyz",
       .tag = "system",
       .summary = "Readiness: metadata store, object store and task workers are usable",
       .responses = {{200, "ready"}, {503, "not ready; `checks` says which part is not"}},
       .handler = [&s](RequestContext& ctx) {
         json checks = json::object();
         bool ready = true;
         Status db = s.services.task_store.Ping();
         checks["metadata"] = db.ok() ? "ok" : db.message();
         ready &= db.ok();
         auto local = s.services.storage.Get("local");
         storage::ListOptions probe;
         probe.max_keys = 1;
         Status st = local.has_value() ? (*local)->List(probe).status() : local.error();
         checks["storage"] = st.ok() ? "ok" : st.message();
         ready &= st.ok();
         bool started = s.services.tasks.started();
         checks["tasks"] = !started ? "the task manager is not running"
                           : s.services.tasks.workers() > 0
                               ? "ok"
                               : "ok; no workers here, tasks wait for `mlaas worker`";
         ready &= started;
         if (s.stopping) {
           checks["server"] = "shutting down";
           ready = false;
         }
         ctx.Json(ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"}, {"checks", checks}});
       }});

  s.router.Add(
      {.method = "GET",
       .access = Access::kRead,
       .pattern = "/metrics",
       .tag = "system",
       .summary = "Prometheus metrics: requests by route and status, latency, tasks by state",
       .responses = {{200, "metrics in the Prometheus text format"}},
       .produces = "text/plain",
       .handler = [&s](RequestContext& ctx) {
         std::ostringstream out;
         out << s.metrics.Render();
         out << "# HELP mlaas_tasks Tasks in the metadata store by state.\n"
             << "# TYPE mlaas_tasks gauge\n";
         if (auto counts = s.services.task_store.CountByState(); counts.has_value()) {
           for (const auto& [state, n] : *counts) {
             out << "mlaas_tasks{state=\"" << metadata::TaskStateName(state) << "\"} " << n
                 << "\n";
           }
         }
         out << "# HELP mlaas_tasks_running_here Tasks running in this process.\n"
             << "# TYPE mlaas_tasks_running_here gauge\n"
             << "mlaas_tasks_running_here " << s.services.tasks.running_count() << "\n";
         double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                       s.started).count();
         out << "# HELP mlaas_uptime_seconds Seconds since the server started.\n"
             << "# TYPE mlaas_uptime_seconds gauge\n"
             << "mlaas_uptime_seconds " << uptime << "\n"
             << "# HELP mlaas_build_info Build information.\n"
             << "# TYPE mlaas_build_info gauge\n"
             << "mlaas_build_info{version=\"" << PromEscape(s.options.version) << "\"} 1\n"
             << "# HELP process_resident_memory_bytes Resident memory of this process.\n"
             << "# TYPE process_resident_memory_bytes gauge\n"
             << "process_resident_memory_bytes " << serve::ResidentBytes() << "\n";
         auto metric = [&out](const char* name, const char* type, const char* help, uint64_t value) {
           out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
               << name << " " << value << "\n";
         };
         if (s.services.nlp_predictor != nullptr) {
           const auto c = s.services.nlp_predictor->cache_stats();
           metric("mlaas_model_cache_hits_total", "counter", "Predictions that found their model loaded.", c.hits);
           metric("mlaas_model_cache_misses_total", "counter", "Predictions that loaded their model.", c.misses);
           metric("mlaas_model_cache_evictions_total", "counter", "Models evicted from the cache (memory budget).",
                  c.evictions);
           metric("mlaas_model_cache_models", "gauge", "Models in the model cache (prediction and search).", c.models);
           metric("mlaas_model_cache_bytes", "gauge", "Weights of the models in the prediction cache.", c.bytes);
         }
         if (s.services.deployments != nullptr) out << s.services.deployments->RenderMetrics();
         ctx.res.status = 200;
         ctx.res.set_content(out.str(), "text/plain; version=0.0.4; charset=utf-8");
       }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = "/openapi.json",
                .tag = "system",
                .summary = "This API, as an OpenAPI 3 document",
                .responses = {{200, "the OpenAPI document"}},
                .handler = [&s](RequestContext& ctx) { ctx.Json(200, BuildOpenApi(s)); }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = "/",
                .tag = "web",
                .summary = "The web app (or, in a build without it, a page of links to the API)",
                .responses = {{200, "an HTML page"}},
                .produces = "text/html",
                .handler = [&s](RequestContext& ctx) {
                  WebHeaders(ctx);
                  ctx.res.set_header("Cache-Control", "no-cache");
                  if (!s.options.web_dir.empty() && ServeWebFile(s, ctx, "index.html")) return;
                  ctx.res.status = 200;
                  ctx.res.set_content(kLandingPage, "text/html; charset=utf-8");
                }});
  for (const char* pattern : {"/assets/{path+}", "/favicon.svg"}) {
    s.router.Add({.method = "GET",
                  .access = Access::kPublic,
                  .pattern = pattern,
                  .tag = "web",
                  .summary = "The web app's scripts, styles and images (content-hashed names, cached for a year)",
                  .responses = {{200, "the file"}, {404, "no such file"}},
                  .produces = "application/octet-stream",
                  .handler = [&s, pattern](RequestContext& ctx) {
                    WebHeaders(ctx);
                    const bool asset = std::string_view(pattern) != "/favicon.svg";
                    const std::string rel = asset ? "assets/" + ctx.path_params["path"] : "favicon.svg";
                    if (Status st = storage::ValidateKey(rel); !st.ok()) return ctx.Error(NotFound("no such file"));
                    if (s.options.web_dir.empty() || !ServeWebFile(s, ctx, rel)) {
                      // Not cached: the file may appear with the next build (a browser must not keep the 404).
                      ctx.res.set_header("Cache-Control", "no-store");
                      return ctx.Error(NotFound("no such file"));
                    }
                    if (asset) ctx.res.set_header("Cache-Control", "public, max-age=31536000, immutable");
                  }});
  }
}

}  // namespace mlaas::api
