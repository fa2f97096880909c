#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "common/file_util.h"
#include "common/text.h"
#include "nn/cpu_allocator.h"
#include "nn/embedding_projection.h"
#include "nn/model.h"
#include "nn/static_embedding.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/trainer.h"
#include "train/metrics.h"

namespace mlaas::train {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kIgnore = -100;

// One training run at a time per process: runs would compete for the same cores and for
// libtorch's process-wide thread count. (Each run's dropout draws from a generator of its own,
// whose state its checkpoints save, so randomness does not depend on what else runs.)
std::timed_mutex& TrainingMutex() {
  static std::timed_mutex mu;
  return mu;
}

uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  return x ^ (x >> 29);
}

bool LowerIsBetter(const std::string& metric) {
  return metric.find("loss") != std::string::npos || metric.find("perplexity") != std::string::npos;
}

// Whether decoupled weight decay applies: not to biases and LayerNorm weights (transformers'
// convention), whatever the architecture calls its LayerNorms.
bool Decays(const std::string& name) {
  if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) return false;
  return name.find("LayerNorm") == std::string::npos && name.find("layer_norm") == std::string::npos;
}

// A padded batch on `device`.
struct Batch {
  nn::EncoderInput a, b;      // b: sentence-embedding positives
  nn::EncoderInput c;         // sentence-embedding hard negatives (the rows that have one; undefined: none)
  torch::Tensor labels;       // classification [B] or masked-lm [B, T] (kIgnore elsewhere)
  int64_t tokens = 0;         // non-padding tokens
  int64_t size = 0;
};

class Session {
 public:
  Session(const TrainInputs& in, const TrainCallbacks& cb) : in_(in), spec_(in.spec), cb_(cb) {}
  Result<json> Run();

 private:
  void Log(std::string_view level, const std::string& m) const {
    if (cb_.log) cb_.log(level, m);
  }
  bool StopRequested() const { return cb_.cancelled && cb_.cancelled(); }

  Status Prepare();
  // InvalidArgument naming `model` when training a model of `weight_bytes` exceeds the limit.
  Status CheckTrainingBytes(uint64_t weight_bytes) const;
  Status BuildModel();
  Status BuildStaticModel();
  // The model being trained: the transformer or the static embedding model.
  torch::nn::Module& Net() const {
    if (static_) return *static_.ptr();
    return *model_.ptr();
  }
  void BuildOptimizer();
  double LearningRate(int64_t step) const;
  nn::EncoderInput Encode(const std::vector<const std::vector<int32_t>*>& ids,
                          const std::vector<const std::vector<uint8_t>*>& types, int64_t* tokens) const;
  Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t mask_seed) const;
  std::vector<int64_t> MaskTokens(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx,
                                  std::vector<std::vector<int32_t>>& ids, uint64_t seed) const;

  struct Counters {
    double loss_sum = 0, weight = 0;
    int64_t correct = 0, total = 0;
    json ToJson() const { return {loss_sum, weight, correct, total}; }
    void FromJson(const json& j) {
      loss_sum = j[0];
      weight = j[1];
      correct = j[2];
      total = j[3];
    }
  };
  // Forward + loss of one batch; adds to `c`. Returns the loss to back-propagate.
  torch::Tensor Step(const Batch& b, Counters& c);
  torch::Tensor Pooled(const nn::EncoderInput& in);  // mean-pooled, not normalised
  torch::Tensor Embed(const nn::EncoderInput& in);   // the same, unit length unless similarity is dot
  Result<json> Evaluate();
  // model_train.whitening: the projection fitted on the training positives, and the held-out
  // retrieval accuracy with it (into last_eval_).
  Result<nn::EmbeddingProjection> FitProjection();

  Status SaveCheckpoint();
  Result<bool> LoadCheckpoint();
  // Every parameter and buffer of the model, in a fixed order (what load_best_model_at_end keeps).
  std::vector<torch::Tensor> ModelState() const;
  void KeepBestWeights();

  const TrainInputs& in_;
  const TrainSpec& spec_;
  const TrainCallbacks& cb_;

  std::unique_ptr<tokenizers::Tokenizer> tokenizer_;
  std::vector<std::string> labels_;
  int64_t pad_id_ = 0, mask_id_ = -1, vocab_ = 0;
  std::vector<TokenizedExample> train_, eval_;
  int64_t train_tokens_ = 0, eval_tokens_ = 0;
  size_t max_length_ = 0;
  torch::Device device_{torch::kCPU};
  at::Generator dropout_gen_;  // the model's dropout masks (CPU; CUDA uses the global one)
  int threads_ = 1;
  nn::TransformerModel model_{nullptr};
  nn::StaticEmbedding static_{nullptr};  // set instead of model_ for a static embedding model
  std::string similarity_ = "cosine";      // sentence-embedding: the request's, or the starting model's
  bool from_scratch_ = false;
  std::vector<std::string> initialized_head_;
  std::vector<std::string> unused_weights_;  // checkpoint tensors the model does not use
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<torch::Tensor> params_;
  int64_t steps_per_epoch_ = 0, total_steps_ = 0;

  // Position and history: everything a checkpoint holds besides tensors.
  int64_t epoch_ = 0, batch_ = 0, step_ = 0;
  Counters epoch_counters_;
  json history_ = json::object();
  json last_eval_ = json::object();
  std::optional<double> best_;
  int64_t bad_epochs_ = 0;
  // load_best_model_at_end: the best epoch (1-based; 0: none yet), its weights and evaluation.
  int64_t best_epoch_ = 0;
  std::vector<torch::Tensor> best_weights_;
  json best_eval_ = json::object();
  bool stopped_early_ = false;
  double train_seconds_ = 0;
  int64_t tokens_seen_ = 0;
  int64_t resumed_from_step_ = -1;
  double eval_seconds_ = 0;  // of this run, left out of tokens/s
};

Status Session::Prepare() {
  auto tok = tokenizers::Tokenizer::Load(in_.tokenizer);
  if (!tok) return InvalidArgument("cannot load the tokenizer: " + tok.error().message(), "tokenizer.path");
  tokenizer_ = std::move(*tok);
  if (auto pad = tokenizer_->PadToken()) pad_id_ = pad->id;
  if (auto mask = tokenizer_->MaskToken()) mask_id_ = mask->id;
  vocab_ = static_cast<int64_t>(tokenizer_->VocabSize());
  if (spec_.objective == Objective::kMaskedLm && mask_id_ < 0)
    return InvalidArgument("the tokenizer has no [MASK] or <mask> token, which masked-lm needs", "tokenizer.path");
  if (in_.train.empty()) return InvalidArgument("the training split is empty", "dataset.path");
  if (spec_.objective == Objective::kTextClassification) {
    std::set<std::string> names;
    for (const auto& e : in_.train) names.insert(e.label);
    for (const auto& e : in_.eval) names.insert(e.label);
    if (names.size() < 2) {
      return InvalidArgument("the label column has a single class ('" + *names.begin() +
                                 "'); classification needs at least two",
                             "dataset.loader_kwargs.label_column");
    }
    labels_.assign(names.begin(), names.end());
  }
  return Status::Ok();
}

