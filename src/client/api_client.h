// mlaas::client — a typed client of the mlaas REST API, used by the CLI and the end-to-end
// tests. Errors come back as Status: the server's error code, message and field, or
// Unavailable when the server cannot be reached.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace httplib {
class Client;
}

namespace mlaas::client {

// Called with (bytes done, bytes total; 0 when unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct Response {
  int status = 0;
  nlohmann::json body;  // parsed JSON, or null for other content
  std::string text;     // the raw body
  std::map<std::string, std::string> headers;
};

class ApiClient {
 public:
  // `base_url` like "http://127.0.0.1:8080". InvalidArgument for a malformed URL.
  // `token`: an API token sent as "Authorization: Bearer" on every request (empty: none).
  static Result<std::unique_ptr<ApiClient>> Create(const std::string& base_url,
                                                   int timeout_seconds = 60, const std::string& token = "");
  ~ApiClient();

  // Raw call: any HTTP status comes back as a Response; only transport failures are errors.
  Result<Response> Call(const std::string& method, const std::string& path,
                        const std::string& body = "",
                        const std::string& content_type = "application/json");

  // JSON calls: a non-2xx answer becomes the Status the server described.
  Result<nlohmann::json> Get(const std::string& path);
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& body);
  Result<nlohmann::json> Delete(const std::string& path);
  // Any method with a JSON body (PUT, PATCH, ...).
  Result<nlohmann::json> Send(const std::string& method, const std::string& path, const nlohmann::json& body);
  // A POST that changes nothing (prediction, search), sent again while the server answers
  // 429 (busy) or 503 (still loading), after its Retry-After (at most 30 s), for up to
  // `budget`; `on_wait(reason, seconds)` is told before each wait.
  Result<nlohmann::json> PostRetrying(const std::string& path, const nlohmann::json& body,
                                      const std::function<void(const Status&, int)>& on_wait = nullptr,
                                      std::chrono::seconds budget = std::chrono::seconds(900));

  Result<nlohmann::json> UploadFile(const std::string& key, const std::filesystem::path& file,
                                    const ProgressFn& progress = nullptr);
  // Writes the object to `dest` atomically (temp file + rename), or to stdout when dest is "-".
  Result<uint64_t> DownloadFile(const std::string& key, const std::filesystem::path& dest,
                                const ProgressFn& progress = nullptr);
  // The same for any GET route that answers bytes (`path` already URL-encoded).
  // `verify` (when set) checks the downloaded file before it replaces `dest` (a digest).
  using VerifyFn = std::function<Status(const std::filesystem::path&)>;
  Result<uint64_t> Download(const std::string& path, const std::filesystem::path& dest,
                            const ProgressFn& progress = nullptr, const VerifyFn& verify = nullptr);
  Status DeleteObject(const std::string& key);

  // The event name FollowTask gives a keep-alive comment (data null).
  static constexpr const char* kKeepAlive = "keep-alive";
  // Follows /api/v1/tasks/{id}/events; `on_event(name, data)` returns false to stop early.
  // `within_ms` > 0: the stream ends that many milliseconds from now (a caller's deadline),
  // however the server keeps it alive.
  Status FollowTask(const std::string& id,
                    const std::function<bool(const std::string&, const nlohmann::json&)>& on_event,
                    int64_t within_ms = 0);

  const std::string& base_url() const { return base_url_; }

 private:
  ApiClient(std::string base_url, std::unique_ptr<httplib::Client> http);
  Status Transport(const std::string& what, int error_code) const;

  std::string base_url_;
  std::unique_ptr<httplib::Client> http_;
};

// Percent-encodes a query value or a path segment ("/" kept when keep_slash).
std::string UrlEncode(const std::string& s, bool keep_slash = false);
// "?a=1&b=x" from the non-empty entries of `params`.
std::string QueryString(const std::map<std::string, std::string>& params);
// The Status an HTTP error response describes.
Status StatusFromResponse(const Response& response);

// `dir` / `rel` for a file a server listed (an object under a prefix, a catalog version's file),
// or an error when `rel` would land anywhere else: empty, absolute, a backslash, a control
// character, or a "", "." or ".." segment. A client never writes where a server tells it to.
Result<std::filesystem::path> LocalPathUnder(const std::filesystem::path& dir, const std::string& rel);

}  // namespace mlaas::client
