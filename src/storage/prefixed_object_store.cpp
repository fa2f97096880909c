#include "storage/prefixed_object_store.h"

#include "common/text.h"

namespace mlaas::storage {

namespace {

// The inner store's answers name its keys: ours are those without the root.
class PrefixedReader final : public ObjectReader {
 public:
  PrefixedReader(std::unique_ptr<ObjectReader> inner, std::string key) : inner_(std::move(inner)), info_(inner_->info()) {
    info_.key = std::move(key);
  }
  const ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override { return inner_->Read(buf, n); }
  Status Seek(uint64_t offset) override { return inner_->Seek(offset); }

 private:
  std::unique_ptr<ObjectReader> inner_;
  ObjectInfo info_;
};

class PrefixedWriter final : public ObjectWriter {
 public:
  PrefixedWriter(std::unique_ptr<ObjectWriter> inner, std::string key) : inner_(std::move(inner)), key_(std::move(key)) {}
  Status Write(std::string_view data) override { return inner_->Write(data); }
  Result<ObjectInfo> Commit() override {
    MLAAS_ASSIGN_OR_RETURN(ObjectInfo info, inner_->Commit());
    info.key = key_;
    return info;
  }
  uint64_t bytes_written() const override { return inner_->bytes_written(); }

 private:
  std::unique_ptr<ObjectWriter> inner_;
  std::string key_;
};

}  // namespace

PrefixedObjectStore::PrefixedObjectStore(std::unique_ptr<ObjectStore> inner, std::string root, std::string storage_type)
    : inner_(std::move(inner)), root_(std::move(root)), storage_type_(std::move(storage_type)) {}

Result<ObjectInfo> PrefixedObjectStore::Stat(const std::string& key) {
  MLAAS_RETURN_IF_ERROR(ValidateKey(key));
  MLAAS_ASSIGN_OR_RETURN(ObjectInfo info, inner_->Stat(root_ + key));
  info.key = key;
  return info;
}

Result<std::unique_ptr<ObjectReader>> PrefixedObjectStore::Open(const std::string& key) {
  MLAAS_RETURN_IF_ERROR(ValidateKey(key));
  MLAAS_ASSIGN_OR_RETURN(auto reader, inner_->Open(root_ + key));
  return std::unique_ptr<ObjectReader>(std::make_unique<PrefixedReader>(std::move(reader), key));
}

Result<std::unique_ptr<ObjectWriter>> PrefixedObjectStore::Create(const std::string& key) {
  MLAAS_RETURN_IF_ERROR(ValidateKey(key));
  MLAAS_ASSIGN_OR_RETURN(auto writer, inner_->Create(root_ + key));
  return std::unique_ptr<ObjectWriter>(std::make_unique<PrefixedWriter>(std::move(writer), key));
}

Status PrefixedObjectStore::Delete(const std::string& key) {
  MLAAS_RETURN_IF_ERROR(ValidateKey(key));
  return inner_->Delete(root_ + key);
}

Status PrefixedObjectStore::DeleteMany(const std::vector<std::string>& keys) {
  std::vector<std::string> inner;
  for (const auto& k : keys) {
    MLAAS_RETURN_IF_ERROR(ValidateKey(k));
    inner.push_back(root_ + k);
  }
  return inner_->DeleteMany(inner);
}

Result<ListResult> PrefixedObjectStore::List(const ListOptions& options) {
  MLAAS_RETURN_IF_ERROR(ValidatePrefix(options.prefix));
  ListOptions o = options;
  o.prefix = root_ + options.prefix;
  if (!o.start_after.empty()) o.start_after = root_ + options.start_after;
  MLAAS_ASSIGN_OR_RETURN(ListResult page, inner_->List(o));
  // Only what this store can address: keys written behind its back that are not keys (a ".."
  // segment, an empty one) are not listed, so no caller turns them into a path.
  std::erase_if(page.objects, [&](ObjectInfo& obj) {
    obj.key.erase(0, root_.size());
    return !ValidateKey(obj.key).ok();
  });
  std::erase_if(page.common_prefixes, [&](std::string& p) {
    p.erase(0, root_.size());
    return !ValidatePrefix(p).ok();
  });
  return page;
}

Result<LocalizedPath> PrefixedObjectStore::Localize(const std::string& key) {
  MLAAS_RETURN_IF_ERROR(ValidateKey(key));
  return inner_->Localize(root_ + key);
}

Result<std::string> PrefixedObjectStore::KeyForPath(std::string_view path) const {
  if (path.empty()) return InvalidArgument("path must not be empty");
  if (!IsValidUtf8(path)) return InvalidArgument("path is not valid UTF-8");
  std::string key(path);
  while (StartsWith(key, "./")) key.erase(0, 2);
  while (!key.empty() && key.back() == '/') key.pop_back();
  if (key.empty() || key == ".") return InvalidArgument("path names the storage root itself");
  if (key.front() == '/') return InvalidArgument("path must be relative to the server's storage (no leading '/')");
  MLAAS_RETURN_IF_ERROR(ValidateKey(key));
  return key;
}

}  // namespace mlaas::storage
