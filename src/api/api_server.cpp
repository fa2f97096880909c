#include "api/api_server.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cerrno>
#include <chrono>
#include <thread>

#include "api/connection_pool.h"
#include "api/ownership.h"
#include "api/server_state.h"
#include "common/json_file.h"
#include "common/json_schema.h"
#include "common/net.h"
#include "common/text.h"

namespace mlaas::api {
namespace {

using nlohmann::json;

constexpr size_t kMaxJsonDepth = 64;
constexpr int kListenBacklog = 1024;
// cpp-httplib keeps a keep-alive connection open even when a handler answers without
// reading the request body, and would then parse the leftover bytes as the next request.
// Bodies a handler did not read are therefore drained, up to this size.
constexpr uint64_t kMaxDrainBytes = 64ull << 20;
// How long a connection being ended reads and discards what its client still sends.
constexpr std::chrono::milliseconds kLingerOnClose{2000};

std::string RequestId(const httplib::Request& req) {
  std::string id = req.get_header_value("X-Request-Id");
  bool ok = !id.empty() && id.size() <= 128;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') ok = false;
  }
  return ok ? id : NewUuid();
}

void RawError(httplib::Response& res, int http_status, const std::string& code,
              const std::string& message, const std::string& request_id) {
  res.status = http_status;
  json e = {{"code", code}, {"message", message}};
  if (!request_id.empty()) e["request_id"] = request_id;
  res.set_content(DumpJson(json{{"error", e}}), "application/json");
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// The address of a socket's end, as cpp-httplib writes it in Request::remote_addr.
std::string Address(const sockaddr_storage& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, text, sizeof(text));
  } else if (a.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, text, sizeof(text));
  }
  return text;
}

// Where a request came from and arrived, as cpp-httplib records it.
struct ConnectionEnds {
  std::string local_addr, remote_addr;
  int local_port = 0, remote_port = 0;
};

// An address as cpp-httplib writes it, without an IPv6 scope ("fe80::1%eth0" -> "fe80::1").
std::string WithoutScope(const std::string& address) { return address.substr(0, address.find('%')); }

// Whether `fd` is the socket with these ends.
bool IsConnection(int fd, const ConnectionEnds& ends) {
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0)
    return false;
  auto port = [](const sockaddr_storage& a) {
    return a.ss_family == AF_INET    ? ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port)
           : a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port)
                                     : 0;
  };
  return port(local) == ends.local_port && port(peer) == ends.remote_port &&
         Address(peer) == WithoutScope(ends.remote_addr) && Address(local) == WithoutScope(ends.local_addr);
}

// The descriptor of this process's socket with these ends (a TCP connection's four are unique
// among open ones), or -1. /proc/self/fd lists the open descriptors; when it cannot be read (no
// descriptor left to open it with) the low numbers are tried one by one.
int FindConnection(const ConnectionEnds& ends) {
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    int found = -1;
    while (dirent* e = ::readdir(dir)) {
      auto fd = ParseInt(e->d_name);
      if (fd && *fd != ::dirfd(dir) && IsConnection(static_cast<int>(*fd), ends)) {
        found = static_cast<int>(*fd);
        break;
      }
    }
    ::closedir(dir);
    return found;
  }
  rlimit limit{};
  const int max = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536)) : 4096;
  for (int fd = 3; fd < max; ++fd) {
    if (IsConnection(fd, ends)) return fd;
  }
  return -1;
}

// A descriptor that reads as an end of stream: one end of a socket pair whose other end is
// closed. Made once, at start, so that ending a connection never needs a new descriptor.
int EndOfStreamFd() {
  static const int fd = [] {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return -1;
    ::close(pair[1]);
    return pair[0];
  }();
  return fd;
}

// Ends the connection whose socket has these ends, its response written (see
// EndConnectionAfter). Shutting it down for reading is not enough: Linux still hands out
// bytes already received (the unread rest of a body), which cpp-httplib would parse as a
// next request. So: a FIN after the response; when body bytes may be left (`linger`), what
// the client still sends is read and thrown away for a moment (closing a socket with unread
// bytes resets the connection, and the client could lose the answer); then the descriptor is
// replaced by one that reads as an end of stream, which closes the connection's socket, and
// cpp-httplib's next read ends the connection.
void EndConnection(const ConnectionEnds& ends, bool linger) {
  const int fd = FindConnection(ends);
  if (fd < 0) {
    spdlog::warn("could not find the connection from {}:{} to end it", EscapeForLog(ends.remote_addr), ends.remote_port);
    return;
  }
  ::shutdown(fd, SHUT_WR);
  const auto deadline = std::chrono::steady_clock::now() + kLingerOnClose;
  char discard[16384];
  while (linger) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    ssize_t n = ::recv(fd, discard, sizeof(discard), MSG_DONTWAIT);
    if (n == 0) break;  // the client closed its end
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
  }
  if (EndOfStreamFd() >= 0 && ::dup2(EndOfStreamFd(), fd) >= 0) return;
  ::shutdown(fd, SHUT_RDWR);  // (no end-of-stream descriptor: the best left)
}