// The similarity a starting model records: dot, or cosine for anything else (an unreadable record too).
std::string SavedSimilarity(const fs::path& dir) {
  auto s = nn::ReadSimilarity(dir, "model.path");
  return s.has_value() && *s == "dot" ? "dot" : "cosine";
}

Status Session::CheckTrainingBytes(uint64_t weight_bytes) const {
  if (in_.max_model_bytes == 0) return Status::Ok();
  const uint64_t need = weight_bytes > UINT64_MAX / 4 ? UINT64_MAX : weight_bytes * 4;
  if (need <= in_.max_model_bytes) return Status::Ok();
  return InvalidArgument("training this model would hold " + FormatBytes(need) +
                             " (weights, gradients and optimizer state), more than the " +
                             FormatBytes(in_.max_model_bytes) + " this server allows",
                         "model");
}

Status Session::BuildModel() {
  similarity_ = spec_.similarity.value_or(in_.model_dir ? SavedSimilarity(*in_.model_dir) : "cosine");
  if (similarity_ == "dot" && spec_.whitening > 0)
    return InvalidArgument("whitening is fitted and measured for cosine similarity, not dot (the starting model's)",
                           "model_train.whitening");
  // As ScratchConfig reads the block: a preset first.
  if (in_.model_dir ? nn::IsStaticEmbeddingDir(*in_.model_dir)
                    : !in_.model_block.contains("preset") && nn::IsStaticEmbeddingConfig(in_.model_block.value("config", json())))
    return BuildStaticModel();
  const nn::Objective objective = spec_.objective == Objective::kTextClassification ? nn::Objective::kTextClassification
                                  : spec_.objective == Objective::kMaskedLm ? nn::Objective::kMaskedLm
                                                                                 : nn::Objective::kNoObjective;
  nn::ModelConfig config;
  bool load_weights = false;
  if (in_.model_dir) {
    auto c = nn::ReadModelConfig(*in_.model_dir);
    if (!c) return InvalidArgument("model.path: " + c.error().message(), "model.path");
    config = *c;
    load_weights = fs::exists(*in_.model_dir / "model.safetensors") ||
                   fs::exists(*in_.model_dir / "model.safetensors.index.json") ||
                   fs::exists(*in_.model_dir / "pytorch_model.bin") ||
                   fs::exists(*in_.model_dir / "pytorch_model.bin.index.json");
    if (objective == nn::Objective::kTextClassification) {
      const auto own = nn::ObjectiveFromArchitectures(config);
      std::set<std::string> theirs(config.id2label.begin(), config.id2label.end());
      std::set<std::string> ours(labels_.begin(), labels_.end());
      if (own == nn::Objective::kTextClassification && load_weights && theirs == ours) {
        labels_ = config.id2label;  // keep the model's class ids
      } else if (own == nn::Objective::kTextClassification && load_weights && !config.id2label.empty()) {
        return InvalidArgument("the model classifies into " + std::to_string(theirs.size()) +
                                   " labels that differ from the dataset's " + std::to_string(ours.size()) +
                                   "; start from its encoder (a masked-lm or no-objective model) instead",
                               "dataset.loader_kwargs.label_column");
      }
      config.id2label = labels_;
      config.problem_type = "single_label_classification";
    }
  } else {
    auto c = nn::ScratchConfig(in_.model_block, vocab_, pad_id_, labels_);
    if (!c) return c.error();
    config = *c;
  }
  if (spec_.classifier_pooling) config.classifier_pooling = *spec_.classifier_pooling;
  MLAAS_RETURN_IF_ERROR(CheckTrainingBytes(nn::ParameterBytes(config, objective)));
  if (vocab_ > config.vocab_size) {
    return InvalidArgument("the tokenizer has " + std::to_string(vocab_) + " tokens but the model's vocabulary only " +
                               std::to_string(config.vocab_size),
                           "tokenizer.path");
  }
  // Embedding models keep BERT/RoBERTa's pooler, as a transformers BertModel/RobertaModel
  // has one (untrained here: embeddings pool the last hidden state).
  model_ = nn::TransformerModel(config, objective, /*with_pooler=*/objective == nn::Objective::kNoObjective);
  nn::InitWeights(*model_, spec_.seed);
  from_scratch_ = !load_weights;
  if (load_weights) {
    nn::LoadOptions options;
    options.allow_missing_head = true;
    options.seed = spec_.seed;
    nn::LoadReport report;
    if (Status st = nn::LoadWeights(*model_, *in_.model_dir, options, &report); !st.ok()) {
      return Status(st.code() == StatusCode::kNotFound ? StatusCode::kInvalidArgument : st.code(),
                    "model.path: " + st.message(), "model.path");
    }
    initialized_head_ = report.initialized;
    unused_weights_ = report.unused;
    // As transformers reports them: what the checkpoint had that this model does not use (a
    // pre-training head), and what the model has that the checkpoint did not (a new head).
    auto names = [](const std::vector<std::string>& v) {
      std::vector<std::string> shown(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(v.size(), 20)));
      return "[" + Join(shown, ", ") + (v.size() > shown.size() ? ", ... (" + std::to_string(v.size()) + " in all)" : "") + "]";
    };
    const std::string arch = nn::ArchitectureClassName(config.architecture, objective);
    if (!unused_weights_.empty())
      Log("info", "some weights of the checkpoint were not used when initialising " + arch + ": " + names(unused_weights_));
    if (!initialized_head_.empty())
      Log("info", "some weights of " + arch + " were not in the checkpoint and are newly initialised: " + names(initialized_head_));
  }
  const int64_t limit = nn::MaxInputTokens(config);
  max_length_ = static_cast<size_t>(std::min<int64_t>(spec_.max_length.value_or(limit), limit));
  auto device = nn::ParseDevice(spec_.device);
  if (!device) return device.error().WithField("model_train.device");
  device_ = *device;
  model_->to(device_);
  return Status::Ok();
}

