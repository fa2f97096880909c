#include "storage/s3_object_store.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include "common/random.h"
#include "common/text.h"
#include "common/time_util.h"
#include "storage/digest.h"

namespace mlaas::storage {

namespace fs = std::filesystem;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// ~/.aws/credentials, section [profile]: aws_access_key_id / aws_secret_access_key / aws_session_token.
void ReadCredentialsFile(S3Options& o) {
  const std::string profile = Env("AWS_PROFILE").empty() ? "default" : Env("AWS_PROFILE");
  const fs::path file = Env("AWS_SHARED_CREDENTIALS_FILE").empty() ? fs::path(Env("HOME")) / ".aws" / "credentials"
                                                                    : fs::path(Env("AWS_SHARED_CREDENTIALS_FILE"));
  std::ifstream in(file);
  std::string line, section;
  while (std::getline(in, line)) {
    std::string t(Trim(line));
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      section = std::string(Trim(t.substr(1, t.size() - 2)));
      continue;
    }
    if (section != profile) continue;
    const size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    const std::string k(Trim(t.substr(0, eq))), v(Trim(t.substr(eq + 1)));
    if (k == "aws_access_key_id") o.access_key = v;
    if (k == "aws_secret_access_key") o.secret_key = v;
    if (k == "aws_session_token") o.session_token = v;
  }
}

// The text of every <tag>...</tag> in `xml` (S3's answers are flat enough for this), unescaped.
std::vector<std::string> Tags(std::string_view xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t at = xml.find(open); at != std::string_view::npos; at = xml.find(open, at)) {
    const size_t start = at + open.size();
    const size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    std::string v(xml.substr(start, end - start));
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&#13;", "\r"}, {"&#10;", "\n"}, {"&amp;", "&"}}) {
      for (size_t p; (p = v.find(from)) != std::string::npos;) v.replace(p, from.size(), to);
    }
    out.push_back(std::move(v));
    at = end + close.size();
  }
  return out;
}
std::string Tag(std::string_view xml, const std::string& tag) {
  auto all = Tags(xml, tag);
  return all.empty() ? "" : all.front();
}

struct Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;                            // transport failure
};

// One request to S3. `sink`, when set, takes the body of a 2xx answer as it arrives (an error
// answer's body stays in Response::body); `restart` runs before each attempt of a retried call.
struct Call {
  std::string method;
  std::string url;
  std::string_view payload;
  std::vector<std::string> headers;
  std::function<bool(std::string_view)> sink;
  std::function<void()> restart;
};

struct Transfer {
  CURL* curl = nullptr;
  Response* response = nullptr;
  const Call* call = nullptr;
  size_t at = 0;  // of the payload, uploaded so far
};

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->call->sink) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) return t->call->sink(std::string_view(data, size * n)) ? size * n : 0;
  }
  t->response->body.append(data, size * n);
  return size * n;
}
size_t WriteHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    static_cast<Transfer*>(user)->response->headers[ToLower(Trim(line.substr(0, colon)))] =
        std::string(Trim(line.substr(colon + 1)));
  }
  return size * n;
}
size_t ReadBody(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view data = t->call->payload;
  const size_t take = std::min(size * n, data.size() - t->at);
  std::memcpy(buf, data.data() + t->at, take);
  t->at += take;
  return take;
}

// This thread's curl handle, reset for a new request: reusing it keeps its connections alive
// (a transfer of many ranges or parts does not pay a TCP and TLS handshake each).
CURL* ThreadHandle() {
  struct Holder {
    CURL* curl = nullptr;
    ~Holder() {
      if (curl) curl_easy_cleanup(curl);
    }
  };
  thread_local Holder holder;
  if (holder.curl) curl_easy_reset(holder.curl);
  else holder.curl = curl_easy_init();
  return holder.curl;
}

std::string Unquote(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  return s;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#13;"; break;
      case '\n': out += "&#10;"; break;
      default: out += c;
    }
  }
  return out;
}

