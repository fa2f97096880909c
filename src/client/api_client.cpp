#include "client/api_client.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "common/json_file.h"
#include "common/text.h"

namespace mlaas::client {

using nlohmann::json;

namespace {

StatusCode CodeFromHttp(int status) {
  switch (status) {
    case 400: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409: return StatusCode::kFailedPrecondition;
    case 413:
    case 429: return StatusCode::kResourceExhausted;
    case 499: return StatusCode::kCancelled;
    case 501: return StatusCode::kUnimplemented;
    case 503: return StatusCode::kUnavailable;
    case 504: return StatusCode::kDeadlineExceeded;
    default: return status >= 500 ? StatusCode::kInternal : StatusCode::kInvalidArgument;
  }
}

// The most of an answer kept (a JSON answer, an error body): a server that sends more is not
// believed, whatever it sends.
constexpr size_t kMaxAnswerBytes = 64u << 20;
constexpr size_t kMaxErrorBodyBytes = 64u << 10;

// Appends a chunk of an error answer's body to `body`, keeping at most kMaxErrorBodyBytes.
void AppendErrorBody(std::string& body, const char* data, size_t len) {
  body.append(data, std::min(len, kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, body.size())));
}

// An event of a task's stream (its JSON) is far smaller; a line that never ends is an error.
constexpr size_t kMaxEventBytes = 16u << 20;

// The answer's JSON body: parsed within the size and nesting limits of every JSON the platform
// did not write itself (a body nested 100,000 deep once overflowed the stack when copied), null
// when it is no JSON.
json ParseAnswer(const std::string& text) {
  auto parsed = ParseJsonText(text, "the server's answer", {}, JsonLimits{.max_bytes = kMaxAnswerBytes, .max_depth = 128});
  return parsed.has_value() ? std::move(parsed).value() : json();
}

Response FromHttplib(const httplib::Response& r, std::string body) {
  Response out;
  out.status = r.status;
  out.text = std::move(body);
  for (const auto& [k, v] : r.headers) out.headers[ToLower(k)] = v;
  if (out.headers["content-type"].find("application/json") != std::string::npos) out.body = ParseAnswer(out.text);
  return out;
}

// A successful answer's JSON; an error when a 2xx carries something else (a --server that is
// no mlaas server, a proxy's page): no command may take it for an empty result.
Result<json> JsonOf(Response r) {
  if (r.status != 204 && r.body.is_null() && !r.text.empty())
    return Status(StatusCode::kInternal, "the server answered HTTP " + std::to_string(r.status) + " with " +
                                             (r.headers["content-type"].empty() ? "no content type" : "'" + r.headers["content-type"] + "'") +
                                             " that is no JSON: is --server an mlaas server?");
  return std::move(r.body);
}

// The Status of an error answer whose body was streamed into `body`.
Status ErrorFromBody(int status, const std::string& body) {
  Response resp;
  resp.status = status;
  resp.text = body;
  resp.body = ParseAnswer(body);
  return StatusFromResponse(resp);
}

}  // namespace

std::string UrlEncode(const std::string& s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string QueryString(const std::map<std::string, std::string>& params) {
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    q += q.empty() ? '?' : '&';
    q += UrlEncode(k);
    q += '=';
    q += UrlEncode(v);
  }
  return q;
}

Status StatusFromResponse(const Response& r) {
  if (r.status >= 200 && r.status < 300) return Status::Ok();
  std::string message = "HTTP " + std::to_string(r.status);
  std::string field;
  if (r.body.is_object() && r.body.contains("error") && r.body["error"].is_object()) {
    const json& e = r.body["error"];
    if (e.contains("message") && e["message"].is_string()) message = e["message"].get<std::string>();
    if (e.contains("field") && e["field"].is_string()) field = e["field"].get<std::string>();
  } else if (r.body.is_object() && r.body.contains("error") && r.body["error"].is_string()) {
    message = r.body["error"].get<std::string>();  // the Open Inference Protocol's errors
  } else if (!r.text.empty() && r.text.size() < 500) {
    message += ": " + r.text;
  }
  return Status(CodeFromHttp(r.status), message, field);
}

