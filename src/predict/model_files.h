// Model and tokenizer files as local paths: a directory of the object store (config.json,
// model.safetensors or shards, tokenizer files) becomes a directory on this machine, either
// the store's own (local storage) or a scratch copy (remote stores), with a fingerprint of
// the files' names, sizes and etags that changes whenever any of them changes.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "storage/storage_registry.h"

namespace mlaas::predict {

struct ModelFiles {
  std::filesystem::path path;  // a directory, or a single tokenizer file
  std::string fingerprint;
  std::shared_ptr<void> holder;  // keeps a scratch copy alive; removed when the last copy goes
};

// The objects under `ref.key` + "/" as a local directory. InvalidArgument naming `field` when
// there are none.
Result<ModelFiles> LocalizeDirectory(const storage::ObjectRef& ref, const std::string& field,
                                     const std::filesystem::path& scratch);

// A tokenizer: a directory as above, or one file (tokenizer.json, vocab.txt).
Result<ModelFiles> LocalizeTokenizer(const storage::ObjectRef& ref, const std::string& field,
                                     const std::filesystem::path& scratch);

// The same for a request block ({path, storage_type}) resolved in `storage`: errors name
// `name` (e.g. "model") or `name`.path.
Result<ModelFiles> LocalizeDirectory(const storage::StorageRegistry& storage, const nlohmann::json& block,
                                     const std::string& name, const std::filesystem::path& scratch);
Result<ModelFiles> LocalizeTokenizer(const storage::StorageRegistry& storage, const nlohmann::json& block,
                                     const std::string& name, const std::filesystem::path& scratch);

// Fingerprint of a directory (or file) on this machine: names, sizes, modification times.
Result<std::string> FingerprintDirectory(const std::filesystem::path& path, const std::string& field);

}  // namespace mlaas::predict