// A static embedding model trains as an embedding model only; from scratch, its weights are
// fitted to the training documents once they are tokenized (Run).
Status Session::BuildStaticModel() {
  MLAAS_RETURN_IF_ERROR(CheckStaticEmbeddingSpec(spec_));
  std::string field = "model.path";
  if (in_.model_dir) {
    MLAAS_ASSIGN_OR_RETURN(const auto c, nn::ReadStaticEmbeddingConfig(*in_.model_dir, field));
    MLAAS_RETURN_IF_ERROR(CheckTrainingBytes(nn::ParameterBytes(c)));
    MLAAS_ASSIGN_OR_RETURN(static_, nn::LoadStaticEmbedding(*in_.model_dir, field, &c));
  } else {
    field = "model.config";
    json config = in_.model_block["config"];
    // The tokenizer decides the vocabulary; a config may only ask for a larger one.
    auto v = config.find("vocab_size");
    if (v == config.end() || (v->is_number_integer() && v->get<int64_t>() < vocab_)) config["vocab_size"] = vocab_;
    MLAAS_ASSIGN_OR_RETURN(nn::StaticEmbeddingConfig c, nn::ParseStaticEmbeddingConfig(config, field));
    MLAAS_RETURN_IF_ERROR(CheckTrainingBytes(nn::ParameterBytes(c)));
    static_ = nn::StaticEmbedding(c);
    from_scratch_ = true;
  }
  if (vocab_ > static_->config().vocab_size) {
    return InvalidArgument("the tokenizer has " + std::to_string(vocab_) + " tokens but the model's vocabulary only " +
                               std::to_string(static_->config().vocab_size),
                           "tokenizer.path");
  }
  max_length_ = static_cast<size_t>(std::min(spec_.max_length.value_or(nn::kStaticEmbeddingMaxTokens), nn::kStaticEmbeddingMaxTokens));
  auto device = nn::ParseDevice(spec_.device);
  if (!device) return device.error().WithField("model_train.device");
  device_ = *device;
  static_->to(device_);
  return Status::Ok();
}

void Session::BuildOptimizer() {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : Net().named_parameters()) {
    (Decays(item.key()) ? decay : no_decay).push_back(item.value());
    params_.push_back(item.value());
  }
  const auto& o = spec_.optimizer;
  switch (o.kind) {
    case OptimizerKind::kAdamW: {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                     torch::optim::AdamWOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(o.weight_decay_rate)));
      groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                        torch::optim::AdamWOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(0)));
      optimizer_ = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(o.init_lr));
      break;
    }
    case OptimizerKind::kAdam: {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(decay, std::make_unique<torch::optim::AdamOptions>(
                                     torch::optim::AdamOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(o.weight_decay_rate)));
      groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamOptions>(
                                        torch::optim::AdamOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(0)));
      optimizer_ = std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(o.init_lr));
      break;
    }
    case OptimizerKind::kSgd: {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(decay, std::make_unique<torch::optim::SGDOptions>(
                                     torch::optim::SGDOptions(o.init_lr).momentum(o.momentum).weight_decay(o.weight_decay_rate)));
      groups.emplace_back(no_decay, std::make_unique<torch::optim::SGDOptions>(
                                        torch::optim::SGDOptions(o.init_lr).momentum(o.momentum).weight_decay(0)));
      optimizer_ = std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(o.init_lr));
      break;
    }
  }
}

// transformers' get_linear_schedule_with_warmup: the rate of optimizer step `step` (0-based).
double Session::LearningRate(int64_t step) const {
  const double lr = spec_.optimizer.init_lr;
  const int64_t warm = spec_.optimizer.num_warm_steps;
  if (step < warm) return lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warm));
  return lr * std::max(0.0, static_cast<double>(total_steps_ - step) /
                                static_cast<double>(std::max<int64_t>(1, total_steps_ - warm)));
}

nn::EncoderInput Session::Encode(const std::vector<const std::vector<int32_t>*>& ids,
                                 const std::vector<const std::vector<uint8_t>*>& types, int64_t* tokens) const {
  const int64_t b = static_cast<int64_t>(ids.size());
  int64_t t = 1;
  for (const auto* v : ids) t = std::max<int64_t>(t, static_cast<int64_t>(v->size()));
  auto input = torch::full({b, t}, pad_id_, torch::kLong);
  auto mask = torch::zeros({b, t}, torch::kLong);
  auto type = torch::zeros({b, t}, torch::kLong);
  auto pi = input.accessor<int64_t, 2>();
  auto pm = mask.accessor<int64_t, 2>();
  auto pt = type.accessor<int64_t, 2>();
  bool padded = false;
  for (int64_t i = 0; i < b; ++i) {
    const auto& v = *ids[static_cast<size_t>(i)];
    for (size_t k = 0; k < v.size(); ++k) {
      pi[i][static_cast<int64_t>(k)] = v[k];
      pm[i][static_cast<int64_t>(k)] = 1;
      if (!types.empty() && types[static_cast<size_t>(i)]) pt[i][static_cast<int64_t>(k)] = (*types[static_cast<size_t>(i)])[k];
    }
    padded |= static_cast<int64_t>(v.size()) < t;
    if (tokens) *tokens += static_cast<int64_t>(v.size());
  }
  nn::EncoderInput in;
  in.input_ids = input.to(device_);
  if (padded) in.attention_mask = mask.to(device_);
  if (model_ && model_->config().type_vocab_size > 0) in.token_type_ids = type.to(device_);
  return in;
}

// BERT's masking: a fraction of the (non-special) tokens — or of whole words — is chosen;
// of those 80% become [MASK], 10% a random token and 10% stay. Returns the labels (the
// original id where chosen, kIgnore elsewhere), row-major [B, T] padded to the longest.
std::vector<int64_t> Session::MaskTokens(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx,
                                         std::vector<std::vector<int32_t>>& ids, uint64_t seed) const {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  size_t t = 1;
  for (size_t i : idx) t = std::max(t, data[i].ids.size());
  std::vector<int64_t> labels(idx.size() * t, kIgnore);
  std::vector<std::pair<size_t, size_t>> candidates;
  auto choose = [&](size_t row, size_t k) {
    labels[row * t + k] = ids[row][k];
    const double r = u(rng);
    if (r < 0.8) {
      ids[row][k] = static_cast<int32_t>(mask_id_);
    } else if (r < 0.9) {
      ids[row][k] = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab_));
    }
  };
  int64_t chosen = 0;
  for (size_t row = 0; row < idx.size(); ++row) {
    const auto& e = data[idx[row]];
    for (size_t k = 0; k < e.ids.size(); ++k) {
      if (e.flags[k] & TokenizedExample::kSpecial) continue;
      candidates.emplace_back(row, k);
      const bool starts_word = !spec_.whole_word_masking || (e.flags[k] & TokenizedExample::kWordStart) || k == 0;
      if (!starts_word) continue;  // continuation pieces follow their word's choice
      if (u(rng) >= spec_.mlm_probability) continue;
      size_t end = k + 1;
      if (spec_.whole_word_masking) {
        while (end < e.ids.size() && !(e.flags[end] & (TokenizedExample::kWordStart | TokenizedExample::kSpecial))) ++end;
      }
      for (size_t j = k; j < end; ++j, ++chosen) choose(row, j);
      k = end - 1;
    }
  }
  if (chosen == 0 && !candidates.empty()) {  // every batch teaches something
    auto [row, k] = candidates[rng() % candidates.size()];
    choose(row, k);
  }
  return labels;
}

