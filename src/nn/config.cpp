#include "nn/config.h"

#include "common/json_file.h"
#include "common/text.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace mlaas::nn {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string_view ArchitectureName(Architecture a) {
  switch (a) {
    case Architecture::kBert: return "bert";
    case Architecture::kDistilBert: return "distilbert";
    case Architecture::kRoberta: return "roberta";
    case Architecture::kGpt2: return "gpt2";
    case Architecture::kLongformer: return "longformer";
  }
  return "?";
}

Result<Objective> ParseObjective(std::string_view name) {
  auto o = mlaas::ParseObjective(name);
  if (o.has_value() && *o != Objective::kSentenceEmbedding && *o != Objective::kImageClassification) return *o;
  return InvalidArgument("objective '" + std::string(name) +
                             "' is not supported by the transformer engine (supported: "
                             "text-classification, masked-lm, causal-lm, next-sentence-prediction, "
                             "token-classification, question-answering, no-objective)",
                         "model.objective");
}

std::string_view PositionEmbeddingName(PositionEmbedding p) {
  switch (p) {
    case PositionEmbedding::kAbsolute: return "absolute";
    case PositionEmbedding::kRelativeKey: return "relative_key";
    case PositionEmbedding::kRelativeKeyQuery: return "relative_key_query";
  }
  return "absolute";
}

Result<Pooling> ParsePooling(std::string_view name, const std::string& field) {
  if (name == "mean") return Pooling::kMean;
  if (name == "cls") return Pooling::kCls;
  return InvalidArgument("pooling must be \"cls\" or \"mean\" (got '" + std::string(name) + "')", field);
}

namespace {

std::string_view ActivationName(Activation a) {
  switch (a) {
    case Activation::kGelu: return "gelu";
    case Activation::kGeluNew: return "gelu_new";
    case Activation::kRelu: return "relu";
    case Activation::kSilu: return "silu";
    case Activation::kTanh: return "tanh";
  }
  return "?";
}

std::optional<Activation> ParseActivation(std::string_view s) {
  if (s == "gelu") return Activation::kGelu;
  if (s == "gelu_new" || s == "gelu_pytorch_tanh" || s == "gelu_fast") return Activation::kGeluNew;
  if (s == "relu") return Activation::kRelu;
  if (s == "silu" || s == "swish") return Activation::kSilu;
  if (s == "tanh") return Activation::kTanh;
  return std::nullopt;
}

// Field readers: a missing field keeps the default; a present one must have the right type.
class Reader {
 public:
  Reader(const json& j, std::string field) : j_(j), field_(std::move(field)) {}

  Status Int(const char* name, int64_t& out) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return Status::Ok();
    // A whole float (2.0) is taken; one beyond 64 bits (1e30, or an integer literal too long
    // for nlohmann to keep as one) would not convert.
    if (!it->is_number_integer() && !(it->is_number_float() && std::floor(it->get<double>()) == it->get<double>() &&
                                      std::fabs(it->get<double>()) < 0x1p62))
      return InvalidArgument(std::string(name) + " must be an integer", Path(name));
    out = it->is_number_integer() ? it->get<int64_t>() : static_cast<int64_t>(it->get<double>());
    return Status::Ok();
  }
  Status Double(const char* name, double& out) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return Status::Ok();
    if (!it->is_number()) return InvalidArgument(std::string(name) + " must be a number", Path(name));
    out = it->get<double>();
    return Status::Ok();
  }
  Status OptDouble(const char* name, std::optional<double>& out) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return Status::Ok();
    double v = 0;
    if (Status s = Double(name, v); !s.ok()) return s;
    out = v;
    return Status::Ok();
  }
  Status Bool(const char* name, bool& out) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return Status::Ok();
    if (!it->is_boolean()) return InvalidArgument(std::string(name) + " must be true or false", Path(name));
    out = it->get<bool>();
    return Status::Ok();
  }
  Status Act(const char* name, Activation& out) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return Status::Ok();
    if (!it->is_string()) return InvalidArgument(std::string(name) + " must be a string", Path(name));
    auto a = ParseActivation(it->get<std::string>());
    if (!a)
      return InvalidArgument("activation '" + it->get<std::string>() +
                                 "' is not supported (gelu, gelu_new, relu, silu, tanh)",
                             Path(name));
    out = *a;
    return Status::Ok();
  }
  std::string Path(std::string_view name) const { return field_ + "." + std::string(name); }

 private:
  const json& j_;
  std::string field_;
};

#define MLAAS_TRY(expr)                     \
  do {                                      \
    if (Status s_ = (expr); !s_.ok()) return s_; \
  } while (0)

