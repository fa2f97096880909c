#include "storage/local_object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/text.h"

namespace mlaas::storage {
namespace fs = std::filesystem;

namespace {

Status ErrnoStatus(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return ResourceExhausted(msg);
  if (err == ENOENT) return NotFound(msg);
  return Internal(msg);
}

bool IsWithin(const fs::path& root, const fs::path& p) {
  auto r = root.begin(), q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    if (q == p.end() || *r != *q) return false;
  }
  return true;
}

ObjectInfo InfoFromStat(const std::string& key, const struct stat& st) {
  ObjectInfo info;
  info.key = key;
  info.size = static_cast<uint64_t>(st.st_size);
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  info.last_modified_ms = mtime_ns / 1000000;
  char etag[64];
  std::snprintf(etag, sizeof(etag), "%llx-%llx-%llx", static_cast<unsigned long long>(mtime_ns),
                static_cast<unsigned long long>(st.st_size),
                static_cast<unsigned long long>(st.st_ino));
  info.etag = etag;
  return info;
}

// Makes a rename in `dir` durable; errors name the object `key` the rename was for.
Status FsyncDir(const fs::path& dir, const std::string& key) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open the prefix of '" + key + "'", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync the prefix of '" + key + "'", err);
  return Status::Ok();
}

class LocalReader final : public ObjectReader {
 public:
  LocalReader(int fd, ObjectInfo info) : fd_(fd), info_(std::move(info)) {}
  ~LocalReader() override { ::close(fd_); }
  const ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoStatus("read " + info_.key, errno);
    }
  }
  Status Seek(uint64_t offset) override {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
      return ErrnoStatus("seek " + info_.key, errno);
    }
    return Status::Ok();
  }

 private:
  int fd_;
  ObjectInfo info_;
};

class LocalWriter final : public ObjectWriter {
 public:
  LocalWriter(std::string key, fs::path tmp_path, fs::path dest, fs::path root, int fd)
      : key_(std::move(key)),
        tmp_path_(std::move(tmp_path)),
        dest_(std::move(dest)),
        root_(std::move(root)),
        fd_(fd) {}
  ~LocalWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_path_.c_str());
  }

  Status Write(std::string_view data) override {
    if (fd_ < 0) return FailedPrecondition("writer for '" + key_ + "' is closed");
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write " + key_, errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    bytes_ += data.size();
    return Status::Ok();
  }

  Result<ObjectInfo> Commit() override {
    if (fd_ < 0) return FailedPrecondition("writer for '" + key_ + "' is closed");
    if (::fsync(fd_) != 0) return ErrnoStatus("fsync " + key_, errno);
    struct stat st{};
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("stat " + key_, errno);
    ::close(fd_);
    fd_ = -1;
    // A concurrent Delete may remove an emptied parent directory between our mkdir and the
    // rename; recreate it and retry.
    for (int attempt = 0;; ++attempt) {
      MLAAS_RETURN_IF_ERROR(MakeParents());
      if (::rename(tmp_path_.c_str(), dest_.c_str()) == 0) break;
      int err = errno;
      if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
        return FailedPrecondition("cannot write '" + key_ +
                                  "': other objects exist under this key as a prefix");
      }
      if (err != ENOENT || attempt >= 10) return ErrnoStatus("rename to " + key_, err);
    }
    committed_ = true;
    // Make the rename durable. ENOENT means a concurrent Delete already removed the object
    // and its directory, which is a valid order of events, not a failure.
    if (Status st_dir = FsyncDir(dest_.parent_path(), key_);
        !st_dir.ok() && st_dir.code() != StatusCode::kNotFound) {
      return st_dir;
    }
    return InfoFromStat(key_, st);
  }

  uint64_t bytes_written() const override { return bytes_; }

 private:
  Status MakeParents() {
    fs::path parent = dest_.parent_path();
    // Walk down from the root so a file in the way is reported precisely. A concurrent
    // Delete may prune a directory we just made; start over when that happens.
    for (int attempt = 0;; ++attempt) {
      fs::path cur = root_;
      bool raced = false;
      for (const auto& part : parent.lexically_relative(root_)) {
        if (part == ".") continue;
        cur /= part;
        struct stat st{};
        if (::lstat(cur.c_str(), &st) == 0) {
          if (!S_ISDIR(st.st_mode)) {
            return FailedPrecondition("cannot write '" + key_ + "': an object named '" +
                                      cur.lexically_relative(root_).string() +
                                      "' exists where a prefix is needed");
          }
          continue;
        }
        if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
          if (errno == ENOENT && attempt < 10) {
            raced = true;
            break;
          }
          return ErrnoStatus("cannot create the prefix '" + cur.lexically_relative(root_).generic_string() +
                                 "/' of '" + key_ + "'",
                             errno);
        }
      }
      if (!raced) return Status::Ok();
    }
  }

  std::string key_;
  fs::path tmp_path_, dest_, root_;
  int fd_;
  uint64_t bytes_ = 0;
  bool committed_ = false;
};

