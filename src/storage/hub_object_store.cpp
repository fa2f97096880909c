#include "storage/hub_object_store.h"

#include <curl/curl.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <thread>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/file_util.h"
#include "common/json_file.h"
#include "common/random.h"
#include "common/text.h"
#include "storage/digest.h"

namespace mlaas::storage {

namespace fs = std::filesystem;
using nlohmann::json;

HubOptions HubOptionsFromEnv() {
  HubOptions o;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("HF_ENDPOINT").empty()) o.endpoint = env("HF_ENDPOINT");
  o.token = env("HF_TOKEN");
  if (!env("HF_HUB_CACHE").empty()) {
    o.cache_dir = env("HF_HUB_CACHE");
  } else if (!env("HF_HOME").empty()) {
    o.cache_dir = fs::path(env("HF_HOME")) / "hub";
  } else {
    o.cache_dir = fs::path(env("HOME").empty() ? "/tmp" : env("HOME")) / ".cache" / "huggingface" / "hub";
  }
  const std::string offline = ToLower(env("HF_HUB_OFFLINE"));
  o.offline = offline == "1" || offline == "true" || offline == "yes";
  return o;
}

namespace {

struct Parsed {
  std::string repo, revision, file;  // file empty for the directory
};

bool RepoOk(const std::string& repo) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?");
  return std::regex_match(repo, re) && repo.find("..") == std::string::npos;
}
bool RevisionOk(const std::string& rev) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}");
  return std::regex_match(rev, re) && rev.find("..") == std::string::npos;
}

Result<Parsed> ParseKey(std::string_view key) {
  const size_t at = key.find('@');
  if (at == std::string_view::npos) return InvalidArgument("not a hub key (repo@revision/file): " + std::string(key));
  Parsed p;
  p.repo = std::string(key.substr(0, at));
  std::string rest(key.substr(at + 1));
  // The revision is a branch, tag or commit; a file path follows its first '/'. (A revision with
  // '/' in it, e.g. refs/pr/1, is written with %2F.)
  const size_t slash = rest.find('/');
  p.revision = slash == std::string::npos ? rest : rest.substr(0, slash);
  p.file = slash == std::string::npos ? "" : rest.substr(slash + 1);
  for (size_t pos; (pos = p.revision.find("%2F")) != std::string::npos;) p.revision.replace(pos, 3, "/");
  if (!RepoOk(p.repo)) return InvalidArgument("'" + p.repo + "' is not a hub repository id (org/name)");
  if (!RevisionOk(p.revision)) return InvalidArgument("'" + p.revision + "' is not a revision");
  if (!p.file.empty() && !ValidateKey(p.file).ok()) return InvalidArgument("'" + p.file + "' is not a file of a repository");
  return p;
}

std::string RepoFolder(const std::string& repo) {
  std::string out = "models--" + repo;
  for (size_t pos; (pos = out.find('/')) != std::string::npos;) out.replace(pos, 1, "--");
  return out;
}

class FileReader final : public ObjectReader {
 public:
  FileReader(fs::path path, ObjectInfo info) : in_(path, std::ios::binary), info_(std::move(info)) {}
  const ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override {
    in_.read(buf, static_cast<std::streamsize>(n));
    if (in_.bad()) return Internal("cannot read " + info_.key);
    return static_cast<size_t>(in_.gcount());
  }
  Status Seek(uint64_t offset) override {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    return in_ ? Status::Ok() : InvalidArgument("cannot seek in " + info_.key);
  }

 private:
  std::ifstream in_;
  ObjectInfo info_;
};

}  // namespace

// Writes a download to its file and hashes it on a thread of its own, so that the network is
// never waiting for the disk or SHA-256 (both together ran at half curl's speed inline).
class FileSink {
 public:
  FileSink(const fs::path& file, bool append, Sha256* sha) : sha_(sha) {
    out_ = std::fopen(file.c_str(), append ? "ab" : "wb");
    if (out_) worker_ = std::thread([this] { Drain(); });
  }
  ~FileSink() { (void)Finish(); }
  bool ok() const { return out_ != nullptr; }
  // Copies `data` into the queue (waits while 64 MiB are queued).
  bool Push(const char* data, size_t n) {
    pending_.append(data, n);
    if (pending_.size() >= kChunk) return Flush();
    return true;
  }
  // Everything written; false when a write failed.
  bool Finish() {
    if (!out_) return false;
    if (!finished_) {
      Flush();
      {
        std::lock_guard lock(mu_);
        finished_ = true;
      }
      cv_.notify_all();
      worker_.join();
      if (std::fclose(out_) != 0) failed_ = true;
    }
    return !failed_;
  }