// Content-MD5 of a body: DeleteObjects requires it.
std::string ContentMd5(std::string_view body) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(body.data(), body.size(), md, &len, EVP_md5(), nullptr);
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), md, static_cast<int>(len));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

std::optional<S3Options> S3OptionsFromEnv() {
  S3Options o;
  o.endpoint = Env("MLAAS_S3_ENDPOINT");
  if (!Env("AWS_REGION").empty()) o.region = Env("AWS_REGION");
  else if (!Env("AWS_DEFAULT_REGION").empty()) o.region = Env("AWS_DEFAULT_REGION");
  o.access_key = Env("AWS_ACCESS_KEY_ID");
  o.secret_key = Env("AWS_SECRET_ACCESS_KEY");
  o.session_token = Env("AWS_SESSION_TOKEN");
  if (o.access_key.empty()) ReadCredentialsFile(o);
  const std::string ps = ToLower(Env("MLAAS_S3_PATH_STYLE"));
  o.path_style = ps.empty() ? !o.endpoint.empty() : (ps == "1" || ps == "true" || ps == "yes");
  if (o.endpoint.empty() && o.access_key.empty()) return std::nullopt;
  return o;
}

struct S3ObjectStore::Impl {
  explicit Impl(S3Options o) : options(std::move(o)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (options.endpoint.empty()) options.endpoint = "https://s3." + options.region + ".amazonaws.com";
    while (!options.endpoint.empty() && options.endpoint.back() == '/') options.endpoint.pop_back();
  }
  S3Options options;

  std::string Url(const std::string& bucket, const std::string& key, const std::string& query) const {
    std::string base;
    if (options.path_style) {
      base = options.endpoint + "/" + UriEncode(bucket, false) + "/" + UriEncode(key, true);
    } else {
      const size_t scheme = options.endpoint.find("://");
      base = options.endpoint.substr(0, scheme + 3) + bucket + "." + options.endpoint.substr(scheme + 3) + "/" + UriEncode(key, true);
    }
    return query.empty() ? base : base + "?" + query;
  }

