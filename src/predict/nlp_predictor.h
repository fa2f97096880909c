// mlaas::predict — NLP prediction (POST /api/v1/ml/nlp/predict, `mlaas predict`): resolves
// the model (and tokenizer) from storage, keeps loaded models in a cache keyed by their files'
// etags, tokenizes with truncation to the model's maximum length, runs batches padded to
// their longest input under torch::InferenceMode, and turns the outputs into
// text-classification labels, fill-mask candidates or sentence embeddings.
// No libtorch in this header: the API and CLI include it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "storage/storage_registry.h"

namespace mlaas::predict {

class ModelCache;
struct CacheStats {
  uint64_t hits = 0, misses = 0, evictions = 0;
  size_t models = 0;
  uint64_t bytes = 0;  // weights of the cached models
};

struct PredictorOptions {
  std::string device = "cpu";      // default device: cpu, cuda, cuda:N
  // Weights and activations: float32, or bfloat16 (about 1.6x faster on CPUs with
  // AVX512-BF16, results to ~2 significant digits).
  std::string dtype = "float32";
  int threads = 0;                 // libtorch intra-op threads (0: one per core)
  size_t cache_capacity = 4;       // loaded models kept in memory
  uint64_t cache_max_bytes = 0;    // and their weights' bytes at most (0: no byte budget)
  size_t max_batch = 32;           // sequences per forward pass
  std::filesystem::path scratch;   // where models from remote stores are copied (default: temp)
  // A cache shared with other users of models in the process (vector search): one budget for
  // all. None: the predictor's own, of cache_capacity models and cache_max_bytes.
  std::shared_ptr<ModelCache> cache;
};

class NlpPredictor {
 public:
  NlpPredictor(const storage::StorageRegistry& storage, PredictorOptions options);
  ~NlpPredictor();
  NlpPredictor(const NlpPredictor&) = delete;
  NlpPredictor& operator=(const NlpPredictor&) = delete;

  // A request of SPEC.md: {"tokenizer"?: {path, storage_type}, "model": {path, storage_type,
  // objective} | {preset | config, objective, labels?, seed?}, "predict_input": {input_text,
  // top_k?, pooling?, normalize?, device?}}. Returns {"predictions": [one per input_text],
  // "model": {...}, "timing": {...}}. InvalidArgument naming the field for bad input,
  // NotFound-as-InvalidArgument for missing files, Unimplemented for objectives the engine
  // does not serve yet.
  Result<nlohmann::json> Predict(const nlohmann::json& request);

  // Predict for a causal LM, each input's generated text handed to `sink` piece by piece as it
  // is produced (sink returns false to stop: the client left); returns the whole response as
  // Predict does. Other models: InvalidArgument naming predict_input.stream.
  using StreamSink = std::function<bool(size_t input, const std::string& piece)>;
  Result<nlohmann::json> PredictStream(const nlohmann::json& request, const StreamSink& sink);
  // What PredictStream would refuse before generating (the request, the model, the prompts'
  // lengths), so that a route can answer it with an error status before it starts a stream.
  Status CheckStream(const nlohmann::json& request);

  // The same for a model directory on this machine (the CLI). `tokenizer` defaults to the
  // model directory.
  Result<nlohmann::json> PredictLocal(const std::filesystem::path& model_dir,
                                      const std::optional<std::filesystem::path>& tokenizer,
                                      const std::string& objective, const nlohmann::json& predict_input);

  using CacheStats = predict::CacheStats;
  CacheStats cache_stats() const;  // of its cache (shared: everyone's)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::predict
