// mlaas::nn — model configuration: the Hugging Face `config.json` of BERT, DistilBERT,
// RoBERTa and GPT-2 (each with its own field names), built-in presets for training from scratch, and
// the objectives (heads) the platform serves. No libtorch here: the API and CLI validate
// configs without pulling in torch headers.
#pragma once

#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/objective.h"
#include "common/result.h"

namespace mlaas::nn {

enum class Architecture { kBert, kDistilBert, kRoberta, kGpt2, kLongformer };
// RoBERTa and Longformer number positions from pad_token_id + 1 (padding gets the padding
// position), with RoBERTa's embeddings and heads.
inline bool RobertaLike(Architecture a) { return a == Architecture::kRoberta || a == Architecture::kLongformer; }
std::string_view ArchitectureName(Architecture a);  // the config's model_type

// What the model is trained for / predicts (the request's model.objective; common/objective.h).
using mlaas::Objective;
// The objectives the transformer engine builds heads for (all but sentence-embedding, which
// trains a no-objective model, and image-classification); InvalidArgument naming
// "model.objective" for any other name.
Result<Objective> ParseObjective(std::string_view name);

enum class Activation { kGelu, kGeluNew, kRelu, kSilu, kTanh };

// How a sequence becomes one vector: the mean over its tokens (padding left out), or its first
// ([CLS]/<s>) token.
enum class Pooling { kMean, kCls };
// "mean" / "cls"; InvalidArgument naming `field` otherwise.
Result<Pooling> ParsePooling(std::string_view name, const std::string& field);

// Where a BERT/RoBERTa layer learns positions (config position_embedding_type, as transformers
// names them): added to the embeddings (absolute), or as an embedding of each query-key
// distance that attention scores with the query (relative_key) or the query and the key
// (relative_key_query), Shaw et al. 2018 and Huang et al. 2020: a layer can attend "one token
// back" from the first step, without learning it for every absolute position.
enum class PositionEmbedding { kAbsolute, kRelativeKey, kRelativeKeyQuery };
std::string_view PositionEmbeddingName(PositionEmbedding p);

struct ModelConfig {
  Architecture architecture = Architecture::kBert;
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  Activation hidden_act = Activation::kGelu;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;  // 0 for DistilBERT (no token types)
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  std::optional<double> classifier_dropout;  // BERT/RoBERTa; DistilBERT: seq_classif_dropout
  double initializer_range = 0.02;
  int64_t pad_token_id = 0;
  bool sinusoidal_pos_embds = false;  // DistilBERT only
  PositionEmbedding position_embedding_type = PositionEmbedding::kAbsolute;  // BERT and RoBERTa
  bool relative_positions() const { return position_embedding_type != PositionEmbedding::kAbsolute; }
  // GPT-2: the dropout after the embeddings (embd_pdrop; hidden_dropout_prob is resid_pdrop),
  // the beginning- and end-of-text tokens (generation stops at eos).
  double embedding_dropout_prob = 0.1;
  std::optional<int64_t> bos_token_id, eos_token_id;
  // Labels of the classification head, index = class id (config id2label).
  std::vector<std::string> id2label;
  // "single_label_classification" (softmax), "multi_label_classification" (sigmoid) or
  // "regression"; empty: single label.
  std::string problem_type;
  std::vector<std::string> architectures;  // e.g. "BertForSequenceClassification"
  // What the classification head reads (config "classifier_pooling", as ModernBERT names it):
  // the first token, as transformers' BERT/DistilBERT/RoBERTa classifiers do, or the mean over
  // the tokens (BERT: then the pooler's dense + tanh, as over [CLS]). Only "cls" is what
  // transformers' *ForSequenceClassification classes compute.
  Pooling classifier_pooling = Pooling::kCls;
  // Longformer: each layer's attention window (tokens, even: a token sees window/2 on each
  // side; config attention_window, one number for every layer or one per layer). Inputs are
  // padded to a multiple of the largest.
  std::vector<int64_t> attention_window;
  // The whole config as read, so fields this platform does not use survive a save.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  bool multi_label() const { return problem_type == "multi_label_classification"; }
  // The dropout before the classifier (classifier_dropout, else hidden_dropout_prob).
  double classifier_dropout_prob() const {
    return classifier_dropout.value_or(hidden_dropout_prob);
  }
};

// Parses a config.json object. InvalidArgument naming the field (prefixed by `field`, e.g.
// "model.config.hidden_size") for unknown model_type, missing/invalid sizes,
// hidden_size not divisible by num_attention_heads, an unsupported activation, ...
Result<ModelConfig> ParseConfig(const nlohmann::json& j, const std::string& field = "config");
Result<ModelConfig> LoadConfig(const std::string& config_json_text);

// The config.json of `c` in its architecture's own field names, with `architectures` set for
// `objective` ("BertForMaskedLM", ...) and transformers-compatible metadata.
nlohmann::ordered_json ConfigToJson(const ModelConfig& c, Objective objective);

// The Hugging Face class name of an architecture + objective ("DistilBertForSequenceClassification").
std::string ArchitectureClassName(Architecture a, Objective objective);
// The objective the config's `architectures` entry names, if any.
std::optional<Objective> ObjectiveFromArchitectures(const ModelConfig& c);

// Built-in shapes for training from scratch: bert-tiny (2 layers, hidden 128), bert-mini
// (4/256), bert-small (4/512), bert-medium (8/512), bert-base (12/768), distilbert-base
// (6/768), roberta-base (12/768); longformer-tiny (2/128, windows of 64) and longformer-base
// (12/768, windows of 512), both for 4,096 tokens; decoders gpt2-tiny (2/128) and gpt2-small
// (12/768, GPT-2's own shape). vocab_size/pad_token_id are set from the tokenizer later.
std::vector<std::string> PresetNames();
// InvalidArgument naming `field` and listing the presets for an unknown name.
Result<ModelConfig> Preset(std::string_view name, const std::string& field = "model.preset");

// The config of a model block that starts from scratch — {"preset": NAME} or {"config": {...}}
// (field names "model.preset" / "model.config.*") — sized for a tokenizer (vocab_size and
// pad_token_id), with `labels` as the classes of a classification head when given. A decoder
// (gpt2) takes the tokenizer's end-of-text token, when given, as the bos/eos ids it lacks.
Result<ModelConfig> ScratchConfig(const nlohmann::json& model_block, int64_t vocab_size,
                                  std::optional<int64_t> pad_token_id, const std::vector<std::string>& labels,
                                  std::optional<int64_t> eos_token_id = std::nullopt);

// The objectives an architecture's heads serve: GPT-2 causal-lm only, the encoders the others.
Status CheckArchitectureObjective(Architecture a, Objective o, const std::string& field = "model.objective");

// The longest input (special tokens included) the model's position embeddings allow: RoBERTa
// numbers positions from pad_token_id + 1.
int64_t MaxInputTokens(const ModelConfig& c);

// The parameters a model of this config holds with `objective`'s head (the BERT pooler
// counted, as the largest case), and their float32 bytes: what building it allocates, known
// before anything is allocated. Saturates at UINT64_MAX instead of wrapping.
uint64_t ParameterCount(const ModelConfig& c, Objective objective);
uint64_t ParameterBytes(const ModelConfig& c, Objective objective);

// Validates ranges and consistency (also after a caller edits a parsed config).
Status ValidateConfig(const ModelConfig& c, const std::string& field = "config");

}  // namespace mlaas::nn
