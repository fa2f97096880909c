#include "storage/storage_registry.h"

namespace mlaas::storage {

void StorageRegistry::Add(std::unique_ptr<ObjectStore> store) {
  std::string type(store->storage_type());
  stores_[type] = std::move(store);
}

Result<ObjectStore*> StorageRegistry::Get(std::string_view storage_type) const {
  if (auto it = stores_.find(storage_type); it != stores_.end()) return it->second.get();
  if (storage_type == "s3") {
    return Unimplemented("storage_type 's3' is not configured on this server");
  }
  if (storage_type == "hugging_face_hub") {
    return Unimplemented("storage_type 'hugging_face_hub' is not configured on this server");
  }
  return InvalidArgument("unknown storage_type '" + std::string(storage_type) +
                         "' (use local, s3 or hugging_face_hub)");
}

Result<ObjectRef> StorageRegistry::Resolve(const nlohmann::json& block,
                                           const std::string& field) const {
  if (!block.is_object()) return InvalidArgument("must be an object", field);
  std::string type = "local";
  if (block.contains("storage_type")) {
    if (!block["storage_type"].is_string()) {
      return InvalidArgument("must be a string", field + ".storage_type");
    }
    type = block["storage_type"].get<std::string>();
  }
  auto store = Get(type);
  if (!store.has_value()) return store.error().WithField(field + ".storage_type");
  if (!block.contains("path") || !block["path"].is_string()) {
    return InvalidArgument("'" + field + ".path' is required and must be a string",
                           field + ".path");
  }
  std::string path = block["path"].get<std::string>();
  if (type == "hugging_face_hub" && block.contains("revision")) {  // a hub repo at a branch, tag or commit
    if (!block["revision"].is_string() || block["revision"].get<std::string>().empty())
      return InvalidArgument("must be a branch, tag or commit", field + ".revision");
    path += "@" + block["revision"].get<std::string>();
  }
  auto key = (*store)->KeyForPath(path);
  if (!key.has_value()) {
    return InvalidArgument("'" + field + ".path': " + key.error().message(), field + ".path");
  }
  return ObjectRef{*store, *key};
}

}  // namespace mlaas::storage
