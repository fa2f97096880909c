#include "train/train_spec.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/text.h"

namespace mlaas::train {

using nlohmann::json;

namespace {

// Reads block[key] into `out` when present; a value of the wrong type or outside [lo, hi]
// is an error naming `field`.key.
Status Number(const json& block, const char* key, const std::string& field, double lo, double hi, double& out,
              bool lo_exclusive = false) {
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) return Status::Ok();
  const std::string name = field + "." + key;
  if (!it->is_number()) return InvalidArgument(name + " must be a number", name);
  double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi || (lo_exclusive && v == lo)) {
    return InvalidArgument(name + " must be in " + (lo_exclusive ? "(" : "[") + std::to_string(lo) + ", " +
                               std::to_string(hi) + "]",
                           name);
  }
  out = v;
  return Status::Ok();
}

Status Integer(const json& block, const char* key, const std::string& field, int64_t lo, int64_t hi, int64_t& out) {
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) return Status::Ok();
  const std::string name = field + "." + key;
  if (!it->is_number_integer()) return InvalidArgument(name + " must be an integer", name);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return InvalidArgument(name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi), name);
  }
  out = v;
  return Status::Ok();
}

Status String(const json& block, const char* key, const std::string& field, std::string& out) {
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) return Status::Ok();
  const std::string name = field + "." + key;
  if (!it->is_string() || it->get<std::string>().empty()) return InvalidArgument(name + " must be a non-empty string", name);
  out = it->get<std::string>();
  return Status::Ok();
}

Status Bool(const json& block, const char* key, const std::string& field, bool& out) {
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) return Status::Ok();
  const std::string name = field + "." + key;
  if (!it->is_boolean()) return InvalidArgument(name + " must be true or false", name);
  out = it->get<bool>();
  return Status::Ok();
}

Result<json> Block(const json& params, const char* key, const std::string& field) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) return json::object();
  if (!it->is_object()) return InvalidArgument(field + " must be an object", field);
  return *it;
}

Status ParseOptimizer(const json& o, OptimizerSpec& spec) {
  const std::string f = "model_train.optimizer";
  std::string name = "AdamW";
  MLAAS_RETURN_IF_ERROR(String(o, "name", f, name));
  if (name == "AdamW" || name == "adamw") {
    spec.kind = OptimizerKind::kAdamW;
  } else if (name == "Adam" || name == "adam") {
    spec.kind = OptimizerKind::kAdam;
    spec.weight_decay_rate = 0.0;
  } else if (name == "SGD" || name == "sgd") {
    spec.kind = OptimizerKind::kSgd;
    spec.weight_decay_rate = 0.0;
  } else {
    return InvalidArgument("unknown optimizer '" + name + "' (AdamW, Adam or SGD)", f + ".name");
  }
  MLAAS_RETURN_IF_ERROR(Number(o, "init_lr", f, 0, 10, spec.init_lr, /*lo_exclusive=*/true));
  MLAAS_RETURN_IF_ERROR(Integer(o, "num_warm_steps", f, 0, 100'000'000, spec.num_warm_steps));
  MLAAS_RETURN_IF_ERROR(Number(o, "weight_decay_rate", f, 0, 1, spec.weight_decay_rate));
  MLAAS_RETURN_IF_ERROR(Number(o, "beta1", f, 0, 0.999999, spec.beta1));
  MLAAS_RETURN_IF_ERROR(Number(o, "beta2", f, 0, 0.999999999, spec.beta2));
  MLAAS_RETURN_IF_ERROR(Number(o, "epsilon", f, 0, 1, spec.epsilon, true));
  MLAAS_RETURN_IF_ERROR(Number(o, "momentum", f, 0, 0.999999, spec.momentum));
  return Status::Ok();
}

}  // namespace

