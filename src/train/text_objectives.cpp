// The text objectives: text classification, token classification, masked-LM, causal-LM (on the
// GPT-2 decoder) and sentence embeddings, on a transformer (or, for sentence embeddings, a static embedding model). What they share
// — the tokenizer, the model, tokenized splits, padded batches, saving — is TextObjective;
// each objective adds its batches, loss, metrics and evaluation.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "common/file_util.h"
#include "common/text.h"
#include "nn/embedding_projection.h"
#include "nn/model.h"
#include "nn/static_embedding.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/trainer.h"
#include "predict/answer_spans.h"
#include "train/metrics.h"
#include "train/strategy.h"
#include "train/text_data.h"

namespace mlaas::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int64_t kIgnore = -100;

// A padded batch on the run's device.
struct Batch {
  std::vector<size_t> idx;    // the examples, in the batch's order
  nn::EncoderInput a, b;      // b: sentence-embedding positives
  nn::EncoderInput c;         // sentence-embedding hard negatives (the rows that have one; undefined: none)
  torch::Tensor labels;       // classification [B], masked-lm or token classification [B, T] (kIgnore elsewhere)
  int64_t tokens = 0;         // non-padding tokens
  int64_t size = 0;
};

// The similarity a starting model records: dot, or cosine for anything else (an unreadable record too).
std::string SavedSimilarity(const fs::path& dir) {
  auto s = nn::ReadSimilarity(dir, "model.path");
  return s.has_value() && *s == "dot" ? "dot" : "cosine";
}

class TextObjective : public ObjectiveStrategy {
 public:
  explicit TextObjective(const StrategyEnv& env) : env_(env), in_(env.in), spec_(env.spec) {}

  Status Prepare() override;
  torch::nn::Module& Net() override {
    if (static_) return *static_.ptr();
    return *model_.ptr();
  }
  void SetRandomGenerator(at::Generator gen) override {
    if (model_) model_->SetDropoutGenerator(gen);
  }
  // Not on biases and LayerNorm weights (transformers' convention), whatever the architecture
  // calls its LayerNorms.
  bool Decays(const std::string& name, const torch::Tensor&) const override {
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) return false;
    return name.find("LayerNorm") == std::string::npos && name.find("layer_norm") == std::string::npos &&
           name.find(".ln_") == std::string::npos;  // GPT-2's ln_1, ln_2, ln_f
  }
  size_t TrainSize() const override { return train_.size(); }
  size_t EvalSize() const override { return eval_.size(); }
  Plan Batches(int64_t epoch) override { return MakeBatches(train_, spec_.batch_size, spec_.seed, epoch, /*shuffle=*/true); }
  torch::Tensor TrainStep(const Plan& plan, int64_t epoch, int64_t batch, Counters& c) override {
    Batch b = MakeBatch(train_, plan[static_cast<size_t>(batch)],
                        Mix(Mix(spec_.seed, static_cast<uint64_t>(epoch)), static_cast<uint64_t>(batch)));
    c.units += b.tokens;
    return Loss(b, c);
  }
  std::vector<std::string> Labels() const override { return labels_; }
  Status SaveWeights(const fs::path& dir) override {
    return static_ ? nn::SaveStaticEmbedding(*static_, dir) : nn::SaveWeights(*model_, dir);
  }
  Status LoadWeights(const fs::path& dir) override;
  Status Finish(const fs::path& dir, json& evaluation) override;
  json DatasetReport() const override;
  json ModelReport() const override;
  std::string_view Unit() const override { return "tokens"; }

 protected:
  // The objective's batch of `idx` (random draws from `seed`) and its loss, adding to `c`.
  virtual Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t seed) const;
  virtual torch::Tensor Loss(const Batch& b, Counters& c) = 0;
  // The head the transformer gets for this objective.
  virtual nn::Objective Head() const = 0;
  // Writes what the objective adds to the model directory (after the model).
  virtual Status FinishExtra(const fs::path& /*dir*/, json& /*evaluation*/) { return Status::Ok(); }
  // Causal-LM: texts are tokenized whole, without special tokens, and regrouped into blocks.
  bool causal() const { return spec_.objective == Objective::kCausalLm; }
  std::vector<TokenizedExample> GroupIntoBlocks(const std::vector<TokenizedExample>& texts) const;

  Status BuildModel();
  Status BuildStaticModel();
  // The held-out split through Loss (in evaluation mode), batch i's random draws seeded by
  // seed_of(i); Cancelled when stopped.
  Result<Counters> EvaluateLoss(const std::function<uint64_t(size_t)>& seed_of);
  // The held-out split in length order through the model (evaluation mode, no gradients): each
  // batch with its logits to `each`, then training mode again; Cancelled when stopped.
  Status ForEachEvalBatch(const std::function<void(const Batch&, const torch::Tensor&)>& each);
  static double Perplexity(double loss) { return std::exp(std::min(loss, 50.0)); }
  nn::EncoderInput Encode(const std::vector<const std::vector<int32_t>*>& ids,
                          const std::vector<const std::vector<uint8_t>*>& types, int64_t* tokens) const;
  void Log(std::string_view level, const std::string& m) const {
    if (env_.log) env_.log(level, m);
  }
  bool StopRequested() const { return env_.stop && env_.stop(); }

  const StrategyEnv& env_;
  const TrainInputs& in_;
  const TrainSpec& spec_;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer_;
  std::vector<std::string> labels_;
  int64_t pad_id_ = 0, mask_id_ = -1, eos_id_ = -1, vocab_ = 0;
  std::vector<TokenizedExample> train_, eval_;
  int64_t train_tokens_ = 0, eval_tokens_ = 0;
  size_t max_length_ = 0;
  nn::TransformerModel model_{nullptr};
  nn::StaticEmbedding static_{nullptr};  // set instead of model_ for a static embedding model
  std::string similarity_ = "cosine";      // sentence-embedding: the request's, or the starting model's
  bool from_scratch_ = false;
  std::vector<std::string> initialized_head_;
  std::vector<std::string> unused_weights_;  // checkpoint tensors the model does not use
};