Status ReadLabels(const json& j, const std::string& field, ModelConfig& c) {
  auto it = j.find("id2label");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_object() || it->empty())
      return InvalidArgument("id2label must be a non-empty object {\"0\": \"label\", ...}", field + ".id2label");
    std::map<int64_t, std::string> labels;
    for (auto& [k, v] : it->items()) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(k, &used);
        if (used != k.size()) id = -1;
      } catch (...) {
        id = -1;
      }
      if (id < 0 || !v.is_string())
        return InvalidArgument("id2label entries must map class ids \"0\".. to label strings (bad key '" + k + "')",
                               field + ".id2label");
      labels[id] = v.get<std::string>();
    }
    int64_t expect = 0;
    for (auto& [id, label] : labels) {
      if (id != expect++)
        return InvalidArgument("id2label must number its classes 0..N-1 without gaps", field + ".id2label");
      c.id2label.push_back(label);
    }
    return Status::Ok();
  }
  int64_t n = 2;  // transformers' PretrainedConfig default: two labels LABEL_0, LABEL_1
  if (auto l2i = j.find("label2id"); l2i != j.end() && l2i->is_object() && !l2i->empty()) {
    std::vector<std::string> labels(l2i->size());
    for (auto& [k, v] : l2i->items()) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<size_t>() >= labels.size())
        return InvalidArgument("label2id must map labels to class ids 0..N-1", field + ".label2id");
      labels[v.get<size_t>()] = k;
    }
    c.id2label = std::move(labels);
    return Status::Ok();
  }
  MLAAS_TRY(Reader(j, field).Int("num_labels", n));
  if (n < 1 || n > 100000) return InvalidArgument("num_labels must be 1..100000", field + ".num_labels");
  for (int64_t i = 0; i < n; ++i) c.id2label.push_back("LABEL_" + std::to_string(i));
  return Status::Ok();
}

}  // namespace

Status ValidateConfig(const ModelConfig& c, const std::string& field) {
  auto bad = [&](const char* name, const std::string& msg) {
    return InvalidArgument(std::string(name) + " " + msg, field + "." + name);
  };
  const bool distil = c.architecture == Architecture::kDistilBert;
  const bool gpt2 = c.architecture == Architecture::kGpt2;
  // Each architecture's own name of a field.
  auto name = [&](const char* bert, const char* distilbert, const char* gpt) {
    return distil ? distilbert : gpt2 ? gpt : bert;
  };
  if (c.vocab_size < 1 || c.vocab_size > 10'000'000) return bad("vocab_size", "must be 1..10000000");
  if (c.hidden_size < 1 || c.hidden_size > 65536) return bad(name("hidden_size", "dim", "n_embd"), "must be 1..65536");
  if (c.num_hidden_layers < 1 || c.num_hidden_layers > 512)
    return bad(name("num_hidden_layers", "n_layers", "n_layer"), "must be 1..512");
  if (c.num_attention_heads < 1 || c.num_attention_heads > c.hidden_size)
    return bad(name("num_attention_heads", "n_heads", "n_head"), "must be 1..hidden size");
  if (c.hidden_size % c.num_attention_heads != 0)
    return bad(name("num_attention_heads", "n_heads", "n_head"),
               "must divide the hidden size (" + std::to_string(c.hidden_size) + ")");
  if (c.intermediate_size < 1 || c.intermediate_size > 262144)
    return bad(name("intermediate_size", "hidden_dim", "n_inner"), "must be 1..262144");
  if (c.max_position_embeddings < 1 || c.max_position_embeddings > 1'000'000)
    return bad(name("max_position_embeddings", "max_position_embeddings", "n_positions"), "must be 1..1000000");
  if (RobertaLike(c.architecture) && c.max_position_embeddings <= c.pad_token_id + 1)
    return bad("max_position_embeddings", "must exceed pad_token_id + 1 (RoBERTa positions start after the padding id)");
  if (c.architecture == Architecture::kLongformer) {
    if (static_cast<int64_t>(c.attention_window.size()) != c.num_hidden_layers)
      return bad("attention_window", "must be one number, or one per layer (" + std::to_string(c.num_hidden_layers) + ")");
    const int64_t widest = *std::max_element(c.attention_window.begin(), c.attention_window.end());
    for (int64_t w : c.attention_window) {
      if (w < 2 || w > 65536 || w % 2 != 0) return bad("attention_window", "must be even, 2..65536");
      if (widest % w != 0)
        return bad("attention_window", "each window must divide the largest (" + std::to_string(widest) +
                                           "): inputs are padded to a multiple of it");
    }
  }
  if (!distil && !gpt2 && (c.type_vocab_size < 1 || c.type_vocab_size > 1024)) return bad("type_vocab_size", "must be 1..1024");
  if (!(c.layer_norm_eps > 0 && c.layer_norm_eps < 1))
    return bad(name("layer_norm_eps", "layer_norm_eps", "layer_norm_epsilon"), "must be in (0, 1)");
  for (auto [field_name, p] : {std::pair{name("hidden_dropout_prob", "dropout", "resid_pdrop"), c.hidden_dropout_prob},
                               std::pair{name("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop"),
                                         c.attention_probs_dropout_prob},
                               std::pair{"embd_pdrop", c.embedding_dropout_prob}}) {
    if (!(p >= 0 && p < 1)) return bad(field_name, "must be in [0, 1)");
  }
  for (auto [field_name, id] : {std::pair{"bos_token_id", c.bos_token_id}, std::pair{"eos_token_id", c.eos_token_id}}) {
    if (id && (*id < 0 || *id >= c.vocab_size))
      return bad(field_name, "must be a token id below vocab_size (" + std::to_string(c.vocab_size) + ")");
  }
  if (c.classifier_dropout && !(*c.classifier_dropout >= 0 && *c.classifier_dropout < 1))
    return bad(distil ? "seq_classif_dropout" : "classifier_dropout", "must be in [0, 1)");
  if (!(c.initializer_range > 0 && c.initializer_range < 10)) return bad("initializer_range", "must be in (0, 10)");
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size)
    return bad("pad_token_id", "must be a token id below vocab_size (" + std::to_string(c.vocab_size) + ")");
  if (c.id2label.empty()) return bad("id2label", "must name at least one label");
  if (!c.problem_type.empty() && c.problem_type != "single_label_classification" &&
      c.problem_type != "multi_label_classification" && c.problem_type != "regression")
    return bad("problem_type", "must be single_label_classification, multi_label_classification or regression");
  return Status::Ok();
}