Batch Session::MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx,
                         uint64_t mask_seed) const {
  Batch b;
  b.size = static_cast<int64_t>(idx.size());
  std::vector<const std::vector<uint8_t>*> types;
  for (size_t i : idx) types.push_back(&data[i].type_ids);
  if (spec_.objective == Objective::kMaskedLm) {
    std::vector<std::vector<int32_t>> ids;
    for (size_t i : idx) ids.push_back(data[i].ids);
    std::vector<int64_t> labels = MaskTokens(data, idx, ids, mask_seed);
    std::vector<const std::vector<int32_t>*> ptrs;
    for (const auto& v : ids) ptrs.push_back(&v);
    b.a = Encode(ptrs, types, &b.tokens);
    b.labels = torch::from_blob(labels.data(), {b.size, static_cast<int64_t>(labels.size()) / b.size}, torch::kLong)
                   .clone()
                   .to(device_);
    return b;
  }
  std::vector<const std::vector<int32_t>*> a, p;
  for (size_t i : idx) a.push_back(&data[i].ids);
  b.a = Encode(a, types, &b.tokens);
  if (spec_.objective == Objective::kSentenceEmbedding) {
    for (size_t i : idx) p.push_back(&data[i].ids2);
    b.b = Encode(p, {}, &b.tokens);
    std::vector<const std::vector<int32_t>*> n;
    for (size_t i : idx)
      if (!data[i].ids3.empty()) n.push_back(&data[i].ids3);
    if (!n.empty()) b.c = Encode(n, {}, &b.tokens);
  } else {
    std::vector<int64_t> labels;
    for (size_t i : idx) labels.push_back(data[i].label);
    b.labels = torch::tensor(labels, torch::kLong).to(device_);
  }
  return b;
}

torch::Tensor Session::Pooled(const nn::EncoderInput& in) {
  if (static_) {  // the rows' tokens without padding (the texts were tokenized without special tokens)
    torch::Tensor ids = in.input_ids.cpu();
    torch::Tensor mask = in.attention_mask.defined() ? in.attention_mask.cpu() : torch::ones_like(ids);
    auto pi = ids.accessor<int64_t, 2>();
    auto pm = mask.accessor<int64_t, 2>();
    std::vector<std::vector<int64_t>> texts(static_cast<size_t>(ids.size(0)));
    for (int64_t r = 0; r < ids.size(0); ++r)
      for (int64_t t = 0; t < ids.size(1); ++t)
        if (pm[r][t]) texts[static_cast<size_t>(r)].push_back(pi[r][t]);
    return static_->forward(texts);
  }
  nn::EncoderOutput out = model_->encoder->forward(in);
  auto mask = in.attention_mask.defined() ? in.attention_mask : torch::ones_like(in.input_ids);
  return nn::Pool(out.last_hidden_state, mask, nn::Pooling::kMean);
}

