// mlaas::train — what a training request asks for (POST /api/v1/ml/nlp/train/model), parsed
// and validated into one struct with every default filled in. No libtorch here: the API
// validates requests with it before queueing a task.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "nn/config.h"

namespace mlaas::train {


enum class OptimizerKind { kAdamW, kAdam, kSgd };

// model_train.precision of the forward passes.
enum class Precision {
  kAuto,      // "auto" (default): bf16 on a CUDA device that computes in bf16, else float32
  kFloat32,   // "fp32" / "float32"
  kBFloat16,  // "bf16" / "bfloat16"
};
std::string_view PrecisionName(Precision p);  // "auto", "float32", "bfloat16"

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kAdamW;
  double init_lr = 2e-5;
  int64_t num_warm_steps = 0;      // linear warm-up, then linear decay to 0
  double weight_decay_rate = 0.01; // not applied to biases and LayerNorm weights
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // Adam/AdamW
  double momentum = 0.0;                              // SGD
};

struct EarlyStopping {
  int64_t patience = 0;        // epochs without improvement before stopping; 0: off
  std::string metric;          // e.g. "eval_loss" (lower is better) or "eval_accuracy"
  double min_delta = 0.0;
};

struct TypoAugment {
  int64_t copies = 0;   // corrupted copies added per training example
  double rate = 0.05;   // probability of an edit per character
};

// Image classification: random views of each training image, drawn anew every epoch.
struct ImageAugment {
  int64_t crop_padding = 0;      // random crop of the image padded by this many pixels; 0: off
  bool horizontal_flip = false;  // mirror half the images
  double rotation = 0;           // rotate by up to this many degrees either way; 0: off
};

struct TrainSpec {
  Objective objective = Objective::kTextClassification;
  // model.classifier_pooling (text-classification): "cls" or "mean"; none: the model's own
  // (a saved classifier's config, else "cls").
  std::optional<nn::Pooling> classifier_pooling;
  // model_train
  int64_t epochs = 10;
  int64_t batch_size = 32;
  OptimizerSpec optimizer;
  double max_grad_norm = 1.0;           // 0: no clipping
  int64_t gradient_accumulation_steps = 1;
  uint64_t seed = 42;
  std::optional<int64_t> max_length;    // default: the model's maximum
  int threads = 0;                      // 0: one per core
  std::string device = "cpu";
  EarlyStopping early_stopping;
  bool load_best_model_at_end = false;  // save the epoch with the best early_stopping.metric
  int64_t checkpoint_steps = 0;         // also checkpoint every N optimizer steps; 0: each epoch only
  int64_t max_steps = 0;                // stop after this many optimizer steps; 0: no limit
  double mlm_probability = 0.15;
  bool whole_word_masking = false;
  double scale = 20.0;                  // sentence-embedding: similarity scale (1/temperature)
  // sentence-embedding: how embeddings compare, in the loss and in the saved model's
  // config_sentence_transformers.json: cosine (unit-length embeddings) or dot (inner product).
  // Unset: what the starting model records, else cosine.
  std::optional<std::string> similarity;
  // sentence-embedding: after training, fit a whitening projection on the training positives'
  // pooled embeddings and save it as a sentence-transformers Dense module: each principal
  // direction scaled by eigenvalue^-whitening (0.5: full whitening; 0: no projection).
  double whitening = 0.0;
  // dataset
  double train_test_split = 0.1;
  bool has_eval_dataset = false;        // dataset.eval_dataset given: no split
  std::string text_column = "text";
  std::string text_pair_column;         // optional
  std::string label_column = "label";
  std::string anchor_column = "anchor";
  std::string positive_column = "positive";
  std::string negative_column;          // sentence-embedding, optional: a hard negative per row
  std::string tokens_column = "tokens"; // token-classification: the words (a JSON array)
  std::string tags_column = "tags";     // token-classification: their tags (a JSON array)
  std::vector<std::string> tag_names;   // token-classification: the names of integer tags, by id
  std::string question_column = "question";  // question-answering (SQuAD's fields)
  std::string context_column = "context";
  std::string answers_column = "answers";    // {"text": [...], "answer_start": [...]}
  // question-answering: a context longer than max_length is cut into windows overlapping by
  // this many tokens (at most a quarter of max_length).
  int64_t doc_stride = 128;
  TypoAugment typos;
  // image-classification
  ImageAugment image_augment;   // dataset.augment.{crop_padding, horizontal_flip, rotation}
  bool freeze_backbone = false; // model_train.freeze_backbone: train the classifier only
  // model_train.precision: forward passes under bf16 autocast (weights, gradients and optimizer
  // state stay float32) when bf16, or by default on a CUDA device that computes in bf16.
  Precision precision = Precision::kAuto;
};

// Parses the request's model / model_train / dataset blocks. Defaults differ by modality: image
// classification starts at init_lr 1e-3 with batches of 64. Errors are InvalidArgument naming
// the field ("model_train.optimizer.name", "dataset.train_test_split", ...).
Result<TrainSpec> ParseTrainSpec(const nlohmann::json& params);

// That `spec` can train a static embedding model: the sentence-embedding objective, no whitening.
// InvalidArgument naming model.objective / model_train.whitening otherwise.
Status CheckStaticEmbeddingSpec(const TrainSpec& spec);

// The dataset columns the objective reads, in order (text [+ pair] + label, text, anchor +
// positive [+ negative], tokens + tags).
std::vector<std::string> Columns(const TrainSpec& spec);
// The request field naming column `i` of Columns(spec).
std::string ColumnField(const TrainSpec& spec, size_t i);

}  // namespace mlaas::train
