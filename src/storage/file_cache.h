// mlaas::storage — a local cache of remote objects' bytes, bounded in bytes (least recently
// used out), keyed by object key and ETag: a changed object is a new entry, never a stale hit.
// Callers get a hard link of the entry that they own (LocalizedPath, temporary), so an entry
// evicted while a model loads from it stays readable until they are done. Thread-safe; a file
// several threads ask for at once is fetched once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "storage/object_store.h"

namespace mlaas::storage {

struct FileCacheStats {
  uint64_t bytes = 0;      // held now
  size_t entries = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
};

class FileCache {
 public:
  // Entries live in `dir` (created; what a crash left half-written is removed). `max_bytes`
  // bounds what it keeps; an object larger than that is fetched for its caller and not kept.
  static Result<std::shared_ptr<FileCache>> Open(const std::filesystem::path& dir, uint64_t max_bytes);
  ~FileCache();

  // A private copy of object `info` (key, size, ETag from the store's Stat): the cached
  // entry's bytes, or fetched by `fetch` (which writes the whole object to the path it is
  // given) and kept.
  Result<LocalizedPath> Get(const ObjectInfo& info, const std::function<Status(const std::filesystem::path&)>& fetch);

  FileCacheStats stats() const;
  uint64_t max_bytes() const;

  struct Impl;

 private:
  explicit FileCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::storage