Status TextObjective::Prepare() {
  auto tok = tokenizers::Tokenizer::Load(in_.tokenizer);
  if (!tok) return InvalidArgument("cannot load the tokenizer: " + tok.error().message(), "tokenizer.path");
  tokenizer_ = std::move(*tok);
  if (auto pad = tokenizer_->PadToken()) pad_id_ = pad->id;
  if (auto mask = tokenizer_->MaskToken()) mask_id_ = mask->id;
  if (auto eos = tokenizer_->EosToken()) eos_id_ = eos->id;
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
  if (spec_.objective == Objective::kNextSentencePrediction) labels_ = {std::string(kIsNext), std::string(kNotNext)};
  if (spec_.objective == Objective::kTokenClassification) {
    std::set<std::string> names;
    for (const auto* split : {&in_.train, &in_.eval})
      for (const auto& e : *split) names.insert(e.tags.begin(), e.tags.end());
    labels_.assign(names.begin(), names.end());
  }
  MLAAS_RETURN_IF_ERROR(BuildModel());

  // Tokenize both splits.
  std::map<std::string, int64_t> label_ids;
  for (size_t i = 0; i < labels_.size(); ++i) label_ids[labels_[i]] = static_cast<int64_t>(i);
  const size_t total = in_.train.size() + in_.eval.size();
  auto progress = [&](size_t done) {
    if (!env_.preparing) return !StopRequested();
    return env_.preparing(static_cast<double>(done) / static_cast<double>(std::max<size_t>(1, total)),
                          "tokenizing: " + std::to_string(done) + " of " + std::to_string(total) + " examples");
  };
  // A static embedding model sums the text's own tokens: no [CLS]/[SEP] (serving drops them too);
  // a causal LM reads texts as they are, whole, each followed by the end-of-text token.
  const bool specials = !static_ && !causal();
  const size_t limit = causal() ? size_t{1} << 30 : max_length_;
  if (spec_.objective == Objective::kQuestionAnswering) {
    const size_t stride = std::min<size_t>(static_cast<size_t>(spec_.doc_stride), max_length_ / 4);
    MLAAS_ASSIGN_OR_RETURN(train_, TokenizeQuestions(in_.train, spec_, *tokenizer_, max_length_, stride, progress));
    MLAAS_ASSIGN_OR_RETURN(eval_, TokenizeQuestions(in_.eval, spec_, *tokenizer_, max_length_, stride,
                                                    [&](size_t d) { return progress(in_.train.size() + d); }));
  } else {
    MLAAS_ASSIGN_OR_RETURN(train_, Tokenize(in_.train, spec_, *tokenizer_, limit, specials, label_ids, progress));
    MLAAS_ASSIGN_OR_RETURN(eval_, Tokenize(in_.eval, spec_, *tokenizer_, limit, specials, label_ids,
                                           [&](size_t d) { return progress(in_.train.size() + d); }));
  }
  if (causal()) {
    train_ = GroupIntoBlocks(train_);
    eval_ = GroupIntoBlocks(eval_);
    if (train_.empty()) return InvalidArgument("the training texts hold fewer than two tokens", "dataset.path");
  }
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
  return Status::Ok();
}