Result<std::filesystem::path> LocalPathUnder(const std::filesystem::path& dir, const std::string& rel) {
  const auto refuse = [&](const std::string& why) {
    return InvalidArgument("the server listed a file '" + EscapeForLog(rel, 200) + "' that would be written outside " +
                           dir.string() + " (" + why + "): nothing written there");
  };
  if (rel.empty()) return refuse("an empty name");
  if (rel.front() == '/') return refuse("an absolute path");
  if (rel.find('\\') != std::string::npos) return refuse("a backslash");
  for (size_t i = 0; i < rel.size(); ++i)
    if (ControlCharBytes(rel, i) > 0) return refuse("a control character");
  for (const auto& part : Split(rel, '/'))
    if (part.empty() || part == "." || part == "..") return refuse("an empty, '.' or '..' segment");
  return dir / rel;
}

Result<std::unique_ptr<ApiClient>> ApiClient::Create(const std::string& base_url,
                                                     int timeout_seconds, const std::string& token) {
  if (!StartsWith(base_url, "http://") && !StartsWith(base_url, "https://")) {
    return InvalidArgument("server URL must start with http:// or https:// (got '" + base_url +
                               "')",
                           "server");
  }
  std::string url = base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto http = std::make_unique<httplib::Client>(url);
  if (!http->is_valid()) return InvalidArgument("invalid server URL '" + base_url + "'", "server");
  http->set_connection_timeout(10, 0);
  http->set_read_timeout(timeout_seconds, 0);
  http->set_write_timeout(timeout_seconds, 0);
  http->set_keep_alive(true);
  http->set_url_encode(false);  // paths are encoded by UrlEncode, exactly once
  http->set_tcp_nodelay(true);
  if (!token.empty()) http->set_bearer_token_auth(token);
  return std::unique_ptr<ApiClient>(new ApiClient(url, std::move(http)));
}

ApiClient::ApiClient(std::string base_url, std::unique_ptr<httplib::Client> http)
    : base_url_(std::move(base_url)), http_(std::move(http)) {}

ApiClient::~ApiClient() = default;

Status ApiClient::Transport(const std::string& what, int error_code) const {
  std::string reason = httplib::to_string(static_cast<httplib::Error>(error_code));
  return Unavailable("cannot reach the mlaas server at " + base_url_ + " (" + what + ": " +
                     reason + "); is `mlaas serve` running?");
}

Result<Response> ApiClient::Call(const std::string& method, const std::string& path,
                                 const std::string& body, const std::string& content_type) {
  static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  if (!kMethods.count(method)) return InvalidArgument("unsupported method " + method);
  httplib::Request req;
  req.method = method;
  req.path = path;
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") req.set_header("Content-Type", content_type);
  req.body = body;
  // The answer is kept up to kMaxAnswerBytes: a server sending more is cut off, not believed.
  std::string text;
  bool too_big = false;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (text.size() + len > kMaxAnswerBytes) return !(too_big = true);
    text.append(data, len);
    return true;
  };
  httplib::Result r = http_->send(req);
  if (too_big)
    return Status(StatusCode::kResourceExhausted, method + " " + path + ": the server's answer is larger than " +
                                                      FormatBytes(kMaxAnswerBytes) + ", more than any answer of the API");
  if (!r) return Transport(method + " " + path, static_cast<int>(r.error()));
  return FromHttplib(r.value(), std::move(text));
}

Result<json> ApiClient::Get(const std::string& path) {
  MLAAS_ASSIGN_OR_RETURN(Response r, Call("GET", path));
  MLAAS_RETURN_IF_ERROR(StatusFromResponse(r));
  return JsonOf(std::move(r));
}

Result<json> ApiClient::Post(const std::string& path, const json& body) {
  MLAAS_ASSIGN_OR_RETURN(Response r, Call("POST", path, body.dump()));
  MLAAS_RETURN_IF_ERROR(StatusFromResponse(r));
  return JsonOf(std::move(r));
}