// Makes the connection of `req` end once `res` is written. cpp-httplib 0.11 keeps a
// connection alive whatever a handler says ("Connection: close" is only echoed) and would
// parse the unread rest of a refused body as the next request. The response's body is
// handed over as a content provider whose releaser (run once it is written) ends the
// connection (EndConnection; `linger` when body bytes may be left unread).
void EndConnectionAfter(const httplib::Request& req, httplib::Response& res, bool linger) {
  res.set_header("Connection", "close");
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  const std::string type = res.get_header_value("Content-Type");
  res.set_content_provider(
      body->size(), type.empty() ? "application/json" : type,
      [body](size_t offset, size_t length, httplib::DataSink& sink) {
        return sink.write(body->data() + offset, length);
      },
      [ends = ConnectionEnds{req.local_addr, req.remote_addr, req.local_port, req.remote_port}, linger](bool) {
        EndConnection(ends, linger);
      });
}

// Reads and validates a JSON body; false (with the error response written) when it is bad.
bool ReadJsonBody(ServerState& s, RequestContext& ctx, const httplib::ContentReader* reader) {
  const size_t limit = s.options.max_body_bytes;
  std::string body;
  if (reader != nullptr) {
    if (ctx.req.has_header("Content-Length") &&
        ctx.req.get_header_value<uint64_t>("Content-Length") > limit) {
      ctx.res.set_header("Connection", "close");
      RawError(ctx.res, 413, "payload_too_large",
               "request body is larger than the " + FormatBytes(limit) + " allowed",
               ctx.request_id);
      return false;
    }
    bool too_big = false;
    bool ok = (*reader)([&](const char* data, size_t len) {
      if (body.size() + len > limit) {
        too_big = true;
        return false;
      }
      body.append(data, len);
      return true;
    });
    if (too_big) {
      ctx.res.set_header("Connection", "close");
      RawError(ctx.res, 413, "payload_too_large",
               "request body is larger than the " + FormatBytes(limit) + " allowed",
               ctx.request_id);
      return false;
    }
    if (!ok) {
      ctx.res.set_header("Connection", "close");
      RawError(ctx.res, 400, "invalid_body", "the request body could not be read", ctx.request_id);
      return false;
    }
  } else {
    body = ctx.req.body;
  }
  if (Trim(body).empty()) {
    ctx.Error(InvalidArgument("request body is empty; expected a JSON object"));
    return false;
  }
  auto parsed = ParseJsonText(body, "request body", {}, {.max_bytes = limit, .max_depth = kMaxJsonDepth});
  if (!parsed.has_value()) {
    RawError(ctx.res, 400, "invalid_json", parsed.error().message(), ctx.request_id);
    return false;
  }
  ctx.body = std::move(parsed).value();
  if (Status st = ValidateJson(ctx.body, ctx.route.request_schema); !st.ok()) {
    ctx.Error(st);
    return false;
  }
  return true;
}