Status TextObjective::BuildModel() {
  similarity_ = spec_.similarity.value_or(in_.model_dir ? SavedSimilarity(*in_.model_dir) : "cosine");
  if (similarity_ == "dot" && spec_.whitening > 0)
    return InvalidArgument("whitening is fitted and measured for cosine similarity, not dot (the starting model's)",
                           "model_train.whitening");
  // As ScratchConfig reads the block: a preset first.
  if (in_.model_dir ? nn::IsStaticEmbeddingDir(*in_.model_dir)
                    : !in_.model_block.contains("preset") && nn::IsStaticEmbeddingConfig(in_.model_block.value("config", json())))
    return BuildStaticModel();
  const nn::Objective objective = Head();
  const std::string model_field = in_.model_dir ? "model.path" : "model.objective";
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
    if (objective == nn::Objective::kTextClassification || objective == nn::Objective::kTokenClassification) {
      const auto own = nn::ObjectiveFromArchitectures(config);
      std::set<std::string> theirs(config.id2label.begin(), config.id2label.end());
      std::set<std::string> ours(labels_.begin(), labels_.end());
      if (own == objective && load_weights && theirs == ours) {
        labels_ = config.id2label;  // keep the model's class ids
      } else if (own == objective && load_weights && !config.id2label.empty()) {
        return InvalidArgument("the model classifies into " + std::to_string(theirs.size()) +
                                   " labels that differ from the dataset's " + std::to_string(ours.size()) +
                                   "; start from its encoder (a masked-lm or no-objective model) instead",
                               objective == nn::Objective::kTokenClassification ? "dataset.loader_kwargs.tags_column"
                                                                                : "dataset.loader_kwargs.label_column");
      }
      config.id2label = labels_;
      if (objective == nn::Objective::kTextClassification) config.problem_type = "single_label_classification";
    }
    if (objective == nn::Objective::kNextSentencePrediction) config.id2label = labels_;
  } else {
    auto c = nn::ScratchConfig(in_.model_block, vocab_, pad_id_, labels_,
                               eos_id_ >= 0 ? std::optional<int64_t>(eos_id_) : std::nullopt);
    if (!c) return c.error();
    config = *c;
  }
  MLAAS_RETURN_IF_ERROR(nn::CheckArchitectureObjective(config.architecture, objective, model_field));
  if (spec_.classifier_pooling) config.classifier_pooling = *spec_.classifier_pooling;
  MLAAS_RETURN_IF_ERROR(CheckTrainingBytes(nn::ParameterBytes(config, objective), in_.max_model_bytes));
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
    // A sequence classifier and a token classifier both name their head "classifier": starting
    // one from the other keeps the encoder and gives the head a fresh start.
    const auto own = nn::ObjectiveFromArchitectures(config);
    options.fresh_head = own && *own != objective &&
                         (*own == nn::Objective::kTextClassification || *own == nn::Objective::kTokenClassification);
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
  model_->to(env_.device);
  return Status::Ok();
}

// A static embedding model trains as an embedding model only; from scratch, its weights are
// fitted to the training documents once they are tokenized (Run).
Status TextObjective::BuildStaticModel() {
  MLAAS_RETURN_IF_ERROR(CheckStaticEmbeddingSpec(spec_));
  std::string field = "model.path";
  if (in_.model_dir) {
    MLAAS_ASSIGN_OR_RETURN(const auto c, nn::ReadStaticEmbeddingConfig(*in_.model_dir, field));
    MLAAS_RETURN_IF_ERROR(CheckTrainingBytes(nn::ParameterBytes(c), in_.max_model_bytes));
    MLAAS_ASSIGN_OR_RETURN(static_, nn::LoadStaticEmbedding(*in_.model_dir, field, &c));
  } else {
    field = "model.config";
    json config = in_.model_block["config"];
    // The tokenizer decides the vocabulary; a config may only ask for a larger one.
    auto v = config.find("vocab_size");
    if (v == config.end() || (v->is_number_integer() && v->get<int64_t>() < vocab_)) config["vocab_size"] = vocab_;
    MLAAS_ASSIGN_OR_RETURN(nn::StaticEmbeddingConfig c, nn::ParseStaticEmbeddingConfig(config, field));
    MLAAS_RETURN_IF_ERROR(CheckTrainingBytes(nn::ParameterBytes(c), in_.max_model_bytes));
    static_ = nn::StaticEmbedding(c);
    from_scratch_ = true;
  }
  if (vocab_ > static_->config().vocab_size) {
    return InvalidArgument("the tokenizer has " + std::to_string(vocab_) + " tokens but the model's vocabulary only " +
                               std::to_string(static_->config().vocab_size),
                           "tokenizer.path");
  }
  max_length_ = static_cast<size_t>(std::min(spec_.max_length.value_or(nn::kStaticEmbeddingMaxTokens), nn::kStaticEmbeddingMaxTokens));
  static_->to(env_.device);
  return Status::Ok();
}

nn::EncoderInput TextObjective::Encode(const std::vector<const std::vector<int32_t>*>& ids,
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
  in.input_ids = ToDevice(input, env_.device);
  if (padded) in.attention_mask = ToDevice(mask, env_.device);
  // Token types where the model has more than one (BERT): a RoBERTa's single type is 0 whatever
  // the tokenizer's post-processing gives a pair's second text, as serving feeds it.
  if (model_ && model_->config().type_vocab_size > 1) in.token_type_ids = ToDevice(type, env_.device);
  return in;
}


Batch TextObjective::MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t) const {
  Batch b;
  b.idx = idx;
  b.size = static_cast<int64_t>(idx.size());
  std::vector<const std::vector<uint8_t>*> types;
  std::vector<const std::vector<int32_t>*> a;
  for (size_t i : idx) {
    types.push_back(&data[i].type_ids);
    a.push_back(&data[i].ids);
  }
  b.a = Encode(a, types, &b.tokens);
  return b;
}

Result<Counters> TextObjective::EvaluateLoss(const std::function<uint64_t(size_t)>& seed_of) {
  torch::NoGradGuard no_grad;
  SetTraining(false);
  Counters c;
  auto batches = MakeBatches(eval_, spec_.batch_size, spec_.seed, 0, /*shuffle=*/false);
  for (size_t i = 0; i < batches.size(); ++i) {
    if (StopRequested()) return Cancelled("cancelled");
    Loss(MakeBatch(eval_, batches[i], seed_of(i)), c);
  }
  SetTraining(true);
  return c;
}

