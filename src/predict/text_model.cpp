// The text backend of ServableModel: a transformer encoder (text-classification, masked-lm,
// token-classification, no-objective), the GPT-2 decoder (causal-lm: generation.cpp) or a static embedding model,
// behind a tokenizer.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "common/text.h"
#include "dataset/record_reader.h"
#include "nn/embedding_projection.h"
#include "nn/model.h"
#include "nn/static_embedding.h"
#include "predict/backends.h"
#include "predict/answer_spans.h"
#include "predict/compute_thread.h"
#include "predict/token_entities.h"
#include "tokenizers/models.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/unicode.h"

namespace mlaas::predict {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Question answering: the context windows one request may make (each a forward pass's row).
constexpr size_t kMaxQuestionWindows = 4096;

// The text backend: a transformer encoder with its objective's head, or a static embedding
// model, behind a tokenizer.
class TextModel final : public ServableModel {
 public:
  TextModel() : ServableModel(Modality::kText) {}
  Result<std::vector<ModelRow>> EncodeTexts(const std::vector<std::string>& texts, const std::string& field) const override;
  Result<std::vector<ModelRow>> EncodePairs(const std::vector<std::string>& texts, const std::vector<std::string>& pairs,
                                            const std::string& field) const override;
  Result<std::vector<ModelRow>> EncodeQuestions(const std::vector<std::string>& questions,
                                                const std::vector<std::string>& contexts,
                                                const std::string& field) const override;
  // Question answering: each question's best span of its context over its windows.
  Result<std::vector<json>> Answer(const std::vector<const ModelRow*>& rows, RunStats* stats) const;
  Result<std::vector<json>> Run(const std::vector<const ModelRow*>& rows, const OutputOptions& options,
                                RunStats* stats) const override;
  Result<std::vector<float>> Embed(const std::vector<const ModelRow*>& rows, const OutputOptions& options,
                                   RunStats* stats) const override;
  Result<std::vector<json>> RunStreaming(const std::vector<const ModelRow*>& rows, const OutputOptions& options,
                                         const TextSink& sink, RunStats* stats) const override {
    return Generate(rows, options, sink, nullptr, stats);
  }
  Result<std::vector<json>> RunUntil(const std::vector<const ModelRow*>& rows, const OutputOptions& options,
                                     const RowWanted& wanted, RunStats* stats) const override {
    if (objective != Objective::kCausalLm) return Run(rows, options, stats);
    return Generate(rows, options, nullptr, wanted, stats);
  }
  Result<std::vector<json>> Generate(const std::vector<const ModelRow*>& rows, const OutputOptions& options,
                                     const TextSink& sink, const RowWanted& wanted, RunStats* stats) const;
  // The model's info, once loaded.
  void Publish() { info_ = info; }

  nn::TransformerModel model{nullptr};
  nn::StaticEmbedding static_model{nullptr};  // instead of `model`: a static embedding model
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;
  torch::Device device{torch::kCPU};
  Objective objective = Objective::kNoObjective;
  int64_t pad_id = 0;
  std::optional<uint32_t> mask_id;
  std::optional<nn::EmbeddingProjection> projection;  // embeddings: the model's Dense module
  // Token classification: the tokenizer's continuing-subword prefix ("##") and unknown token,
  // which decide what continues a word.
  std::optional<std::string> subword_prefix;
  std::optional<uint32_t> unk_id;
  ModelInfo info;  // filled while loading; Publish() makes it the model's
  // A projection applies to the pooling it was made for; InvalidArgument naming "pooling" else.
  Status CheckPooling(const OutputOptions& options) const {
    if (static_model && options.cls_pooling)
      return InvalidArgument("a static embedding model sums its tokens' vectors: it has no [CLS] pooling", "pooling");
    if (!projection || options.cls_pooling == (projection->pooling == nn::Pooling::kCls)) return Status::Ok();
    const char* made_for = projection->pooling == nn::Pooling::kCls ? "cls" : "mean";
    return InvalidArgument(std::string("this model's Dense projection applies to ") + made_for +
                               " pooling (1_Pooling/config.json): ask for pooling " + made_for,
                           "pooling");
  }
  // ForwardOnThisThread on the compute thread (compute_thread.h).
  torch::Tensor Forward(const std::vector<const tokenizers::Encoding*>& rows, const OutputOptions& options,
                        RunStats* stats) const;
  torch::Tensor ForwardOnThisThread(const std::vector<const tokenizers::Encoding*>& rows,
                                    const OutputOptions& options, RunStats* stats) const;
  torch::Tensor ForwardStatic(const std::vector<const tokenizers::Encoding*>& rows, const OutputOptions& options,
                              RunStats* stats) const;
};


// The encodings of text rows; InvalidArgument for an image row.
Result<std::vector<const tokenizers::Encoding*>> TextRows(const std::vector<const ModelRow*>& rows) {
  std::vector<const tokenizers::Encoding*> out;
  out.reserve(rows.size());
  for (const ModelRow* r : rows) {
    if (const auto* t = std::get_if<TextRow>(r)) {
      out.push_back(&t->encoding);
      continue;
    }
    const auto* e = std::get_if<tokenizers::Encoding>(r);
    if (!e) return InvalidArgument("this model takes texts, not images", "inputs");
    out.push_back(e);
  }
  return out;
}

// The continuing-subword prefix and the unknown token of a tokenizer's model.
void SubwordMarks(const tokenizers::Tokenizer& tokenizer, std::optional<std::string>& prefix,
                  std::optional<uint32_t>& unk) {
  const auto& model = tokenizer.model();
  std::optional<std::string> unk_token;
  if (const auto* wp = dynamic_cast<const tokenizers::WordPiece*>(&model)) {
    prefix = wp->options().continuing_subword_prefix;
    unk_token = wp->options().unk_token;
  } else if (const auto* bpe = dynamic_cast<const tokenizers::Bpe*>(&model)) {
    prefix = bpe->options().continuing_subword_prefix;
    unk_token = bpe->options().unk_token;
  }
  if (prefix && prefix->empty()) prefix.reset();
  if (unk_token) unk = tokenizer.TokenToId(*unk_token);
}

// The model's similarity, cosine or dot: sentence-transformers also knows euclidean and
// manhattan; this platform compares those models' embeddings as it does any other's.
Result<std::string> Similarity(const fs::path& dir) {
  MLAAS_ASSIGN_OR_RETURN(std::string s, nn::ReadSimilarity(dir, "model.path"));
  if (s != "dot" && s != "cosine")
    spdlog::warn("{}: similarity_fn_name '{}' is taken as cosine", dir.string(), s);
  return std::string(s == "dot" ? "dot" : "cosine");
}

}  // namespace

Result<std::shared_ptr<const ServableModel>> LoadTextModel(const LoadSpec& spec, Objective objective) {
  auto m = std::make_shared<TextModel>();
  m->objective = objective;
  auto device = nn::ParseDevice(spec.device);
  if (!device) return device.error().WithField("device");
  m->device = *device;
  auto dtype = nn::ParseDType(spec.dtype);
  if (!dtype) return dtype.error().WithField("dtype");
  if (!spec.model_dir && !spec.tokenizer)
    return InvalidArgument("a model from scratch (preset/config) needs a tokenizer block", "tokenizer");
  const fs::path tok_path = spec.tokenizer ? *spec.tokenizer : *spec.model_dir;
  const std::string tok_field = spec.tokenizer ? "tokenizer.path" : "model.path";
  auto tok = tokenizers::Tokenizer::Load(tok_path);
  if (!tok) return InvalidArgument("cannot load the tokenizer: " + tok.error().message(), tok_field);
  m->tokenizer = std::move(*tok);
  m->tokenizer->set_padding(std::nullopt);
  m->tokenizer->set_invalid_utf8(tokenizers::InvalidUtf8::kReplace);
  // What every model reports alike; the model's own fields follow its load.
  m->info.source = spec.source;
  m->info.objective = std::string(ObjectiveName(m->objective));
  m->info.device = m->device.str();
  m->info.dtype = *dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  if (spec.model_dir && m->objective == Objective::kNoObjective) {  // embeddings only
    MLAAS_ASSIGN_OR_RETURN(m->info.similarity, Similarity(*spec.model_dir));
  }
  std::optional<uint32_t> pad;
  if (auto p = m->tokenizer->PadToken()) pad = p->id;
  bool from_scratch = true;
  try {
    if (spec.model_dir && nn::IsStaticEmbeddingDir(*spec.model_dir)) {
      if (m->objective != Objective::kNoObjective)
        return InvalidArgument("a static embedding model only embeds (objective no-objective or sentence-embedding)",
                               "model.objective");
      MLAAS_ASSIGN_OR_RETURN(const auto config, nn::ReadStaticEmbeddingConfig(*spec.model_dir, "model.path"));
      MLAAS_RETURN_IF_ERROR(AdmitWeights(spec, nn::ParameterBytes(config)));
      MLAAS_ASSIGN_OR_RETURN(m->static_model, nn::LoadStaticEmbedding(*spec.model_dir, "model.path", &config));
      const nn::StaticEmbeddingConfig& c = m->static_model->config();
      if (m->tokenizer->VocabSize() > static_cast<size_t>(c.vocab_size)) {
        return InvalidArgument("the tokenizer has " + std::to_string(m->tokenizer->VocabSize()) +
                                   " tokens but the model's vocabulary only " + std::to_string(c.vocab_size),
                               tok_field);
      }
      // No positions to run out of: a bound on the work one text can ask for (or the shorter
      // length the model was trained at, which its tokenizer keeps; special tokens not counted).
      tokenizers::TruncationParams trunc;
      trunc.max_length = static_cast<size_t>(nn::kStaticEmbeddingMaxTokens);
      if (const auto& saved = m->tokenizer->truncation(); saved && saved->max_length < trunc.max_length)
        trunc.max_length = saved->max_length;
      m->tokenizer->set_truncation(trunc);
      m->static_model->to(m->device, *dtype);
      m->static_model->eval();
      ModelInfo& info = m->info;
      info.architecture = "static-embedding";
      info.hidden_size = info.embedding_size = c.hidden_size;
      info.vocab_size = c.vocab_size;
      info.max_tokens = static_cast<int64_t>(trunc.max_length);
      for (const auto& p : m->static_model->parameters()) info.parameter_bytes += p.numel() * p.element_size();
      m->Publish();
      return std::shared_ptr<const ServableModel>(std::move(m));
    }
    if (spec.model_dir) {
      // The config read once: the one admitted is the one built (the file may change meanwhile).
      auto config = nn::ReadModelConfig(*spec.model_dir);
      if (config.has_value()) {
        MLAAS_RETURN_IF_ERROR(nn::CheckArchitectureObjective(config->architecture, m->objective));
        MLAAS_RETURN_IF_ERROR(AdmitWeights(spec, nn::ParameterBytes(*config, m->objective)));
      }
      auto loaded = nn::LoadModelDir(*spec.model_dir, m->objective, {}, config.has_value() ? &*config : nullptr);
      if (!loaded) {
        const Status& e = loaded.error();
        return Status(e.code() == StatusCode::kNotFound ? StatusCode::kInvalidArgument : e.code(),
                      "model.path: " + e.message(), "model.path");
      }
      m->model = loaded->model;
      from_scratch = loaded->from_scratch;
      if (!loaded->report.unused.empty())
        spdlog::debug("model {}: {} checkpoint tensors unused by {}", spec.source, loaded->report.unused.size(),
                      ObjectiveName(m->objective));
    } else {
      const auto eos = m->tokenizer->EosToken();
      auto c = nn::ScratchConfig(spec.model_block, static_cast<int64_t>(m->tokenizer->VocabSize()),
                                 pad ? std::optional<int64_t>(*pad) : std::nullopt, Labels(spec.model_block),
                                 eos ? std::optional<int64_t>(eos->id) : std::nullopt);
      if (!c) return c.error();
      MLAAS_RETURN_IF_ERROR(nn::CheckArchitectureObjective(c->architecture, m->objective));
      MLAAS_RETURN_IF_ERROR(AdmitWeights(spec, nn::ParameterBytes(*c, m->objective)));
      m->model = nn::TransformerModel(*c, m->objective, /*with_pooler=*/false);
      nn::InitWeights(*m->model, 42);
    }
    const nn::ModelConfig& c = m->model->config();
    if (m->tokenizer->VocabSize() > static_cast<size_t>(c.vocab_size)) {
      return InvalidArgument("the tokenizer has " + std::to_string(m->tokenizer->VocabSize()) +
                                 " tokens but the model's vocabulary only " + std::to_string(c.vocab_size),
                             tok_field);
    }
    m->pad_id = pad ? static_cast<int64_t>(*pad) : c.pad_token_id;
    if (auto mask = m->tokenizer->MaskToken()) {
      m->mask_id = mask->id;
      m->info.mask_token = mask->token;
      m->info.mask_id = mask->id;
    }
    if (m->objective == Objective::kMaskedLm && !m->mask_id)
      return InvalidArgument("the tokenizer has no [MASK] or <mask> token, which fill-mask needs", tok_field);
    if (m->objective != Objective::kMaskedLm) {
      m->info.mask_token.clear();
      m->info.mask_id = -1;
    }
    tokenizers::TruncationParams trunc;
    trunc.max_length = static_cast<size_t>(nn::MaxInputTokens(c));
    // A tokenizer saved with a shorter truncation (a model trained on shorter inputs, see
    // train/) keeps it: positions beyond what training saw would be untrained.
    if (const auto& saved = m->tokenizer->truncation(); saved && saved->max_length > 0)
      trunc.max_length = std::min(trunc.max_length, saved->max_length);
    if (m->objective == Objective::kCausalLm) {
      // A prompt is never cut: one too long for the model's positions is refused (generation.cpp).
      m->tokenizer->set_truncation(std::nullopt);
    } else if (m->objective == Objective::kQuestionAnswering) {
      // A long context is cut into windows overlapping by a quarter (at most 128 tokens), as
      // the question-answering pipeline's doc_stride.
      trunc.strategy = tokenizers::TruncationStrategy::kOnlySecond;
      trunc.stride = std::min<size_t>(128, trunc.max_length / 4);
      trunc.overflowing = true;
      trunc.stop_early = false;  // windows over the whole context, not its first max_length tokens
      m->tokenizer->set_truncation(trunc);
    } else {
      m->tokenizer->set_truncation(trunc);
    }
    if (spec.model_dir && m->objective == Objective::kNoObjective) {
      MLAAS_ASSIGN_OR_RETURN(m->projection, nn::LoadEmbeddingProjection(*spec.model_dir, c.hidden_size, "model.path"));
      if (m->projection) {
        m->projection->weight = m->projection->weight.to(m->device);
        m->projection->bias = m->projection->bias.to(m->device);
      }
    }
    m->model->to(m->device, *dtype);
    m->model->PrepareForInference(/*drop_sources=*/true);  // served: inference only, weights held once

    ModelInfo& info = m->info;
    info.architecture = std::string(nn::ArchitectureName(c.architecture));
    info.from_scratch = from_scratch;
    if (m->objective == Objective::kTextClassification || m->objective == Objective::kTokenClassification)
      info.labels = c.id2label;
    if (m->objective == Objective::kTokenClassification) SubwordMarks(*m->tokenizer, m->subword_prefix, m->unk_id);
    info.hidden_size = c.hidden_size;
    info.embedding_size = m->projection ? m->projection->out_features() : c.hidden_size;
    info.vocab_size = c.vocab_size;
    // What the encoder reads of the token types (ForwardOnThisThread): BERT's, none of the others'.
    info.type_vocab_size = c.architecture == nn::Architecture::kBert ? c.type_vocab_size : 0;
    // A causal LM's prompts are not truncated: its limit is its positions (prompt + new tokens).
    info.max_tokens = m->objective == Objective::kCausalLm ? c.max_position_embeddings
                                                           : static_cast<int64_t>(trunc.max_length);
    for (const auto& p : m->model->parameters()) info.parameter_bytes += p.numel() * p.element_size();
    info.parameter_bytes += m->model->PackedBytes();
    if (m->projection) info.parameter_bytes += (m->projection->weight.numel() + m->projection->bias.numel()) * 4;
  } catch (const c10::Error& e) {
    return Internal(std::string("loading the model failed: ") + e.what_without_backtrace());
  }
  m->Publish();
  return std::shared_ptr<const ServableModel>(std::move(m));
}

Result<std::vector<ModelRow>> TextModel::EncodeTexts(const std::vector<std::string>& texts,
                                                     const std::string& field) const {
  const TextModel& m = *this;
  if (m.objective == Objective::kQuestionAnswering)
    return InvalidArgument("a question-answering model reads questions about contexts: give question and context",
                           field.substr(0, field.rfind('.') + 1) + "question");
  if (m.objective == Objective::kNextSentencePrediction)
    return InvalidArgument("next-sentence-prediction reads text pairs: give pair_text beside input_text",
                           field.substr(0, field.rfind('.') + 1) + "pair_text");
  std::vector<tokenizers::EncodeInput> inputs;
  inputs.reserve(texts.size());
  for (const auto& t : texts) inputs.push_back({t, std::nullopt});
  // A static embedding model sums the text's own tokens, as it was trained: no [CLS]/[SEP], and
  // the truncation length counts the text's tokens only. A causal LM continues the text itself.
  const bool causal = m.objective == Objective::kCausalLm;
  auto encoded = m.tokenizer->EncodeBatch(inputs, /*add_special_tokens=*/!m.static_model && !causal,
                                          texts.size() > 8 ? 0 : 1);
  if (!encoded) return encoded.error().WithField(field);
  // Outputs that point into the text keep it beside its encoding (invalid UTF-8 replaced as the
  // tokenizer replaced it, so that offsets count the same code points).
  if (causal || m.objective == Objective::kTokenClassification) {
    std::vector<ModelRow> rows;
    rows.reserve(encoded->size());
    for (size_t i = 0; i < encoded->size(); ++i) {
      const bool clean = causal || IsValidUtf8(texts[i]);  // a prompt is kept byte for byte
      rows.emplace_back(TextRow{std::move((*encoded)[i]), clean ? texts[i] : dataset::SanitizeUtf8(texts[i])});
    }
    return rows;
  }
  if (m.objective == Objective::kMaskedLm) {
    for (size_t i = 0; i < encoded->size(); ++i) {
      const auto& ids = (*encoded)[i].ids;
      if (std::find(ids.begin(), ids.end(), *m.mask_id) == ids.end())
        return InvalidArgument(field.substr(field.rfind('.') + 1) + "[" + std::to_string(i) + "] has no " +
                                   m.info.mask_token + " token to fill",
                               field);
    }
  }
  std::vector<ModelRow> rows;
  rows.reserve(encoded->size());
  for (auto& e : *encoded) rows.emplace_back(std::move(e));
  return rows;
}

Result<std::vector<ModelRow>> TextModel::EncodePairs(const std::vector<std::string>& texts,
                                                     const std::vector<std::string>& pairs,
                                                     const std::string& field) const {
  if (objective != Objective::kTextClassification && objective != Objective::kNextSentencePrediction)
    return ServableModel::EncodePairs(texts, pairs, field);
  if (pairs.size() != texts.size())
    return InvalidArgument("pair_text must have as many texts as input_text (" + std::to_string(texts.size()) + ")", field);
  std::vector<tokenizers::EncodeInput> inputs;
  inputs.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) inputs.push_back({texts[i], pairs[i]});
  // The truncation cuts the longer text first (longest_first), as the pairs were trained.
  auto encoded = tokenizer->EncodeBatch(inputs, /*add_special_tokens=*/true, texts.size() > 8 ? 0 : 1);
  if (!encoded) return encoded.error().WithField(field);
  std::vector<ModelRow> rows;
  rows.reserve(encoded->size());
  for (auto& e : *encoded) {
    e.overflowing.clear();
    rows.emplace_back(std::move(e));
  }
  return rows;
}