// Who is calling, and whether the route lets them (docs/security.md, "Accounts and tokens"):
// with auth on, 401 (and WWW-Authenticate) without a valid token where one is needed, 403
// without the route's scope. Runs before the body is read.
bool Authorize(ServerState& s, RequestContext& ctx) {
  const Access access = ctx.route.access;
  if (access == Access::kUnset) {
    ctx.Error(Status(StatusCode::kPermissionDenied, "this route has no access rule, so nobody may call it"));
    return false;
  }
  if (s.services.authenticator == nullptr) {
    ctx.principal = auth::LocalAdmin();
    return true;
  }
  for (const char* name : {"access_token", "token", "api_key"}) {
    if (ctx.req.has_param(name)) {
      ctx.Error(InvalidArgument("a token goes in the Authorization header (Bearer), never in a URL, which logs and "
                                "proxies keep",
                                name));
      return false;
    }
  }
  const auto unauthenticated = [&](const std::string& message) {
    ctx.res.set_header("WWW-Authenticate", "Bearer realm=\"mlaas\"");
    ctx.Error(Status(StatusCode::kUnauthenticated, message));
    return false;
  };
  if (const std::string header = ctx.req.get_header_value("Authorization"); !header.empty()) {
    if (header.size() <= 7 || strncasecmp(header.c_str(), "Bearer ", 7) != 0)
      return unauthenticated("the Authorization header must be 'Bearer <token>'");
    auto principal = s.services.authenticator->Authenticate(Trim(std::string_view(header).substr(7)));
    if (!principal.has_value()) {
      if (principal.error().code() != StatusCode::kUnauthenticated) {
        ctx.Error(principal.error());
        return false;
      }
      return unauthenticated(principal.error().message());
    }
    ctx.principal = std::move(principal).value();
  }
  if (access == Access::kPublic) return true;
  if (ctx.principal.anonymous())
    return unauthenticated("this route needs a token: send 'Authorization: Bearer <token>' (`mlaas login` stores one)");
  const auth::Scope needed = access == Access::kRead    ? auth::Scope::kRead
                             : access == Access::kWrite ? auth::Scope::kWrite
                                                        : auth::Scope::kAdmin;
  if (!ctx.principal.Has(needed)) {
    ctx.Error(Status(StatusCode::kPermissionDenied,
                     "this token lacks the '" + std::string(auth::ScopeName(needed)) + "' scope this route needs"));
    return false;
  }
  return true;
}