  // One signed request.
  Response Send(const Call& call) const {
    Response r;
    CURL* curl = ThreadHandle();
    if (!curl) {
      r.error = "cannot start a request";
      return r;
    }
    Transfer t{curl, &r, &call, 0};
    curl_easy_setopt(curl, CURLOPT_URL, call.url.c_str());
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, ("aws:amz:" + options.region + ":s3").c_str());
    curl_easy_setopt(curl, CURLOPT_USERNAME, options.access_key.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, options.secret_key.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, WriteHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(options.timeout_seconds));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (!options.session_token.empty())
      headers = curl_slist_append(headers, ("x-amz-security-token: " + options.session_token).c_str());
    for (const auto& h : call.headers) headers = curl_slist_append(headers, h.c_str());
    if (call.method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (call.method == "PUT") {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadBody);
      curl_easy_setopt(curl, CURLOPT_READDATA, &t);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(call.payload.size()));
      // Not an "Expect:" header to drop curl's 100-continue: curl's SigV4 would sign that empty
      // header and S3 refuse the signature (tests/storage/s3_interop_test.cpp). A short wait
      // for servers that never answer 100 instead.
      curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 200L);
    } else if (call.method == "POST") {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.payload.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.payload.size()));
    } else if (call.method != "GET") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    const CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    if (rc != CURLE_OK) r.error = curl_easy_strerror(rc);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    return r;
  }
  Response Send(const std::string& method, const std::string& url, std::string_view payload = {},
                std::vector<std::string> headers = {}) const {
    return Send(Call{method, url, payload, std::move(headers), {}, {}});
  }

  // Sends, retrying transport failures and 5xx answers with backoff.
  Response SendRetrying(const Call& call) const {
    Response r;
    for (int attempt = 0;; ++attempt) {
      if (call.restart) call.restart();
      r = Send(call);
      if ((r.error.empty() && r.status < 500) || attempt >= options.retries) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
    }
  }
  Response SendRetrying(const std::string& method, const std::string& url, std::string_view payload = {},
                        std::vector<std::string> headers = {}) const {
    return SendRetrying(Call{method, url, payload, std::move(headers), {}, {}});
  }

  // Downloads bytes [begin, end) of an object with this ETag into `fd` at the same offsets.
  Status FetchRange(const std::string& bucket, const std::string& key, const ObjectInfo& info, uint64_t begin,
                    uint64_t end, int fd) const {
    uint64_t at = begin;
    Call call{"GET", Url(bucket, key, ""), {}, {"Range: bytes=" + std::to_string(begin) + "-" + std::to_string(end - 1),
                                                "If-Match: \"" + info.etag + "\""},
              [&](std::string_view data) {
                if (at + data.size() > end) return false;
                for (size_t done = 0; done < data.size();) {
                  const ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(at + done));
                  if (n <= 0) return false;
                  done += static_cast<size_t>(n);
                }
                at += data.size();
                return true;
              },
              [&] { at = begin; }};
    auto r = SendRetrying(call);
    if (r.status == 412) return FailedPrecondition("S3 object " + info.key + " changed while it was read");
    if (r.status != 206 && r.status != 200) return ErrorOf(r, "GET " + info.key);
    if (!r.error.empty()) return ErrorOf(r, "GET " + info.key);
    if (!SameEtag(r, info)) return FailedPrecondition("S3 object " + info.key + " changed while it was read");
    if (at != end) return Unavailable("S3 GET " + info.key + ": the answer ended early");
    return Status::Ok();
  }

  // Servers that ignore If-Match still name the ETag of what they sent.
  static bool SameEtag(Response& r, const ObjectInfo& info) {
    auto it = r.headers.find("etag");
    return it == r.headers.end() || Unquote(it->second) == info.etag;
  }

  static Status ErrorOf(const Response& r, const std::string& what) {
    if (!r.error.empty()) return Unavailable("S3 " + what + ": " + r.error);
    const std::string code = Tag(r.body, "Code"), message = Tag(r.body, "Message");
    const std::string detail = code.empty() ? "HTTP " + std::to_string(r.status) : code + (message.empty() ? "" : ": " + message);
    if (r.status == 404) return NotFound("S3 " + what + ": " + detail);
    if (r.status == 403 || r.status == 401) return Status(StatusCode::kPermissionDenied, "S3 " + what + ": " + detail);
    if (r.status == 400) return InvalidArgument("S3 " + what + ": " + detail);
    return Unavailable("S3 " + what + ": " + detail);
  }
};

namespace {

Result<std::pair<std::string, std::string>> SplitKey(const std::string& key) {
  const size_t slash = key.find('/');
  if (slash == std::string::npos || slash == 0) return InvalidArgument("an S3 key is bucket/key: '" + key + "'");
  return std::make_pair(key.substr(0, slash), key.substr(slash + 1));
}

// Reads an object in ranges of read_chunk_bytes, each checked against the ETag the object had
// when it was opened, fetching the next range while the caller consumes this one.
class S3Reader final : public ObjectReader {
 public:
  S3Reader(std::shared_ptr<S3ObjectStore::Impl> s3, std::string bucket, std::string key, ObjectInfo info)
      : s3_(std::move(s3)), bucket_(std::move(bucket)), key_(std::move(key)), info_(std::move(info)) {}
  ~S3Reader() override {
    if (next_.valid()) next_.wait();
  }
  const ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override {
    if (at_ >= buffer_.size()) {
      if (pos_ >= info_.size) return size_t{0};
      Response r = next_.valid() && next_pos_ == pos_ ? next_.get() : Fetch(pos_);
      if (next_.valid()) next_.wait();  // a prefetch from before a Seek: not ours
      if (r.status != 206 && r.status != 200) {
        if (r.status == 412) return FailedPrecondition("S3 object " + info_.key + " changed while it was read");
        return S3ObjectStore::Impl::ErrorOf(r, "GET " + info_.key);
      }
      if (!S3ObjectStore::Impl::SameEtag(r, info_)) return FailedPrecondition("S3 object " + info_.key + " changed while it was read");
      buffer_ = std::move(r.body);
      if (r.status == 200 && pos_ > 0) buffer_.erase(0, std::min<size_t>(buffer_.size(), pos_));
      at_ = 0;
      if (buffer_.empty()) return size_t{0};
      next_pos_ = pos_ + buffer_.size();
      if (next_pos_ < info_.size) next_ = std::async(std::launch::async, [this, at = next_pos_] { return Fetch(at); });
    }
    const size_t take = std::min(n, buffer_.size() - at_);
    std::memcpy(buf, buffer_.data() + at_, take);
    at_ += take;
    pos_ += take;
    return take;
  }
  Status Seek(uint64_t offset) override {
    pos_ = offset;
    buffer_.clear();
    at_ = 0;
    return Status::Ok();
  }