Result<ModelConfig> ParseConfig(const json& j, const std::string& field) {
  if (!j.is_object()) return InvalidArgument("a model config must be a JSON object", field);
  ModelConfig c;
  auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string())
    return InvalidArgument("model_type is required (bert, distilbert, roberta, longformer or gpt2)", field + ".model_type");
  const std::string type = mt->get<std::string>();
  Reader r(j, field);
  if (type == "bert" || type == "roberta" || type == "longformer") {
    c.architecture = type == "bert" ? Architecture::kBert : type == "roberta" ? Architecture::kRoberta : Architecture::kLongformer;
    if (RobertaLike(c.architecture)) {
      c.vocab_size = 50265;
      c.max_position_embeddings = c.architecture == Architecture::kLongformer ? 4098 : 514;
      c.type_vocab_size = 1;
      c.layer_norm_eps = 1e-5;
      c.pad_token_id = 1;
    }
    MLAAS_TRY(r.Int("vocab_size", c.vocab_size));
    MLAAS_TRY(r.Int("hidden_size", c.hidden_size));
    MLAAS_TRY(r.Int("num_hidden_layers", c.num_hidden_layers));
    MLAAS_TRY(r.Int("num_attention_heads", c.num_attention_heads));
    MLAAS_TRY(r.Int("intermediate_size", c.intermediate_size));
    MLAAS_TRY(r.Act("hidden_act", c.hidden_act));
    MLAAS_TRY(r.Int("max_position_embeddings", c.max_position_embeddings));
    MLAAS_TRY(r.Int("type_vocab_size", c.type_vocab_size));
    MLAAS_TRY(r.Double("layer_norm_eps", c.layer_norm_eps));
    MLAAS_TRY(r.Double("hidden_dropout_prob", c.hidden_dropout_prob));
    MLAAS_TRY(r.Double("attention_probs_dropout_prob", c.attention_probs_dropout_prob));
    MLAAS_TRY(r.OptDouble("classifier_dropout", c.classifier_dropout));
    MLAAS_TRY(r.Double("initializer_range", c.initializer_range));
    MLAAS_TRY(r.Int("pad_token_id", c.pad_token_id));
    if (auto pe = j.find("position_embedding_type"); pe != j.end() && !pe->is_null()) {
      const bool relative_ok = c.architecture != Architecture::kLongformer;
      if (*pe == "relative_key" && relative_ok) {
        c.position_embedding_type = PositionEmbedding::kRelativeKey;
      } else if (*pe == "relative_key_query" && relative_ok) {
        c.position_embedding_type = PositionEmbedding::kRelativeKeyQuery;
      } else if (*pe != "absolute") {
        return InvalidArgument("position_embedding_type " + EscapeForLog(pe->dump(), 64) + " is not supported (\"absolute\"" +
                                   (relative_ok ? ", \"relative_key\" or \"relative_key_query\")" : " only for Longformer)"),
                               field + ".position_embedding_type");
      }
    }
    if (c.architecture == Architecture::kLongformer) {
      // One window for every layer, or one per layer (transformers accepts both).
      c.attention_window.assign(static_cast<size_t>(std::clamp<int64_t>(c.num_hidden_layers, 1, 512)), 512);
      if (auto aw = j.find("attention_window"); aw != j.end() && !aw->is_null()) {
        const std::string f = field + ".attention_window";
        auto window = [&](const json& v, int64_t& out) -> Status {
          if (v.is_number_unsigned()) {
            out = v.get<uint64_t>() > 1'000'000'000u ? 1'000'000'000 : static_cast<int64_t>(v.get<uint64_t>());
          } else if (v.is_number_integer()) {
            out = std::clamp<int64_t>(v.get<int64_t>(), -1'000'000'000, 1'000'000'000);
          } else if (v.is_number_float() && std::trunc(v.get<double>()) == v.get<double>() && std::abs(v.get<double>()) < 1e9) {
            out = static_cast<int64_t>(v.get<double>());
          } else {
            return InvalidArgument("attention_window must be an integer or a list of integers", f);
          }
          return Status::Ok();  // the range is ValidateConfig's
        };
        if (aw->is_array()) {
          if (aw->size() > 512) return InvalidArgument("attention_window has one entry per layer", f);
          c.attention_window.assign(aw->size(), 0);
          for (size_t i = 0; i < aw->size(); ++i) MLAAS_TRY(window((*aw)[i], c.attention_window[i]));
        } else {
          int64_t w = 0;
          MLAAS_TRY(window(*aw, w));
          std::fill(c.attention_window.begin(), c.attention_window.end(), w);
        }
      }
    }
    bool is_decoder = false, cross = false;
    MLAAS_TRY(r.Bool("is_decoder", is_decoder));
    MLAAS_TRY(r.Bool("add_cross_attention", cross));
    if (is_decoder || cross)
      return InvalidArgument("decoder / cross-attention configurations are not supported", field + ".is_decoder");
  } else if (type == "distilbert") {
    c.architecture = Architecture::kDistilBert;
    c.num_hidden_layers = 6;
    c.type_vocab_size = 0;
    c.layer_norm_eps = 1e-12;  // fixed in the reference implementation
    MLAAS_TRY(r.Int("vocab_size", c.vocab_size));
    MLAAS_TRY(r.Int("dim", c.hidden_size));
    MLAAS_TRY(r.Int("n_layers", c.num_hidden_layers));
    MLAAS_TRY(r.Int("n_heads", c.num_attention_heads));
    MLAAS_TRY(r.Int("hidden_dim", c.intermediate_size));
    MLAAS_TRY(r.Act("activation", c.hidden_act));
    MLAAS_TRY(r.Int("max_position_embeddings", c.max_position_embeddings));
    MLAAS_TRY(r.Double("dropout", c.hidden_dropout_prob));
    MLAAS_TRY(r.Double("attention_dropout", c.attention_probs_dropout_prob));
    c.classifier_dropout = 0.2;
    MLAAS_TRY(r.OptDouble("seq_classif_dropout", c.classifier_dropout));
    MLAAS_TRY(r.Double("initializer_range", c.initializer_range));
    MLAAS_TRY(r.Int("pad_token_id", c.pad_token_id));
    MLAAS_TRY(r.Bool("sinusoidal_pos_embds", c.sinusoidal_pos_embds));
    if (c.hidden_act != Activation::kGelu && c.hidden_act != Activation::kRelu)
      return InvalidArgument("DistilBERT activation must be gelu or relu", field + ".activation");
  } else if (type == "gpt2") {
    c.architecture = Architecture::kGpt2;
    c.vocab_size = 50257;
    c.max_position_embeddings = 1024;
    c.type_vocab_size = 0;
    c.hidden_act = Activation::kGeluNew;
    c.layer_norm_eps = 1e-5;
    c.bos_token_id = c.eos_token_id = 50256;
    MLAAS_TRY(r.Int("vocab_size", c.vocab_size));
    MLAAS_TRY(r.Int("n_positions", c.max_position_embeddings));
    MLAAS_TRY(r.Int("n_embd", c.hidden_size));
    MLAAS_TRY(r.Int("n_layer", c.num_hidden_layers));
    MLAAS_TRY(r.Int("n_head", c.num_attention_heads));
    c.intermediate_size = 4 * c.hidden_size;  // n_inner null: 4 x n_embd
    MLAAS_TRY(r.Int("n_inner", c.intermediate_size));
    MLAAS_TRY(r.Act("activation_function", c.hidden_act));
    MLAAS_TRY(r.Double("resid_pdrop", c.hidden_dropout_prob));
    MLAAS_TRY(r.Double("embd_pdrop", c.embedding_dropout_prob));
    MLAAS_TRY(r.Double("attn_pdrop", c.attention_probs_dropout_prob));
    MLAAS_TRY(r.Double("layer_norm_epsilon", c.layer_norm_eps));
    MLAAS_TRY(r.Double("initializer_range", c.initializer_range));
    for (auto [name, out] : {std::pair{"bos_token_id", &c.bos_token_id}, std::pair{"eos_token_id", &c.eos_token_id}}) {
      if (auto it = j.find(name); it != j.end() && it->is_null()) {
        out->reset();
      } else {
        int64_t id = out->value_or(0);
        MLAAS_TRY(r.Int(name, id));
        if (it != j.end()) *out = id;
      }
    }
    // GPT-2's own end-of-text id by default, when the vocabulary has it.
    for (auto* id : {&c.bos_token_id, &c.eos_token_id})
      if (*id && **id >= c.vocab_size && !j.contains(id == &c.bos_token_id ? "bos_token_id" : "eos_token_id")) id->reset();
    // GPT-2 has no padding token of its own: padding is masked out, any id serves.
    c.pad_token_id = c.eos_token_id.value_or(0);
    MLAAS_TRY(r.Int("pad_token_id", c.pad_token_id));
    // The variants of the attention transformers offers beside GPT-2's own.
    bool scale = true, by_layer = false, reorder = false, cross = false;
    MLAAS_TRY(r.Bool("scale_attn_weights", scale));
    MLAAS_TRY(r.Bool("scale_attn_by_inverse_layer_idx", by_layer));
    MLAAS_TRY(r.Bool("reorder_and_upcast_attn", reorder));
    MLAAS_TRY(r.Bool("add_cross_attention", cross));
    if (!scale || by_layer || cross)
      return InvalidArgument("only GPT-2's own attention is supported (scale_attn_weights true, "
                             "scale_attn_by_inverse_layer_idx and add_cross_attention false)",
                             field + (cross ? ".add_cross_attention" : !scale ? ".scale_attn_weights" : ".scale_attn_by_inverse_layer_idx"));
    (void)reorder;  // the same attention, computed in float32: what this engine does anyway
    bool tie = true;
    MLAAS_TRY(r.Bool("tie_word_embeddings", tie));
    if (!tie) return InvalidArgument("an untied lm_head is not supported", field + ".tie_word_embeddings");
  } else {
    return InvalidArgument("model_type '" + type + "' is not supported (bert, distilbert, roberta, longformer, gpt2)",
                           field + ".model_type");
  }
  MLAAS_TRY(ReadLabels(j, field, c));
  if (auto pt = j.find("problem_type"); pt != j.end() && !pt->is_null()) {
    if (!pt->is_string()) return InvalidArgument("problem_type must be a string", field + ".problem_type");
    c.problem_type = pt->get<std::string>();
  }
  if (auto a = j.find("architectures"); a != j.end() && !a->is_null()) {
    if (!a->is_array()) return InvalidArgument("architectures must be a list of class names", field + ".architectures");
    for (const auto& e : *a) {
      if (!e.is_string()) return InvalidArgument("architectures must be a list of class names", field + ".architectures");
      c.architectures.push_back(e.get<std::string>());
    }
  }
  if (auto cp = j.find("classifier_pooling"); cp != j.end() && !cp->is_null()) {
    if (!cp->is_string()) return InvalidArgument("classifier_pooling must be \"cls\" or \"mean\"", field + ".classifier_pooling");
    MLAAS_ASSIGN_OR_RETURN(c.classifier_pooling, ParsePooling(cp->get<std::string>(), field + ".classifier_pooling"));
  }
  c.extra = ojson::parse(j.dump());
  MLAAS_TRY(ValidateConfig(c, field));
  return c;
}

