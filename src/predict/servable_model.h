// A model ready to serve: a tokenizer truncating to the model's maximum length and the weights
// on their device, for the three objectives the engine predicts (text-classification,
// masked-lm fill-mask, no-objective embeddings). Encoding and the forward pass are separate
// steps, so that a dynamic batcher (serve/) can tokenize on the request's thread and run the
// inputs of many requests in one forward pass. Thread-safe: Run may be called concurrently.
// No libtorch in this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "predict/output_options.h"
#include "tokenizers/encoding.h"

namespace mlaas::predict {

// OK for an objective the engine predicts; InvalidArgument (none given) or Unimplemented
// naming model.objective otherwise.
Status CheckServedObjective(const std::string& objective);

struct LoadSpec {
  std::optional<std::filesystem::path> model_dir;  // Hugging Face layout; none: from scratch
  nlohmann::json model_block = nlohmann::json::object();  // {preset | config, labels?} (scratch)
  std::optional<std::filesystem::path> tokenizer;  // default: model_dir
  std::string objective;                           // text-classification, masked-lm, no-objective, ...
  std::string device = "cpu";
  std::string dtype = "float32";
  std::string source;  // where it came from, for responses
  // Called with the model's float32 weight bytes, computed from its config before anything is
  // allocated: a failed Status refuses the load (budgets, see docs/security.md). None: no check.
  std::function<Status(uint64_t bytes)> admit;
};

// OK when `bytes` of weights fit `limit` (0: no limit); else InvalidArgument naming "model" and
// `what` the limit is.
Status CheckModelBytes(uint64_t bytes, uint64_t limit, const std::string& what);

// Bounds of every model load in this process, whoever asks (prediction, deployments, vector
// search and indexing): models loading at once (each holds its weights twice for a while; a
// load beyond waits up to `wait`, then fails with ResourceExhausted), and one model's float32
// weight bytes from its config (InvalidArgument naming `model` beyond; 0: none). Defaults 2,
// 60 s, none.
void SetLoadLimits(int max_concurrent_loads, std::chrono::milliseconds wait, uint64_t max_model_bytes);

struct ModelInfo {
  std::string source, architecture, objective, device, dtype;
  bool from_scratch = false;
  std::vector<std::string> labels;  // classification: by class id
  int64_t hidden_size = 0;
  int64_t embedding_size = 0;    // embeddings: floats per text (hidden_size, or the model's projection)
  int64_t vocab_size = 0;        // token ids are below this
  int64_t max_tokens = 0;        // inputs are truncated to this many tokens
  uint64_t parameter_bytes = 0;  // weights in memory
  std::string mask_token;        // fill-mask
  // How the model's embeddings compare (config_sentence_transformers.json similarity_fn_name):
  // "cosine" unless the model says otherwise; "dot" models embed at their own length.
  std::string similarity = "cosine";
  nlohmann::json ToJson() const;
};

struct RunStats {
  double forward_ms = 0, postprocess_ms = 0;
  size_t tokens = 0, padded_tokens = 0;
};

class ServableModel {
 public:
  // Loads and prepares the model for inference. InvalidArgument naming model.path /
  // tokenizer.path for unusable files; Unimplemented for objectives the engine does not serve.
  // Runs on a thread of its own that ends with the load (see compute_thread.h: a thread that
  // has run libtorch operators keeps an OpenMP team for its life); passes run on the compute
  // thread.
  static Result<std::shared_ptr<const ServableModel>> Load(const LoadSpec& spec);
  ~ServableModel();
  ServableModel(const ServableModel&) = delete;
  ServableModel& operator=(const ServableModel&) = delete;

  // Tokenizes `texts`; errors name `field` (e.g. an input without a [MASK] for fill-mask).
  Result<std::vector<tokenizers::Encoding>> Encode(const std::vector<std::string>& texts,
                                                   const std::string& field) const;
  // One forward pass over `rows` padded to the longest: a prediction per row, in order.
  Result<std::vector<nlohmann::json>> Run(const std::vector<const tokenizers::Encoding*>& rows,
                                          const OutputOptions& options, RunStats* stats = nullptr) const;
  // Embeddings (no-objective models): rows.size() x info().embedding_size floats, row-major.
  Result<std::vector<float>> Embed(const std::vector<const tokenizers::Encoding*>& rows,
                                   const OutputOptions& options, RunStats* stats = nullptr) const;

  const ModelInfo& info() const;

 private:
  struct Impl;
  explicit ServableModel(std::unique_ptr<Impl> impl);
  static Result<std::shared_ptr<const ServableModel>> LoadOnThisThread(const LoadSpec& spec);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::predict
