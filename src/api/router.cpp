#include "api/router.h"

#include <algorithm>

#include "common/text.h"

namespace mlaas::api {

void Router::Add(Route route) { routes_.push_back(std::move(route)); }

bool Router::MatchPattern(const std::string& pattern, const std::string& path,
                          std::map<std::string, std::string>& params) {
  auto pp = Split(pattern, '/');
  auto sp = Split(path, '/');
  size_t i = 0;
  for (; i < pp.size(); ++i) {
    const std::string& seg = pp[i];
    bool is_param = seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
    if (is_param && seg[seg.size() - 2] == '+') {
      // Greedy: every segment up to the literal ones that end the pattern, at least one.
      const size_t tail = pp.size() - i - 1;
      if (sp.size() < i + 1 + tail) return false;
      const size_t end = sp.size() - tail;
      std::string rest;
      for (size_t j = i; j < end; ++j) rest += (j > i ? "/" : "") + sp[j];
      if (rest.empty()) return false;
      for (size_t j = 0; j < tail; ++j)
        if (pp[i + 1 + j] != sp[end + j]) return false;
      params[seg.substr(1, seg.size() - 3)] = rest;
      return true;
    }
    if (i >= sp.size()) return false;
    if (is_param) {
      if (sp[i].empty()) return false;
      params[seg.substr(1, seg.size() - 2)] = sp[i];
    } else if (seg != sp[i]) {
      return false;
    }
  }
  return i == sp.size();
}

RouteMatch Router::Match(const std::string& method, const std::string& path) const {
  RouteMatch m;
  const std::string want = method == "HEAD" ? "GET" : method;
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!MatchPattern(r.pattern, path, params)) continue;
    if (r.method == want) {
      m.route = &r;
      m.path_params = std::move(params);
      m.allowed_methods.clear();
      return m;
    }
    if (std::find(m.allowed_methods.begin(), m.allowed_methods.end(), r.method) ==
        m.allowed_methods.end()) {
      m.allowed_methods.push_back(r.method);
    }
  }
  return m;
}

std::string_view AccessName(Access access) {
  switch (access) {
    case Access::kUnset: return "unset";
    case Access::kPublic: return "public";
    case Access::kRead: return "read";
    case Access::kWrite: return "write";
    case Access::kAdmin: return "admin";
  }
  return "unset";
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kCancelled: return 499;
    case StatusCode::kInternal: return 500;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
  }
  return 500;
}

nlohmann::json ErrorBody(const Status& status, const std::string& request_id) {
  nlohmann::json e = {{"code", StatusCodeName(status.code())}, {"message", status.message()}};
  if (!status.field().empty()) e["field"] = status.field();
  if (!request_id.empty()) e["request_id"] = request_id;
  return {{"error", e}};
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void RequestContext::Json(int status, const nlohmann::json& body_json) {
  res.status = status;
  res.set_content(DumpJson(body_json), "application/json");
}

void RequestContext::Error(const Status& status) {
  Json(HttpStatusFor(status.code()), ErrorBody(status, request_id));
}

std::optional<std::string> RequestContext::Query(const std::string& name) const {
  if (!req.has_param(name.c_str())) return std::nullopt;
  return req.get_param_value(name.c_str());
}

}  // namespace mlaas::api
