// Builds the OpenAPI 3 document from the route table.
#include "api/schemas.h"
#include "api/server_state.h"
#include "common/text.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

std::string OperationId(const Route& r) {
  std::string id = ToLower(r.method);
  bool upper = true;
  for (char c : r.pattern) {
    if (c == '/' || c == '{' || c == '}' || c == '-' || c == '.' || c == '+') {
      upper = true;
      continue;
    }
    id += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return id;
}

}  // namespace

json BuildOpenApi(const ServerState& s) {
  json paths = json::object();
  for (const Route& r : s.router.routes()) {
    std::string path = r.pattern;
    json parameters = json::array();
    for (const auto& seg : Split(r.pattern, '/')) {
      if (seg.size() < 3 || seg.front() != '{') continue;
      bool greedy = seg[seg.size() - 2] == '+';
      std::string name = seg.substr(1, seg.size() - (greedy ? 3 : 2));
      if (greedy) {
        size_t at = path.find(seg);
        path.replace(at, seg.size(), "{" + name + "}");
      }
      parameters.push_back({{"name", name},
                            {"in", "path"},
                            {"required", true},
                            {"schema", {{"type", "string"}}},
                            {"description", greedy ? "object key; may contain '/'" : name}});
    }
    for (const auto& q : r.query) {
      parameters.push_back(
          {{"name", q.name}, {"in", "query"}, {"schema", q.schema}, {"description", q.description}});
    }
    json op = {{"operationId", OperationId(r)}, {"summary", r.summary}, {"tags", {r.tag}}};
    if (!parameters.empty()) op["parameters"] = parameters;
    if (r.body == BodyKind::kJson) {
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", r.request_schema}}}}}};
    } else if (r.body == BodyKind::kStream) {
      op["requestBody"] = {
          {"required", false},
          {"content", {{"application/octet-stream",
                        {{"schema", {{"type", "string"}, {"format", "binary"}}}}}}}};
    }
    json responses = json::object();
    for (const auto& [code, description] : r.responses) {
      json resp = {{"description", description}};
      if (code >= 400) {
        resp["content"] = {{"application/json", {{"schema", schemas::ErrorResponse()}}}};
      } else if (code < 300 && code != 204) {
        json schema = r.response_schema.is_null() ? json{{"type", "object"}} : r.response_schema;
        if (r.produces != "application/json") schema = {{"type", "string"}};
        resp["content"] = {{r.produces, {{"schema", schema}}}};
      }
      responses[std::to_string(code)] = resp;
    }
    responses["default"] = {
        {"description", "error"},
        {"content", {{"application/json", {{"schema", schemas::ErrorResponse()}}}}}};
    op["responses"] = responses;
    // Who may call it: x-access (public, read, write, admin), and a bearer token where needed
    // (servers with auth on).
    op["x-access"] = std::string(AccessName(r.access));
    op["security"] = r.access == Access::kPublic ? json::array() : json::array({{{"bearer", json::array()}}});
    paths[path][ToLower(r.method)] = op;
  }
  return {{"openapi", "3.0.3"},
          {"info",
           {{"title", "mlaas"},
            {"version", s.options.version},
            {"description",
             "Machine Learning as a Service: train and fine-tune models, host datasets and "
             "models, serve predictions and run semantic search. Errors are "
             "{\"error\": {\"code\", \"message\", \"field\", \"request_id\"}}; times are UTC."}}},
          {"tags", json::array({{{"name", "ml"}, {"description", "training, prediction, search"}},
                                {{"name", "tasks"}, {"description", "asynchronous tasks"}},
                                {{"name", "objects"}, {"description", "the object store"}},
                                {{"name", "accounts"}, {"description", "who am I, API tokens"}},
                                {{"name", "system"}, {"description", "health and metadata"}}})},
          {"components",
           {{"securitySchemes",
             {{"bearer",
               {{"type", "http"},
                {"scheme", "bearer"},
                {"description", "an API token (mlaas tokens create; checked when the server runs with --auth on)"}}}}}}},
          {"paths", paths}};
}

}  // namespace mlaas::api