Result<ModelConfig> LoadConfig(const std::string& text) {
  MLAAS_ASSIGN_OR_RETURN(json j, ParseJsonText(text, "config.json", "config", {.max_bytes = 16u << 20}));
  return ParseConfig(j, "config");
}

namespace {

// a * b + c, saturating at UINT64_MAX.
uint64_t MulAdd(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out) || __builtin_add_overflow(out, c, &out)) return UINT64_MAX;
  return out;
}

}  // namespace

uint64_t ParameterCount(const ModelConfig& c, Objective objective) {
  const auto u = [](int64_t v) { return static_cast<uint64_t>(std::max<int64_t>(v, 0)); };
  const uint64_t h = u(c.hidden_size), inter = u(c.intermediate_size), vocab = u(c.vocab_size);
  // Embeddings: words, positions, token types, LayerNorm.
  uint64_t n = MulAdd(vocab + u(c.max_position_embeddings) + u(c.type_vocab_size), h, 2 * h);
  // A layer: Q, K, V, output (h x h + h each; Longformer also Q, K, V of global attention), the
  // FFN (h x i + i, i x h + h), two LayerNorms.
  const uint64_t projections = c.architecture == Architecture::kLongformer ? 7 : 4;
  uint64_t layer = MulAdd(projections, MulAdd(h, h, h), MulAdd(2 * h, inter, inter + 5 * h));
  // Relative positions: each layer's distance embeddings, (2 x positions - 1) x head_dim.
  if (c.relative_positions() && c.num_attention_heads > 0)
    layer = MulAdd(MulAdd(2, u(c.max_position_embeddings)) - 1, h / u(c.num_attention_heads), layer);
  n = MulAdd(u(c.num_hidden_layers), layer, n);
  // The largest head of each objective: classification, a dense layer (pooler or
  // pre-classifier) and the classifier; masked-LM, the transform (dense + LayerNorm) and the
  // vocabulary bias (the decoder weight is tied to the embeddings); embeddings, the pooler.
  if (c.architecture == Architecture::kGpt2) return n;  // ln_f (counted as the embeddings' LayerNorm); lm_head tied
  n = MulAdd(h, h, MulAdd(1, n, h));
  if (objective == Objective::kTextClassification || objective == Objective::kTokenClassification)
    n = MulAdd(h + 1, u(c.num_labels()), n);
  if (objective == Objective::kQuestionAnswering || objective == Objective::kNextSentencePrediction)
    n = MulAdd(h + 1, 2, n);
  if (objective == Objective::kMaskedLm) n = MulAdd(1, n, MulAdd(2, h, vocab));
  return n;
}