torch::Tensor Session::Embed(const nn::EncoderInput& in) {
  if (similarity_ == "dot") return Pooled(in);
  return torch::nn::functional::normalize(Pooled(in), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

// Each anchor (row of `a`) against every positive: the fraction whose best match is its own.
double RetrievalAccuracy(const torch::Tensor& a, const torch::Tensor& p) {
  int64_t right = 0;
  for (int64_t s = 0; s < a.size(0); s += 1024) {
    torch::Tensor best = torch::matmul(a.slice(0, s, s + 1024), p.t()).argmax(1);
    right += best.eq(torch::arange(s, s + best.size(0), torch::kLong)).sum().item<int64_t>();
  }
  return a.size(0) > 0 ? static_cast<double>(right) / static_cast<double>(a.size(0)) : 0.0;
}

Result<nn::EmbeddingProjection> Session::FitProjection() {
  torch::NoGradGuard no_grad;
  model_->eval();
  nn::WhiteningFit fit;  // d x d sums, whatever the number of positives
  auto batches = MakeBatches(train_, spec_.batch_size, spec_.seed, 0, /*shuffle=*/false);
  for (size_t i = 0; i < batches.size(); ++i) {
    if (StopRequested()) return Cancelled("cancelled");
    fit.Add(Pooled(MakeBatch(train_, batches[i], 0).b));
  }
  MLAAS_ASSIGN_OR_RETURN(nn::EmbeddingProjection projection, fit.Finish(spec_.whitening, "model_train.whitening"));
  Log("info", "whitening: " + std::to_string(projection.out_features()) + " of " +
                  std::to_string(projection.in_features()) + " directions kept");
  if (!eval_.empty()) {
    std::vector<torch::Tensor> a, p;
    auto unit = [&](const torch::Tensor& x) {
      return torch::nn::functional::normalize(projection.Apply(x.to(torch::kCPU, torch::kFloat32)),
                                              torch::nn::functional::NormalizeFuncOptions().dim(1));
    };
    for (const auto& idx : MakeBatches(eval_, spec_.batch_size, spec_.seed, 0, /*shuffle=*/false)) {
      if (StopRequested()) return Cancelled("cancelled");
      Batch b = MakeBatch(eval_, idx, 0);
      a.push_back(unit(Pooled(b.a)));
      p.push_back(unit(Pooled(b.b)));
    }
    last_eval_["whitened_retrieval_accuracy"] = RetrievalAccuracy(torch::cat(a), torch::cat(p));
  }
  last_eval_["embedding_size"] = projection.out_features();
  model_->train();
  return projection;
}

torch::Tensor Session::Step(const Batch& b, Counters& c) {
  switch (spec_.objective) {
    case Objective::kTextClassification: {
      torch::Tensor logits = model_->forward(b.a).logits;
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, b.labels);
      c.loss_sum += loss.item<double>() * static_cast<double>(b.size);
      c.weight += static_cast<double>(b.size);
      c.correct += logits.argmax(1).eq(b.labels).sum().item<int64_t>();
      c.total += b.size;
      return loss;
    }
    case Objective::kMaskedLm: {
      // The vocabulary projection only where a token is to be predicted: ~15% of the
      // positions, which saves most of the head's cost.
      nn::EncoderOutput out = model_->encoder->forward(b.a);
      torch::Tensor chosen = b.labels.ne(kIgnore);
      torch::Tensor hidden = out.last_hidden_state.index({chosen});
      torch::Tensor targets = b.labels.index({chosen});
      nn::EncoderOutput selected;
      selected.last_hidden_state = hidden.unsqueeze(0);
      torch::Tensor logits = model_->head()->Forward(selected).squeeze(0);
      torch::Tensor loss = torch::nn::functional::cross_entropy(logits, targets);
      const int64_t n = targets.size(0);
      c.loss_sum += loss.item<double>() * static_cast<double>(n);
      c.weight += static_cast<double>(n);
      c.correct += logits.argmax(1).eq(targets).sum().item<int64_t>();
      c.total += n;
      return loss;
    }
    case Objective::kSentenceEmbedding: {
      // Multiple-negatives ranking: each anchor against every positive of the batch (and every
      // hard negative, when the data has them).
      torch::Tensor a = Embed(b.a), p = Embed(b.b);
      if (b.c.input_ids.defined()) p = torch::cat({p, Embed(b.c)});
      torch::Tensor scores = torch::matmul(a, p.t()) * spec_.scale;
      torch::Tensor target = torch::arange(b.size, torch::TensorOptions().dtype(torch::kLong).device(device_));
      torch::Tensor loss = torch::nn::functional::cross_entropy(scores, target);
      c.loss_sum += loss.item<double>() * static_cast<double>(b.size);
      c.weight += static_cast<double>(b.size);
      c.correct += scores.argmax(1).eq(target).sum().item<int64_t>();
      c.total += b.size;
      return loss;
    }
    default: return {};  // ParseTrainSpec admits no other
  }
}

Result<json> Session::Evaluate() {
  if (eval_.empty()) return json::object();
  torch::NoGradGuard no_grad;
  Net().eval();
  Counters c;
  std::optional<ConfusionMatrix> cm;
  if (spec_.objective == Objective::kTextClassification) cm.emplace(labels_.size());
  std::vector<torch::Tensor> anchors, positives;
  auto batches = MakeBatches(eval_, spec_.batch_size, spec_.seed, 0, /*shuffle=*/false);
  for (size_t i = 0; i < batches.size(); ++i) {
    if (StopRequested()) return Cancelled("cancelled");
    Batch b = MakeBatch(eval_, batches[i], Mix(spec_.seed ^ 0xE7A1ULL, i));
    if (spec_.objective == Objective::kTextClassification) {
      torch::Tensor logits = model_->forward(b.a).logits;
      c.loss_sum += torch::nn::functional::cross_entropy(logits, b.labels).item<double>() * static_cast<double>(b.size);
      c.weight += static_cast<double>(b.size);
      auto pred = logits.argmax(1).cpu();
      auto truth = b.labels.cpu();
      for (int64_t k = 0; k < b.size; ++k) cm->Add(truth[k].item<int64_t>(), pred[k].item<int64_t>());
    } else if (spec_.objective == Objective::kSentenceEmbedding) {
      torch::Tensor a = Embed(b.a), p = Embed(b.b);
      torch::Tensor target = torch::arange(b.size, torch::TensorOptions().dtype(torch::kLong).device(device_));
      c.loss_sum += torch::nn::functional::cross_entropy(torch::matmul(a, p.t()) * spec_.scale, target).item<double>() *
                    static_cast<double>(b.size);
      c.weight += static_cast<double>(b.size);
      anchors.push_back(a.cpu());
      positives.push_back(p.cpu());
    } else {
      Step(b, c);
    }
  }
  Net().train();
  const double loss = c.weight > 0 ? c.loss_sum / c.weight : 0.0;
  json out = {{"loss", loss}};
  if (cm) {
    json m = cm->ToJson(labels_);
    out.update(m);
  } else if (spec_.objective == Objective::kMaskedLm) {
    out["perplexity"] = std::exp(std::min(loss, 50.0));
    out["masked_accuracy"] = c.total ? static_cast<double>(c.correct) / static_cast<double>(c.total) : 0.0;
    out["masked_tokens"] = c.total;
  } else {
    // Retrieval accuracy: each held-out anchor against every held-out positive.
    out["retrieval_accuracy"] = RetrievalAccuracy(torch::cat(anchors), torch::cat(positives));
  }
  return out;
}

std::vector<torch::Tensor> Session::ModelState() const {
  std::vector<torch::Tensor> state = Net().parameters();
  for (const auto& b : Net().buffers()) state.push_back(b);
  return state;
}

void Session::KeepBestWeights() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> state = ModelState();
  if (best_weights_.size() != state.size()) {
    best_weights_.clear();
    for (const auto& t : state) best_weights_.push_back(t.detach().clone());
    return;
  }
  for (size_t i = 0; i < state.size(); ++i) best_weights_[i].copy_(state[i]);
}

Status Session::SaveCheckpoint() {
  const fs::path incoming = in_.checkpoint_dir / "incoming";
  const fs::path current = in_.checkpoint_dir / "current";
  const fs::path previous = in_.checkpoint_dir / "previous";
  std::error_code ec;
  fs::remove_all(incoming, ec);
  fs::create_directories(incoming, ec);
  if (ec) return Internal("cannot create the checkpoint directory: " + ec.message());
  MLAAS_RETURN_IF_ERROR(static_ ? nn::SaveStaticEmbedding(*static_, incoming) : nn::SaveWeights(*model_, incoming));
  try {
    torch::save(*optimizer_, (incoming / "optimizer.pt").string());
    torch::Tensor rng;
    {
      std::lock_guard<std::mutex> lock(dropout_gen_.mutex());
      rng = dropout_gen_.get_state();
    }
    torch::save(rng, (incoming / "rng.pt").string());
    if (!best_weights_.empty()) torch::save(best_weights_, (incoming / "best.pt").string());
  } catch (const c10::Error& e) {
    return Internal(std::string("cannot write the checkpoint: ") + e.what_without_backtrace());
  }
  json state = {{"epoch", epoch_},         {"batch", batch_},
                {"step", step_},           {"counters", epoch_counters_.ToJson()},
                {"history", history_},     {"last_eval", last_eval_},
                {"best", best_ ? json(*best_) : json()}, {"bad_epochs", bad_epochs_},
                {"train_seconds", train_seconds_}, {"tokens_seen", tokens_seen_},
                {"labels", labels_},       {"total_steps", total_steps_},
                {"best_epoch", best_epoch_}, {"best_eval", best_eval_}};
  MLAAS_RETURN_IF_ERROR(WriteFileAtomic(incoming / "state.json", state.dump()));
  // current -> previous, incoming -> current: at every moment one complete checkpoint exists.
  fs::remove_all(previous, ec);
  if (fs::exists(current)) fs::rename(current, previous, ec);
  if (ec) return Internal("cannot rotate checkpoints: " + ec.message());
  fs::rename(incoming, current, ec);
  if (ec) return Internal("cannot rotate checkpoints: " + ec.message());
  fs::remove_all(previous, ec);
  if (cb_.checkpointed) return cb_.checkpointed(current, step_);
  return Status::Ok();
}