struct DirEntry {
  std::string name;
  std::string sort_key;  // name, plus '/' for directories: the order of their keys
  bool is_dir;
};

// Entries of `dir` in the lexicographic order of the keys they hold. A symbolic link is an
// object when it leads to a file inside `root` (a Hugging Face cache's snapshots link their
// files to its blobs), as reading its key allows; links to directories (cycles) or out of
// the root are skipped.
std::vector<DirEntry> SortedEntries(const fs::path& dir, const fs::path& root) {
  std::vector<DirEntry> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_symlink(st)) {
      std::error_code link_ec;
      const fs::path target = fs::canonical(it->path(), link_ec);
      if (link_ec || !IsWithin(root, target) || !fs::is_regular_file(target, link_ec)) continue;
      std::string name = it->path().filename().string();
      out.push_back({name, name, false});
      continue;
    }
    bool is_dir = fs::is_directory(st);
    if (!is_dir && !fs::is_regular_file(st)) continue;
    std::string name = it->path().filename().string();
    out.push_back({name, is_dir ? name + "/" : name, is_dir});
  }
  std::sort(out.begin(), out.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.sort_key < b.sort_key; });
  return out;
}

bool HasAnyFile(const fs::path& dir, const fs::path& root) {
  for (const auto& e : SortedEntries(dir, root)) {
    if (!e.is_dir || HasAnyFile(dir / e.name, root)) return true;
  }
  return false;
}

class Lister {
 public:
  Lister(const ListOptions& opts, std::string marker, fs::path root)
      : opts_(opts), marker_(std::move(marker)), root_(std::move(root)) {}

  // Returns false once the page is full (and something more exists).
  bool Walk(const fs::path& dir, const std::string& key_prefix) {
    for (const auto& e : SortedEntries(dir, root_)) {
      std::string key = key_prefix + e.name;
      if (e.is_dir) {
        std::string dkey = key + "/";
        if (!StartsWith(dkey, opts_.prefix) && !StartsWith(opts_.prefix, dkey)) continue;
        if (dkey < marker_ && !StartsWith(marker_, dkey)) continue;  // all keys <= marker
        if (auto cp = CommonPrefix(dkey); cp && StartsWith(dkey, *cp)) {
          // Everything below rolls up into one common prefix: no need to descend.
          if (*cp > marker_ && *cp != last_prefix_ && HasAnyFile(dir / e.name, root_)) {
            if (!Emit(nullptr, *cp)) return false;
          }
          continue;
        }
        if (!Walk(dir / e.name, dkey)) return false;
        continue;
      }
      if (!StartsWith(key, opts_.prefix) || key <= marker_) continue;
      if (auto cp = CommonPrefix(key)) {
        if (*cp > marker_ && *cp != last_prefix_ && !Emit(nullptr, *cp)) return false;
        continue;
      }
      struct stat st{};
      if (::stat((dir / e.name).c_str(), &st) != 0) continue;  // deleted meanwhile
      ObjectInfo info = InfoFromStat(key, st);
      if (!Emit(&info, {})) return false;
    }
    return true;
  }

  ListResult result;

