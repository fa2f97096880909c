// Embedding models for the vector module: a request's model (+ tokenizer) block loaded once
// and kept by its files' fingerprint, and texts embedded in length-sorted batches. Torch-free.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "predict/model_cache.h"
#include "predict/model_files.h"
#include "predict/servable_model.h"
#include "storage/storage_registry.h"
#include "vector/lru.h"

namespace mlaas::vector {

struct EmbeddingModel {
  std::shared_ptr<const predict::ServableModel> model;
  std::string fingerprint;   // of the model's files
  std::string key;           // fingerprint + tokenizer: what the cache knows it by
  std::string path, storage_type;
  std::shared_ptr<void> holder;  // keeps a remote model's scratch copy alive
};

// OK for the objectives whose models embed (no-objective, sentence-embedding, masked-lm: its
// encoder); InvalidArgument naming model.objective otherwise.
Status CheckEmbeddingObjective(const std::string& objective);

// The model block's directory, which must hold a config.json; errors name model / model.path.
Result<storage::ObjectRef> ResolveModelDirectory(const storage::StorageRegistry& storage,
                                                 const nlohmann::json& model_block);

// Embedding models, loaded through a model cache: the process's shared one (the predictor's,
// one memory budget for both), or an own cache of `capacity` models.
class EmbeddingModels {
 public:
  EmbeddingModels(const storage::StorageRegistry& storage, std::filesystem::path scratch, size_t capacity = 4,
                  std::shared_ptr<predict::ModelCache> cache = nullptr);

  // `model_block` {path, storage_type}, `tokenizer_block` (null: the model's own files). The
  // tokenizer is copied from remote storage only when the model is not loaded yet. Errors
  // name model.path / tokenizer.path.
  Result<EmbeddingModel> Get(const nlohmann::json& model_block, const nlohmann::json& tokenizer_block);

 private:
  const storage::StorageRegistry& storage_;
  std::filesystem::path scratch_;
  std::shared_ptr<predict::ModelCache> cache_;
};

// Embeds `texts` (rows x embedding_size floats, in the texts' order) in batches of similar lengths;
// `progress(done, total)` after every batch may return an error (a cancellation) to stop.
// `tokens`: how many tokens went through the model. Errors name `field`.
Result<std::vector<float>> EmbedTexts(const predict::ServableModel& model, const std::vector<std::string>& texts,
                                      const predict::OutputOptions& options, const std::string& field,
                                      const std::function<Status(size_t, size_t)>& progress = {},
                                      size_t* tokens = nullptr, size_t batch = 32);

}  // namespace mlaas::vector
