#include "predict/model_files.h"

#include <system_error>
#include <vector>

#include "common/text.h"
#include "storage/listing.h"

namespace mlaas::predict {

namespace fs = std::filesystem;

namespace {

// A scratch directory removed with its contents when the last ModelFiles copy goes.
struct ScratchDir {
  fs::path path;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string Fingerprint(const std::vector<storage::ObjectInfo>& objects) {
  std::string fp;
  for (const auto& o : objects) fp += o.key + ":" + std::to_string(o.size) + ":" + o.etag + ";";
  return fp;
}

// Localizes `objects` (keys under `prefix`): the store's own directory when it has one,
// else copies in a scratch directory.
Result<ModelFiles> Materialize(storage::ObjectStore& store, const std::string& prefix,
                               const std::vector<storage::ObjectInfo>& objects, const fs::path& scratch) {
  ModelFiles out;
  out.fingerprint = std::string(store.storage_type()) + "|" + Fingerprint(objects);
  MLAAS_ASSIGN_OR_RETURN(storage::LocalizedPath first, store.Localize(objects.front().key));
  if (!first.temporary()) {
    // The store's own files (a cache, for the hub: each one fetched now if it is not there
    // yet): the directory is the file's path minus its key below the prefix.
    for (size_t i = 1; i < objects.size(); ++i) MLAAS_RETURN_IF_ERROR(store.Localize(objects[i].key).status());
    fs::path p = first.path();
    const std::string rel = objects.front().key.substr(prefix.size());
    for (size_t i = 0, n = Split(rel, '/').size(); i < n; ++i) p = p.parent_path();
    out.path = p;
    return out;
  }
  auto dir = std::make_shared<ScratchDir>();
  const fs::path root = scratch.empty() ? fs::temp_directory_path() : scratch;
  dir->path = root / ("mlaas-model-" + NewUuid());
  std::error_code ec;
  fs::create_directories(dir->path, ec);
  if (ec) return Internal("cannot create a scratch directory: " + ec.message());
  for (const auto& o : objects) {
    // A key under the prefix is a relative path without ".." (S3 keys may hold anything):
    // nothing lands outside the scratch directory.
    const std::string rel = o.key.substr(prefix.size());
    if (Status st = storage::ValidateKey(rel); !st.ok())
      return InvalidArgument("the model directory holds a file whose name is not a path: '" + rel + "': " + st.message());
    MLAAS_ASSIGN_OR_RETURN(storage::LocalizedPath local, store.Localize(o.key));
    const fs::path dest = dir->path / rel;
    fs::create_directories(dest.parent_path(), ec);
    fs::rename(local.path(), dest, ec);  // the temporary copy becomes ours
    if (ec) {
      ec.clear();
      fs::copy_file(local.path(), dest, fs::copy_options::overwrite_existing, ec);
      if (ec) return Internal("cannot copy " + o.key + ": " + ec.message());
    }
  }
  out.path = dir->path;
  out.holder = dir;
  return out;
}

}  // namespace

Result<ModelFiles> LocalizeDirectory(const storage::ObjectRef& ref, const std::string& field, const fs::path& scratch) {
  const std::string prefix = ref.key + "/";
  MLAAS_ASSIGN_OR_RETURN(auto objects, storage::ListAllObjects(*ref.store, prefix, 100000));
  if (objects.empty()) {
    return InvalidArgument("no directory '" + ref.key + "' in " + std::string(ref.store->storage_type()) + " storage",
                           field);
  }
  return Materialize(*ref.store, prefix, objects, scratch);
}

Result<ModelFiles> LocalizeTokenizer(const storage::ObjectRef& ref, const std::string& field, const fs::path& scratch) {
  auto info = ref.store->Stat(ref.key);
  if (info.has_value()) {  // a single file
    const size_t slash = ref.key.rfind('/');
    const std::string prefix = slash == std::string::npos ? "" : ref.key.substr(0, slash + 1);
    MLAAS_ASSIGN_OR_RETURN(ModelFiles files, Materialize(*ref.store, prefix, {*info}, scratch));
    files.path /= ref.key.substr(prefix.size());
    return files;
  }
  if (info.error().code() != StatusCode::kNotFound) return info.error();
  return LocalizeDirectory(ref, field, scratch);
}

Result<std::string> FingerprintDirectory(const fs::path& path, const std::string& field) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return InvalidArgument("no such file or directory", field);
  auto one = [](const fs::path& p) {
    std::error_code e;
    auto size = fs::is_regular_file(p, e) ? fs::file_size(p, e) : 0;
    auto mtime = fs::last_write_time(p, e).time_since_epoch().count();
    return p.filename().string() + ":" + std::to_string(size) + ":" + std::to_string(mtime) + ";";
  };
  std::string fp = fs::absolute(path, ec).string() + "|";
  if (fs::is_directory(status)) {
    // Subdirectories too (a sentence-transformers module's files), but not hidden ones (.git).
    std::vector<fs::path> files;
    ec.clear();
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const bool hidden = it->path().filename().string().starts_with(".");
      if (it->is_directory()) {
        if (hidden) it.disable_recursion_pending();
      } else if (!hidden) {
        files.push_back(it->path());
      }
    }
    if (ec) return InvalidArgument("cannot list the directory: " + ec.message(), field);
    std::sort(files.begin(), files.end());
    for (const auto& f : files) fp += f.lexically_relative(path).generic_string() + ":" + one(f);
  } else {
    fp += one(path);
  }
  return fp;
}

Result<ModelFiles> LocalizeDirectory(const storage::StorageRegistry& storage, const nlohmann::json& block,
                                     const std::string& name, const fs::path& scratch) {
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(block, name));
  return LocalizeDirectory(ref, name + ".path", scratch);
}

Result<ModelFiles> LocalizeTokenizer(const storage::StorageRegistry& storage, const nlohmann::json& block,
                                     const std::string& name, const fs::path& scratch) {
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(block, name));
  return LocalizeTokenizer(ref, name + ".path", scratch);
}

}  // namespace mlaas::predict
