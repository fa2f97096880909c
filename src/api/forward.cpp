#include "api/forward.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

namespace mlaas::api {

namespace {

// Idle keep-alive connections to the other servers, by URL: a forward takes one (or opens one)
// and puts it back when answered, so requests between servers do not pay a TCP handshake
// each. At most kIdlePerServer are kept per server (the servers are the database's, few), and
// none idle for kMaxIdle, well within the servers' keep-alive timeout (5 s by default).
constexpr size_t kIdlePerServer = 16;
constexpr auto kMaxIdle = std::chrono::seconds(2);

class ForwardClients {
 public:
  // An idle client of `url` (its connection open since an earlier forward), or null.
  std::unique_ptr<httplib::Client> TakeIdle(const std::string& url) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    auto& idle = idle_[url];
    while (!idle.empty()) {
      Idle last = std::move(idle.back());
      idle.pop_back();
      if (now - last.since < kMaxIdle) return std::move(last.client);
    }
    return nullptr;
  }
  static std::unique_ptr<httplib::Client> Open(const std::string& url) {
    auto client = std::make_unique<httplib::Client>(url);
    client->set_keep_alive(true);
    // Headers and body go out in two writes: without TCP_NODELAY the body waits for the peer's
    // delayed ACK of the headers (40 ms on Linux).
    client->set_tcp_nodelay(true);
    client->set_connection_timeout(std::chrono::seconds(2));
    client->set_read_timeout(std::chrono::seconds(120));
    client->set_write_timeout(std::chrono::seconds(30));
    return client;
  }
  void GiveBack(const std::string& url, std::unique_ptr<httplib::Client> client) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& idle = idle_[url];
    if (idle.size() < kIdlePerServer) idle.push_back({std::move(client), std::chrono::steady_clock::now()});
  }

 private:
  struct Idle {
    std::unique_ptr<httplib::Client> client;
    std::chrono::steady_clock::time_point since;
  };
  std::mutex mu_;
  std::map<std::string, std::vector<Idle>> idle_;
};

ForwardClients& Pool() {
  static auto* pool = new ForwardClients();  // never destroyed: forwards may run while the process exits
  return *pool;
}

}  // namespace

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
    auto client = Pool().TakeIdle(url);
    const bool reused = client != nullptr;
    if (!reused) client = ForwardClients::Open(url);
    auto send = [&] {
      return ctx.req.method == "POST" ? client->Post(ctx.req.path, headers, body, "application/json")
                                      : client->Get(ctx.req.path, headers);
    };
    httplib::Result r = send();
    if (!r && reused) {
      // The other server may have closed the idle connection as the request went out: again on
      // a new one (what is forwarded, model metadata and inference, changes nothing there).
      client = ForwardClients::Open(url);
      r = send();
    }
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
    Pool().GiveBack(url, std::move(client));
    return true;
  }
  return false;
}

}  // namespace mlaas::api
