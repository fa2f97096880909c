// mlaas::storage — the object store every dataset, model and index lives in.
//
// Keys are S3-style: UTF-8, '/'-separated, no empty, "." or ".." segments, no leading or
// trailing '/', at most 1024 bytes. Writes are atomic: a reader sees the old object or the
// complete new one, never a partial file. Implementations: LocalObjectStore (a directory),
// S3ObjectStore, HubObjectStore (read-only). All methods are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mlaas::storage {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t last_modified_ms = 0;
  std::string etag;  // changes whenever the content may have changed
};

struct ListOptions {
  std::string prefix;              // only keys starting with this
  std::string delimiter;           // roll keys up to the first delimiter after the prefix
  size_t max_keys = 1000;          // 1..1000; objects and common prefixes both count
  std::string continuation_token;  // from a previous truncated ListResult
  std::string start_after;         // only keys strictly after this one
};

struct ListResult {
  std::vector<ObjectInfo> objects;          // in key order
  std::vector<std::string> common_prefixes; // in key order
  bool is_truncated = false;
  std::string next_continuation_token;  // set when is_truncated
};

// Sequential reader of one object. Not thread-safe.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  virtual const ObjectInfo& info() const = 0;
  // Reads up to `n` bytes into `buf`; returns 0 at the end of the object.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Moves to byte `offset` (for ranged downloads). Unimplemented where not supported.
  virtual Status Seek(uint64_t offset) {
    (void)offset;
    return Unimplemented("this reader cannot seek");
  }
};

// Streaming writer of one object; nothing is visible under the key until Commit succeeds.
// Destroying an uncommitted writer discards what was written. Not thread-safe.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Write(std::string_view data) = 0;
  virtual Result<ObjectInfo> Commit() = 0;
  virtual uint64_t bytes_written() const = 0;
};

// A local file path holding an object's bytes, for libraries that need a real file.
// For remote stores the file is a temporary copy removed when this goes away.
class LocalizedPath {
 public:
  LocalizedPath(std::filesystem::path path, bool temporary)
      : path_(std::move(path)), temporary_(temporary) {}
  LocalizedPath(LocalizedPath&& other) noexcept;
  LocalizedPath& operator=(LocalizedPath&&) = delete;
  LocalizedPath(const LocalizedPath&) = delete;
  ~LocalizedPath();
  const std::filesystem::path& path() const { return path_; }
  // True for a copy that goes away with this object; false for the store's own file.
  bool temporary() const { return temporary_; }

 private:
  std::filesystem::path path_;
  bool temporary_;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // "local" or "s3": the storage_type this store serves.
  virtual std::string_view storage_type() const = 0;

  // NotFound when no object has this key.
  virtual Result<ObjectInfo> Stat(const std::string& key) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> Open(const std::string& key) = 0;
  // InvalidArgument for a bad key; FailedPrecondition when the key is a prefix of other
  // keys ("a/b" while "a/b/c" exists) or extends an existing key ("a/b/c" while "a/b" exists).
  virtual Result<std::unique_ptr<ObjectWriter>> Create(const std::string& key) = 0;
  // NotFound when no object has this key.
  virtual Status Delete(const std::string& key) = 0;
  // Deletes every key of `keys`; keys already gone are no error. Stores with a batch call
  // (S3's DeleteObjects) override it.
  virtual Status DeleteMany(const std::vector<std::string>& keys);
  virtual Result<ListResult> List(const ListOptions& options) = 0;
  virtual Result<LocalizedPath> Localize(const std::string& key) = 0;
  // Turns a user-supplied path of this storage type into a key or key prefix (a model
  // directory). InvalidArgument naming the problem for paths that are not allowed.
  virtual Result<std::string> KeyForPath(std::string_view path) const = 0;

  // Whole-object helpers built on the streaming calls.
  Result<ObjectInfo> PutString(const std::string& key, std::string_view data);
  // ResourceExhausted when the object is larger than `max_bytes`.
  Result<std::string> GetString(const std::string& key, uint64_t max_bytes = 64ull << 20);
  // Uploads a local file, streamed.
  Status PutFile(const std::string& key, const std::filesystem::path& file);
  // Uploads the regular files of a local directory and its subdirectories under `prefix`/ (keys
  // with "/" between the parts), `last` (if present) after
  // all the others, so that a reader who waits for it finds the rest complete. Returns the keys.
  Result<std::vector<std::string>> PutDirectory(const std::string& prefix, const std::filesystem::path& dir,
                                                const std::string& last);
};

// The regular files of a local directory and its subdirectories, as names relative to it with
// "/" between the parts, sorted.
Result<std::vector<std::string>> ListLocalFiles(const std::filesystem::path& dir);

// A reader over bytes held in memory (tests, small generated inputs).
std::unique_ptr<ObjectReader> MemoryReader(std::string data, std::string key = "memory");

// InvalidArgument (naming the problem) unless `key` is a valid object key.
Status ValidateKey(std::string_view key);

// Checks an S3-style key prefix ("" or a key prefix, may end with '/').
Status ValidatePrefix(std::string_view prefix);

}  // namespace mlaas::storage