Result<TrainSpec> ParseTrainSpec(const json& params) {
  if (!params.is_object()) return InvalidArgument("the request must be an object", "");
  TrainSpec spec;
  MLAAS_ASSIGN_OR_RETURN(json model, Block(params, "model", "model"));
  std::string objective;
  MLAAS_RETURN_IF_ERROR(String(model, "objective", "model", objective));
  MLAAS_ASSIGN_OR_RETURN(spec.objective, ParseObjective(objective));
  MLAAS_RETURN_IF_ERROR(CheckImplemented(spec.objective, Use::kTrain));

  std::string pooling;
  MLAAS_RETURN_IF_ERROR(String(model, "classifier_pooling", "model", pooling));
  if (!pooling.empty()) {
    MLAAS_ASSIGN_OR_RETURN(spec.classifier_pooling, nn::ParsePooling(pooling, "model.classifier_pooling"));
    if (spec.objective != Objective::kTextClassification)
      return InvalidArgument("model.classifier_pooling applies to text-classification only", "model.classifier_pooling");
  }

  MLAAS_ASSIGN_OR_RETURN(json mt, Block(params, "model_train", "model_train"));
  const std::string f = "model_train";
  const bool image = ModalityOf(spec.objective) == Modality::kImage;
  if (image) {  // from-scratch CNNs want a larger rate than fine-tuned transformers
    spec.optimizer.init_lr = 1e-3;
    spec.batch_size = 64;
  }
  MLAAS_RETURN_IF_ERROR(Integer(mt, "epochs", f, 1, 100000, spec.epochs));
  MLAAS_RETURN_IF_ERROR(Integer(mt, "batch_size", f, 1, 65536, spec.batch_size));
  MLAAS_ASSIGN_OR_RETURN(json opt, Block(mt, "optimizer", f + ".optimizer"));
  MLAAS_RETURN_IF_ERROR(ParseOptimizer(opt, spec.optimizer));
  MLAAS_RETURN_IF_ERROR(Bool(mt, "freeze_backbone", f, spec.freeze_backbone));
  std::string precision = "auto";
  MLAAS_RETURN_IF_ERROR(String(mt, "precision", f, precision));
  if (precision == "auto") {
    spec.precision = Precision::kAuto;
  } else if (precision == "float32" || precision == "fp32") {
    spec.precision = Precision::kFloat32;
  } else if (precision == "bfloat16" || precision == "bf16") {
    spec.precision = Precision::kBFloat16;
  } else {
    return InvalidArgument("precision is auto, bf16 (bfloat16) or fp32 (float32)", f + ".precision");
  }
  if (spec.freeze_backbone && !image)
    return InvalidArgument("freeze_backbone applies to image-classification", f + ".freeze_backbone");
  MLAAS_RETURN_IF_ERROR(Number(mt, "max_grad_norm", f, 0, 1e6, spec.max_grad_norm));
  MLAAS_RETURN_IF_ERROR(Integer(mt, "gradient_accumulation_steps", f, 1, 65536, spec.gradient_accumulation_steps));
  int64_t seed = static_cast<int64_t>(spec.seed);
  MLAAS_RETURN_IF_ERROR(Integer(mt, "seed", f, 0, 4294967295LL, seed));
  spec.seed = static_cast<uint64_t>(seed);
  int64_t max_length = 0;
  MLAAS_RETURN_IF_ERROR(Integer(mt, "max_length", f, 2, 1000000, max_length));
  if (max_length > 0) spec.max_length = max_length;
  int64_t threads = 0;
  MLAAS_RETURN_IF_ERROR(Integer(mt, "threads", f, 1, 1024, threads));
  spec.threads = static_cast<int>(threads);
  MLAAS_RETURN_IF_ERROR(String(mt, "device", f, spec.device));
  {
    // Its form here; whether the worker that runs the task has that GPU, there.
    const std::string& d = spec.device;
    const bool ordinal = d.size() > 5 && d.size() <= 8 && d.compare(0, 5, "cuda:") == 0 &&
                         std::all_of(d.begin() + 5, d.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!(d.empty() || d == "cpu" || d == "cuda" || ordinal))
      return InvalidArgument("device must be cpu, cuda or cuda:N (got '" + EscapeForLog(d, 64) + "')", f + ".device");
  }
  MLAAS_RETURN_IF_ERROR(Integer(mt, "checkpoint_steps", f, 0, 100'000'000, spec.checkpoint_steps));
  MLAAS_RETURN_IF_ERROR(Integer(mt, "max_steps", f, 0, 1'000'000'000, spec.max_steps));
  MLAAS_RETURN_IF_ERROR(Number(mt, "mlm_probability", f, 0, 1, spec.mlm_probability, true));
  MLAAS_RETURN_IF_ERROR(Integer(mt, "doc_stride", f, 1, 4096, spec.doc_stride));
  MLAAS_RETURN_IF_ERROR(Bool(mt, "whole_word_masking", f, spec.whole_word_masking));
  MLAAS_RETURN_IF_ERROR(Number(mt, "scale", f, 0, 1000, spec.scale, true));
  if (auto it = mt.find("similarity"); it != mt.end() && !it->is_null()) {
    std::string similarity;
    MLAAS_RETURN_IF_ERROR(String(mt, "similarity", f, similarity));
    if (similarity != "cosine" && similarity != "dot")
      return InvalidArgument("similarity must be \"cosine\" or \"dot\"", f + ".similarity");
    spec.similarity = similarity;
  }
  MLAAS_RETURN_IF_ERROR(Number(mt, "whitening", f, 0, 1, spec.whitening));
  if (spec.whitening > 0 && spec.objective != Objective::kSentenceEmbedding)
    return InvalidArgument("whitening applies to the sentence-embedding objective only", f + ".whitening");
  if (spec.whitening > 0 && spec.similarity == "dot")
    return InvalidArgument("whitening is fitted and measured for cosine similarity, not dot", f + ".whitening");
  MLAAS_ASSIGN_OR_RETURN(json es, Block(mt, "early_stopping", f + ".early_stopping"));
  MLAAS_RETURN_IF_ERROR(Integer(es, "patience", f + ".early_stopping", 0, 100000, spec.early_stopping.patience));
  MLAAS_RETURN_IF_ERROR(String(es, "metric", f + ".early_stopping", spec.early_stopping.metric));
  MLAAS_RETURN_IF_ERROR(Number(es, "min_delta", f + ".early_stopping", 0, 1e9, spec.early_stopping.min_delta));
  if (spec.early_stopping.metric.empty()) spec.early_stopping.metric = "eval_loss";
  MLAAS_RETURN_IF_ERROR(Bool(mt, "load_best_model_at_end", f, spec.load_best_model_at_end));
  {
    std::vector<std::string> known = {"eval_loss"};
    switch (spec.objective) {
      case Objective::kTextClassification: known.insert(known.end(), {"eval_accuracy", "eval_macro_f1"}); break;
      case Objective::kMaskedLm: known.insert(known.end(), {"eval_perplexity", "eval_masked_accuracy"}); break;
      case Objective::kCausalLm: known.insert(known.end(), {"eval_perplexity", "eval_accuracy"}); break;
      case Objective::kSentenceEmbedding: known.push_back("eval_retrieval_accuracy"); break;
      case Objective::kNextSentencePrediction: known.push_back("eval_accuracy"); break;
      case Objective::kQuestionAnswering: known.insert(known.end(), {"eval_exact_match", "eval_f1"}); break;
      case Objective::kTokenClassification:
        known.insert(known.end(), {"eval_f1", "eval_precision", "eval_recall", "eval_accuracy"});
        break;
      case Objective::kImageClassification: known.insert(known.end(), {"eval_accuracy", "eval_macro_f1"}); break;
      default: break;  // CheckImplemented admitted no other
    }
    if (std::find(known.begin(), known.end(), spec.early_stopping.metric) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return InvalidArgument("early_stopping.metric must be one of " + list + " for " +
                                 std::string(ObjectiveName(spec.objective)),
                             "model_train.early_stopping.metric");
    }
  }

  MLAAS_ASSIGN_OR_RETURN(json ds, Block(params, "dataset", "dataset"));
  MLAAS_RETURN_IF_ERROR(Number(ds, "train_test_split", "dataset", 0, 0.9, spec.train_test_split, true));
  if (ds.contains("train_test_split") && spec.train_test_split >= 0.9) {
    return InvalidArgument("dataset.train_test_split must be below 0.9 (the fraction held out)",
                           "dataset.train_test_split");
  }
  spec.has_eval_dataset = ds.contains("eval_dataset") && !ds["eval_dataset"].is_null();
  MLAAS_ASSIGN_OR_RETURN(json lk, Block(ds, "loader_kwargs", "dataset.loader_kwargs"));
  const std::string lf = "dataset.loader_kwargs";
  if (spec.objective == Objective::kMaskedLm || spec.objective == Objective::kCausalLm) {
    // A corpus for pre-training: page_content_column names it as in the other endpoints.
    MLAAS_RETURN_IF_ERROR(String(lk, "page_content_column", lf, spec.text_column));
  }
  MLAAS_RETURN_IF_ERROR(String(lk, "text_column", lf, spec.text_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "text_pair_column", lf, spec.text_pair_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "label_column", lf, spec.label_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "anchor_column", lf, spec.anchor_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "positive_column", lf, spec.positive_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "negative_column", lf, spec.negative_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "tokens_column", lf, spec.tokens_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "tags_column", lf, spec.tags_column));
  if (auto names = lk.find("tag_names"); names != lk.end() && !names->is_null()) {
    if (!names->is_array() || names->empty() || names->size() > 10000)
      return InvalidArgument("tag_names must be a list of 1..10000 tag names, by id", lf + ".tag_names");
    for (const auto& n : *names) {
      if (!n.is_string() || n.get<std::string>().empty())
        return InvalidArgument("each tag name must be a non-empty string", lf + ".tag_names");
      spec.tag_names.push_back(n.get<std::string>());
    }
  }
  MLAAS_RETURN_IF_ERROR(String(lk, "question_column", lf, spec.question_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "context_column", lf, spec.context_column));
  MLAAS_RETURN_IF_ERROR(String(lk, "answers_column", lf, spec.answers_column));
  MLAAS_ASSIGN_OR_RETURN(json aug, Block(ds, "augment", "dataset.augment"));
  if (image) {
    const std::string af = "dataset.augment";
    for (auto it = aug.begin(); it != aug.end(); ++it) {
      if (it.key() != "crop_padding" && it.key() != "horizontal_flip" && it.key() != "rotation")
        return InvalidArgument("unknown image augmentation '" + it.key() + "' (crop_padding, horizontal_flip, rotation)",
                               af + "." + it.key());
    }
    MLAAS_RETURN_IF_ERROR(Integer(aug, "crop_padding", af, 0, 64, spec.image_augment.crop_padding));
    MLAAS_RETURN_IF_ERROR(Bool(aug, "horizontal_flip", af, spec.image_augment.horizontal_flip));
    MLAAS_RETURN_IF_ERROR(Number(aug, "rotation", af, 0, 45, spec.image_augment.rotation));
    return spec;
  }
  MLAAS_ASSIGN_OR_RETURN(json typos, Block(aug, "typos", "dataset.augment.typos"));
  MLAAS_RETURN_IF_ERROR(Integer(typos, "copies", "dataset.augment.typos", 0, 1000, spec.typos.copies));
  MLAAS_RETURN_IF_ERROR(Number(typos, "rate", "dataset.augment.typos", 0, 1, spec.typos.rate, true));
  if (spec.typos.copies > 0 && spec.objective != Objective::kTextClassification) {
    return InvalidArgument("typo augmentation applies to text-classification only", "dataset.augment.typos");
  }
  return spec;
}

std::vector<std::string> Columns(const TrainSpec& spec) {
  switch (spec.objective) {
    case Objective::kTextClassification:
      if (spec.text_pair_column.empty()) return {spec.text_column, spec.label_column};
      return {spec.text_column, spec.label_column, spec.text_pair_column};
    case Objective::kNextSentencePrediction:  // labelled pairs, or documents to sample pairs from
      if (spec.text_pair_column.empty()) return {spec.text_column};
      return {spec.text_column, spec.label_column, spec.text_pair_column};
    case Objective::kMaskedLm:
    case Objective::kCausalLm: return {spec.text_column};
    case Objective::kSentenceEmbedding:
      if (spec.negative_column.empty()) return {spec.anchor_column, spec.positive_column};
      return {spec.anchor_column, spec.positive_column, spec.negative_column};
    case Objective::kTokenClassification: return {spec.tokens_column, spec.tags_column};
    case Objective::kQuestionAnswering: return {spec.question_column, spec.context_column, spec.answers_column};
    default: return {};
  }
}

std::string ColumnField(const TrainSpec& spec, size_t i) {
  const std::string f = "dataset.loader_kwargs.";
  switch (spec.objective) {
    case Objective::kTextClassification:
    case Objective::kNextSentencePrediction:
      return f + (i == 0 ? "text_column" : i == 1 ? "label_column" : "text_pair_column");
    case Objective::kMaskedLm:
    case Objective::kCausalLm: return f + "page_content_column";
    case Objective::kSentenceEmbedding:
      return f + (i == 0 ? "anchor_column" : i == 1 ? "positive_column" : "negative_column");
    case Objective::kTokenClassification: return f + (i == 0 ? "tokens_column" : "tags_column");
    case Objective::kQuestionAnswering:
      return f + (i == 0 ? "question_column" : i == 1 ? "context_column" : "answers_column");
    default: return f;
  }
}

Status CheckStaticEmbeddingSpec(const TrainSpec& spec) {
  if (spec.objective != Objective::kSentenceEmbedding)
    return InvalidArgument("a static embedding model trains with the sentence-embedding objective only", "model.objective");
  if (spec.whitening > 0)
    return InvalidArgument("whitening applies to transformer encoders, not to a static embedding model", "model_train.whitening");
  return Status::Ok();
}

std::string_view PrecisionName(Precision p) {
  switch (p) {
    case Precision::kAuto:
      return "auto";
    case Precision::kFloat32:
      return "float32";
    case Precision::kBFloat16:
      return "bfloat16";
  }
  return "auto";
}

}  // namespace mlaas::train