Result<std::vector<ModelRow>> TextModel::EncodeQuestions(const std::vector<std::string>& questions,
                                                         const std::vector<std::string>& contexts,
                                                         const std::string& field) const {
  if (objective != Objective::kQuestionAnswering) return ServableModel::EncodeQuestions(questions, contexts, field);
  const std::string context_field = field.substr(0, field.rfind('.') + 1) + "context";
  if (contexts.size() != questions.size())
    return InvalidArgument("context must have as many texts as question (" + std::to_string(questions.size()) + ")",
                           context_field);
  // Each question whole, with room for context windows that move by at least the stride: the
  // windows are then at most about (context tokens / stride), bounded by the request's size.
  const size_t max_tokens = static_cast<size_t>(info.max_tokens), stride = tokenizer->truncation()->stride;
  std::vector<tokenizers::EncodeInput> inputs;
  inputs.reserve(questions.size());
  for (size_t i = 0; i < questions.size(); ++i) {
    auto q = tokenizer->Encode(questions[i], std::nullopt, /*add_special_tokens=*/false);
    if (!q.has_value() || q->size() + 4 + 2 * stride > max_tokens)
      return InvalidArgument("question[" + std::to_string(i) + "] leaves no room for its context in this model's " +
                                 std::to_string(max_tokens) + " tokens: shorten it",
                             field);
    inputs.push_back({questions[i], contexts[i]});
  }
  auto encoded = tokenizer->EncodeBatch(inputs, /*add_special_tokens=*/true, questions.size() > 8 ? 0 : 1);
  if (!encoded) return encoded.error().WithField(context_field);
  std::vector<ModelRow> rows;
  rows.reserve(encoded->size());
  size_t windows = 0;
  for (size_t i = 0; i < encoded->size(); ++i) {
    QuestionRow q;
    q.windows = std::move((*encoded)[i].overflowing);
    (*encoded)[i].overflowing.clear();
    q.windows.insert(q.windows.begin(), std::move((*encoded)[i]));
    TypeWindowsAsTheFirst(q.windows);
    windows += q.windows.size();
    if (windows > kMaxQuestionWindows)
      return InvalidArgument("the contexts make more than " + std::to_string(kMaxQuestionWindows) + " windows of " +
                                 std::to_string(max_tokens) + " tokens: send fewer or shorter ones",
                             context_field);
    q.context = contexts[i];
    rows.emplace_back(std::move(q));
  }
  return rows;
}