 private:
  static constexpr size_t kChunk = 1 << 20;
  bool Flush() {
    if (pending_.empty()) return !failed_;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return queue_.size() < 64 || failed_; });
    if (failed_) return false;
    queue_.push_back(std::exchange(pending_, {}));
    cv_.notify_all();
    return true;
  }
  void Drain() {
    for (;;) {
      std::string chunk;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || finished_; });
        if (queue_.empty()) return;
        chunk = std::move(queue_.front());
        queue_.pop_front();
      }
      cv_.notify_all();
      if (sha_) sha_->Update(chunk);
      if (std::fwrite(chunk.data(), 1, chunk.size(), out_) != chunk.size()) {
        std::lock_guard lock(mu_);
        failed_ = true;
        cv_.notify_all();
      }
    }
  }

  Sha256* sha_;
  std::FILE* out_ = nullptr;
  std::string pending_;
  std::deque<std::string> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread worker_;
  bool finished_ = false, failed_ = false;
};

struct CurlGet {
  long status = 0;
  std::string error;  // transport failure
  bool too_large = false;
};

// GETs `url` (redirects followed; the token goes to the endpoint's host only: curl does not
// forward an Authorization header to another host) from byte `have` on into `sink`.
CurlGet Download(const std::string& url, const std::string& token, uint64_t have, uint64_t max_bytes, int timeout_seconds,
                 const std::function<bool(long status)>& on_status, std::unique_ptr<FileSink>* sink) {
  CurlGet g;
  CURL* curl = curl_easy_init();
  if (!curl) {
    g.error = "cannot start a request";
    return g;
  }
  struct State {
    CURL* curl;
    CurlGet* g;
    std::unique_ptr<FileSink>* sink;
    const std::function<bool(long)>* on_status;
    uint64_t have, max, written = 0;
    bool started = false, accepted = false;
  } st{curl, &g, sink, &on_status, have, max_bytes};
  auto write = +[](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* s = static_cast<State*>(user);
    if (!s->started) {
      s->started = true;
      curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->g->status);
      s->accepted = (*s->on_status)(s->g->status);
    }
    if (!s->accepted) return 0;
    s->written += size * n;
    if (s->have + s->written > s->max) {
      s->g->too_large = true;
      return 0;
    }
    return (*s->sink)->Push(data, size * n) ? size * n : 0;
  };
  struct curl_slist* headers = nullptr;
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  if (have > 0) headers = curl_slist_append(headers, ("Range: bytes=" + std::to_string(have) + "-").c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(timeout_seconds));
  // A stalled transfer (under 1 KB/s for the timeout) is an error; a long one is not.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(timeout_seconds));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(curl);
  if (!st.started) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &g.status);
  if (rc != CURLE_OK && !g.too_large && (st.accepted || !st.started)) g.error = curl_easy_strerror(rc);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return g;
}

