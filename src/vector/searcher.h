// Vector search (POST /api/v1/ml/nlp/vector/search): loads a saved vector store (cached by its
// files' fingerprint), checks that the request's model is the one that built it, embeds the
// queries the way the store's documents were embedded and returns the closest documents.
// Torch-free header.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "storage/storage_registry.h"

namespace mlaas::vector {

class VectorSearcher {
 public:
  VectorSearcher(const storage::StorageRegistry& storage, std::filesystem::path scratch);
  ~VectorSearcher();

  // {"model": {path, objective}, "tokenizer"?, "dataset": {path, format: "vector_store"},
  //  "search_input": {input_text: [...], top_k?}} -> {"results": [[{id, page_content, metadata,
  //  score}, ...] per query]} (score: squared L2 distance, lower is closer, unless the store
  //  was built for inner product). Errors name the field.
  Result<nlohmann::json> Search(const nlohmann::json& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::vector
