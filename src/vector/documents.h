// Documents from a dataset (CSV, TSV or JSONL in any storage): the text column is the page
// content, an optional id column names each document (else its row number), and the other
// columns — or only those listed — are kept as metadata. Shared by indexing and by semantic
// search over a plain dataset.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "storage/storage_registry.h"
#include "vector/vector_store.h"

namespace mlaas::vector {

struct DocumentColumns {
  std::string text = "page_content";
  std::string id;                     // empty: the row number
  std::vector<std::string> metadata;  // with all_metadata false: only these
  bool all_metadata = true;
  // From dataset.loader_kwargs {page_content_column, id_column, metadata_columns}.
  static Result<DocumentColumns> FromLoaderKwargs(const nlohmann::json& kwargs);
};

struct DocumentSource {
  std::string key, storage_type, etag;  // the dataset object and its etag when read
  uint64_t size = 0;
};

// Checks that the dataset `dataset_block` exists and has the named columns. Errors name
// dataset.path / dataset.loader_kwargs.<column field>.
Result<DocumentSource> CheckDocuments(const storage::StorageRegistry& storage, const nlohmann::json& dataset_block,
                                      const DocumentColumns& columns);

// The dataset's object and version (etag) from its metadata, without reading it. Errors name
// dataset / dataset.path.
Result<DocumentSource> StatDocuments(const storage::StorageRegistry& storage, const nlohmann::json& dataset_block);

// A store's error on adding documents, pointed at the id column when an id repeats.
Status NameIdColumn(const Status& st);

// Reads every row with text. `progress(fraction of bytes read, documents so far)` runs every
// few thousand rows; an error it returns (a cancellation) stops the read. InvalidArgument
// naming dataset.path when no row has text.
Result<std::vector<Document>> ReadDocuments(const storage::StorageRegistry& storage,
                                            const nlohmann::json& dataset_block, const DocumentColumns& columns,
                                            DocumentSource* source = nullptr,
                                            const std::function<Status(double, size_t)>& progress = {});

}  // namespace mlaas::vector