struct HubObjectStore::Impl {
  explicit Impl(HubOptions o) : options(std::move(o)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }
  HubOptions options;
  std::mutex mu;  // one download of a file at a time

  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>(options.endpoint);
    // Not followed by cpp-httplib, which would hand the token to another host: the file
    // downloads go through libcurl (which does not), the listing follows same-host redirects.
    c->set_follow_location(false);
    c->set_connection_timeout(options.timeout_seconds, 0);
    c->set_read_timeout(options.timeout_seconds, 0);
    if (!options.token.empty()) c->set_bearer_token_auth(options.token);
    return c;
  }

  static Status HttpError(int status, const Parsed& p, const std::string& what) {
    const std::string where = "hub repository " + p.repo + (p.file.empty() ? "" : ", file " + p.file);
    if (status == 401 || status == 403)
      return Status(StatusCode::kPermissionDenied, where + ": the hub refused access (a gated or private repository; set HF_TOKEN)");
    if (status == 404) return NotFound(where + ": not found at revision " + p.revision);
    if (status == 0) return Unavailable(where + ": cannot reach the hub (" + what + ")");
    return Unavailable(where + ": the hub answered " + std::to_string(status) + " (" + what + ")");
  }

  fs::path Folder(const Parsed& p) const { return options.cache_dir / RepoFolder(p.repo); }

  // The commit a revision names: refs/<rev> in the cache, written when the hub told us.
  std::optional<std::string> CachedCommit(const Parsed& p) const {
    if (std::regex_match(p.revision, std::regex("[0-9a-f]{40}"))) return p.revision;
    std::ifstream in(Folder(p) / "refs" / p.revision);
    std::string commit;
    if (in >> commit && std::regex_match(commit, std::regex("[0-9a-f]{40}"))) return commit;
    return std::nullopt;
  }

  // The repo's files at the revision (and its commit).
  Result<std::pair<std::string, std::vector<std::string>>> Files(const Parsed& p) {
    if (!options.offline) {
      auto c = Client();
      // The listing is kept up to 16 MiB (a repository of many thousands of files lists in far
      // less): a hub that sends more is not believed.
      constexpr size_t kMaxListingBytes = 16u << 20;
      std::string body;
      bool too_big = false;
      auto get = [&](const std::string& path) {
        body.clear();
        return c->Get(path, [](const httplib::Response&) { return true; }, [&](const char* data, size_t len) {
          if (body.size() + len > kMaxListingBytes) return !(too_big = true);
          body.append(data, len);
          return true;
        });
      };
      auto r = get("/api/models/" + UriEncode(p.repo, true) + "/revision/" + UriEncode(p.revision, true));
      for (int hops = 0; r && r->status >= 301 && r->status <= 308 && hops < 5; ++hops) {
        const std::string location = r->get_header_value("Location");  // a renamed repo: same host only
        if (location.empty() || location[0] != '/' || (location.size() > 1 && location[1] == '/')) break;
        r = get(location);
      }
      if (too_big) return Unavailable("hub repository " + p.repo + ": the hub's file list is larger than 16 MiB");
      if (!r) return HttpError(0, p, httplib::to_string(r.error()));
      if (r->status != 200) return HttpError(r->status, p, "listing its files");
      auto parsed = ParseJsonText(body, "the hub's file list");
      json j = parsed.has_value() ? std::move(parsed).value() : json();
      if (!j.is_object() || !j.contains("siblings") || !j["siblings"].is_array())
        return Unavailable("hub repository " + p.repo + ": the hub's file list is not what it should be");
      std::vector<std::string> files;
      for (const auto& s : j["siblings"]) {
        if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string() &&
            ValidateKey(s["rfilename"].get<std::string>()).ok())
          files.push_back(s["rfilename"].get<std::string>());
      }
      std::string commit = j.value("sha", std::string());
      if (std::regex_match(commit, std::regex("[0-9a-f]{40}"))) {
        std::error_code ec;
        fs::create_directories(Folder(p) / "refs", ec);
        if (commit != p.revision) (void)WriteFileAtomic(Folder(p) / "refs" / p.revision, commit);
      } else {
        commit.clear();
      }
      return std::make_pair(commit, files);
    }
    auto commit = CachedCommit(p);
    if (!commit) return NotFound("hub repository " + p.repo + " at " + p.revision + " is not in the cache (HF_HUB_OFFLINE is set)");
    std::vector<std::string> files;
    const fs::path snap = Folder(p) / "snapshots" / *commit;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_directory()) files.push_back(fs::relative(it->path(), snap).generic_string());
    }
    std::sort(files.begin(), files.end());
    return std::make_pair(*commit, files);
  }

  // The file in the cache (downloaded, resumed and checked when needed).
  Result<fs::path> Fetch(const Parsed& p) {
    std::lock_guard lock(mu);
    if (auto commit = CachedCommit(p)) {
      const fs::path cached = Folder(p) / "snapshots" / *commit / p.file;
      std::error_code ec;
      if (fs::exists(cached, ec)) return cached;
    }
    if (options.offline) return NotFound("hub repository " + p.repo + ", file " + p.file + " is not in the cache (HF_HUB_OFFLINE is set)");
    const std::string path = "/" + UriEncode(p.repo, true) + "/resolve/" + UriEncode(p.revision, true) + "/" + UriEncode(p.file, true);
    // What the file is: its ETag (the blob's name) and the commit, from the resolve answer
    // itself (a large file's is a redirect to the blob store, carrying X-Linked-Etag).
    auto meta = Client();
    auto head = meta->Head(path);
    if (!head) return HttpError(0, p, httplib::to_string(head.error()));
    if (head->status != 200 && (head->status < 300 || head->status > 308)) return HttpError(head->status, p, "asking for the file");
    std::string etag = head->get_header_value("X-Linked-Etag");
    if (etag.empty()) etag = head->get_header_value("ETag");
    std::string commit = head->get_header_value("X-Repo-Commit");
    for (std::string* s : {&etag}) {
      if (StartsWith(*s, "W/")) s->erase(0, 2);
      s->erase(std::remove(s->begin(), s->end(), '"'), s->end());
    }
    // The blob's file name: never "." or ".." (a link to the repository's own folder).
    if (etag.empty() || !std::regex_match(etag, std::regex("[A-Za-z0-9][A-Za-z0-9._-]{0,127}"))) etag = "no-etag-" + RandomHex(8);
    if (!std::regex_match(commit, std::regex("[0-9a-f]{40}"))) {
      auto cached = CachedCommit(p);
      commit = cached ? *cached : std::string(40, '0');
    }
    std::error_code ec;
    const fs::path blobs = Folder(p) / "blobs";
    fs::create_directories(blobs, ec);
    const fs::path blob = blobs / etag;
    if (!fs::exists(blob, ec)) {
      const fs::path partial = blobs / (etag + ".incomplete");
      // A 64-hex ETag is the file's SHA-256 (the hub's large files): hashed as it arrives.
      const bool check_sha = std::regex_match(etag, std::regex("[0-9a-f]{64}"));
      for (int attempt = 0;; ++attempt) {
        uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
        auto sha = std::make_unique<Sha256>();
        if (check_sha && have > 0) {  // the part an earlier attempt kept
          std::ifstream in(partial, std::ios::binary);
          std::string buf(1 << 20, '\0');
          while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
            sha->Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
        }
        auto sink = std::make_unique<FileSink>(partial, /*append=*/true, check_sha ? sha.get() : nullptr);
        if (!sink->ok()) return Internal("cannot write to the hub cache " + blobs.string());
        auto on_status = [&](long status) {
          if (status == 200 && have > 0) {  // the server ignored Range: start over
            sink.reset();
            sha = std::make_unique<Sha256>();
            sink = std::make_unique<FileSink>(partial, /*append=*/false, check_sha ? sha.get() : nullptr);
            have = 0;
          }
          return status == 200 || status == 206;
        };
        // (on_status may replace the sink: Download writes to whichever holds it then.)
        CurlGet g = Download(options.endpoint + path, options.token, have, options.max_file_bytes, options.timeout_seconds,
                             on_status, &sink);
        const bool written = sink->Finish();
        if (g.too_large) {
          fs::remove(partial, ec);
          return ResourceExhausted("hub repository " + p.repo + ", file " + p.file + " is larger than the server takes");
        }
        if (!written) return Internal("cannot write to the hub cache " + blobs.string());
        if (g.error.empty() && (g.status == 200 || g.status == 206)) {
          if (check_sha && sha->Hex() != etag) {
            fs::remove(partial, ec);
            return Unavailable("hub repository " + p.repo + ", file " + p.file + ": the download does not match its SHA-256");
          }
          break;
        }
        if (g.error.empty() && g.status != 0 && g.status != 200 && g.status != 206 && g.status != 416)
          return HttpError(static_cast<int>(g.status), p, "downloading");
        if (attempt >= 4) return HttpError(0, p, g.error.empty() ? "the download kept stopping" : g.error);
        spdlog::warn("hub {} {}: the download stopped; resuming", p.repo, p.file);
      }
      fs::rename(partial, blob, ec);
      if (ec) return Internal("cannot keep the download: " + ec.message());
    }
    const fs::path snap = Folder(p) / "snapshots" / commit / p.file;
    fs::create_directories(snap.parent_path(), ec);
    fs::remove(snap, ec);
    fs::create_symlink(fs::relative(blob, snap.parent_path()), snap, ec);
    if (ec) {  // a filesystem without symlinks: a copy
      fs::copy_file(blob, snap, fs::copy_options::overwrite_existing, ec);
      if (ec) return Internal("cannot place the download in the cache: " + ec.message());
    }
    if (commit != std::string(40, '0') && commit != p.revision) {
      fs::create_directories(Folder(p) / "refs", ec);
      (void)WriteFileAtomic(Folder(p) / "refs" / p.revision, commit);
    }
    return snap;
  }
};

