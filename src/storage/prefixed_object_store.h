// mlaas::storage — one store seen through another: the keys of a prefix of `inner`, under
// another storage_type. `mlaas serve --storage s3://bucket/prefix` makes the server's own store
// ("local" in requests: the objects API, task outputs, checkpoints, the catalog) the keys under
// bucket/prefix/ of an S3 store: "models/m1" is s3://bucket/prefix/models/m1.
#pragma once

#include <memory>
#include <string>

#include "storage/object_store.h"

namespace mlaas::storage {

class PrefixedObjectStore final : public ObjectStore {
 public:
  // `root` is "" or ends with '/'.
  PrefixedObjectStore(std::unique_ptr<ObjectStore> inner, std::string root, std::string storage_type);

  std::string_view storage_type() const override { return storage_type_; }
  Result<ObjectInfo> Stat(const std::string& key) override;
  Result<std::unique_ptr<ObjectReader>> Open(const std::string& key) override;
  Result<std::unique_ptr<ObjectWriter>> Create(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Status DeleteMany(const std::vector<std::string>& keys) override;
  Result<ListResult> List(const ListOptions& options) override;
  Result<LocalizedPath> Localize(const std::string& key) override;
  // A relative key, checked as a key (no "..", no empty segments).
  Result<std::string> KeyForPath(std::string_view path) const override;

  const std::string& root() const { return root_; }

 private:
  std::unique_ptr<ObjectStore> inner_;
  std::string root_;
  std::string storage_type_;
};

}  // namespace mlaas::storage