Status TextObjective::ForEachEvalBatch(const std::function<void(const Batch&, const torch::Tensor&)>& each) {
  torch::NoGradGuard no_grad;
  SetTraining(false);
  auto batches = MakeBatches(eval_, spec_.batch_size, spec_.seed, 0, /*shuffle=*/false);
  for (size_t i = 0; i < batches.size(); ++i) {
    if (StopRequested()) return Cancelled("cancelled");
    Batch b = MakeBatch(eval_, batches[i], 0);
    each(b, model_->forward(b.a).logits);
  }
  SetTraining(true);
  return Status::Ok();
}

// run_clm's grouping: the texts' tokens, each text followed by the end-of-text token (when the
// tokenizer has one), concatenated and cut into blocks of max_length_ (the last may be
// shorter; one of a single token teaches nothing and is dropped).
std::vector<TokenizedExample> TextObjective::GroupIntoBlocks(const std::vector<TokenizedExample>& texts) const {
  std::vector<TokenizedExample> blocks;
  TokenizedExample block;
  const size_t size = std::max<size_t>(2, max_length_);
  auto push = [&](int32_t id) {
    block.ids.push_back(id);
    if (block.ids.size() == size) {
      block.type_ids.assign(size, 0);
      block.flags.assign(size, 0);
      blocks.push_back(std::move(block));
      block = TokenizedExample();
    }
  };
  for (const auto& t : texts) {
    for (int32_t id : t.ids) push(id);
    if (eos_id_ >= 0 && !t.ids.empty()) push(static_cast<int32_t>(eos_id_));
  }
  if (block.ids.size() >= 2) {
    block.type_ids.assign(block.ids.size(), 0);
    block.flags.assign(block.ids.size(), 0);
    blocks.push_back(std::move(block));
  }
  return blocks;
}

Status TextObjective::LoadWeights(const fs::path& dir) {
  if (!static_) return nn::LoadWeights(*model_, dir);
  MLAAS_ASSIGN_OR_RETURN(nn::StaticEmbedding saved, nn::LoadStaticEmbedding(dir, "checkpoint"));
  if (!saved->embedding->weight.sizes().equals(static_->embedding->weight.sizes()))
    return Internal("the checkpoint's weights do not match the model");
  torch::NoGradGuard no_grad;
  static_->embedding->weight.copy_(saved->embedding->weight);
  return Status::Ok();
}

Status TextObjective::Finish(const fs::path& dir, json&) {
  if (static_) {
    MLAAS_RETURN_IF_ERROR(nn::SaveStaticEmbedding(*static_, dir));
  } else {
    MLAAS_RETURN_IF_ERROR(nn::SaveModelDir(*model_, dir));
  }
  // The tokenizer keeps the training length when it is below the model's: prediction then
  // truncates as training did (tokenizer.json's "truncation", as transformers saves it).
  const int64_t model_limit = static_ ? nn::kStaticEmbeddingMaxTokens : nn::MaxInputTokens(model_->config());
  if (static_cast<int64_t>(max_length_) < model_limit && !causal()) {  // a prompt is never cut
    tokenizers::TruncationParams trunc;
    trunc.max_length = max_length_;
    tokenizer_->set_truncation(trunc);
  } else {
    tokenizer_->set_truncation(std::nullopt);
  }
  for (const auto& [name, content] : tokenizers::TokenizerFiles(*tokenizer_)) {
    MLAAS_RETURN_IF_ERROR(WriteFileAtomic(dir / name, content));
  }
  return Status::Ok();
}

json TextObjective::DatasetReport() const {
  json dataset = {{"samples_train", train_.size()},
                  {"samples_test", eval_.size()},
                  {"tokens", train_tokens_},
                  {"tokens_test", eval_tokens_},
                  {"rows", in_.read_stats.rows},
                  {"skipped_rows", in_.read_stats.skipped},
                  {"max_length", max_length_}};
  if (in_.augmented > 0) dataset["augmented"] = in_.augmented;
  if (!labels_.empty()) dataset["labels"] = labels_;
  return dataset;
}

json TextObjective::ModelReport() const {
  int64_t parameters = 0;
  for (const auto& p : static_ ? static_->parameters() : model_->parameters()) parameters += p.numel();
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
  return model;
}

// Text classification: cross-entropy over the classes; accuracy, macro-F1, per-class scores and
// the confusion matrix on the held-out split.
class TextClassification : public TextObjective {
 public:
  using TextObjective::TextObjective;
  void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, json)>& push) const override {
    push("accuracy", c.Accuracy());
  }
  std::vector<std::string> LoggedMetrics() const override { return {"accuracy"}; }
  Result<json> Evaluate() override {
    if (eval_.empty()) return json::object();
    Counters c;
    ConfusionMatrix cm(labels_.size());
    MLAAS_RETURN_IF_ERROR(ForEachEvalBatch([&](const Batch& b, const torch::Tensor& logits) {
      c.loss_sum += torch::nn::functional::cross_entropy(logits, b.labels).item<double>() * static_cast<double>(b.size);
      c.weight += static_cast<double>(b.size);
      auto pred = logits.argmax(1).cpu();
      auto truth = b.labels.cpu();
      for (int64_t k = 0; k < b.size; ++k) cm.Add(truth[k].item<int64_t>(), pred[k].item<int64_t>());
    }));
    json out = {{"loss", c.Loss()}};
    out.update(cm.ToJson(labels_));
    return out;
  }

 protected:
  nn::Objective Head() const override { return nn::Objective::kTextClassification; }
  Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t seed) const override {
    Batch b = TextObjective::MakeBatch(data, idx, seed);
    std::vector<int64_t> labels;
    for (size_t i : idx) labels.push_back(data[i].label);
    b.labels = ToDevice(torch::tensor(labels, torch::kLong), env_.device);
    return b;
  }
  torch::Tensor Loss(const Batch& b, Counters& c) override {
    torch::Tensor logits = model_->forward(b.a).logits;
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, b.labels);
    c.loss_sum += loss.item<double>() * static_cast<double>(b.size);
    c.weight += static_cast<double>(b.size);
    c.correct += logits.argmax(1).eq(b.labels).sum().item<int64_t>();
    c.total += b.size;
    return loss;
  }
};

