// Search over documents (POST /api/v1/ml/nlp/search and /api/v1/ml/nlp/vector/search) and
// updates of saved vector stores (/api/v1/vector-stores/{path}/documents). A saved store is
// loaded once and kept by its files' fingerprint; the request's model must be the one that
// built it. A plain dataset (up to InlineSearchLimits) is embedded on its first search and kept
// by (dataset etag, model, tokenizer, columns, pooling). Dense (FAISS), lexical (BM25) or hybrid (reciprocal-rank or
// linear fusion) ranking.
// Torch-free header.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "predict/model_cache.h"
#include "storage/storage_registry.h"

namespace mlaas::vector {

// Search over a plain dataset embeds it (then keeps it): only small datasets are searched so;
// larger ones are refused (400 naming dataset.path) with a pointer to the index endpoint, which
// embeds them as a task into a vector store. That embedding, loading a saved store and building
// its lexical index run in the background, never on the request's thread: the request waits
// up to max_wait, then is answered Unavailable while the work goes on (a retry finds it done).
struct InlineSearchLimits {
  size_t max_documents = 10000;      // documents with text
  uint64_t max_bytes = 16ull << 20;  // the dataset object's size
  size_t max_concurrent = 2;         // background jobs at once (4x as many requests wait); beyond: 429
  // A saved store's files (index and documents, what loading it holds in memory) at most;
  // beyond: 400 naming the store. 0: no limit.
  uint64_t max_store_bytes = 0;
  std::chrono::milliseconds max_wait{60000};
};

class VectorSearcher {
 public:
  // `models`: the process's model cache, shared with prediction (none: an own one of 4 models).
  VectorSearcher(const storage::StorageRegistry& storage, std::filesystem::path scratch,
                 InlineSearchLimits limits = {}, std::shared_ptr<predict::ModelCache> models = nullptr);
  ~VectorSearcher();

  // {"model": {path, objective}, "tokenizer"?, "dataset": {path, format: "vector_store"} or a
  //  CSV/TSV/JSONL dataset {path, loader_kwargs: {page_content_column, id_column?,
  //  metadata_columns?}}, "search_input": {input_text: [...], top_k? (4), filter? {field:
  //  value}, mode? "dense"|"lexical"|"hybrid", fusion? "rrf"|"linear", dense_weight? (0.5),
  //  candidates? (100), pooling?, normalize?}} -> {"results": [[{id, page_content, metadata, score}, ...] per
  //  query], "metric"}. Dense scores: squared L2 distance (lower is closer) unless the store
  //  was built for inner product. Errors name the field.
  Result<nlohmann::json> Search(const nlohmann::json& request);

  // The store's manifest. `store` is {path, storage_type?}.
  Result<nlohmann::json> Describe(const nlohmann::json& store);
  // {"documents": [{id?, page_content, metadata?}, ...]}: embedded with the store's model and
  // added; the store is saved back (manifest last). -> {added, ids, count}.
  Result<nlohmann::json> AddDocuments(const nlohmann::json& store, const nlohmann::json& body);
  // {"ids": [...]}: removed; the store is saved back. -> {removed, count}.
  Result<nlohmann::json> RemoveDocuments(const nlohmann::json& store, const nlohmann::json& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::vector
