// The object stores of this server, by storage_type, and the resolution of the
// `{path, storage_type}` blocks that requests use to name datasets, models and indexes.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "storage/object_store.h"

namespace mlaas::storage {

// Every storage_type a request may name (SPEC.md): not all are available in every setup.
inline constexpr const char* kStorageTypes[] = {"local", "s3", "hugging_face_hub"};

struct ObjectRef {
  ObjectStore* store = nullptr;
  std::string key;  // an object key, or a key prefix for a directory (model, index)
};

class StorageRegistry {
 public:
  // Registers a store under its storage_type(), replacing any earlier one.
  void Add(std::unique_ptr<ObjectStore> store);

  // InvalidArgument for a storage_type no one knows; Unimplemented for a known one this
  // server has no store for (e.g. "s3" when no bucket is configured).
  Result<ObjectStore*> Get(std::string_view storage_type) const;

  // Resolves a request block {"path": ..., "storage_type": ... (default "local")}; errors
  // name "<field>.path" or "<field>.storage_type".
  Result<ObjectRef> Resolve(const nlohmann::json& block, const std::string& field) const;

 private:
  std::map<std::string, std::unique_ptr<ObjectStore>, std::less<>> stores_;
};

}  // namespace mlaas::storage