HubObjectStore::HubObjectStore(HubOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HubObjectStore::~HubObjectStore() = default;

Result<std::string> HubObjectStore::KeyForPath(std::string_view path) const {
  std::string p(path);
  if (StartsWith(p, "hf://")) p.erase(0, 5);
  std::string repo = p, rev = "main";
  if (auto at = p.find('@'); at != std::string::npos) {
    repo = p.substr(0, at);
    rev = p.substr(at + 1);
  }
  if (!RepoOk(repo)) return InvalidArgument("'" + repo + "' is not a hub repository id (org/name)");
  if (!RevisionOk(rev)) return InvalidArgument("'" + rev + "' is not a revision (a branch, tag or commit)");
  for (size_t pos; (pos = rev.find('/')) != std::string::npos;) rev.replace(pos, 1, "%2F");
  return repo + "@" + rev;
}

Result<ListResult> HubObjectStore::List(const ListOptions& options) {
  MLAAS_ASSIGN_OR_RETURN(Parsed p, ParseKey(options.prefix));
  MLAAS_ASSIGN_OR_RETURN(auto files, impl_->Files(p));
  ListResult out;
  const std::string dir = options.prefix.substr(0, options.prefix.size() - p.file.size());
  for (const auto& f : files.second) {
    if (!StartsWith(f, p.file)) continue;
    out.objects.push_back({dir + f, 0, 0, ""});
  }
  return out;
}

Result<LocalizedPath> HubObjectStore::Localize(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(Parsed p, ParseKey(key));
  if (p.file.empty()) return InvalidArgument("a hub key names a file: " + key);
  MLAAS_ASSIGN_OR_RETURN(fs::path file, impl_->Fetch(p));
  return LocalizedPath(file, false);
}

Result<ObjectInfo> HubObjectStore::Stat(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(Parsed p, ParseKey(key));
  if (p.file.empty()) return NotFound(key + " is a repository, not a file");
  MLAAS_ASSIGN_OR_RETURN(fs::path file, impl_->Fetch(p));
  std::error_code ec;
  ObjectInfo info{key, fs::file_size(file, ec), 0, fs::read_symlink(file, ec).filename().string()};
  return info;
}

Result<std::unique_ptr<ObjectReader>> HubObjectStore::Open(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(ObjectInfo info, Stat(key));
  MLAAS_ASSIGN_OR_RETURN(Parsed p, ParseKey(key));
  MLAAS_ASSIGN_OR_RETURN(fs::path file, impl_->Fetch(p));
  return std::unique_ptr<ObjectReader>(std::make_unique<FileReader>(file, info));
}

Result<std::unique_ptr<ObjectWriter>> HubObjectStore::Create(const std::string& key) {
  (void)key;
  return Status(StatusCode::kPermissionDenied, "the Hugging Face Hub is read-only here: save to local or s3 storage");
}

Status HubObjectStore::Delete(const std::string& key) {
  (void)key;
  return Status(StatusCode::kPermissionDenied, "the Hugging Face Hub is read-only here");
}

}  // namespace mlaas::storage
