// mlaas::nn — a transformer (an encoder with its task head, or the GPT-2 decoder with its tied
// language-model head), its Hugging Face model directory
// (config.json + model.safetensors or a sharded index), weight initialisation as
// transformers does it, and checkpoint loading with clear errors naming the tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/decoder.h"
#include "nn/heads.h"
#include "nn/transformer.h"

namespace mlaas::nn {

struct ModelOutput {
  EncoderOutput encoder;
  torch::Tensor logits;  // undefined for no-objective
};

class TransformerModelImpl : public torch::nn::Module {
 public:
  // with_pooler applies to no-objective models (BertModel/RobertaModel carry a pooler that
  // embeddings do not use); heads decide for themselves.
  TransformerModelImpl(ModelConfig config, Objective objective, bool with_pooler = false);
  // Encoders: the encoder and the head. The decoder: the last hidden state and the vocabulary
  // logits of every position (inputs right-padded; token_type_ids ignored).
  ModelOutput forward(const EncoderInput& in);
  // `in` with the global attention its head gives when the input names none (a Longformer
  // sequence classifier: its first token, as transformers' does); `in` itself otherwise. What
  // forward() feeds the encoder; callers that run the encoder and head apart use it too.
  EncoderInput WithDefaultGlobalAttention(const EncoderInput& in) const;
  bool is_decoder() const { return static_cast<bool>(decoder); }

  const ModelConfig& config() const { return config_; }
  Objective objective() const { return objective_; }
  // "bert", "distilbert", "roberta" or (GPT-2) "transformer": the prefix of the body's parameter names.
  const std::string& prefix() const { return prefix_; }
  Head* head() { return head_.get(); }
  // Checkpoint names of tied weights (the decoder's lm_head, masked-LM decoders).
  std::vector<std::string> TiedAliases() const;
  // Inference preparation (call after loading weights, dtype and device): fused attention
  // projections, packed for oneDNN where this build can. drop_sources (an inference-only copy,
  // as a served model is): the packed projections' own weights are freed, so they are not held
  // twice; such a model can then only run inference (no training, saving or unfusing).
  void PrepareForInference(bool drop_sources = false);
  // Bytes of the packed copies PrepareForInference made (beside parameters()).
  int64_t PackedBytes() const;
  // Whether PrepareForInference(drop_sources) freed weights: such a model cannot be saved.
  bool inference_only() const;
  // Every dropout of the model draws from gen (CPU) instead of the global generator.
  void SetDropoutGenerator(const std::optional<at::Generator>& gen);

  Encoder encoder{nullptr};  // the encoders' body
  Decoder decoder{nullptr};  // GPT-2's, instead

 private:
  ModelConfig config_;
  Objective objective_;
  std::string prefix_;
  std::unique_ptr<Head> head_;
};
TORCH_MODULE(TransformerModel);

// Initialises every parameter as transformers' _init_weights does: Linear and Embedding
// weights ~ normal(0, initializer_range), biases 0, the padding row of embeddings 0,
// LayerNorm weight 1 and bias 0 (DistilBERT sinusoidal positions when configured).
void InitWeights(TransformerModelImpl& model, uint64_t seed);

struct LoadOptions {
  // Parameters of the head missing from the checkpoint (fine-tuning a new head on a
  // pre-trained encoder) are initialised instead of failing.
  bool allow_missing_head = false;
  // The head's own parameters (outside the body and its pooler) are not read from the checkpoint
  // but initialised, as missing ones: a checkpoint of another head whose names collide (a
  // sequence classifier's classifier.* under a token classifier). Implies allow_missing_head.
  bool fresh_head = false;
  uint64_t seed = 42;  // for initialising missing head parameters
};

struct LoadReport {
  std::vector<std::string> initialized;  // head parameters the checkpoint did not have
  std::vector<std::string> unused;       // checkpoint tensors the model does not use
  std::string source_dtype;              // e.g. "F32", "F16", "BF16", "F32+F16"
};

// Loads weights from `model.safetensors` or `model.safetensors.index.json` in `dir` into
// `model` (F32/F16/BF16/F64 converted to the model's dtype). Names are matched with or
// without the encoder prefix ("bert.embeddings..." or "embeddings..."), as transformers does.
// InvalidArgument naming the tensor for a wrong shape or dtype, a missing parameter, or a
// malformed file.
Status LoadWeights(TransformerModelImpl& model, const std::filesystem::path& dir, const LoadOptions& options = {},
                   LoadReport* report = nullptr);

struct SaveOptions {
  // Split model.safetensors into shards of at most this many bytes, with an index
  // (model.safetensors.index.json), as transformers' max_shard_size does. 0: never shard.
  uint64_t max_shard_bytes = 0;
};

// Writes the weights (float32) under their Hugging Face names. No-objective models are
// written without the encoder prefix, as a bare BertModel is. Each file is atomic; stale
// weight files of another layout are removed.
Status SaveWeights(TransformerModelImpl& model, const std::filesystem::path& dir, const SaveOptions& options = {});

// The objective a model directory's config declares (architectures), if it does.
Result<ModelConfig> ReadModelConfig(const std::filesystem::path& dir);

// Loads config.json + weights. `objective` defaults to the one config.json's architectures
// name. A directory with only config.json is initialised from scratch (seeded).
struct LoadedModel {
  TransformerModel model{nullptr};
  LoadReport report;
  bool from_scratch = false;
};
// `config`: the directory's config.json already read (as checked by the caller); null: read here.
Result<LoadedModel> LoadModelDir(const std::filesystem::path& dir, std::optional<Objective> objective,
                                 const LoadOptions& options = {}, const ModelConfig* config = nullptr);

// Writes config.json (architectures naming the objective) + the weights.
Status SaveModelDir(TransformerModelImpl& model, const std::filesystem::path& dir, const SaveOptions& options = {});

// The device for "cpu" / "cuda" / "cuda:N"; InvalidArgument (field "device") when unknown
// or when this build has no CUDA.
Result<torch::Device> ParseDevice(const std::string& name);

// The weights' and activations' type for "float32" (also "fp32") or "bfloat16" ("bf16");
// InvalidArgument (field "dtype") otherwise.
Result<torch::ScalarType> ParseDType(const std::string& name);

// Sets libtorch's intra-op threads (and OpenBLAS's) for the whole process to n (n > 0), at most
// one per core (more only contend); returns the count in effect.
int ConfigureThreads(int n);

// The process's thread count set for a scope (a training task's model_train.threads) and put
// back as it was when the scope ends, so one request's setting does not outlive it.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;
  int count() const { return count_; }

 private:
  int previous_;
  int count_;
};

}  // namespace mlaas::nn
