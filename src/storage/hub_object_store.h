// mlaas::storage — the Hugging Face Hub as a read-only object store (storage_type
// "hugging_face_hub"): a request's {"path": "<org>/<name>", "revision": "main"} names a repo,
// whose files come from {endpoint}/{repo}/resolve/{revision}/{file} (redirects followed),
// listed by the hub's model API, and land in the hub's own cache layout
// (models--org--name/blobs|snapshots|refs), so Python tools and mlaas share one cache.
// Downloads resume where an interrupted one stopped and are checked against the ETag when it
// is a SHA-256 (as the hub's for large files). Offline, only the cache answers.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "storage/object_store.h"

namespace mlaas::storage {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::string token;                                // HF_TOKEN (sent as Bearer; never logged)
  std::filesystem::path cache_dir;                  // HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  bool offline = false;                             // HF_HUB_OFFLINE=1
  int timeout_seconds = 60;
  uint64_t max_file_bytes = 64ull << 30;
};

// Options from the environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE).
HubOptions HubOptionsFromEnv();

// Keys are "<repo>@<revision>/<file>" ("google-bert/bert-base-uncased@main/config.json");
// KeyForPath("org/name[@rev]") gives the directory "<repo>@<rev>".
class HubObjectStore final : public ObjectStore {
 public:
  explicit HubObjectStore(HubOptions options);
  ~HubObjectStore() override;

  std::string_view storage_type() const override { return "hugging_face_hub"; }
  Result<ObjectInfo> Stat(const std::string& key) override;
  Result<std::unique_ptr<ObjectReader>> Open(const std::string& key) override;
  Result<std::unique_ptr<ObjectWriter>> Create(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<ListResult> List(const ListOptions& options) override;
  Result<LocalizedPath> Localize(const std::string& key) override;
  Result<std::string> KeyForPath(std::string_view path) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::storage