Result<bool> Session::LoadCheckpoint() {
  fs::path dir;
  for (const char* name : {"current", "previous"}) {
    if (fs::exists(in_.checkpoint_dir / name / "state.json")) {
      dir = in_.checkpoint_dir / name;
      break;
    }
  }
  if (dir.empty()) return false;
  auto text = ReadFile(dir / "state.json", 256u << 20);
  if (!text) return text.error();
  json state = json::parse(*text, nullptr, false);
  if (state.is_discarded()) return Internal("the checkpoint's state.json is corrupt");
  if (state.value("labels", std::vector<std::string>{}) != labels_ || state.value("total_steps", int64_t{-1}) != total_steps_) {
    Log("warn", "the checkpoint does not match this run's data; starting over");
    return false;
  }
  if (static_) {
    MLAAS_ASSIGN_OR_RETURN(nn::StaticEmbedding saved, nn::LoadStaticEmbedding(dir, "checkpoint"));
    if (!saved->embedding->weight.sizes().equals(static_->embedding->weight.sizes()))
      return Internal("the checkpoint's weights do not match the model");
    torch::NoGradGuard no_grad;
    static_->embedding->weight.copy_(saved->embedding->weight);
  } else {
    MLAAS_RETURN_IF_ERROR(nn::LoadWeights(*model_, dir));
  }
  try {
    torch::load(*optimizer_, (dir / "optimizer.pt").string());
    torch::Tensor rng;
    torch::load(rng, (dir / "rng.pt").string());
    {
      std::lock_guard<std::mutex> lock(dropout_gen_.mutex());
      dropout_gen_.set_state(rng);
    }
    best_epoch_ = state.value("best_epoch", int64_t{0});
    best_eval_ = state.value("best_eval", json::object());
    if (best_epoch_ > 0 && spec_.load_best_model_at_end) {
      torch::load(best_weights_, (dir / "best.pt").string());
      if (best_weights_.size() != ModelState().size()) return Internal("the checkpoint's best weights do not match the model");
    }
  } catch (const c10::Error& e) {
    return Internal(std::string("cannot read the checkpoint: ") + e.what_without_backtrace());
  }
  epoch_ = state["epoch"];
  batch_ = state["batch"];
  step_ = state["step"];
  epoch_counters_.FromJson(state["counters"]);
  history_ = state["history"];
  last_eval_ = state["last_eval"];
  if (!state["best"].is_null()) best_ = state["best"].get<double>();
  bad_epochs_ = state["bad_epochs"];
  train_seconds_ = state["train_seconds"];
  tokens_seen_ = state["tokens_seen"];
  return true;
}

