// Route table of the HTTP API: every route's method, path pattern, documentation, request
// schema and handler in one place, so routing, validation, metrics labels and the OpenAPI
// document all come from the same data.
#pragma once

#include <httplib.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "common/status.h"

namespace mlaas::api {

struct RequestContext;
using Handler = std::function<void(RequestContext&)>;

enum class BodyKind {
  kNone,    // no body expected (a body, if sent, is ignored)
  kJson,    // a JSON document validated against request_schema
  kStream,  // raw bytes the handler reads itself (uploads)
};

// Who may call a route (docs/security.md, "Accounts and tokens"). With auth off every request
// is the local admin; with auth on, a route without a rule is refused (and fails a test).
enum class Access {
  kUnset,   // no rule: refused
  kPublic,  // anyone, without a token (health, the OpenAPI document)
  kRead,    // a token with the read scope (reads, predictions, searches, inference)
  kWrite,   // a token with the write scope (creates, changes, deletes, starts tasks)
  kAdmin,   // a token with the admin scope
};
std::string_view AccessName(Access access);

struct QueryParam {
  std::string name{};
  nlohmann::json schema{};  // JSON schema of the value (for the OpenAPI document)
  std::string description{};
};

struct Route {
  std::string method{};   // GET, POST, PUT, DELETE
  Access access = Access::kUnset;
  std::string pattern{};  // "/api/v1/tasks/{id}"; "{key+}" matches one or more segments (up to
                          // the literal segments that follow it, if any)
  std::string tag{};      // OpenAPI group
  std::string summary{};
  BodyKind body = BodyKind::kNone;
  nlohmann::json request_schema{};  // kJson only
  std::vector<QueryParam> query{};
  std::map<int, std::string> responses{};  // status -> description
  nlohmann::json response_schema{};        // schema of the main success response, if any
  std::string produces = "application/json";
  // Runs a model, or loads or searches a vector store, while holding its HTTP thread: counted
  // against --max-compute-requests (429 beyond), so such requests never take the whole pool.
  bool compute = false;
  Handler handler{};
};

struct RouteMatch {
  const Route* route = nullptr;                    // set when method and path match
  std::map<std::string, std::string> path_params;  // {id} -> value
  std::vector<std::string> allowed_methods;        // path matched, method did not (405)
};

class Router {
 public:
  void Add(Route route);
  // Matches `path` for `method` (HEAD matches GET).
  RouteMatch Match(const std::string& method, const std::string& path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  static bool MatchPattern(const std::string& pattern, const std::string& path,
                           std::map<std::string, std::string>& params);
  std::vector<Route> routes_;
};

// Everything a handler needs for one request.
struct RequestContext {
  const httplib::Request& req;
  httplib::Response& res;
  const Route& route;
  std::map<std::string, std::string> path_params;
  nlohmann::json body;                                 // kJson routes: the validated body
  const httplib::ContentReader* reader = nullptr;      // kStream routes with a body
  std::string request_id;
  auth::Principal principal;  // who is calling (the local admin when auth is off)
  // A `compute` route's place among the requests in progress: a handler that answers later (a
  // stream) keeps a copy while it works.
  std::shared_ptr<void> compute_slot = nullptr;

  // Writes a JSON response.
  void Json(int status, const nlohmann::json& body);
  // Writes the error response for `status` ({"error": {code, message, field, request_id}}).
  void Error(const Status& status);
  // The query parameter `name`, if present.
  std::optional<std::string> Query(const std::string& name) const;
};

// HTTP status for a Status code (the one mapping of the server).
int HttpStatusFor(StatusCode code);
// {"error": {"code", "message", "field"?, "request_id"}}
nlohmann::json ErrorBody(const Status& status, const std::string& request_id);
// Serialises JSON for a response; invalid UTF-8 (never expected) is replaced, not thrown.
std::string DumpJson(const nlohmann::json& j);

}  // namespace mlaas::api