Result<json> ApiClient::PostRetrying(const std::string& path, const json& body,
                                     const std::function<void(const Status&, int)>& on_wait,
                                     std::chrono::seconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  const std::string text = body.dump();
  for (;;) {
    MLAAS_ASSIGN_OR_RETURN(Response r, Call("POST", path, text));
    Status st = StatusFromResponse(r);
    if (st.ok()) return JsonOf(std::move(r));
    if (r.status != 429 && r.status != 503) return st;
    int seconds = 1;
    if (auto h = r.headers.find("retry-after"); h != r.headers.end()) {
      char* end = nullptr;
      const long v = std::strtol(h->second.c_str(), &end, 10);
      if (end != h->second.c_str() && v >= 0) seconds = static_cast<int>(std::clamp(v, 1L, 30L));
    }
    if (std::chrono::steady_clock::now() + std::chrono::seconds(seconds) > deadline) return st;
    if (on_wait) on_wait(st, seconds);
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
  }
}

Result<json> ApiClient::Send(const std::string& method, const std::string& path, const json& body) {
  MLAAS_ASSIGN_OR_RETURN(Response r, Call(method, path, body.dump()));
  MLAAS_RETURN_IF_ERROR(StatusFromResponse(r));
  return JsonOf(std::move(r));
}

Result<json> ApiClient::Delete(const std::string& path) {
  MLAAS_ASSIGN_OR_RETURN(Response r, Call("DELETE", path));
  MLAAS_RETURN_IF_ERROR(StatusFromResponse(r));
  return JsonOf(std::move(r));
}

Result<json> ApiClient::UploadFile(const std::string& key, const std::filesystem::path& file,
                                   const ProgressFn& progress) {
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(file, ec);
  if (ec) return NotFound("cannot read " + file.string() + ": " + ec.message());
  auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
  if (!*in) return NotFound("cannot open " + file.string());
  auto r = http_->Put(
      "/api/v1/objects/" + UrlEncode(key, true), static_cast<size_t>(size),
      [in, size, &progress](size_t offset, size_t length, httplib::DataSink& sink) {
        std::vector<char> buf(std::min<size_t>(length, 1 << 20));
        in->seekg(static_cast<std::streamoff>(offset));
        in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
        auto got = static_cast<size_t>(in->gcount());
        if (got == 0) return false;
        if (progress) progress(offset + got, size);
        return sink.write(buf.data(), got);
      },
      "application/octet-stream");
  if (!r) return Transport("PUT " + key, static_cast<int>(r.error()));
  Response resp = FromHttplib(r.value(), r.value().body.substr(0, kMaxAnswerBytes));
  MLAAS_RETURN_IF_ERROR(StatusFromResponse(resp));
  return JsonOf(std::move(resp));
}

Result<uint64_t> ApiClient::DownloadFile(const std::string& key, const std::filesystem::path& dest,
                                         const ProgressFn& progress) {
  return Download("/api/v1/objects/" + UrlEncode(key, true), dest, progress);
}