 private:
  // The common prefix `key` rolls up into, if the delimiter occurs after the prefix.
  std::optional<std::string> CommonPrefix(const std::string& key) const {
    if (opts_.delimiter.empty() || !StartsWith(key, opts_.prefix)) return std::nullopt;
    size_t pos = key.find(opts_.delimiter, opts_.prefix.size());
    if (pos == std::string::npos) return std::nullopt;
    return key.substr(0, pos + opts_.delimiter.size());
  }

  bool Emit(const ObjectInfo* info, const std::string& prefix) {
    if (count_ == opts_.max_keys) {
      result.is_truncated = true;
      result.next_continuation_token = Base64UrlEncode(last_emitted_);
      return false;
    }
    ++count_;
    if (info != nullptr) {
      result.objects.push_back(*info);
      last_emitted_ = info->key;
    } else {
      result.common_prefixes.push_back(prefix);
      last_prefix_ = prefix;
      last_emitted_ = prefix;
    }
    return true;
  }

  const ListOptions& opts_;
  std::string marker_;
  fs::path root_;
  std::string last_prefix_;
  std::string last_emitted_;
  size_t count_ = 0;
};

}  // namespace

Result<std::unique_ptr<LocalObjectStore>> LocalObjectStore::Create(const fs::path& root,
                                                                   const fs::path& tmp_dir) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Internal("cannot create storage directory " + root.string() + ": " + ec.message());
  fs::create_directories(tmp_dir, ec);
  if (ec) return Internal("cannot create temp directory " + tmp_dir.string() + ": " + ec.message());
  fs::path croot = fs::canonical(root, ec);
  if (ec) return Internal("cannot resolve " + root.string() + ": " + ec.message());
  fs::path ctmp = fs::canonical(tmp_dir, ec);
  if (ec) return Internal("cannot resolve " + tmp_dir.string() + ": " + ec.message());
  if (IsWithin(croot, ctmp)) {
    return InvalidArgument("the temp directory must not be inside the storage root");
  }
  struct stat a{}, b{};
  if (::stat(croot.c_str(), &a) == 0 && ::stat(ctmp.c_str(), &b) == 0 && a.st_dev != b.st_dev) {
    return InvalidArgument("the temp directory must be on the same filesystem as the root");
  }
  return std::unique_ptr<LocalObjectStore>(new LocalObjectStore(croot, ctmp));
}

Result<std::string> LocalObjectStore::KeyForPath(std::string_view path) const {
  if (path.empty()) return InvalidArgument("path must not be empty");
  if (path.find('\0') != std::string_view::npos) return InvalidArgument("path contains a NUL byte");
  if (!IsValidUtf8(path)) return InvalidArgument("path is not valid UTF-8");
  fs::path p(path);
  std::string rel;
  if (p.is_absolute()) {
    fs::path norm = p.lexically_normal();
    if (!IsWithin(root_, norm)) {
      return InvalidArgument("absolute path '" + EscapeForLog(path, 256) +
                             "' is outside the data directory's objects (use a path relative to them)");
    }
    rel = norm.lexically_relative(root_).generic_string();
  } else {
    for (const auto& part : p) {
      if (part == "..") return InvalidArgument("path must not contain '..'");
    }
    rel = p.lexically_normal().generic_string();
  }
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  if (rel.empty() || rel == ".") return InvalidArgument("path names the storage root itself");
  MLAAS_RETURN_IF_ERROR(ValidateKey(rel));
  MLAAS_RETURN_IF_ERROR(Resolve(rel).status());
  return rel;
}

Result<fs::path> LocalObjectStore::Resolve(const std::string& key) const {
  MLAAS_RETURN_IF_ERROR(ValidateKey(key));
  // A file system's names end at 255 bytes, and a file being written takes 13 more (S3 keys
  // have no such bound: this store's own).
  constexpr size_t kMaxSegmentBytes = 240;
  for (size_t start = 0; start <= key.size();) {
    const size_t end = std::min(key.find('/', start), key.size());
    if (end - start > kMaxSegmentBytes)
      return InvalidArgument("object key has a segment of " + std::to_string(end - start) + " bytes; at most " +
                             std::to_string(kMaxSegmentBytes) + " between slashes");
    start = end + 1;
  }
  // Walk the key one segment at a time; only a symbolic link can lead elsewhere, so each
  // link found is resolved and must stay inside the root. Segments that do not exist (yet,
  // or any more: a concurrent Delete) cannot be links.
  fs::path cur = root_;
  for (const auto& part : fs::path(key)) {
    cur /= part;
    struct stat st{};
    if (::lstat(cur.c_str(), &st) != 0) break;
    if (!S_ISLNK(st.st_mode)) continue;
    std::error_code ec;
    fs::path target = fs::canonical(cur, ec);
    if (ec || !IsWithin(root_, target) || target == root_) {
      return InvalidArgument("path '" + key + "' leads outside the data directory");
    }
  }
  return root_ / key;
}