// Token classification (NER): cross-entropy over each word's first token; on the held-out
// split, seqeval's entity-level precision, recall and F1 over the words (a word cut off by
// truncation counts as predicted "O"), per entity type, and the words' tag accuracy.
class TokenClassification : public TextObjective {
 public:
  using TextObjective::TextObjective;
  void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, json)>& push) const override {
    push("accuracy", c.Accuracy());
  }
  std::vector<std::string> LoggedMetrics() const override { return {"f1", "accuracy"}; }
  Result<json> Evaluate() override {
    if (eval_.empty()) return json::object();
    Counters c;
    EntityScorer scorer;
    MLAAS_RETURN_IF_ERROR(ForEachEvalBatch([&](const Batch& b, const torch::Tensor& logits) {
      Loss(b, logits, c);
      auto pred = logits.argmax(2).to(torch::kCPU).to(torch::kInt32).contiguous();
      const int64_t width = pred.size(1);
      const int32_t* p = pred.data_ptr<int32_t>();
      for (size_t r = 0; r < b.idx.size(); ++r) {
        const TokenizedExample& e = eval_[b.idx[r]];
        std::vector<std::string> truth, predicted;
        for (size_t w = 0; w < e.word_labels.size(); ++w) {
          truth.push_back(labels_[static_cast<size_t>(e.word_labels[w])]);
          const int32_t k = e.word_tokens[w];
          predicted.push_back(k < 0 ? "O" : labels_[static_cast<size_t>(p[static_cast<int64_t>(r) * width + k])]);
        }
        scorer.Add(truth, predicted);
      }
    }));
    json out = {{"loss", c.Loss()}};
    out.update(scorer.ToJson());
    return out;
  }

 protected:
  nn::Objective Head() const override { return nn::Objective::kTokenClassification; }
  Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t seed) const override {
    Batch b = TextObjective::MakeBatch(data, idx, seed);
    const int64_t width = b.a.input_ids.size(1);
    auto labels = torch::full({b.size, width}, kIgnore, torch::kLong);
    auto acc = labels.accessor<int64_t, 2>();
    for (size_t r = 0; r < idx.size(); ++r) {
      const auto& l = data[idx[r]].token_labels;
      for (size_t k = 0; k < l.size(); ++k) acc[static_cast<int64_t>(r)][static_cast<int64_t>(k)] = l[k];
    }
    b.labels = ToDevice(labels, env_.device);
    return b;
  }
  torch::Tensor Loss(const Batch& b, Counters& c) override { return Loss(b, model_->forward(b.a).logits, c); }
  torch::Tensor Loss(const Batch& b, const torch::Tensor& logits, Counters& c) {
    auto flat = logits.reshape({-1, logits.size(-1)});
    auto labels = b.labels.reshape({-1});
    const auto labelled = labels.ne(kIgnore);
    const int64_t n = labelled.sum().item<int64_t>();
    if (n == 0) return (flat.sum() * 0.0);  // every word cut off: nothing to learn, no NaN
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        flat, labels, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore));
    c.loss_sum += loss.item<double>() * static_cast<double>(n);
    c.weight += static_cast<double>(n);
    c.correct += flat.argmax(1).eq(labels).logical_and(labelled).sum().item<int64_t>();
    c.total += n;
    return loss;
  }
};

// Next-sentence prediction: BERT's NSP head (pooler -> cls.seq_relationship) classifying text
// pairs as is_next (class 0) or not_next; the metrics of text classification.
class NextSentencePrediction : public TextClassification {
 public:
  using TextClassification::TextClassification;

 protected:
  nn::Objective Head() const override { return nn::Objective::kNextSentencePrediction; }
};