Result<json> Session::Run() {
  const auto started = Clock::now();
  MLAAS_RETURN_IF_ERROR(Prepare());
  threads_ = nn::ConfigureThreads(spec_.threads > 0 ? spec_.threads
                                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  nn::UseCachingCpuAllocator();
  MLAAS_RETURN_IF_ERROR(BuildModel());

  // Tokenize both splits.
  std::map<std::string, int64_t> label_ids;
  for (size_t i = 0; i < labels_.size(); ++i) label_ids[labels_[i]] = static_cast<int64_t>(i);
  const size_t total = in_.train.size() + in_.eval.size();
  auto progress = [&](size_t done) {
    if (cb_.progress) {
      TrainProgress p;
      p.fraction = 0.02 * static_cast<double>(done) / static_cast<double>(std::max<size_t>(1, total));
      p.epochs = spec_.epochs;
      p.message = "tokenizing: " + std::to_string(done) + " of " + std::to_string(total) + " examples";
      cb_.progress(p);
    }
    return !StopRequested();
  };
  // A static embedding model sums the text's own tokens: no [CLS]/[SEP] (serving drops them too).
  const bool specials = !static_;
  MLAAS_ASSIGN_OR_RETURN(train_, Tokenize(in_.train, spec_, *tokenizer_, max_length_, specials, label_ids, progress));
  MLAAS_ASSIGN_OR_RETURN(eval_, Tokenize(in_.eval, spec_, *tokenizer_, max_length_, specials, label_ids,
                                         [&](size_t d) { return progress(in_.train.size() + d); }));
  for (const auto& e : train_) train_tokens_ += static_cast<int64_t>(e.ids.size() + e.ids2.size());
  for (const auto& e : eval_) eval_tokens_ += static_cast<int64_t>(e.ids.size() + e.ids2.size());
  if (spec_.objective == Objective::kSentenceEmbedding && train_.size() < 2)
    return InvalidArgument("in-batch negatives need at least two training pairs", "dataset.path");
  if (static_ && from_scratch_) {  // weighted by the training documents: the pairs' distinct positives
    std::set<std::vector<int32_t>> distinct;
    std::vector<std::vector<int64_t>> documents;
    for (const auto& e : train_)
      if (distinct.insert(e.ids2).second) documents.emplace_back(e.ids2.begin(), e.ids2.end());
    MLAAS_RETURN_IF_ERROR(static_->InitFromDocuments(documents, spec_.seed, "dataset.path"));
  }
  if (spec_.load_best_model_at_end && eval_.empty())
    Log("warn", "load_best_model_at_end: no held-out examples, the last epoch is saved");

  const int64_t batches = (static_cast<int64_t>(train_.size()) + spec_.batch_size - 1) / spec_.batch_size;
  steps_per_epoch_ = (batches + spec_.gradient_accumulation_steps - 1) / spec_.gradient_accumulation_steps;
  total_steps_ = steps_per_epoch_ * spec_.epochs;
  if (spec_.max_steps > 0) total_steps_ = std::min(total_steps_, spec_.max_steps);
  BuildOptimizer();

  std::unique_lock<std::timed_mutex> exclusive(TrainingMutex(), std::try_to_lock);
  if (!exclusive.owns_lock()) {
    Log("info", "waiting for another training task of this process to finish");
    while (!exclusive.try_lock_for(std::chrono::milliseconds(500))) {
      if (StopRequested()) return Cancelled("cancelled while waiting for another training task");
      if (cb_.progress) {
        TrainProgress p;
        p.fraction = 0.02;
        p.epochs = spec_.epochs;
        p.message = "waiting for another training task of this process to finish";
        cb_.progress(p);
      }
    }
  }
  dropout_gen_ = at::make_generator<at::CPUGeneratorImpl>(spec_.seed);  // restored from a checkpoint below
  if (model_) model_->SetDropoutGenerator(dropout_gen_);
  if (!in_.checkpoint_dir.empty()) {
    MLAAS_ASSIGN_OR_RETURN(bool resumed, LoadCheckpoint());
    if (resumed) {
      resumed_from_step_ = step_;
      Log("info", "resuming from the checkpoint at epoch " + std::to_string(epoch_ + 1) + ", step " + std::to_string(step_));
    }
  }
  Log("info", "training " + std::string(ObjectiveName(spec_.objective)) + ": " + std::to_string(train_.size()) +
                  " examples (" + std::to_string(eval_.size()) + " held out), " + std::to_string(spec_.epochs) +
                  " epochs of " + std::to_string(steps_per_epoch_) + " steps, " + std::to_string(threads_) +
                  " threads on " + device_.str());

  Net().train();
  const auto loop_start = Clock::now();
  const double seconds_before = train_seconds_;
  const int64_t tokens_before = tokens_seen_;
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(Clock::now() - loop_start).count(); };
  int64_t since_checkpoint = 0;
  bool done = step_ >= total_steps_;
  for (; epoch_ < spec_.epochs && !done; ++epoch_) {
    auto plan = MakeBatches(train_, spec_.batch_size, spec_.seed, epoch_, /*shuffle=*/true);
    const int64_t n = static_cast<int64_t>(plan.size());
    int64_t micro = 0;
    for (; batch_ < n; ++batch_) {
      // Stop only at optimizer-step boundaries, so a checkpoint never holds half a step.
      if (micro == 0 && StopRequested()) {
        train_seconds_ = elapsed();
        if (since_checkpoint > 0 && !in_.checkpoint_dir.empty()) MLAAS_RETURN_IF_ERROR(SaveCheckpoint());
        return Cancelled("training stopped at epoch " + std::to_string(epoch_ + 1) + ", step " + std::to_string(step_));
      }
      Batch b = MakeBatch(train_, plan[static_cast<size_t>(batch_)], Mix(Mix(spec_.seed, static_cast<uint64_t>(epoch_)), static_cast<uint64_t>(batch_)));
      Counters step_counters;
      torch::Tensor loss = Step(b, step_counters);
      if (spec_.gradient_accumulation_steps > 1) loss = loss / static_cast<double>(spec_.gradient_accumulation_steps);
      loss.backward();
      epoch_counters_.loss_sum += step_counters.loss_sum;
      epoch_counters_.weight += step_counters.weight;
      epoch_counters_.correct += step_counters.correct;
      epoch_counters_.total += step_counters.total;
      tokens_seen_ += b.tokens;
      ++micro;
      if (micro < spec_.gradient_accumulation_steps && batch_ + 1 < n) continue;
      micro = 0;
      if (spec_.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params_, spec_.max_grad_norm);
      const double lr = LearningRate(step_);
      for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
      optimizer_->step();
      optimizer_->zero_grad();
      ++step_;
      ++since_checkpoint;
      if (cb_.progress) {
        TrainProgress p;
        p.epoch = epoch_ + 1;
        p.epochs = spec_.epochs;
        p.step = step_;
        p.total_steps = total_steps_;
        p.fraction = 0.02 + 0.97 * static_cast<double>(step_) / static_cast<double>(std::max<int64_t>(1, total_steps_));
        p.loss = step_counters.weight > 0 ? step_counters.loss_sum / step_counters.weight : 0.0;
        p.learning_rate = lr;
        const double secs = elapsed() - seconds_before - eval_seconds_;
        p.tokens_per_s = secs > 0 ? static_cast<double>(tokens_seen_ - tokens_before) / secs : 0.0;
        p.message = "epoch " + std::to_string(epoch_ + 1) + "/" + std::to_string(spec_.epochs) + ", step " +
                    std::to_string(step_) + "/" + std::to_string(total_steps_);
        p.history = history_;
        cb_.progress(p);
      }
      if (step_ >= total_steps_) {
        done = true;
        ++batch_;
        break;
      }
      if (spec_.checkpoint_steps > 0 && step_ % spec_.checkpoint_steps == 0 && !in_.checkpoint_dir.empty()) {
        ++batch_;  // the checkpoint resumes after this batch
        train_seconds_ = elapsed();
        MLAAS_RETURN_IF_ERROR(SaveCheckpoint());
        --batch_;
        since_checkpoint = 0;
      }
    }

    // End of the epoch (or of max_steps): train metrics, evaluation, early stopping.
    const Counters& c = epoch_counters_;
    const double train_loss = c.weight > 0 ? c.loss_sum / c.weight : 0.0;
    auto push = [&](const std::string& k, json v) { history_[k].push_back(std::move(v)); };
    push("epoch", epoch_ + 1);
    push("loss", train_loss);
    const double acc = c.total ? static_cast<double>(c.correct) / static_cast<double>(c.total) : 0.0;
    if (spec_.objective == Objective::kTextClassification) push("accuracy", acc);
    if (spec_.objective == Objective::kMaskedLm) {
      push("perplexity", std::exp(std::min(train_loss, 50.0)));
      push("masked_accuracy", acc);
    }
    if (spec_.objective == Objective::kSentenceEmbedding) push("in_batch_accuracy", acc);
    push("learning_rate", LearningRate(std::max<int64_t>(0, step_ - 1)));
    const auto eval_start = Clock::now();
    MLAAS_ASSIGN_OR_RETURN(json ev, Evaluate());
    eval_seconds_ += std::chrono::duration<double>(Clock::now() - eval_start).count();
    for (auto it = ev.begin(); it != ev.end(); ++it) {
      if (it.value().is_number() && it.key() != "masked_tokens") push("eval_" + it.key(), it.value());
    }
    if (!ev.empty()) last_eval_ = ev;
    std::string line = "epoch " + std::to_string(epoch_ + 1) + ": loss " + std::to_string(train_loss);
    if (ev.contains("loss")) line += ", eval_loss " + std::to_string(ev["loss"].get<double>());
    for (const char* k : {"accuracy", "masked_accuracy", "retrieval_accuracy"}) {
      if (ev.contains(k)) line += std::string(", eval_") + k + " " + std::to_string(ev[k].get<double>());
    }
    Log("info", line);
    epoch_counters_ = Counters();
    batch_ = 0;
    if ((spec_.early_stopping.patience > 0 || spec_.load_best_model_at_end) && !ev.empty()) {
      const std::string metric = spec_.early_stopping.metric;
      const std::string key = metric.rfind("eval_", 0) == 0 ? metric.substr(5) : metric;
      if (ev.contains(key) && ev[key].is_number()) {
        double v = ev[key];
        const bool better = !best_ || (LowerIsBetter(metric) ? v < *best_ - spec_.early_stopping.min_delta
                                                             : v > *best_ + spec_.early_stopping.min_delta);
        if (better) {
          best_ = v;
          bad_epochs_ = 0;
          if (spec_.load_best_model_at_end) {
            best_epoch_ = epoch_ + 1;
            best_eval_ = ev;
            KeepBestWeights();
          }
        } else if (++bad_epochs_ >= spec_.early_stopping.patience && spec_.early_stopping.patience > 0) {
          Log("info", "early stopping: " + metric + " has not improved for " + std::to_string(bad_epochs_) + " epochs");
          stopped_early_ = true;
          done = true;
        }
      }
    }
    if (!in_.checkpoint_dir.empty() && !done) {
      ++epoch_;  // the checkpoint resumes at the next epoch
      train_seconds_ = elapsed();
      MLAAS_RETURN_IF_ERROR(SaveCheckpoint());
      --epoch_;
      since_checkpoint = 0;
    }
  }
  train_seconds_ = elapsed();
  if (spec_.load_best_model_at_end && best_epoch_ > 0) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> state = ModelState();
    for (size_t i = 0; i < state.size(); ++i) state[i].copy_(best_weights_[i]);
    last_eval_ = best_eval_;
    Log("info", "keeping epoch " + std::to_string(best_epoch_) + ", the best by " + spec_.early_stopping.metric);
  }

  // The trained model directory.
  std::error_code ec;
  fs::create_directories(in_.output_dir, ec);
  if (ec) return Internal("cannot create the output directory: " + ec.message());
  std::optional<nn::EmbeddingProjection> projection;
  if (spec_.whitening > 0) {
    // A projection that cannot be fitted (embeddings without variance) does not cost the
    // trained encoder: it is saved without one, and the evaluation says why.
    auto fitted = FitProjection();
    if (fitted.has_value()) {
      projection = std::move(*fitted);
    } else if (fitted.error().code() == StatusCode::kCancelled) {
      return fitted.error();
    } else {
      Log("warning", "no whitening projection: " + fitted.error().message());
      last_eval_["whitening_error"] = fitted.error().message();
    }
  }
  Net().eval();
  if (static_) {
    MLAAS_RETURN_IF_ERROR(nn::SaveStaticEmbedding(*static_, in_.output_dir));
  } else {
    MLAAS_RETURN_IF_ERROR(nn::SaveModelDir(*model_, in_.output_dir));
  }
  if (projection) MLAAS_RETURN_IF_ERROR(nn::SaveEmbeddingProjection(in_.output_dir, *projection));
  if (spec_.objective == Objective::kSentenceEmbedding) {  // how its embeddings compare, as sentence-transformers records it
    MLAAS_RETURN_IF_ERROR(nn::SaveSimilarity(in_.output_dir, similarity_));
  }
  // The tokenizer keeps the training length when it is below the model's: prediction then
  // truncates as training did (tokenizer.json's "truncation", as transformers saves it).
  const int64_t model_limit = static_ ? nn::kStaticEmbeddingMaxTokens : nn::MaxInputTokens(model_->config());
  if (static_cast<int64_t>(max_length_) < model_limit) {
    tokenizers::TruncationParams trunc;
    trunc.max_length = max_length_;
    tokenizer_->set_truncation(trunc);
  } else {
    tokenizer_->set_truncation(std::nullopt);
  }
  for (const auto& [name, content] : tokenizers::TokenizerFiles(*tokenizer_)) {
    MLAAS_RETURN_IF_ERROR(WriteFileAtomic(in_.output_dir / name, content));
  }

  int64_t parameters = 0;
  for (const auto& p : Net().parameters()) parameters += p.numel();
  const double loop_seconds = train_seconds_ - seconds_before - eval_seconds_;
  json stats = {{"device", device_.str()},
                {"threads", threads_},
                {"steps", step_},
                {"epochs_run", history_.contains("loss") ? history_["loss"].size() : 0},
                {"train_seconds", train_seconds_},
                {"tokens_per_s", loop_seconds > 0 ? static_cast<double>(tokens_seen_ - tokens_before) / loop_seconds : 0.0},
                {"stopped_early", stopped_early_},
                {"wall_seconds", std::chrono::duration<double>(Clock::now() - started).count()}};
  if (resumed_from_step_ >= 0) stats["resumed_from_step"] = resumed_from_step_;
  if (spec_.load_best_model_at_end && best_epoch_ > 0) {
    stats["best_epoch"] = best_epoch_;
    stats["best_metric"] = {{"name", spec_.early_stopping.metric}, {"value", *best_}};
  }
  json dataset = {{"samples_train", train_.size()},
                  {"samples_test", eval_.size()},
                  {"tokens", train_tokens_},
                  {"tokens_test", eval_tokens_},
                  {"rows", in_.read_stats.rows},
                  {"skipped_rows", in_.read_stats.skipped},
                  {"max_length", max_length_}};
  if (in_.augmented > 0) dataset["augmented"] = in_.augmented;
  if (!labels_.empty()) dataset["labels"] = labels_;
  json model = {{"objective", std::string(ObjectiveName(spec_.objective))},
                {"parameters", parameters},
                {"from_scratch", from_scratch_}};
  if (!from_scratch_ && !static_) {
    model["newly_initialized"] = initialized_head_;
    model["unused_checkpoint_weights"] = unused_weights_;
  }
  if (static_) {
    const nn::StaticEmbeddingConfig& c = static_->config();
    model.update({{"model_type", "static-embedding"}, {"architecture", "StaticEmbedding"}, {"layers", 0},
                  {"hidden_size", c.hidden_size}, {"vocab_size", c.vocab_size}});
  } else {
    const nn::ModelConfig& c = model_->config();
    model.update({{"model_type", std::string(nn::ArchitectureName(c.architecture))},
                  {"architecture", nn::ArchitectureClassName(c.architecture, model_->objective())},
                  {"layers", c.num_hidden_layers},
                  {"hidden_size", c.hidden_size},
                  {"vocab_size", c.vocab_size}});
  }
  return json{{"history", history_}, {"evaluation", last_eval_}, {"dataset", dataset}, {"stats", stats}, {"model", model}};
}

}  // namespace

Result<json> RunTraining(const TrainInputs& inputs, const TrainCallbacks& callbacks) {
  try {
    Session session(inputs, callbacks);
    return session.Run();
  } catch (const c10::Error& e) {
    return Internal(std::string("training failed: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("not enough memory for this model and batch size");
  }
}

}  // namespace mlaas::train
