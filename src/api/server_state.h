// Internal to the api module: what the route handlers share.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "api/api_server.h"
#include "api/metrics.h"
#include "api/router.h"
#include "api/slot_gate.h"
#include "common/net.h"

namespace mlaas::api {

struct ApiServer::State {
  State(const ApiOptions& o, ApiServices s)
      : options(o),
        services(s),
        guards_host_header(s.authenticator == nullptr && IsLoopbackAddress(o.host)),
        event_streams(MaxEventStreams(o)),
        compute_requests(MaxComputeRequests(o)) {}
  // Each event stream holds an HTTP thread for as long as its task runs: by default only half
  // the pool may, and the other half keeps serving requests.
  static int MaxEventStreams(const ApiOptions& o) {
    return o.max_event_streams > 0 ? o.max_event_streams : std::max(1, o.http_threads / 2);
  }
  // Requests of routes marked `compute` (prediction, search, vector-store edits) hold their
  // HTTP thread while a model loads or runs or a store loads: a quarter of the pool by default.
  // (OIP v2 inference is bounded by its deployment's queue and deadline instead: dynamic
  // batching needs the concurrency.)
  static int MaxComputeRequests(const ApiOptions& o) {
    return o.max_compute_requests > 0 ? o.max_compute_requests : std::max(1, o.http_threads / 4);
  }
  ApiOptions options;
  ApiServices services;
  // Auth off on a loopback address: only loopback names are answered in the Host header
  // (DNS rebinding; CheckBrowserOrigin). Decided once, as neither changes while serving.
  const bool guards_host_header;
  Router router;
  Metrics metrics;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  std::atomic<bool> serving{false};  // inside Serve()
  SlotGate event_streams;     // task event streams open
  SlotGate compute_requests;  // requests of `compute` routes in progress
  int listen_socket = -1;             // the bound socket, once Bind() made it
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

using ServerState = ApiServer::State;

void AddSystemRoutes(ServerState& s);
void AddTaskRoutes(ServerState& s);
void AddObjectRoutes(ServerState& s);
void AddMlRoutes(ServerState& s);
void AddServeRoutes(ServerState& s);
void AddVectorRoutes(ServerState& s);
void AddAccountRoutes(ServerState& s);
void AddCatalogRoutes(ServerState& s);
// Deployments of catalog://<name>@<alias> roll to the version the alias moves to.
void FollowCatalogAliases(ServerState& s);

// Streams an object as the response body (Range and If-None-Match supported); `name` picks
// the content type.
void StreamObject(RequestContext& ctx, std::shared_ptr<storage::ObjectReader> reader, const std::string& etag,
                  const std::string& name);
nlohmann::json BuildOpenApi(const ServerState& s);

// `text` with the server's data directory cut out (docs/security.md): a path under
// <data-dir>/objects becomes its key, any other one starts with "<data-dir>". Every JSON answer
// and every event stream goes through it.
std::string RedactServerPaths(const ServerState& s, std::string text);

// Parses an integer query parameter within [min, max]; InvalidArgument naming it otherwise.
Result<int64_t> IntQuery(const RequestContext& ctx, const std::string& name, int64_t fallback,
                         int64_t min, int64_t max);

}  // namespace mlaas::api
