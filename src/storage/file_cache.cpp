#include "storage/file_cache.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <system_error>

#include "common/random.h"
#include "storage/digest.h"

namespace mlaas::storage {

namespace fs = std::filesystem;

struct FileCache::Impl {
  ~Impl() {
    std::error_code ec;
    fs::remove_all(session, ec);
    if (lock_fd >= 0) ::close(lock_fd);
  }
  fs::path dir;
  // This process's own folder for its callers' links and its fetches in progress: several
  // processes (a server and its workers) share one cache directory, and each sweeps only the
  // folders of processes that are gone (whose lock it can take).
  fs::path session;
  int lock_fd = -1;
  uint64_t max_bytes = 0;
  mutable std::mutex mu;
  std::condition_variable fetched;
  // Entries by name, least recently used first.
  std::list<std::string> lru;
  struct Entry {
    uint64_t size = 0;
    std::list<std::string>::iterator at;
  };
  std::map<std::string, Entry> entries;
  std::set<std::string> fetching;
  FileCacheStats stats;

  // SHA-256 of key and ETag: a file name, and a new one whenever the object changes.
  static std::string NameOf(const ObjectInfo& info) {
    Sha256 h;
    h.Update(info.key);
    h.Update(std::string_view("\n", 1));
    h.Update(info.etag);
    return h.Hex();
  }

  // Under `mu`: removes least recently used entries until `incoming` more bytes fit.
  void MakeRoom(uint64_t incoming) {
    while (!lru.empty() && stats.bytes + incoming > max_bytes) {
      const std::string victim = lru.front();
      lru.pop_front();
      std::error_code ec;
      fs::remove(dir / victim, ec);
      stats.bytes -= entries[victim].size;
      entries.erase(victim);
      ++stats.evictions;
    }
    stats.entries = entries.size();
  }

  // A hard link of entry `name` the caller owns; a copy where links are not possible.
  Result<LocalizedPath> LinkOf(const std::string& name) const {
    const fs::path link = session / (RandomHex(8) + "-" + name);
    std::error_code ec;
    fs::create_hard_link(dir / name, link, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(dir / name, link, ec);
      if (ec) return Internal("cannot copy a cached file: " + ec.message());
    }
    return LocalizedPath(link, true);
  }
};

FileCache::FileCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FileCache::~FileCache() = default;

Result<std::shared_ptr<FileCache>> FileCache::Open(const fs::path& dir, uint64_t max_bytes) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->max_bytes = max_bytes;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create the storage cache " + dir.string() + ": " + ec.message());
  // Sessions of processes that are gone (their lock is free): their links and partial fetches.
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory() || e.path().filename().string().rfind("session-", 0) != 0) continue;
    const int fd = ::open((e.path() / ".lock").c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue;  // alive
    }
    if (fd >= 0) ::close(fd);
    std::error_code gone;
    fs::remove_all(e.path(), gone);
  }
  impl->session = dir / ("session-" + RandomHex(8));
  fs::create_directories(impl->session, ec);
  if (ec) return Internal("cannot create the storage cache " + dir.string() + ": " + ec.message());
  impl->lock_fd = ::open((impl->session / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (impl->lock_fd < 0 || ::flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0)
    return Internal("cannot lock the storage cache session in " + dir.string());
  // What an earlier run kept, oldest use first.
  std::vector<std::pair<fs::file_time_type, std::pair<std::string, uint64_t>>> found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    found.push_back({e.last_write_time(), {e.path().filename().string(), e.file_size()}});
  }
  std::sort(found.begin(), found.end());
  for (const auto& [when, entry] : found) {
    impl->lru.push_back(entry.first);
    impl->entries[entry.first] = {entry.second, std::prev(impl->lru.end())};
    impl->stats.bytes += entry.second;
  }
  impl->MakeRoom(0);
  return std::shared_ptr<FileCache>(new FileCache(std::move(impl)));
}

Result<LocalizedPath> FileCache::Get(const ObjectInfo& info, const std::function<Status(const fs::path&)>& fetch) {
  Impl& m = *impl_;
  const std::string name = Impl::NameOf(info);
  std::unique_lock lock(m.mu);
  // One fetch per entry: others wait for it.
  m.fetched.wait(lock, [&] { return !m.fetching.count(name); });
  if (auto it = m.entries.find(name); it != m.entries.end()) {
    std::error_code ec;
    fs::last_write_time(m.dir / name, fs::file_time_type::clock::now(), ec);  // the order survives a restart
    if (!ec) {
      if (auto linked = m.LinkOf(name); linked.has_value()) {
        m.lru.splice(m.lru.end(), m.lru, it->second.at);
        ++m.stats.hits;
        return linked;
      }
    }
    // Gone (another process sharing the directory evicted it): a miss.
    m.stats.bytes -= it->second.size;
    m.lru.erase(it->second.at);
    m.entries.erase(it);
  }
  ++m.stats.misses;
  const fs::path partial = m.session / ("partial-" + RandomHex(8) + "-" + name);
  if (info.size > m.max_bytes) {  // too large to keep: the caller's copy only
    lock.unlock();
    const fs::path link = m.session / (RandomHex(8) + "-" + name);
    MLAAS_RETURN_IF_ERROR(fetch(link));
    return LocalizedPath(link, true);
  }
  m.fetching.insert(name);
  lock.unlock();
  Status st = fetch(partial);
  std::error_code ec;
  uint64_t size = 0;
  if (st.ok()) {
    size = fs::file_size(partial, ec);
    if (!ec) fs::rename(partial, m.dir / name, ec);
    if (ec) st = Internal("cannot keep a cached file: " + ec.message());
  }
  lock.lock();
  m.fetching.erase(name);
  m.fetched.notify_all();
  if (!st.ok()) {
    fs::remove(partial, ec);
    return st;
  }
  if (auto again = m.entries.find(name); again != m.entries.end()) {  // (kept by an earlier entry of the same name)
    m.stats.bytes -= again->second.size;
    m.lru.erase(again->second.at);
    m.entries.erase(again);
  }
  m.MakeRoom(size);
  m.lru.push_back(name);
  m.entries[name] = {size, std::prev(m.lru.end())};
  m.stats.bytes += size;
  m.stats.entries = m.entries.size();
  return m.LinkOf(name);
}

uint64_t FileCache::max_bytes() const { return impl_->max_bytes; }

FileCacheStats FileCache::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

}  // namespace mlaas::storage