// Extractive question answering (SQuAD v1): start and end cross-entropy over each window's
// tokens (a window without the whole answer points at [CLS], as run_qa trains); on the held-out
// questions, the best span over their windows (start + end logits, at most 30 tokens) against
// the gold answers: SQuAD's exact match and F1 (0..1).
class QuestionAnswering : public TextObjective {
 public:
  using TextObjective::TextObjective;
  void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, json)>& push) const override {
    push("accuracy", c.Accuracy());
  }
  std::vector<std::string> LoggedMetrics() const override { return {"exact_match", "f1"}; }
  Result<json> Evaluate() override {
    if (eval_.empty()) return json::object();
    Counters c;
    std::vector<std::vector<float>> starts(eval_.size()), ends(eval_.size());
    MLAAS_RETURN_IF_ERROR(ForEachEvalBatch([&](const Batch& b, const torch::Tensor& logits) {
      Loss(b, logits, c);
      auto host = logits.to(torch::kCPU).to(torch::kFloat32).contiguous();
      for (size_t r = 0; r < b.idx.size(); ++r) {
        const size_t n = eval_[b.idx[r]].ids.size();
        auto row = host[static_cast<int64_t>(r)];
        auto s = row.select(1, 0).contiguous(), e = row.select(1, 1).contiguous();
        starts[b.idx[r]].assign(s.data_ptr<float>(), s.data_ptr<float>() + n);
        ends[b.idx[r]].assign(e.data_ptr<float>(), e.data_ptr<float>() + n);
      }
    }));
    // Each question's windows, in order.
    std::map<int32_t, std::vector<size_t>> windows;
    for (size_t w = 0; w < eval_.size(); ++w) windows[eval_[w].example].push_back(w);
    double exact = 0, f1 = 0;
    for (const auto& [example, ws] : windows) {
      std::vector<predict::AnswerWindow> spans;
      for (size_t w : ws) {
        predict::AnswerWindow a{starts[w].data(), ends[w].data(), {}, std::nullopt};
        for (const auto& o : eval_[w].context_offsets)
          a.context_offsets.push_back(o == TokenizedExample::kNoOffset ? std::nullopt : std::optional(o));
        spans.push_back(std::move(a));
      }
      const TextExample& q = in_.eval[static_cast<size_t>(example)];
      auto best = predict::BestSpan(spans, kMaxAnswerTokens, predict::SpanScore::kLogitSum);
      const std::string answer = best ? predict::CodePointSlice(q.pair, best->start, best->end) : std::string();
      exact += predict::ExactMatch(answer, q.answers);
      f1 += predict::AnswerF1(answer, q.answers);
    }
    const double n = static_cast<double>(std::max<size_t>(1, windows.size()));
    return json{{"loss", c.Loss()}, {"exact_match", exact / n}, {"f1", f1 / n}, {"span_accuracy", c.Accuracy()},
                {"questions", windows.size()}, {"windows", eval_.size()}};
  }

 protected:
  static constexpr int64_t kMaxAnswerTokens = 30;
  nn::Objective Head() const override { return nn::Objective::kQuestionAnswering; }
  Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t seed) const override {
    Batch b = TextObjective::MakeBatch(data, idx, seed);
    std::vector<int64_t> positions;
    for (size_t i : idx) positions.insert(positions.end(), {data[i].start_position, data[i].end_position});
    b.labels = ToDevice(torch::tensor(positions, torch::kLong).view({b.size, 2}), env_.device);
    return b;
  }
  torch::Tensor Loss(const Batch& b, Counters& c) override { return Loss(b, model_->forward(b.a).logits, c); }
  torch::Tensor Loss(const Batch& b, const torch::Tensor& logits, Counters& c) {
    auto start = logits.select(2, 0), end = logits.select(2, 1);
    auto gold_start = b.labels.select(1, 0), gold_end = b.labels.select(1, 1);
    torch::Tensor loss = (torch::nn::functional::cross_entropy(start, gold_start) +
                          torch::nn::functional::cross_entropy(end, gold_end)) / 2;
    c.loss_sum += loss.item<double>() * static_cast<double>(b.size);
    c.weight += static_cast<double>(b.size);
    c.correct += start.argmax(1).eq(gold_start).logical_and(end.argmax(1).eq(gold_end)).sum().item<int64_t>();
    c.total += b.size;
    return loss;
  }
};

// Masked-LM: BERT's masking of a fraction of the tokens (or whole words); perplexity and
// masked-token accuracy.
class MaskedLm : public TextObjective {
 public:
  using TextObjective::TextObjective;
  void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, json)>& push) const override {
    push("perplexity", Perplexity(c.Loss()));
    push("masked_accuracy", c.Accuracy());
  }
  std::vector<std::string> LoggedMetrics() const override { return {"masked_accuracy"}; }
  Result<json> Evaluate() override {
    if (eval_.empty()) return json::object();
    MLAAS_ASSIGN_OR_RETURN(Counters c, EvaluateLoss([&](size_t i) { return Mix(spec_.seed ^ 0xE7A1ULL, i); }));
    // Held-out texts with no token to mask measure nothing: no loss of 0 and perplexity of 1 (a
    // sweep would rank that best).
    if (c.total == 0) return json{{"masked_tokens", 0}};
    return json{{"loss", c.Loss()},
                {"perplexity", Perplexity(c.Loss())},
                {"masked_accuracy", c.Accuracy()},
                {"masked_tokens", c.total}};
  }

 protected:
  nn::Objective Head() const override { return nn::Objective::kMaskedLm; }
  std::vector<int64_t> MaskTokens(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx,
                                  std::vector<std::vector<int32_t>>& ids, uint64_t seed) const;
  Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t seed) const override {
    Batch b;
    b.size = static_cast<int64_t>(idx.size());
    std::vector<const std::vector<uint8_t>*> types;
    for (size_t i : idx) types.push_back(&data[i].type_ids);
    std::vector<std::vector<int32_t>> ids;
    for (size_t i : idx) ids.push_back(data[i].ids);
    std::vector<int64_t> labels = MaskTokens(data, idx, ids, seed);
    std::vector<const std::vector<int32_t>*> ptrs;
    for (const auto& v : ids) ptrs.push_back(&v);
    b.a = Encode(ptrs, types, &b.tokens);
    b.labels = ToDevice(
        torch::from_blob(labels.data(), {b.size, static_cast<int64_t>(labels.size()) / b.size}, torch::kLong).clone(),
        env_.device);
    return b;
  }
  torch::Tensor Loss(const Batch& b, Counters& c) override {
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
};