// What a browser page of another site may not do, with auth off. A state-changing request (not GET, HEAD or
// OPTIONS) that a browser sent from another origin (its Origin header names another host than
// the Host header, or is "null") is refused: with auth off, any page the user opens could
// otherwise POST to the API (CSRF: a text/plain body needs no preflight). A server on a
// loopback address with auth off also refuses a Host header that is not a loopback name: that
// is a page of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding),
// which could then read answers as well.
Status CheckBrowserOrigin(const ServerState& s, const httplib::Request& req) {
  const std::string host = req.get_header_value("Host");
  if (s.guards_host_header && !host.empty() &&
      !IsLoopbackHost(HostOfAuthority(host))) {
    return Status(StatusCode::kPermissionDenied,
                  "this server listens on a loopback address with auth off and answers only requests for a loopback "
                  "name (localhost, 127.0.0.1, [::1]), not for '" + EscapeForLog(host, 128) +
                      "': a page of another site made to resolve to this machine could use every route (serve other "
                      "names with --auth on)",
                  "Host");
  }
  // With auth on a request carries its token in a header a page of another site cannot set
  // without a preflight this server never grants: nothing to forge.
  if (s.services.authenticator != nullptr) return Status::Ok();
  if (req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS" || !req.has_header("Origin")) return Status::Ok();
  const std::string origin = req.get_header_value("Origin");
  const size_t scheme_end = origin.find("://");
  const std::string origin_host = scheme_end == std::string::npos ? "" : ToLower(origin.substr(scheme_end + 3));
  const std::string forwarded = ToLower(req.get_header_value("X-Forwarded-Host"));  // behind a reverse proxy
  if (origin_host.empty() || (origin_host != ToLower(host) && origin_host != forwarded)) {
    return Status(StatusCode::kPermissionDenied,
                  "a " + req.method + " from a page of another origin ('" + EscapeForLog(origin, 128) +
                      "') is refused: this API answers its own web app and clients that send no Origin (the CLI, "
                      "the SDK, curl)",
                  "Origin");
  }
  return Status::Ok();
}

void Dispatch(ServerState& s, const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader* reader) {
  std::string user, home;  // who calls, and where their things live (ownership.h)
  const auto t0 = std::chrono::steady_clock::now();
  const std::string request_id = RequestId(req);
  res.set_header("X-Request-Id", request_id);
  RouteMatch m = s.router.Match(req.method, req.path);
  std::string label = m.route ? m.route->pattern : "unmatched";
  // The body reader, wrapped to remember whether anyone read the body, and to its end.
  bool body_read = false, body_complete = false;
  std::unique_ptr<httplib::ContentReader> tracked;
  if (reader != nullptr) {
    tracked = std::make_unique<httplib::ContentReader>(
        [reader, &body_read, &body_complete](httplib::ContentReceiver receiver) {
          body_read = true;
          return body_complete = (*reader)(std::move(receiver));
        },
        [reader, &body_read, &body_complete](httplib::MultipartContentHeader header,
                                             httplib::ContentReceiver receiver) {
          body_read = true;
          return body_complete = (*reader)(std::move(header), std::move(receiver));
        });
  }

  if (Status browser = CheckBrowserOrigin(s, req); !browser.ok()) {
    json e = {{"code", "permission_denied"}, {"message", browser.message()}, {"field", browser.field()}, {"request_id", request_id}};
    res.status = 403;
    res.set_content(DumpJson(json{{"error", e}}), "application/json");
  } else if (req.method == "OPTIONS") {
    auto get = s.router.Match("GET", req.path);
    std::vector<std::string> allowed = get.allowed_methods;
    if (get.route) allowed.push_back("GET");
    for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
      if (s.router.Match(method, req.path).route) allowed.push_back(method);
    }
    // Each once, in the order found.
    for (size_t i = 0; i < allowed.size(); ++i)
      allowed.erase(std::remove(allowed.begin() + static_cast<std::ptrdiff_t>(i) + 1, allowed.end(), allowed[i]), allowed.end());
    if (allowed.empty()) {
      RawError(res, 404, "not_found", "no route for " + req.path, request_id);
    } else {
      allowed.push_back("OPTIONS");
      res.set_header("Allow", Join(allowed, ", "));
      res.status = 204;
    }
  } else if (!m.route && !m.allowed_methods.empty()) {
    res.set_header("Allow", Join(m.allowed_methods, ", "));
    RawError(res, 405, "method_not_allowed",
             "method " + req.method + " is not allowed on " + req.path + " (allowed: " +
                 Join(m.allowed_methods, ", ") + ")",
             request_id);
  } else if (!m.route) {
    RawError(res, 404, "not_found", "no route for " + req.method + " " + req.path, request_id);
  } else {
    RequestContext ctx{req, res, *m.route, std::move(m.path_params), json(), nullptr, request_id, {}, nullptr};
    bool ready = Authorize(s, ctx);
    user = ctx.principal.user;
    home = HomeOf(s, ctx);
    if (!ready) {
    } else if (m.route->body == BodyKind::kJson) {
      ready = ReadJsonBody(s, ctx, tracked.get());
    } else if (m.route->body == BodyKind::kStream) {
      ctx.reader = tracked.get();
    }
    std::shared_ptr<void> slot;
    if (ready && m.route->compute && !(slot = s.compute_requests.TryAcquire())) {
      ready = false;
      ctx.Error(ResourceExhausted(std::to_string(s.compute_requests.limit()) +
                                  " prediction and search requests are in progress, the most this server "
                                  "runs at once (--max-compute-requests): retry shortly"));
    }
    if (ready) {
      ctx.compute_slot = slot;
      try {
        m.route->handler(ctx);
      } catch (const std::exception& e) {
        spdlog::error("request {} {} {} failed: {}", request_id, req.method, EscapeForLog(req.path),
                      EscapeForLog(e.what()));
        ctx.Error(Internal("internal error while handling the request (request id " +
                           request_id + ")"));
      } catch (...) {
        spdlog::error("request {} {} {} failed", request_id, req.method, EscapeForLog(req.path));
        ctx.Error(Internal("internal error while handling the request (request id " + request_id + ")"));
      }
    }
  }
  // What is left of a body must never be read as the next request: a body nobody read is
  // drained when small, and the connection ends after the answer when some of it is left (a
  // refused body, a reader stopped midway) or a handler asked to close.
  bool end_connection = false, unread = false;
  if (tracked && !body_read) {
    bool small = !req.has_header("Content-Length") ||
                 req.get_header_value<uint64_t>("Content-Length") <= kMaxDrainBytes;
    uint64_t drained = 0;
    bool whole = small && (*reader)([&drained](const char*, size_t len) { return (drained += len) <= kMaxDrainBytes; });
    unread = end_connection = !whole;
  } else if (tracked && !body_complete) {
    unread = end_connection = true;
  } else if (res.get_header_value("Connection") == "close") {
    end_connection = true;
  }
  // Full now, or still working on it: come back in a while.
  if ((res.status == 429 || res.status == 503) && !res.has_header("Retry-After")) res.set_header("Retry-After", "1");
  if (res.get_header_value("Content-Type") == "application/json")
    res.body = StripHome(home, RedactServerPaths(s, std::move(res.body)));
  // The Open Inference Protocol's errors are {"error": "<message>"}.
  if (req.path.rfind("/v2", 0) == 0 && res.status >= 400) {
    json body = json::parse(res.body, nullptr, false);
    if (!body.is_discarded() && body.contains("error") && body["error"].is_object()) {
      std::string message = body["error"].value("message", "error");
      if (body["error"].contains("field")) message += " (" + body["error"]["field"].get<std::string>() + ")";
      res.set_content(DumpJson(json{{"error", message}}), "application/json");
    }
  }
  // A handler that leaves the status unset lets cpp-httplib choose 200 or 206 (ranges).
  const int status = res.status != -1 ? res.status : req.ranges.empty() ? 200 : 206;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.metrics.Record(req.method, label, status, seconds);
  bool quiet = label == "/healthz" || label == "/readyz" || label == "/metrics";
  spdlog::log(quiet ? spdlog::level::debug : spdlog::level::info, "{} {} -> {} {:.1f} ms [{}{}{}]", req.method,
              EscapeForLog(req.path), status, seconds * 1000, request_id, user.empty() ? "" : " ", user);
  if (end_connection && !res.content_provider_) EndConnectionAfter(req, res, unread);
}

}  // namespace