Result<std::vector<json>> TextModel::Answer(const std::vector<const ModelRow*>& rows, RunStats* stats) const {
  constexpr size_t kWindowsPerPass = 32;
  constexpr int64_t kMaxAnswerTokens = 15;  // the pipeline's max_answer_len
  // Each row's windows: a whole question's, or one window of a question (a deployment's row).
  struct Item {
    const QuestionRow* question;
    size_t first, count;
    bool window;
  };
  std::vector<Item> items;
  std::vector<const tokenizers::Encoding*> windows;
  for (const ModelRow* r : rows) {
    if (const auto* q = std::get_if<QuestionRow>(r)) {
      items.push_back({q, 0, q->windows.size(), false});
    } else if (const auto* w = std::get_if<QuestionWindow>(r); w && w->question && w->window < w->question->windows.size()) {
      items.push_back({w->question.get(), w->window, 1, true});
    } else {
      return InvalidArgument("a question-answering model takes questions with their contexts", "predict_input.question");
    }
    for (size_t k = 0; k < items.back().count; ++k) windows.push_back(&items.back().question->windows[items.back().first + k]);
  }
  // Each window's start and end logits, in passes of a bounded number of windows.
  std::vector<std::vector<float>> starts, ends;
  for (size_t from = 0; from < windows.size(); from += kWindowsPerPass) {
    std::vector<const tokenizers::Encoding*> part(windows.begin() + static_cast<std::ptrdiff_t>(from),
                                                  windows.begin() + static_cast<std::ptrdiff_t>(std::min(windows.size(), from + kWindowsPerPass)));
    torch::Tensor logits = Forward(part, OutputOptions(), stats);  // [n, len, 2]
    for (size_t k = 0; k < part.size(); ++k) {
      auto row = logits[static_cast<int64_t>(k)];
      auto s = row.select(1, 0).contiguous(), e = row.select(1, 1).contiguous();
      starts.emplace_back(s.data_ptr<float>(), s.data_ptr<float>() + part[k]->size());
      ends.emplace_back(e.data_ptr<float>(), e.data_ptr<float>() + part[k]->size());
    }
  }
  std::vector<json> out;
  size_t w = 0;
  for (const Item& item : items) {
    std::vector<AnswerWindow> spans;
    for (size_t k = 0; k < item.count; ++k, ++w) {
      const tokenizers::Encoding& win = item.question->windows[item.first + k];
      AnswerWindow a{starts[w].data(), ends[w].data(), {}, std::nullopt};
      for (size_t t = 0; t < win.size(); ++t) {
        const bool context = t < win.sequence_ids.size() && win.sequence_ids[t] == 1u && !win.special_tokens_mask[t];
        a.context_offsets.push_back(context ? std::optional(win.offsets[t]) : std::nullopt);
        if (!a.cls && t < win.special_tokens_mask.size() && win.special_tokens_mask[t]) a.cls = t;  // [CLS] / <s>
      }
      spans.push_back(std::move(a));
    }
    auto best = BestSpan(spans, kMaxAnswerTokens, SpanScore::kProbProduct);
    if (!best) {  // a window alone answers null: its question's other windows may hold the answer
      out.push_back(item.window ? json() : NoAnswer());
      continue;
    }
    // The answer keeps the accents a stripping tokenizer left out of its last token.
    std::vector<std::pair<uint32_t, uint32_t>> covered;
    for (const AnswerWindow& a : spans)
      for (const auto& o : a.context_offsets)
        if (o) covered.push_back(*o);
    auto cps = tokenizers::DecodeUtf8(item.question->context, tokenizers::InvalidUtf8::kReplace);
    const uint32_t end = cps.has_value() ? PastDroppedMarks(DroppedMarks(*cps, covered), best->end) : best->end;
    out.push_back({{"answer", CodePointSlice(item.question->context, best->start, end)},
                   {"score", best->score},
                   {"start", best->start},
                   {"end", end}});
  }
  return out;
}