// Causal-LM (GPT-2): each position predicts the next token; perplexity and next-token
// accuracy. The texts were grouped into blocks of max_length tokens (GroupIntoBlocks).
class CausalLm : public TextObjective {
 public:
  using TextObjective::TextObjective;
  void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, json)>& push) const override {
    push("perplexity", Perplexity(c.Loss()));
    push("accuracy", c.Accuracy());
  }
  std::vector<std::string> LoggedMetrics() const override { return {"perplexity"}; }
  Result<json> Evaluate() override {
    if (eval_.empty()) return json::object();
    MLAAS_ASSIGN_OR_RETURN(Counters c, EvaluateLoss([](size_t) { return uint64_t{0}; }));
    return json{{"loss", c.Loss()}, {"perplexity", Perplexity(c.Loss())}, {"accuracy", c.Accuracy()},
                {"predicted_tokens", c.total}};
  }
  Status Finish(const fs::path& dir, json& evaluation) override {
    MLAAS_RETURN_IF_ERROR(TextObjective::Finish(dir, evaluation));
    // What transformers' generate() reads beside config.json.
    const nn::ModelConfig& c = model_->config();
    json generation = {{"_from_model_config", true}, {"transformers_version", "4.30.0"}};
    if (c.bos_token_id) generation["bos_token_id"] = *c.bos_token_id;
    if (c.eos_token_id) generation["eos_token_id"] = *c.eos_token_id;
    return WriteFileAtomic(dir / "generation_config.json", generation.dump(2) + "\n");
  }

 protected:
  nn::Objective Head() const override { return nn::Objective::kCausalLm; }
  Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t seed) const override {
    Batch b = TextObjective::MakeBatch(data, idx, seed);
    // The next token of each position; kIgnore past a block's end (padding).
    const int64_t t = b.a.input_ids.size(1);
    std::vector<int64_t> labels(idx.size() * static_cast<size_t>(t), kIgnore);
    for (size_t r = 0; r < idx.size(); ++r) {
      const auto& ids = data[idx[r]].ids;
      for (size_t k = 0; k + 1 < ids.size(); ++k) labels[r * static_cast<size_t>(t) + k] = ids[k + 1];
    }
    b.labels = ToDevice(torch::tensor(labels, torch::kLong).view({b.size, t}), env_.device);
    return b;
  }
  torch::Tensor Loss(const Batch& b, Counters& c) override {
    torch::Tensor logits = model_->forward(b.a).logits;  // [B, T, V]
    torch::Tensor chosen = b.labels.ne(kIgnore);
    torch::Tensor predicted = logits.index({chosen});
    torch::Tensor targets = b.labels.index({chosen});
    torch::Tensor loss = torch::nn::functional::cross_entropy(predicted, targets);
    const int64_t n = targets.size(0);
    c.loss_sum += loss.item<double>() * static_cast<double>(n);
    c.weight += static_cast<double>(n);
    c.correct += predicted.argmax(1).eq(targets).sum().item<int64_t>();
    c.total += n;
    return loss;
  }
};