 private:
  Response Fetch(uint64_t from) const {
    const uint64_t end = std::min<uint64_t>(info_.size, from + s3_->options.read_chunk_bytes) - 1;
    return s3_->SendRetrying("GET", s3_->Url(bucket_, key_, ""), {},
                             {"Range: bytes=" + std::to_string(from) + "-" + std::to_string(end),
                              "If-Match: \"" + info_.etag + "\""});
  }

  std::shared_ptr<S3ObjectStore::Impl> s3_;
  std::string bucket_, key_;
  ObjectInfo info_;
  std::string buffer_;
  size_t at_ = 0;
  uint64_t pos_ = 0;
  std::future<Response> next_;
  uint64_t next_pos_ = 0;
};

// Reads the cache's private copy of an object (removed when the reader goes).
class CachedReader final : public ObjectReader {
 public:
  CachedReader(LocalizedPath local, ObjectInfo info)
      : local_(std::move(local)), info_(std::move(info)), in_(local_.path(), std::ios::binary) {}
  const ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override {
    in_.read(buf, static_cast<std::streamsize>(n));
    if (in_.bad()) return Internal("cannot read the cached copy of " + info_.key);
    return static_cast<size_t>(in_.gcount());
  }
  Status Seek(uint64_t offset) override {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    return in_ ? Status::Ok() : Internal("cannot seek in the cached copy of " + info_.key);
  }

 private:
  LocalizedPath local_;
  ObjectInfo info_;
  std::ifstream in_;
};

// Writes one PUT below part_bytes, else a multipart upload whose parts go up concurrently
// (at most `concurrency` at a time, each retried with backoff); the upload is aborted unless
// it completes, so a partial object is never visible.
class S3Writer final : public ObjectWriter {
 public:
  S3Writer(std::shared_ptr<S3ObjectStore::Impl> s3, std::string bucket, std::string key, std::string full_key)
      : s3_(std::move(s3)), bucket_(std::move(bucket)), key_(std::move(key)), full_key_(std::move(full_key)) {}
  ~S3Writer() override {
    for (auto& f : inflight_) f.wait();
    if (!upload_id_.empty() && !committed_) {  // no partial object is ever visible
      auto r = s3_->Send("DELETE", s3_->Url(bucket_, key_, "uploadId=" + UriEncode(upload_id_, false)));
      if (!r.error.empty() || r.status >= 300) spdlog::warn("S3: cannot abort the multipart upload of {}", full_key_);
    }
  }
  Status Write(std::string_view data) override {
    MLAAS_RETURN_IF_ERROR(failed_);
    written_ += data.size();
    while (!data.empty()) {
      const size_t take = std::min<size_t>(data.size(), s3_->options.part_bytes - buffer_.size());
      buffer_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (buffer_.size() == s3_->options.part_bytes) {
        if (Status st = StartPart(std::exchange(buffer_, {})); !st.ok()) return failed_ = st;
      }
    }
    return Status::Ok();
  }
  Result<ObjectInfo> Commit() override {
    MLAAS_RETURN_IF_ERROR(failed_);
    if (upload_id_.empty()) {  // small: one PUT
      auto r = s3_->SendRetrying("PUT", s3_->Url(bucket_, key_, ""), buffer_);
      if (r.status != 200) return S3ObjectStore::Impl::ErrorOf(r, "PUT " + full_key_);
      committed_ = true;
      return ObjectInfo{full_key_, written_, NowMs(), Unquote(r.headers["etag"])};
    }
    if (!buffer_.empty()) MLAAS_RETURN_IF_ERROR(failed_ = StartPart(std::exchange(buffer_, {})));
    while (!inflight_.empty()) MLAAS_RETURN_IF_ERROR(failed_ = Collect());
    std::string xml = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags_.size(); ++i)
      xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" + etags_[i] + "\"</ETag></Part>";
    xml += "</CompleteMultipartUpload>";
    auto r = s3_->SendRetrying("POST", s3_->Url(bucket_, key_, "uploadId=" + UriEncode(upload_id_, false)), xml);
    // S3 may answer 200 with an <Error> body.
    if (r.status != 200 || r.body.find("<Error>") != std::string::npos)
      return S3ObjectStore::Impl::ErrorOf(r, "completing the upload of " + full_key_);
    committed_ = true;
    return ObjectInfo{full_key_, written_, NowMs(), Unquote(Tag(r.body, "ETag"))};
  }
  uint64_t bytes_written() const override { return written_; }