// The inputs of `rows` padded to the longest, through the encoder and the objective's head:
// probabilities (classification), pooled embeddings (no-objective) or, for fill-mask, one row
// per [MASK] (row, position, k scores, k token ids). On the CPU, contiguous.
torch::Tensor TextModel::Forward(const std::vector<const tokenizers::Encoding*>& rows,
                                           const OutputOptions& options, RunStats* stats) const {
  torch::Tensor result;
  RunOnComputeThread([&] { result = ForwardOnThisThread(rows, options, stats); });
  return result;
}

torch::Tensor TextModel::ForwardOnThisThread(const std::vector<const tokenizers::Encoding*>& rows,
                                                       const OutputOptions& options, RunStats* stats) const {
  const TextModel& m = *this;
  if (m.static_model) return ForwardStatic(rows, options, stats);
  nn::TransformerModel model = m.model;  // forward is logically const: it changes nothing
  const nn::ModelConfig& c = model->config();
  const int64_t b = static_cast<int64_t>(rows.size());
  size_t longest = 1, tokens = 0;
  for (const auto* e : rows) {
    longest = std::max(longest, e->size());
    tokens += e->size();
  }
  const int64_t len = static_cast<int64_t>(longest);
  const int64_t top_k = options.top_k.value_or(5);
  torch::InferenceMode guard;
  auto ids = torch::full({b, len}, m.pad_id, torch::kInt64);
  auto mask = torch::zeros({b, len}, torch::kInt64);
  auto types = torch::zeros({b, len}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<int64_t, 2>();
  auto types_a = types.accessor<int64_t, 2>();
  for (int64_t r = 0; r < b; ++r) {
    const auto& e = *rows[static_cast<size_t>(r)];
    for (size_t t = 0; t < e.size(); ++t) {
      ids_a[r][t] = e.ids[t];
      mask_a[r][t] = 1;
      types_a[r][t] = e.type_ids[t];
    }
  }
  const auto f0 = Clock::now();
  nn::EncoderInput batch{ids.to(m.device), mask.to(m.device),
                         c.architecture == nn::Architecture::kBert ? types.to(m.device) : torch::Tensor()};
  // Classification heads and [CLS] pooling read the first token only (the encoder runs every
  // token anyway when the config's classifier_pooling is mean).
  batch.first_token_only = m.objective == Objective::kTextClassification ||
                           m.objective == Objective::kNextSentencePrediction ||
                           (m.objective == Objective::kNoObjective && options.cls_pooling);
  nn::EncoderOutput enc = model->encoder->forward(model->WithDefaultGlobalAttention(batch));
  torch::Tensor result;
  switch (m.objective) {
    case Objective::kTextClassification: {
      auto logits = model->head()->Forward(enc).to(torch::kFloat32);
      if (c.multi_label()) {
        result = torch::sigmoid(logits);
      } else if (c.problem_type == "regression") {
        result = logits;
      } else {
        result = torch::softmax(logits, -1);
      }
      break;
    }
    case Objective::kNoObjective: {
      result = nn::Pool(enc.last_hidden_state.to(torch::kFloat32), batch.attention_mask,
                        options.cls_pooling ? nn::Pooling::kCls : nn::Pooling::kMean);
      if (m.projection) result = m.projection->Apply(result);
      if (options.normalize)
        result = torch::nn::functional::normalize(result, torch::nn::functional::NormalizeFuncOptions().dim(1));
      break;
    }
    case Objective::kTokenClassification:
      result = torch::softmax(model->head()->Forward(enc).to(torch::kFloat32), -1);  // [b, len, labels]
      break;
    case Objective::kNextSentencePrediction:
      result = torch::softmax(model->head()->Forward(enc).to(torch::kFloat32), -1);  // [b, 2]: is next, random
      break;
    case Objective::kQuestionAnswering:
      result = model->head()->Forward(enc).to(torch::kFloat32);  // [b, len, 2]: start and end logits
      break;
    case Objective::kMaskedLm: {
      // Only the masked positions go through the vocabulary projection.
      auto positions = batch.input_ids.eq(static_cast<int64_t>(*m.mask_id)).nonzero();  // [n, 2]
      auto hidden = enc.last_hidden_state.index({positions.select(1, 0), positions.select(1, 1)});
      // A chunk of positions at a time: [n, vocab] probabilities for thousands of masks would
      // take gigabytes.
      constexpr int64_t kChunk = 256;
      std::vector<torch::Tensor> values, token_ids;
      for (int64_t from = 0; from < hidden.size(0); from += kChunk) {
        nn::EncoderOutput masked;
        masked.last_hidden_state = hidden.slice(0, from, std::min(from + kChunk, hidden.size(0))).unsqueeze(0);
        auto probs = torch::softmax(model->head()->Forward(masked).squeeze(0).to(torch::kFloat32), -1);  // [chunk, vocab]
        auto [v, i] = probs.topk(std::min<int64_t>(top_k, probs.size(1)), 1);
        values.push_back(v.to(torch::kFloat64));
        token_ids.push_back(i.to(torch::kFloat64));
      }
      if (values.empty()) {
        result = torch::zeros({0, 2 + 2 * std::min<int64_t>(top_k, c.vocab_size)}, torch::kFloat64);
      } else {
        result = torch::cat({positions.to(torch::kFloat64), torch::cat(values, 0), torch::cat(token_ids, 0)}, 1);
      }
      break;
    }
    default: break;  // Load admits no other objective
  }
  result = result.to(torch::kCPU).contiguous();
  if (stats) {
    stats->forward_ms += Ms(f0, Clock::now());
    stats->tokens += tokens;
    stats->padded_tokens += static_cast<size_t>(b * len);
  }
  return result;
}

// A static embedding model: each row's tokens (encoded without special tokens), summed with their weights.
torch::Tensor TextModel::ForwardStatic(const std::vector<const tokenizers::Encoding*>& rows,
                                                 const OutputOptions& options, RunStats* stats) const {
  torch::InferenceMode guard;
  std::vector<std::vector<int64_t>> texts;
  size_t tokens = 0;
  for (const auto* e : rows) {
    texts.emplace_back(e->ids.begin(), e->ids.end());
    tokens += e->size();
  }
  const auto f0 = Clock::now();
  nn::StaticEmbedding model = static_model;  // forward is logically const: it changes nothing
  torch::Tensor result = model->forward(texts).to(torch::kFloat32);
  if (options.normalize)
    result = torch::nn::functional::normalize(result, torch::nn::functional::NormalizeFuncOptions().dim(1));
  result = result.to(torch::kCPU).contiguous();
  if (stats) {
    stats->forward_ms += Ms(f0, Clock::now());
    stats->tokens += tokens;
    stats->padded_tokens += tokens;
  }
  return result;
}

Result<std::vector<float>> TextModel::Embed(const std::vector<const ModelRow*>& model_rows,
                                            const OutputOptions& options, RunStats* stats) const {
  const TextModel& m = *this;
  MLAAS_ASSIGN_OR_RETURN(auto rows, TextRows(model_rows));
  if (m.objective != Objective::kNoObjective)
    return InvalidArgument("embeddings need a no-objective (or sentence-embedding) model", "model.objective");
  MLAAS_RETURN_IF_ERROR(m.CheckPooling(options));
  if (rows.empty()) return std::vector<float>();
  try {
    torch::Tensor result = m.Forward(rows, options, stats);
    const float* data = result.data_ptr<float>();
    return std::vector<float>(data, data + result.numel());
  } catch (const c10::Error& e) {
    return Internal(std::string("the forward pass failed: ") + e.what_without_backtrace());
  }
}

Result<std::vector<json>> TextModel::Generate(const std::vector<const ModelRow*>& model_rows,
                                              const OutputOptions& options, const TextSink& sink, const RowWanted& wanted,
                                              RunStats* stats) const {
  if (objective != Objective::kCausalLm) return ServableModel::RunStreaming(model_rows, options, sink, stats);
  std::vector<const TextRow*> prompts;
  std::vector<TextRow> from_ids;  // prompts given as token ids: their text is their decoding
  from_ids.reserve(model_rows.size());
  for (const ModelRow* r : model_rows) {
    if (const auto* p = std::get_if<TextRow>(r)) {
      prompts.push_back(p);
    } else if (const auto* e = std::get_if<tokenizers::Encoding>(r)) {
      auto text = tokenizer->Decode(e->ids, /*skip_special_tokens=*/true);
      from_ids.push_back({*e, text.has_value() ? *text : std::string()});
      prompts.push_back(&from_ids.back());
    } else {
      return InvalidArgument("this model takes texts, not images", "inputs");
    }
  }
  Result<std::vector<json>> out = std::vector<json>();
  if (prompts.empty()) return out;
  nn::TransformerModel decoder = model;  // generation is logically const: it changes no weight
  RunOnComputeThread([&] { out = GenerateTexts(*decoder, *tokenizer, prompts, options, sink, stats, wanted); });
  return out;
}

Result<std::vector<json>> TextModel::Run(const std::vector<const ModelRow*>& model_rows,
                                         const OutputOptions& options, RunStats* stats) const {
  const TextModel& m = *this;
  if (m.objective == Objective::kCausalLm) return Generate(model_rows, options, nullptr, nullptr, stats);
  if (m.objective == Objective::kQuestionAnswering) {
    try {
      torch::InferenceMode guard;
      return Answer(model_rows, stats);
    } catch (const c10::Error& e) {
      return Internal(std::string("the forward pass failed: ") + e.what_without_backtrace());
    }
  }
  MLAAS_ASSIGN_OR_RETURN(auto rows, TextRows(model_rows));
  std::vector<json> predictions(rows.size());
  if (m.objective == Objective::kNoObjective) MLAAS_RETURN_IF_ERROR(m.CheckPooling(options));
  if (rows.empty()) return predictions;
  const int64_t b = static_cast<int64_t>(rows.size());
  try {
    torch::InferenceMode guard;
    torch::Tensor result = m.Forward(rows, options, stats);
    const auto f1 = Clock::now();

    if (m.objective == Objective::kTextClassification) {
      const nn::ModelConfig& c = m.model->config();
      const float* data = result.data_ptr<float>();
      const int64_t n = result.size(1);
      for (int64_t r = 0; r < b; ++r) {
        auto scores = result[r];
        json p;
        if (c.problem_type == "regression" && c.num_labels() == 1) {
          p = {{"label", c.id2label[0]}, {"score", scores[0].item<double>()}};
        } else {
          auto best = scores.argmax().item<int64_t>();
          p = {{"label", c.id2label[best]}, {"score", scores[best].item<double>()}};
          if (options.top_k) p["top_k"] = TopLabels(scores, c.id2label, *options.top_k);
        }
        if (options.all_scores) p["scores"] = std::vector<float>(data + r * n, data + (r + 1) * n);
        predictions[static_cast<size_t>(r)] = std::move(p);
      }
    } else if (m.objective == Objective::kNextSentencePrediction) {
      auto acc = result.accessor<float, 2>();
      for (int64_t r = 0; r < b; ++r)
        predictions[static_cast<size_t>(r)] = {{"is_next", acc[r][0] >= acc[r][1]}, {"score", acc[r][0]}};
    } else if (m.objective == Objective::kTokenClassification) {
      const std::vector<std::string>& labels = m.model->config().id2label;
      const int64_t n = result.size(2), stride = result.size(1) * n;
      const float* data = result.data_ptr<float>();
      for (int64_t r = 0; r < b; ++r) {
        const auto* row = std::get_if<TextRow>(model_rows[static_cast<size_t>(r)]);
        if (!row) return InvalidArgument("a token classifier takes texts (its entities point into them), not token ids", "inputs");
        // The word of an entity: its tokens decoded, or, when one is unknown (the decoder would
        // drop it), the text it covers, as transformers reads an unknown token.
        auto decode = [&](const std::vector<uint32_t>& ids, uint32_t start, uint32_t end) {
          if (m.unk_id && std::find(ids.begin(), ids.end(), *m.unk_id) != ids.end())
            return CodePointSlice(row->text, start, end);
          auto text = m.tokenizer->Decode(ids, /*skip_special_tokens=*/true);
          return text.has_value() ? std::string(Trim(*text)) : std::string();
        };
        auto tokens = ClassifiedTokens(row->encoding, row->text, data + r * stride, n, m.subword_prefix, m.unk_id);
        predictions[static_cast<size_t>(r)] = GroupEntities(tokens, labels, options.aggregation, decode);
      }
    } else if (m.objective == Objective::kNoObjective) {
      const int64_t h = result.size(1);
      const float* data = result.data_ptr<float>();
      for (int64_t r = 0; r < b; ++r) {
        predictions[static_cast<size_t>(r)] = {{"embedding", std::vector<float>(data + r * h, data + (r + 1) * h)}};
      }
    } else {
      const int64_t k = (result.size(1) - 2) / 2;
      auto acc = result.accessor<double, 2>();
      std::vector<std::vector<uint32_t>> filled(static_cast<size_t>(b));
      std::vector<json> masks(static_cast<size_t>(b), json::array());
      for (int64_t r = 0; r < b; ++r) filled[r] = rows[static_cast<size_t>(r)]->ids;
      for (int64_t n = 0; n < result.size(0); ++n) {
        const auto r = static_cast<int64_t>(acc[n][0]);
        const auto pos = static_cast<int64_t>(acc[n][1]);
        json candidates = json::array();
        for (int64_t j = 0; j < k; ++j) {
          const auto id = static_cast<uint32_t>(acc[n][2 + k + j]);
          auto token = m.tokenizer->Decode({id}, false);
          candidates.push_back({{"token", token ? *token : std::string()}, {"token_id", id}, {"score", acc[n][2 + j]}});
          if (j == 0) filled[r][pos] = id;
        }
        masks[r].push_back({{"position", pos}, {"candidates", std::move(candidates)}});
      }
      for (int64_t r = 0; r < b; ++r) {
        auto sequence = m.tokenizer->Decode(filled[r], /*skip_special_tokens=*/true);
        predictions[static_cast<size_t>(r)] = {{"masks", std::move(masks[r])},
                                               {"sequence", sequence ? *sequence : std::string()}};
      }
    }
    if (stats) stats->postprocess_ms += Ms(f1, Clock::now());
  } catch (const c10::Error& e) {
    return Internal(std::string("the forward pass failed: ") + e.what_without_backtrace());
  }
  return predictions;
}

}  // namespace mlaas::predict