Result<ObjectInfo> LocalObjectStore::Stat(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(fs::path p, Resolve(key));
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return NotFound("object '" + key + "' does not exist");
  }
  return InfoFromStat(key, st);
}

Result<std::unique_ptr<ObjectReader>> LocalObjectStore::Open(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(fs::path p, Resolve(key));
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return NotFound("object '" + key + "' does not exist");
    return ErrnoStatus("open " + key, errno);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return NotFound("object '" + key + "' does not exist");
  }
  return std::unique_ptr<ObjectReader>(new LocalReader(fd, InfoFromStat(key, st)));
}

Result<std::unique_ptr<ObjectWriter>> LocalObjectStore::Create(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(fs::path dest, Resolve(key));
  struct stat st{};
  if (::lstat(dest.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return FailedPrecondition("cannot write '" + key +
                              "': other objects exist under this key as a prefix");
  }
  fs::path tmp = tmp_ / ("put-" + NewUuid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create a temporary file for '" + key + "'", errno);
  return std::unique_ptr<ObjectWriter>(new LocalWriter(key, tmp, dest, root_, fd));
}

Status LocalObjectStore::Delete(const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(fs::path p, Resolve(key));
  struct stat st{}, target{};
  // A file, or a link to one inside the root (listed as an object: the link goes, not its file).
  const bool file = ::lstat(p.c_str(), &st) == 0 &&
                    (S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && ::stat(p.c_str(), &target) == 0 && S_ISREG(target.st_mode)));
  if (!file) {
    return NotFound("object '" + key + "' does not exist");
  }
  if (::unlink(p.c_str()) != 0) {
    if (errno == ENOENT) return NotFound("object '" + key + "' does not exist");
    return ErrnoStatus("delete " + key, errno);
  }
  // Prefixes exist only while they hold objects, as in S3: prune emptied directories.
  for (fs::path dir = p.parent_path(); dir != root_ && IsWithin(root_, dir);
       dir = dir.parent_path()) {
    if (::rmdir(dir.c_str()) != 0) break;
  }
  return Status::Ok();
}

Result<ListResult> LocalObjectStore::List(const ListOptions& options) {
  if (options.max_keys < 1 || options.max_keys > 1000) {
    return InvalidArgument("max_keys must be between 1 and 1000", "max_keys");
  }
  if (Status st = ValidatePrefix(options.prefix); !st.ok()) return st.WithField("prefix");
  std::string marker = options.start_after;
  if (!options.continuation_token.empty()) {
    auto decoded = Base64UrlDecode(options.continuation_token);
    if (!decoded || !IsValidUtf8(*decoded)) {
      return InvalidArgument("continuation_token is not a token this server issued",
                             "continuation_token");
    }
    marker = std::max(marker, *decoded);
  }
  Lister lister(options, marker, root_);
  lister.Walk(root_, "");
  return std::move(lister.result);
}

Result<std::unique_ptr<ObjectReader>> OpenFileReader(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("file " + path.string() + " does not exist");
    return ErrnoStatus("open " + path.string(), errno);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path.string() + " is not a regular file");
  }
  return std::unique_ptr<ObjectReader>(new LocalReader(fd, InfoFromStat(path.string(), st)));
}

Result<LocalizedPath> LocalObjectStore::Localize(const std::string& key) {
  MLAAS_RETURN_IF_ERROR(Stat(key).status());
  MLAAS_ASSIGN_OR_RETURN(fs::path p, Resolve(key));
  return LocalizedPath(p, false);
}

}  // namespace mlaas::storage