uint64_t ParameterBytes(const ModelConfig& c, Objective objective) { return MulAdd(ParameterCount(c, objective), 4); }

std::string ArchitectureClassName(Architecture a, Objective objective) {
  if (a == Architecture::kGpt2) return objective == Objective::kCausalLm ? "GPT2LMHeadModel" : "GPT2Model";
  std::string base = a == Architecture::kBert         ? "Bert"
                     : a == Architecture::kDistilBert ? "DistilBert"
                     : a == Architecture::kLongformer ? "Longformer"
                                                      : "Roberta";
  switch (objective) {
    case Objective::kTextClassification: return base + "ForSequenceClassification";
    case Objective::kMaskedLm: return base + "ForMaskedLM";
    case Objective::kCausalLm: return base + "ForCausalLM";
    case Objective::kTokenClassification: return base + "ForTokenClassification";
    case Objective::kQuestionAnswering: return base + "ForQuestionAnswering";
    case Objective::kNextSentencePrediction: return base + "ForNextSentencePrediction";
    default: return base + "Model";  // no-objective (the engine builds no other heads)
  }
}

std::optional<Objective> ObjectiveFromArchitectures(const ModelConfig& c) {
  for (const auto& name : c.architectures) {
    for (Objective o : {Objective::kTextClassification, Objective::kMaskedLm, Objective::kCausalLm,
                        Objective::kTokenClassification, Objective::kQuestionAnswering,
                        Objective::kNextSentencePrediction, Objective::kNoObjective}) {
      if (name == ArchitectureClassName(c.architecture, o)) return o;
    }
  }
  return std::nullopt;
}

