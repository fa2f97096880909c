// mlaas::storage — S3 (and S3-compatible: MinIO, Ceph, AWS) as an object store, over libcurl
// with its built-in AWS Signature V4. Keys are "<bucket>/<key>"; request paths are
// "s3://bucket/key" (or "bucket/key"). Reads stream by ranged GETs; writes above one part go
// up as a multipart upload (each part retried with backoff), aborted when not committed, so a
// partial object is never visible. Credentials are never logged nor returned.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "storage/file_cache.h"
#include "storage/object_store.h"

namespace mlaas::storage {

struct S3Options {
  std::string endpoint;  // MLAAS_S3_ENDPOINT ("http://127.0.0.1:9000"); empty: https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";  // AWS_REGION / AWS_DEFAULT_REGION
  std::string access_key;            // AWS_ACCESS_KEY_ID (or ~/.aws/credentials, AWS_PROFILE)
  std::string secret_key;            // AWS_SECRET_ACCESS_KEY
  std::string session_token;         // AWS_SESSION_TOKEN
  bool path_style = true;            // MLAAS_S3_PATH_STYLE (default on with an endpoint, off for AWS)
  uint64_t part_bytes = 8u << 20;    // multipart part size (and the single-PUT threshold)
  uint64_t read_chunk_bytes = 8u << 20;  // ranged GETs
  int concurrency = 8;                   // parts up, or ranges down, in flight per transfer
  int retries = 3;
  int timeout_seconds = 60;
  std::filesystem::path scratch;     // Localize's temporary copies
  // Localize's copies come from this cache (bounded, by key and ETag) when set.
  std::shared_ptr<FileCache> cache{};
};

// From the environment; nullopt when S3 is not configured (no credentials and no endpoint).
std::optional<S3Options> S3OptionsFromEnv();

class S3ObjectStore final : public ObjectStore {
 public:
  explicit S3ObjectStore(S3Options options);
  ~S3ObjectStore() override;

  std::string_view storage_type() const override { return "s3"; }
  Result<ObjectInfo> Stat(const std::string& key) override;
  Result<std::unique_ptr<ObjectReader>> Open(const std::string& key) override;
  Result<std::unique_ptr<ObjectWriter>> Create(const std::string& key) override;
  Status Delete(const std::string& key) override;
  // DeleteObjects: a thousand keys a request.
  Status DeleteMany(const std::vector<std::string>& keys) override;
  Result<ListResult> List(const ListOptions& options) override;
  Result<LocalizedPath> Localize(const std::string& key) override;
  Result<std::string> KeyForPath(std::string_view path) const override;
  // Downloads the object `info` (from Stat; its ETag checked on every range) into `file`,
  // ranges fetched concurrently.
  Status Download(const ObjectInfo& info, const std::filesystem::path& file);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mlaas::storage