// BERT's masking: a fraction of the (non-special) tokens — or of whole words — is chosen;
// of those 80% become [MASK], 10% a random token and 10% stay. Returns the labels (the
// original id where chosen, kIgnore elsewhere), row-major [B, T] padded to the longest.
std::vector<int64_t> MaskedLm::MaskTokens(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx,
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


// Each anchor (row of `a`) against every positive: the fraction whose best match is its own.
double RetrievalAccuracy(const torch::Tensor& a, const torch::Tensor& p) {
  int64_t right = 0;
  for (int64_t s = 0; s < a.size(0); s += 1024) {
    torch::Tensor best = torch::matmul(a.slice(0, s, s + 1024), p.t()).argmax(1);
    right += best.eq(torch::arange(s, s + best.size(0), torch::kLong)).sum().item<int64_t>();
  }
  return a.size(0) > 0 ? static_cast<double>(right) / static_cast<double>(a.size(0)) : 0.0;
}

// Sentence embeddings: multiple-negatives ranking of each anchor against the batch's positives
// (and hard negatives); held-out retrieval accuracy; optionally a whitening projection, fitted
// after training.
class SentenceEmbedding : public TextObjective {
 public:
  using TextObjective::TextObjective;
  void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, json)>& push) const override {
    push("in_batch_accuracy", c.Accuracy());
  }
  std::vector<std::string> LoggedMetrics() const override { return {"retrieval_accuracy"}; }
  Result<json> Evaluate() override {
    if (eval_.empty()) return json::object();
    torch::NoGradGuard no_grad;
    SetTraining(false);
    Counters c;
    std::vector<torch::Tensor> anchors, positives;
    auto batches = MakeBatches(eval_, spec_.batch_size, spec_.seed, 0, /*shuffle=*/false);
    for (size_t i = 0; i < batches.size(); ++i) {
      if (StopRequested()) return Cancelled("cancelled");
      Batch b = MakeBatch(eval_, batches[i], 0);
      torch::Tensor a = Embed(b.a), p = Embed(b.b);
      torch::Tensor target = torch::arange(b.size, torch::TensorOptions().dtype(torch::kLong).device(env_.device));
      c.loss_sum += torch::nn::functional::cross_entropy(torch::matmul(a, p.t()) * spec_.scale, target).item<double>() *
                    static_cast<double>(b.size);
      c.weight += static_cast<double>(b.size);
      anchors.push_back(a.cpu());
      positives.push_back(p.cpu());
    }
    SetTraining(true);
    // Retrieval accuracy: each held-out anchor against every held-out positive.
    return json{{"loss", c.Loss()}, {"retrieval_accuracy", RetrievalAccuracy(torch::cat(anchors), torch::cat(positives))}};
  }
  Status Finish(const fs::path& dir, json& evaluation) override {
    std::optional<nn::EmbeddingProjection> projection;
    if (spec_.whitening > 0) {
      // A projection that cannot be fitted (embeddings without variance) does not cost the
      // trained encoder: it is saved without one, and the evaluation says why.
      auto fitted = FitProjection(evaluation);
      if (fitted.has_value()) {
        projection = std::move(*fitted);
      } else if (fitted.error().code() == StatusCode::kCancelled) {
        return fitted.error();
      } else {
        Log("warning", "no whitening projection: " + fitted.error().message());
        evaluation["whitening_error"] = fitted.error().message();
      }
    }
    SetTraining(false);
    MLAAS_RETURN_IF_ERROR(TextObjective::Finish(dir, evaluation));
    if (projection) MLAAS_RETURN_IF_ERROR(nn::SaveEmbeddingProjection(dir, *projection));
    // How its embeddings compare, as sentence-transformers records it.
    return nn::SaveSimilarity(dir, similarity_);
  }

 protected:
  nn::Objective Head() const override { return nn::Objective::kNoObjective; }
  Batch MakeBatch(const std::vector<TokenizedExample>& data, const std::vector<size_t>& idx, uint64_t seed) const override {
    Batch b = TextObjective::MakeBatch(data, idx, seed);
    std::vector<const std::vector<int32_t>*> p, n;
    for (size_t i : idx) p.push_back(&data[i].ids2);
    b.b = Encode(p, {}, &b.tokens);
    for (size_t i : idx)
      if (!data[i].ids3.empty()) n.push_back(&data[i].ids3);
    if (!n.empty()) b.c = Encode(n, {}, &b.tokens);
    return b;
  }
  torch::Tensor Loss(const Batch& b, Counters& c) override {
    // Multiple-negatives ranking: each anchor against every positive of the batch (and every
    // hard negative, when the data has them).
    torch::Tensor a = Embed(b.a), p = Embed(b.b);
    if (b.c.input_ids.defined()) p = torch::cat({p, Embed(b.c)});
    torch::Tensor scores = torch::matmul(a, p.t()) * spec_.scale;
    torch::Tensor target = torch::arange(b.size, torch::TensorOptions().dtype(torch::kLong).device(env_.device));
    torch::Tensor loss = torch::nn::functional::cross_entropy(scores, target);
    c.loss_sum += loss.item<double>() * static_cast<double>(b.size);
    c.weight += static_cast<double>(b.size);
    c.correct += scores.argmax(1).eq(target).sum().item<int64_t>();
    c.total += b.size;
    return loss;
  }
  torch::Tensor Pooled(const nn::EncoderInput& in);  // mean-pooled, not normalised
  torch::Tensor Embed(const nn::EncoderInput& in);   // the same, unit length unless similarity is dot
  // model_train.whitening: the projection fitted on the training positives, and the held-out
  // retrieval accuracy with it (into `evaluation`).
  Result<nn::EmbeddingProjection> FitProjection(json& evaluation);
};

torch::Tensor SentenceEmbedding::Pooled(const nn::EncoderInput& in) {
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

torch::Tensor SentenceEmbedding::Embed(const nn::EncoderInput& in) {
  if (similarity_ == "dot") return Pooled(in);
  return torch::nn::functional::normalize(Pooled(in), torch::nn::functional::NormalizeFuncOptions().dim(1));
}


Result<nn::EmbeddingProjection> SentenceEmbedding::FitProjection(json& evaluation) {
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
    evaluation["whitened_retrieval_accuracy"] = RetrievalAccuracy(torch::cat(a), torch::cat(p));
  }
  evaluation["embedding_size"] = projection.out_features();
  model_->train();
  return projection;
}


}  // namespace

std::unique_ptr<ObjectiveStrategy> MakeTextStrategy(const StrategyEnv& env) {
  switch (env.spec.objective) {
    case Objective::kTextClassification: return std::make_unique<TextClassification>(env);
    case Objective::kMaskedLm: return std::make_unique<MaskedLm>(env);
    case Objective::kCausalLm: return std::make_unique<CausalLm>(env);
    case Objective::kSentenceEmbedding: return std::make_unique<SentenceEmbedding>(env);
    case Objective::kTokenClassification: return std::make_unique<TokenClassification>(env);
    case Objective::kNextSentencePrediction: return std::make_unique<NextSentencePrediction>(env);
    case Objective::kQuestionAnswering: return std::make_unique<QuestionAnswering>(env);
    default: return nullptr;  // ParseTrainSpec admits no other
  }
}

}  // namespace mlaas::train
