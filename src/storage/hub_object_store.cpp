#include "storage/hub_object_store.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/file_util.h"
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

struct HubObjectStore::Impl {
  explicit Impl(HubOptions o) : options(std::move(o)) {}
  HubOptions options;
  std::mutex mu;  // one download of a file at a time

  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>(options.endpoint);
    c->set_follow_location(true);
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
      auto r = c->Get("/api/models/" + UriEncode(p.repo, true) + "/revision/" + UriEncode(p.revision, true));
      if (!r) return HttpError(0, p, httplib::to_string(r.error()));
      if (r->status != 200) return HttpError(r->status, p, "listing its files");
      json j = json::parse(r->body, nullptr, false);
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
    auto c = Client();
    const std::string path = "/" + UriEncode(p.repo, true) + "/resolve/" + UriEncode(p.revision, true) + "/" + UriEncode(p.file, true);
    // What the file is: its ETag (the blob's name) and the commit, from the resolve answer
    // itself (a large file's is a redirect to the blob store, carrying X-Linked-Etag).
    auto meta = Client();
    meta->set_follow_location(false);
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
    if (etag.empty() || !std::regex_match(etag, std::regex("[A-Za-z0-9._-]{1,128}"))) etag = "no-etag-" + RandomHex(8);
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
      for (int attempt = 0;; ++attempt) {
        const uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
        httplib::Headers headers;
        if (have > 0) headers.emplace("Range", "bytes=" + std::to_string(have) + "-");
        std::ofstream out(partial, std::ios::binary | std::ios::app);
        int status = 0;
        uint64_t written = 0;
        bool too_large = false;
        auto r = c->Get(path, headers,
                        [&](const httplib::Response& resp) {
                          status = resp.status;
                          if (status == 200 && have > 0) {  // the server ignored Range: start over
                            out.close();
                            out.open(partial, std::ios::binary | std::ios::trunc);
                          }
                          return status == 200 || status == 206;
                        },
                        [&](const char* data, size_t len) {
                          written += len;
                          if (have + written > options.max_file_bytes) {
                            too_large = true;
                            return false;
                          }
                          out.write(data, static_cast<std::streamsize>(len));
                          return static_cast<bool>(out);
                        });
        out.close();
        if (too_large) {
          fs::remove(partial, ec);
          return ResourceExhausted("hub repository " + p.repo + ", file " + p.file + " is larger than the server takes");
        }
        if (r && (status == 200 || status == 206)) break;
        if (status != 0 && status != 200 && status != 206 && status != 416) return HttpError(status, p, "downloading");
        if (attempt >= 4) return HttpError(0, p, r ? "the download kept stopping" : httplib::to_string(r.error()));
        spdlog::warn("hub {} {}: the download stopped; resuming", p.repo, p.file);
      }
      // A 64-hex ETag is the file's SHA-256 (the hub's large files): check it.
      auto sha = std::regex_match(etag, std::regex("[0-9a-f]{64}")) ? Sha256OfFile(partial) : Result<std::string>(etag);
      if (!sha.has_value() || *sha != etag) {
        fs::remove(partial, ec);
        return Unavailable("hub repository " + p.repo + ", file " + p.file + ": the download does not match its SHA-256");
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
