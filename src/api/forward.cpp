#include "api/forward.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace mlaas::api {

bool WasForwarded(const RequestContext& ctx) { return ctx.req.has_header(kForwardedHeader); }

bool Forward(RequestContext& ctx, const std::vector<std::string>& urls) {
  static std::atomic<size_t> next{0};  // spreads requests over the servers that serve the model
  const size_t first = next++;
  httplib::Headers headers = {{kForwardedHeader, "1"}};
  if (ctx.req.has_header("Authorization")) headers.emplace("Authorization", ctx.req.get_header_value("Authorization"));
  if (!ctx.request_id.empty()) headers.emplace("X-Request-Id", ctx.request_id);
  const std::string body = ctx.req.method == "POST" ? ctx.body.dump() : "";
  for (size_t i = 0; i < urls.size(); ++i) {
    const std::string& url = urls[(first + i) % urls.size()];
    httplib::Client client(url);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(std::chrono::seconds(120));
    client.set_write_timeout(std::chrono::seconds(30));
    httplib::Result r = ctx.req.method == "POST" ? client.Post(ctx.req.path, headers, body, "application/json")
                                                 : client.Get(ctx.req.path, headers);
    if (!r) {
      spdlog::warn("cannot forward {} {} to {}: {}", ctx.req.method, ctx.req.path, url, httplib::to_string(r.error()));
      // Only a server never reached is passed over: one that took the request may have run it.
      if (r.error() == httplib::Error::Connection || r.error() == httplib::Error::ConnectionTimeout) continue;
      ctx.Error(Status(StatusCode::kUnavailable, "the server that serves this model (" + url +
                                                    ") did not answer: " + httplib::to_string(r.error())));
      return true;
    }
    ctx.res.status = r->status;
    for (const char* name : {"Retry-After", "WWW-Authenticate"}) {
      if (r->has_header(name)) ctx.res.set_header(name, r->get_header_value(name));
    }
    ctx.res.set_content(r->body, r->has_header("Content-Type") ? r->get_header_value("Content-Type") : "application/json");
    return true;
  }
  return false;
}

}  // namespace mlaas::api
