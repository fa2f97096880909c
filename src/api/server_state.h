// Internal to the api module: what the route handlers share.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>

#include "api/api_server.h"
#include "api/metrics.h"
#include "api/router.h"

namespace mlaas::api {

struct ApiServer::State {
  State(const ApiOptions& o, ApiServices s) : options(o), services(s) {}
  ApiOptions options;
  ApiServices services;
  Router router;
  Metrics metrics;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  std::atomic<bool> serving{false};  // inside Serve()
  std::atomic<int> event_streams{0};  // task event streams open (each holds an HTTP thread)
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
nlohmann::json BuildOpenApi(const ServerState& s);

// `text` with the server's data directory cut out (docs/security.md): a path under
// <data-dir>/objects becomes its key, any other one starts with "<data-dir>". Every JSON answer
// and every event stream goes through it.
std::string RedactServerPaths(const ServerState& s, std::string text);

// Parses an integer query parameter within [min, max]; InvalidArgument naming it otherwise.
Result<int64_t> IntQuery(const RequestContext& ctx, const std::string& name, int64_t fallback,
                         int64_t min, int64_t max);

}  // namespace mlaas::api