 private:
  Status StartPart(std::string part) {
    if (upload_id_.empty()) {
      auto r = s3_->SendRetrying("POST", s3_->Url(bucket_, key_, "uploads="), "");
      upload_id_ = Tag(r.body, "UploadId");
      if (r.status != 200 || upload_id_.empty()) return S3ObjectStore::Impl::ErrorOf(r, "starting the upload of " + full_key_);
    }
    while (inflight_.size() >= static_cast<size_t>(std::max(1, s3_->options.concurrency))) MLAAS_RETURN_IF_ERROR(Collect());
    const int number = ++parts_;
    const std::string url =
        s3_->Url(bucket_, key_, "partNumber=" + std::to_string(number) + "&uploadId=" + UriEncode(upload_id_, false));
    inflight_.push_back(std::async(std::launch::async, [s3 = s3_, url, number, part = std::move(part),
                                                        what = full_key_]() -> Result<std::string> {
      auto r = s3->SendRetrying("PUT", url, part);
      if (r.status != 200) return S3ObjectStore::Impl::ErrorOf(r, "uploading part " + std::to_string(number) + " of " + what);
      return Unquote(r.headers["etag"]);
    }));
    return Status::Ok();
  }
  // The oldest part in flight: parts finish in any order but are collected in number order.
  Status Collect() {
    Result<std::string> etag = inflight_.front().get();
    inflight_.pop_front();
    if (!etag.has_value()) return etag.error();
    etags_.push_back(std::move(etag).value());
    return Status::Ok();
  }