ojson ConfigToJson(const ModelConfig& c, Objective objective) {
  ojson j = ojson::object();
  j["architectures"] = ojson::array({ArchitectureClassName(c.architecture, objective)});
  j["model_type"] = std::string(ArchitectureName(c.architecture));
  const auto optional_id = [](const std::optional<int64_t>& id) { return id ? ojson(*id) : ojson(nullptr); };
  if (c.architecture == Architecture::kGpt2) {
    j["activation_function"] = std::string(ActivationName(c.hidden_act));
    j["attn_pdrop"] = c.attention_probs_dropout_prob;
    j["bos_token_id"] = optional_id(c.bos_token_id);
    j["embd_pdrop"] = c.embedding_dropout_prob;
    j["eos_token_id"] = optional_id(c.eos_token_id);
    j["initializer_range"] = c.initializer_range;
    j["layer_norm_epsilon"] = c.layer_norm_eps;
    j["n_embd"] = c.hidden_size;
    j["n_head"] = c.num_attention_heads;
    j["n_inner"] = c.intermediate_size;
    j["n_layer"] = c.num_hidden_layers;
    j["n_positions"] = c.max_position_embeddings;
    j["pad_token_id"] = c.pad_token_id;
    j["resid_pdrop"] = c.hidden_dropout_prob;
    j["scale_attn_weights"] = true;
    j["tie_word_embeddings"] = true;
    j["vocab_size"] = c.vocab_size;
    j["torch_dtype"] = "float32";
    for (auto it = c.extra.begin(); it != c.extra.end(); ++it) {
      if (!j.contains(it.key()) && it.key() != "_name_or_path" && it.key() != "id2label" && it.key() != "label2id" &&
          it.key() != "num_labels")
        j[it.key()] = it.value();
    }
    if (!j.contains("transformers_version")) j["transformers_version"] = "4.30.0";
    return j;
  }
  if (c.architecture == Architecture::kDistilBert) {
    j["activation"] = std::string(ActivationName(c.hidden_act));
    j["attention_dropout"] = c.attention_probs_dropout_prob;
    j["dim"] = c.hidden_size;
    j["dropout"] = c.hidden_dropout_prob;
    j["hidden_dim"] = c.intermediate_size;
    j["initializer_range"] = c.initializer_range;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["n_heads"] = c.num_attention_heads;
    j["n_layers"] = c.num_hidden_layers;
    j["pad_token_id"] = c.pad_token_id;
    j["qa_dropout"] = c.extra.contains("qa_dropout") && c.extra["qa_dropout"].is_number() ? c.extra["qa_dropout"] : ojson(0.1);
    j["seq_classif_dropout"] = c.classifier_dropout_prob();
    j["sinusoidal_pos_embds"] = c.sinusoidal_pos_embds;
    j["tie_weights_"] = true;
    j["vocab_size"] = c.vocab_size;
  } else {
    j["attention_probs_dropout_prob"] = c.attention_probs_dropout_prob;
    j["classifier_dropout"] = c.classifier_dropout ? ojson(*c.classifier_dropout) : ojson(nullptr);
    j["hidden_act"] = std::string(ActivationName(c.hidden_act));
    j["hidden_dropout_prob"] = c.hidden_dropout_prob;
    j["hidden_size"] = c.hidden_size;
    j["initializer_range"] = c.initializer_range;
    j["intermediate_size"] = c.intermediate_size;
    j["layer_norm_eps"] = c.layer_norm_eps;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["num_attention_heads"] = c.num_attention_heads;
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["pad_token_id"] = c.pad_token_id;
    j["position_embedding_type"] = std::string(PositionEmbeddingName(c.position_embedding_type));
    j["type_vocab_size"] = c.type_vocab_size;
    j["vocab_size"] = c.vocab_size;
    if (RobertaLike(c.architecture)) {
      j["bos_token_id"] = c.extra.value("bos_token_id", 0);
      j["eos_token_id"] = c.extra.value("eos_token_id", 2);
    }
    if (c.architecture == Architecture::kLongformer) {
      j["attention_window"] = c.attention_window;
      j["sep_token_id"] = c.extra.value("sep_token_id", 2);
    }
  }
  ojson id2label = ojson::object(), label2id = ojson::object();
  for (size_t i = 0; i < c.id2label.size(); ++i) {
    id2label[std::to_string(i)] = c.id2label[i];
    label2id[c.id2label[i]] = static_cast<int64_t>(i);
  }
  j["id2label"] = std::move(id2label);
  j["label2id"] = std::move(label2id);
  if (!c.problem_type.empty()) j["problem_type"] = c.problem_type;
  if (c.classifier_pooling == Pooling::kMean) j["classifier_pooling"] = "mean";
  j["torch_dtype"] = "float32";
  // Keep what we do not interpret (e.g. tokenizer_class, custom metadata).
  for (auto it = c.extra.begin(); it != c.extra.end(); ++it) {
    if (!j.contains(it.key()) && it.key() != "num_labels" && it.key() != "_name_or_path" &&
        it.key() != "classifier_pooling")
      j[it.key()] = it.value();
  }
  if (!j.contains("transformers_version")) j["transformers_version"] = "4.30.0";
  return j;
}