std::string RedactServerPaths(const ServerState& s, std::string text) {
  const std::string& dir = s.options.data_dir;
  if (dir.empty() || text.find(dir) == std::string::npos) return text;
  return RedactPath(RedactPath(std::move(text), dir + "/objects/", ""), dir, "<data-dir>");
}

Result<int64_t> IntQuery(const RequestContext& ctx, const std::string& name, int64_t fallback,
                         int64_t min, int64_t max) {
  auto raw = ctx.Query(name);
  if (!raw) return fallback;
  auto v = ParseInt(*raw);
  if (!v) return InvalidArgument("query parameter '" + name + "' must be an integer", name);
  if (*v < min || *v > max) {
    return InvalidArgument("query parameter '" + name + "' must be between " +
                               std::to_string(min) + " and " + std::to_string(max),
                           name);
  }
  return *v;
}

ApiServer::ApiServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

ApiServer::~ApiServer() {
  Stop();
  if (state_->services.catalog != nullptr) state_->services.catalog->SetAliasListener(nullptr);
}

Result<std::unique_ptr<ApiServer>> ApiServer::Create(const ApiOptions& options,
                                                     ApiServices services) {
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgument("port must be between 0 and 65535", "port");
  }
  if (options.http_threads < 1) return InvalidArgument("http_threads must be >= 1", "http_threads");
  auto state = std::make_unique<State>(options, services);
  AddSystemRoutes(*state);
  AddTaskRoutes(*state);
  AddObjectRoutes(*state);
  AddMlRoutes(*state);
  AddServeRoutes(*state);
  AddVectorRoutes(*state);
  AddAccountRoutes(*state);
  AddCatalogRoutes(*state);
  FollowCatalogAliases(*state);

  State* s = state.get();
  httplib::Server& http = s->http;
  const auto base = static_cast<size_t>(options.http_threads);
  const auto max = static_cast<size_t>(std::max(options.max_connections, options.http_threads));
  http.new_task_queue = [base, max] { return new ConnectionPool(base, max); };
  http.set_read_timeout(options.read_timeout_s, 0);
  http.set_write_timeout(options.write_timeout_s, 0);
  http.set_keep_alive_timeout(options.keep_alive_timeout_s);
  http.set_keep_alive_max_count(1000);
  http.set_tcp_nodelay(true);
  // cpp-httplib's default adds SO_REUSEPORT, which lets a second server bind the same port
  // and silently share its traffic; keep only SO_REUSEADDR (fast restarts).
  http.set_socket_options([s](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    s->listen_socket = sock;
  });
  // Uploads are streamed and checked against their own limit; JSON bodies against theirs.
  (void)EndOfStreamFd();  // made now, while descriptors are plenty
  http.set_payload_max_length(std::max<uint64_t>(options.max_upload_bytes, options.max_body_bytes));

  auto plain = [s](const httplib::Request& req, httplib::Response& res) {
    Dispatch(*s, req, res, nullptr);
  };
  auto with_reader = [s](const httplib::Request& req, httplib::Response& res,
                         const httplib::ContentReader& reader) { Dispatch(*s, req, res, &reader); };
  // Every path, a decoded %0A or %0D in it too (`.` stops at line ends): the router answers.
  static const char* kAnyPath = "[\\s\\S]*";
  http.Get(kAnyPath, plain);
  http.Options(kAnyPath, plain);
  http.Post(kAnyPath, plain);
  http.Post(kAnyPath, with_reader);
  http.Put(kAnyPath, plain);
  http.Put(kAnyPath, with_reader);
  http.Patch(kAnyPath, plain);
  http.Patch(kAnyPath, with_reader);
  http.Delete(kAnyPath, plain);
  http.Delete(kAnyPath, with_reader);

  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    // Both framings at once: the way request smuggling starts (RFC 9112 6.3 lets a server refuse it).
    if (req.has_header("Content-Length") && req.has_header("Transfer-Encoding")) {
      RawError(res, 400, "bad_request", "a request gives Content-Length or Transfer-Encoding, not both", "");
      EndConnectionAfter(req, res, /*linger=*/true);
      return httplib::Server::HandlerResponse::Handled;
    }
    // A length cpp-httplib would read as an unsigned number ("-5" wraps to a huge one).
    if (req.has_header("Content-Length")) {
      const std::string length = req.get_header_value("Content-Length");
      if (length.empty() || length.size() > 18 ||
          !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        RawError(res, 400, "bad_request", "Content-Length must be a number of bytes", "");
        EndConnectionAfter(req, res, /*linger=*/true);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // cpp-httplib reads no body for these methods: one would be parsed as the next request.
    if ((req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS") &&
        ((req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0") ||
         req.has_header("Transfer-Encoding"))) {
      RawError(res, 400, "bad_request", "a " + req.method + " request carries no body", "");
      EndConnectionAfter(req, res, /*linger=*/true);
      return httplib::Server::HandlerResponse::Handled;
    }
    static const char* kServed[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (const char* m : kServed) {
      if (req.method == m) return httplib::Server::HandlerResponse::Unhandled;
    }
    RawError(res, 405, "method_not_allowed", "method " + req.method + " is not supported", "");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Errors cpp-httplib produces itself (malformed request line, oversize body on a route
  // that does not stream) get the same JSON error shape.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    std::string code = res.status == 413 ? "payload_too_large"
                       : res.status == 404 ? "not_found"
                                           : "bad_request";
    RawError(res, res.status, code,
             res.status == 413 ? "request body too large" : "the request could not be served",
             "");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("unhandled error on {} {}: {}", EscapeForLog(req.method), EscapeForLog(req.path),
                      EscapeForLog(what));
        RawError(res, 500, "internal", "internal error", "");
      });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(state)));
}

Result<int> ApiServer::Bind() {
  const auto& o = state_->options;
  int port = o.port;
  if (port == 0) {
    port = state_->http.bind_to_any_port(o.host);
    if (port < 0) port = 0;
  } else if (!state_->http.bind_to_port(o.host, port)) {
    port = 0;
  }
  if (port == 0) {
    return Unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                       " (is the address in use or invalid?)");
  }
  // Debian's compiled cpp-httplib listens with a backlog of 5: a burst of clients connecting
  // at once would find the accept queue full and be reset. Listening again on the bound
  // socket raises the backlog (Linux updates it in place).
  if (state_->listen_socket >= 0 && ::listen(state_->listen_socket, kListenBacklog) != 0)
    spdlog::warn("cannot raise the listen backlog to {}", kListenBacklog);
  return port;
}

Status ApiServer::Serve() {
  state_->serving = true;
  // A Stop() that came before this point finds no running listener to close.
  if (state_->stopping) {
    state_->serving = false;
    return Status::Ok();
  }
  const bool listened = state_->http.listen_after_bind();
  state_->serving = false;
  if (!listened && !state_->stopping) return Unavailable("the HTTP server stopped unexpectedly");
  return Status::Ok();
}

void ApiServer::Stop() {
  if (!state_) return;
  state_->stopping = true;
  // httplib's stop() is a no-op until the accept loop runs: when Serve() has been entered,
  // wait (briefly) for the loop so that a stop racing with startup is not lost.
  for (int i = 0; i < 2000 && state_->serving && !state_->http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  state_->http.stop();
}

nlohmann::json ApiServer::OpenApi() const { return BuildOpenApi(*state_); }

}  // namespace mlaas::api