Result<uint64_t> ApiClient::Download(const std::string& path, const std::filesystem::path& dest,
                                     const ProgressFn& progress, const VerifyFn& verify) {
  const bool to_stdout = dest == "-";
  std::filesystem::path tmp = dest;
  tmp += ".part-" + NewUuid().substr(0, 8);
  std::ofstream out;
  if (!to_stdout) {
    out.open(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return InvalidArgument("cannot write " + dest.string());
  }
  uint64_t total = 0, done = 0;
  std::string error_body;
  int status = 0;
  auto r = http_->Get(
      path, httplib::Headers{},
      [&](const httplib::Response& resp) {
        status = resp.status;
        if (resp.has_header("Content-Length")) {
          total = resp.get_header_value<uint64_t>("Content-Length");
        }
        return true;
      },
      [&](const char* data, size_t len) {
        if (status != 200) {
          AppendErrorBody(error_body, data, len);
          return true;
        }
        if (to_stdout) {
          std::cout.write(data, static_cast<std::streamsize>(len));
        } else {
          out.write(data, static_cast<std::streamsize>(len));
        }
        done += len;
        if (progress) progress(done, total);
        return to_stdout ? static_cast<bool>(std::cout) : static_cast<bool>(out);
      });
  if (!to_stdout) out.close();
  auto cleanup = [&] {
    std::error_code ec;
    if (!to_stdout) std::filesystem::remove(tmp, ec);
  };
  if (!r) {
    cleanup();
    return Transport("GET " + path, static_cast<int>(r.error()));
  }
  if (status != 200) {
    cleanup();
    return ErrorFromBody(status, error_body);
  }
  if (!to_stdout) {
    if (!out) {
      cleanup();
      return Internal("cannot write " + dest.string());
    }
    // Checked before it replaces anything: a file that fails (its digest) leaves dest as it was.
    if (verify) {
      if (Status st = verify(tmp); !st.ok()) {
        cleanup();
        return st;
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, dest, ec);
    if (ec) {
      cleanup();
      return Internal("cannot move the download to " + dest.string() + ": " + ec.message());
    }
  }
  return done;
}

Status ApiClient::DeleteObject(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(Response r, Call("DELETE", "/api/v1/objects/" + UrlEncode(key, true)));
  return StatusFromResponse(r);
}

Status ApiClient::FollowTask(
    const std::string& id, const std::function<bool(const std::string&, const json&)>& on_event,
    int64_t within_ms) {
  // A caller's deadline ends the stream when it comes, however the server keeps it alive (its
  // keep-alives every 15 s would restart any read timeout): a watchdog stops the connection.
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool finished = false;
  std::thread watchdog;
  if (within_ms > 0) {
    watchdog = std::thread([&, until = std::chrono::steady_clock::now() + std::chrono::milliseconds(within_ms)] {
      std::unique_lock lock(watch_mu);
      if (!watch_cv.wait_until(lock, until, [&] { return finished; })) http_->stop();
    });
  }
  struct Join {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& finished;
    std::thread& t;
    ~Join() {
      {
        std::lock_guard lock(mu);
        finished = true;
      }
      cv.notify_all();
      if (t.joinable()) t.join();
    }
  } join{watch_mu, watch_cv, finished, watchdog};
  std::string buffer, error_body;
  size_t searched = 0;  // the buffer's bytes already known to hold no event's end
  int status = 0;
  bool stopped = false, too_long = false;
  auto r = http_->Get(
      "/api/v1/tasks/" + UrlEncode(id) + "/events", httplib::Headers{},
      [&](const httplib::Response& resp) {
        status = resp.status;
        return true;
      },
      [&](const char* data, size_t len) {
        if (status != 200) {
          AppendErrorBody(error_body, data, len);
          return true;
        }
        buffer.append(data, len);
        size_t end;
        while ((end = buffer.find("\n\n", searched)) != std::string::npos) {
          std::string block = buffer.substr(0, end);
          buffer.erase(0, end + 2);
          searched = 0;
          std::string event = "message", payload;
          for (const auto& line : Split(block, '\n')) {
            if (StartsWith(line, "event: ")) event = line.substr(7);
            else if (StartsWith(line, "data: ")) payload += line.substr(6);
          }
          // A keep-alive comment is an event without data: the caller still hears of it (its
          // deadline runs while the task sits in the queue).
          json data_json = payload.empty() ? json() : ParseAnswer(payload);
          if (!on_event(payload.empty() ? std::string(kKeepAlive) : event, data_json)) {
            stopped = true;
            return false;
          }
        }
        searched = buffer.size() > 0 ? buffer.size() - 1 : 0;
        if (buffer.size() > kMaxEventBytes) return !(too_long = true);
        return true;
      });
  if (stopped) return Status::Ok();
  if (too_long)
    return Status(StatusCode::kInternal, "the events of task " + id + " hold an event larger than " +
                                             FormatBytes(kMaxEventBytes) + ": not an mlaas server's stream");
  if (!r) return Transport("GET events of " + id, static_cast<int>(r.error()));
  if (status != 200) {
    return ErrorFromBody(status, error_body);
  }
  return Status::Ok();
}

}  // namespace mlaas::client