std::vector<std::string> PresetNames() {
  return {"bert-tiny", "bert-mini",       "bert-small",      "bert-medium", "bert-base", "distilbert-base",
          "roberta-base", "longformer-tiny", "longformer-base", "gpt2-tiny",   "gpt2-small"};
}

Result<ModelConfig> Preset(std::string_view name, const std::string& field) {
  struct Shape {
    const char* name;
    Architecture arch;
    int64_t layers, hidden, heads;
  };
  static constexpr Shape kShapes[] = {
      {"bert-tiny", Architecture::kBert, 2, 128, 2},        {"bert-mini", Architecture::kBert, 4, 256, 4},
      {"bert-small", Architecture::kBert, 4, 512, 8},       {"bert-medium", Architecture::kBert, 8, 512, 8},
      {"bert-base", Architecture::kBert, 12, 768, 12},      {"distilbert-base", Architecture::kDistilBert, 6, 768, 12},
      {"roberta-base", Architecture::kRoberta, 12, 768, 12},
      {"longformer-tiny", Architecture::kLongformer, 2, 128, 2}, {"longformer-base", Architecture::kLongformer, 12, 768, 12},
      {"gpt2-tiny", Architecture::kGpt2, 2, 128, 2},        {"gpt2-small", Architecture::kGpt2, 12, 768, 12},
  };
  for (const Shape& s : kShapes) {
    if (name != s.name) continue;
    json j = {{"model_type", std::string(ArchitectureName(s.arch))}};
    if (s.arch == Architecture::kDistilBert) {
      j.update({{"dim", s.hidden}, {"n_layers", s.layers}, {"n_heads", s.heads}, {"hidden_dim", 4 * s.hidden}});
    } else if (s.arch == Architecture::kGpt2) {
      j.update({{"n_embd", s.hidden}, {"n_layer", s.layers}, {"n_head", s.heads}});
    } else {
      j.update({{"hidden_size", s.hidden},
                {"num_hidden_layers", s.layers},
                {"num_attention_heads", s.heads},
                {"intermediate_size", 4 * s.hidden}});
      if (s.arch == Architecture::kLongformer) j["attention_window"] = s.hidden >= 768 ? 512 : 64;
    }
    return ParseConfig(j, field);
  }
  std::string list;
  for (const auto& p : PresetNames()) list += (list.empty() ? "" : ", ") + p;
  return InvalidArgument("unknown preset '" + std::string(name) + "' (presets: " + list + ")", field);
}