  std::shared_ptr<S3ObjectStore::Impl> s3_;
  std::string bucket_, key_, full_key_;
  std::string buffer_;
  std::string upload_id_;
  int parts_ = 0;
  std::deque<std::future<Result<std::string>>> inflight_;
  std::vector<std::string> etags_;
  Status failed_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace

S3ObjectStore::S3ObjectStore(S3Options options) : impl_(std::make_shared<Impl>(std::move(options))) {}
S3ObjectStore::~S3ObjectStore() = default;

Result<std::string> S3ObjectStore::KeyForPath(std::string_view path) const {
  std::string p(path);
  if (StartsWith(p, "s3://")) p.erase(0, 5);
  while (!p.empty() && p.back() == '/') p.pop_back();
  static const std::regex bucket("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
  const size_t slash = p.find('/');
  const std::string b = slash == std::string::npos ? p : p.substr(0, slash);
  if (!std::regex_match(b, bucket)) return InvalidArgument("'" + b + "' is not an S3 bucket name (s3://bucket/key)");
  if (slash != std::string::npos) MLAAS_RETURN_IF_ERROR(ValidateKey(p.substr(slash + 1)));
  return p;
}

Result<ObjectInfo> S3ObjectStore::Stat(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(auto bk, SplitKey(key));
  auto r = impl_->SendRetrying("HEAD", impl_->Url(bk.first, bk.second, ""));
  if (r.status != 200) return Impl::ErrorOf(r, "HEAD " + key);
  ObjectInfo info;
  info.key = key;
  info.size = std::strtoull(r.headers["content-length"].c_str(), nullptr, 10);
  info.etag = Unquote(r.headers["etag"]);
  return info;
}

Result<std::unique_ptr<ObjectReader>> S3ObjectStore::Open(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(ObjectInfo info, Stat(key));
  MLAAS_ASSIGN_OR_RETURN(auto bk, SplitKey(key));
  // Objects that fit the cache several times over (datasets read every epoch or every run)
  // are read from its copy; larger ones stream.
  if (const auto& cache = impl_->options.cache; cache && info.size <= std::min<uint64_t>(cache->max_bytes() / 4, 1ull << 30)) {
    MLAAS_ASSIGN_OR_RETURN(LocalizedPath local, cache->Get(info, [&](const fs::path& file) { return Download(info, file); }));
    return std::unique_ptr<ObjectReader>(std::make_unique<CachedReader>(std::move(local), info));
  }
  return std::unique_ptr<ObjectReader>(std::make_unique<S3Reader>(impl_, bk.first, bk.second, info));
}

Result<std::unique_ptr<ObjectWriter>> S3ObjectStore::Create(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(auto bk, SplitKey(key));
  MLAAS_RETURN_IF_ERROR(ValidateKey(bk.second));
  return std::unique_ptr<ObjectWriter>(std::make_unique<S3Writer>(impl_, bk.first, bk.second, key));
}

Status S3ObjectStore::Delete(const std::string& key) {
  MLAAS_RETURN_IF_ERROR(Stat(key).status());  // S3 deletes what is not there without a word
  MLAAS_ASSIGN_OR_RETURN(auto bk, SplitKey(key));
  auto r = impl_->SendRetrying("DELETE", impl_->Url(bk.first, bk.second, ""));
  if (r.status != 204 && r.status != 200) return Impl::ErrorOf(r, "DELETE " + key);
  return Status::Ok();
}

Status S3ObjectStore::DeleteMany(const std::vector<std::string>& keys) {
  // DeleteObjects, a thousand keys a request, per bucket.
  std::map<std::string, std::vector<std::string>> by_bucket;
  for (const auto& k : keys) {
    MLAAS_ASSIGN_OR_RETURN(auto bk, SplitKey(k));
    by_bucket[bk.first].push_back(bk.second);
  }
  for (const auto& [bucket, names] : by_bucket) {
    for (size_t from = 0; from < names.size(); from += 1000) {
      std::string xml = "<Delete><Quiet>true</Quiet>";
      for (size_t i = from; i < std::min(names.size(), from + 1000); ++i) xml += "<Object><Key>" + XmlEscape(names[i]) + "</Key></Object>";
      xml += "</Delete>";
      auto r = impl_->SendRetrying("POST", impl_->Url(bucket, "", "delete="), xml, {"Content-MD5: " + ContentMd5(xml)});
      if (r.status != 200) return Impl::ErrorOf(r, "deleting objects in " + bucket);
      // A quiet DeleteObjects answers only the keys it could not delete.
      for (const auto& e : Tags(r.body, "Error")) {
        if (Tag(e, "Code") == "NoSuchKey") continue;
        return Unavailable("S3 cannot delete " + bucket + "/" + Tag(e, "Key") + ": " + Tag(e, "Code") + ": " + Tag(e, "Message"));
      }
    }
  }
  return Status::Ok();
}

Result<ListResult> S3ObjectStore::List(const ListOptions& options) {
  const size_t slash = options.prefix.find('/');
  const std::string bucket = slash == std::string::npos ? options.prefix : options.prefix.substr(0, slash);
  const std::string prefix = slash == std::string::npos ? "" : options.prefix.substr(slash + 1);
  if (bucket.empty()) return InvalidArgument("an S3 listing names its bucket: bucket/prefix", "prefix");
  // In name order: curl's SigV4 (7.88) signs the query as written, and S3 signs it sorted.
  std::map<std::string, std::string> params = {{"list-type", "2"},
                                               {"max-keys", std::to_string(std::clamp<size_t>(options.max_keys, 1, 1000))}};
  if (!prefix.empty()) params["prefix"] = prefix;
  if (!options.delimiter.empty()) params["delimiter"] = options.delimiter;
  if (!options.continuation_token.empty()) params["continuation-token"] = options.continuation_token;
  if (!options.start_after.empty()) {
    const size_t s = options.start_after.find('/');
    if (s != std::string::npos) params["start-after"] = options.start_after.substr(s + 1);
  }
  std::string query;
  for (const auto& [name, value] : params) query += (query.empty() ? "" : "&") + name + "=" + UriEncode(value, false);
  auto r = impl_->SendRetrying("GET", impl_->Url(bucket, "", query));
  if (r.status != 200) return Impl::ErrorOf(r, "listing " + bucket);
  ListResult out;
  for (const auto& contents : Tags(r.body, "Contents")) {
    ObjectInfo o;
    o.key = bucket + "/" + Tag(contents, "Key");
    o.size = std::strtoull(Tag(contents, "Size").c_str(), nullptr, 10);
    o.etag = Tag(contents, "ETag");
    o.etag.erase(std::remove(o.etag.begin(), o.etag.end(), '"'), o.etag.end());
    out.objects.push_back(std::move(o));
  }
  for (const auto& cp : Tags(r.body, "CommonPrefixes")) out.common_prefixes.push_back(bucket + "/" + Tag(cp, "Prefix"));
  out.is_truncated = Tag(r.body, "IsTruncated") == "true";
  out.next_continuation_token = Tag(r.body, "NextContinuationToken");
  return out;
}

Status S3ObjectStore::Download(const ObjectInfo& info, const fs::path& file) {
  MLAAS_ASSIGN_OR_RETURN(auto bk, SplitKey(info.key));
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Internal("cannot create " + file.string() + ": " + std::strerror(errno));
  // Ranges of read_chunk_bytes, fetched by up to `concurrency` threads into their offsets.
  const uint64_t chunk = std::max<uint64_t>(1, impl_->options.read_chunk_bytes);
  const uint64_t ranges = (info.size + chunk - 1) / chunk;
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  Status failed;
  auto work = [&] {
    for (uint64_t i; (i = next++) < ranges;) {
      {
        std::lock_guard lock(mu);
        if (!failed.ok()) return;
      }
      Status st = impl_->FetchRange(bk.first, bk.second, info, i * chunk, std::min(info.size, (i + 1) * chunk), fd);
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (failed.ok()) failed = st;
        return;
      }
    }
  };
  const uint64_t threads = std::min<uint64_t>(ranges, static_cast<uint64_t>(std::max(1, impl_->options.concurrency)));
  std::vector<std::thread> pool;
  for (uint64_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (::close(fd) != 0 && failed.ok()) failed = Internal("cannot write " + file.string() + ": " + std::strerror(errno));
  if (!failed.ok()) {
    std::error_code ec;
    fs::remove(file, ec);
  }
  return failed;
}

Result<LocalizedPath> S3ObjectStore::Localize(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(ObjectInfo info, Stat(key));
  if (impl_->options.cache) return impl_->options.cache->Get(info, [&](const fs::path& file) { return Download(info, file); });
  const fs::path dir = impl_->options.scratch.empty() ? fs::temp_directory_path() : impl_->options.scratch;
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path file = dir / ("mlaas-s3-" + RandomHex(8) + "-" + fs::path(key).filename().string());
  MLAAS_RETURN_IF_ERROR(Download(info, file));
  return LocalizedPath(file, true);
}

}  // namespace mlaas::storage
