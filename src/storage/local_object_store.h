// LocalObjectStore — objects are files under a root directory; key "a/b.csv" is
// <root>/a/b.csv. Uploads are written to a temporary directory on the same filesystem,
// fsync'ed and renamed into place. Paths that escape the root, through ".." or through
// symbolic links, are refused.
#pragma once

#include <filesystem>
#include <memory>

#include "storage/object_store.h"

namespace mlaas::storage {

class LocalObjectStore final : public ObjectStore {
 public:
  // Creates `root` and `tmp_dir` when missing. `tmp_dir` must be on the same filesystem as
  // `root` (rename must be atomic) and must not be inside it.
  static Result<std::unique_ptr<LocalObjectStore>> Create(const std::filesystem::path& root,
                                                          const std::filesystem::path& tmp_dir);

  std::string_view storage_type() const override { return "local"; }
  Result<ObjectInfo> Stat(const std::string& key) override;
  Result<std::unique_ptr<ObjectReader>> Open(const std::string& key) override;
  Result<std::unique_ptr<ObjectWriter>> Create(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<ListResult> List(const ListOptions& options) override;
  Result<LocalizedPath> Localize(const std::string& key) override;

  // Turns a user-supplied `storage_type: "local"` path into a key (or key prefix, for a
  // model directory): relative paths are relative to the root; absolute paths must lie
  // inside it. InvalidArgument for "..", for paths outside the root and for paths whose
  // symbolic links lead outside it.
  Result<std::string> KeyForPath(std::string_view path) const override;

  // The file or directory a key names (it may not exist). InvalidArgument as KeyForPath.
  Result<std::filesystem::path> Resolve(const std::string& key) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  LocalObjectStore(std::filesystem::path root, std::filesystem::path tmp)
      : root_(std::move(root)), tmp_(std::move(tmp)) {}

  std::filesystem::path root_;  // canonical
  std::filesystem::path tmp_;   // canonical
};

// Opens a plain file (outside any store) for reading, e.g. a CLI's local input.
Result<std::unique_ptr<ObjectReader>> OpenFileReader(const std::filesystem::path& path);

}  // namespace mlaas::storage