Result<ModelConfig> ScratchConfig(const json& model_block, int64_t vocab_size, std::optional<int64_t> pad_token_id,
                                  const std::vector<std::string>& labels, std::optional<int64_t> eos_token_id) {
  ModelConfig c;
  if (auto p = model_block.find("preset"); p != model_block.end()) {
    if (!p->is_string()) return InvalidArgument("preset must be a string", "model.preset");
    MLAAS_ASSIGN_OR_RETURN(c, Preset(p->get<std::string>(), "model.preset"));
  } else if (auto cfg = model_block.find("config"); cfg != model_block.end()) {
    MLAAS_ASSIGN_OR_RETURN(c, ParseConfig(*cfg, "model.config"));
  } else {
    return InvalidArgument("a model from scratch needs \"preset\" or \"config\"", "model");
  }
  // The tokenizer decides the vocabulary; a config may only ask for a larger one.
  const bool explicit_vocab = model_block.contains("config") && model_block["config"].contains("vocab_size");
  if (!explicit_vocab || c.vocab_size < vocab_size) c.vocab_size = vocab_size;
  if (pad_token_id) c.pad_token_id = *pad_token_id;
  if (c.architecture == Architecture::kGpt2) {  // GPT-2's own ids belong to its own vocabulary
    for (auto* id : {&c.bos_token_id, &c.eos_token_id}) {
      if (*id && **id >= c.vocab_size) id->reset();
      if (!*id && eos_token_id) *id = eos_token_id;  // the tokenizer's end of text starts and ends texts
    }
    if (c.pad_token_id >= c.vocab_size) c.pad_token_id = c.eos_token_id.value_or(0);
  }
  if (!labels.empty()) c.id2label = labels;
  if (RobertaLike(c.architecture) && c.max_position_embeddings <= c.pad_token_id + 1)
    c.max_position_embeddings = c.pad_token_id + (c.architecture == Architecture::kLongformer ? 4097 : 513);
  MLAAS_TRY(ValidateConfig(c, model_block.contains("config") ? "model.config" : "model.preset"));
  return c;
}

Status CheckArchitectureObjective(Architecture a, Objective o, const std::string& field) {
  const bool decoder = a == Architecture::kGpt2;
  if (decoder && o != Objective::kCausalLm)
    return InvalidArgument("a gpt2 model is a decoder: its objective is causal-lm (not " + std::string(ObjectiveName(o)) + ")",
                           field);
  if (o == Objective::kNextSentencePrediction && a != Architecture::kBert)
    return InvalidArgument("next-sentence-prediction is BERT's pre-training head; a " + std::string(ArchitectureName(a)) +
                               " model has none (use a bert model: presets bert-tiny .. bert-base)",
                           field);
  if (a == Architecture::kLongformer && o == Objective::kQuestionAnswering)
    return InvalidArgument("question-answering with a longformer model is not supported (its global attention on the "
                           "question is not built): use bert, distilbert or roberta",
                           field);
  if (!decoder && o == Objective::kCausalLm)
    return InvalidArgument("causal-lm needs a decoder (model_type gpt2, presets gpt2-tiny / gpt2-small), not a " +
                               std::string(ArchitectureName(a)) + " encoder",
                           field);
  return Status::Ok();
}

int64_t MaxInputTokens(const ModelConfig& c) {
  int64_t n = c.max_position_embeddings;
  // RoBERTa's absolute positions start after the padding id; relative ones index distances only.
  if (RobertaLike(c.architecture) && !c.relative_positions()) n -= c.pad_token_id + 1;
  return std::max<int64_t>(n, 2);
}

}  // namespace mlaas::nn
