// A model ready to serve, behind one interface whatever it takes: the backend seam of
// prediction, serving and vector search. Backends: text (a transformer encoder for
// text-classification, masked-lm fill-mask and no-objective embeddings, the GPT-2 decoder for
// causal-lm generation (generation.cpp), or a static embedding model, with a tokenizer truncating to the model's maximum length; text_model.cpp) and image
// (an image classifier, decoding, resizing and normalising images as its config says;
// image_model.cpp). Preparing rows (tokenizing, decoding) and the forward pass are separate
// steps, so that a dynamic batcher (serve/) prepares rows on the request's thread and runs the
// rows of many requests in one forward pass, within a budget of each row's cost. Thread-safe:
// Run may be called concurrently. No libtorch in this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/objective.h"
#include "common/result.h"
#include "predict/output_options.h"
#include "tokenizers/encoding.h"

namespace mlaas::predict {

// OK for an objective the engine predicts; InvalidArgument (none given) or Unimplemented
// naming model.objective otherwise.
Status CheckServedObjective(const std::string& objective);

// An image ready for a model: its pixels resized to the model's input and normalised, channel
// by channel (CHW, float).
struct ImageRow {
  std::vector<float> pixels;
  int64_t channels = 0, height = 0, width = 0;
};
// A text with its encoding, for models whose outputs point back into the text: a causal LM's
// prompt (its tokens without special tokens; the generated text starts with the prompt), a
// token classifier's input (entities' offsets are code points of the text).
struct TextRow {
  tokenizers::Encoding encoding;
  std::string text;
};
// A question about a context, for extractive question answering: the windows the (question,
// context) pair is cut into when the context is long, and the context, which answers point into.
struct QuestionRow {
  std::vector<tokenizers::Encoding> windows;
  std::string context;
};
// One window of a question, as a row of its own: a deployment's batcher runs a long context's
// windows in whichever passes they fit, beside other requests' rows (SplitQuestionWindows).
struct QuestionWindow {
  std::shared_ptr<const QuestionRow> question;
  size_t window = 0;
};
// One input row of a forward pass: a tokenized text, a text with its encoding, a question with
// its context (all its windows), one window of a question, or a prepared image.
using ModelRow = std::variant<tokenizers::Encoding, ImageRow, TextRow, QuestionRow, QuestionWindow>;
// What a row costs a forward pass, for batching budgets: a text's or prompt's tokens (a batch
// pads to its longest; a question: its windows' tokens), an image's pixels (height x width).
int64_t RowCost(const ModelRow& row);

// Question rows cut into a row per window (other rows kept as they are); `windows[i]`: how many
// rows row i became. Run answers a window row with its best span ({answer, score, start, end}),
// or null when the window holds no context token.
std::vector<ModelRow> SplitQuestionWindows(std::vector<ModelRow> rows, std::vector<size_t>& windows);
// A question's answer when no window holds a span: {"answer": "", "score": 0, "start": 0, "end": 0}.
nlohmann::json NoAnswer();
// The answers of split rows regrouped, one per original row: a question's best span over its
// windows (the highest score, the earliest window on ties: what Run answers for the whole
// question), NoAnswer() when none has a span.
std::vector<nlohmann::json> MergeWindowAnswers(std::vector<nlohmann::json> answers, const std::vector<size_t>& windows);

// What one request may ask a model to produce, checked before it runs (InvalidArgument naming
// the option in `block`, e.g. "predict_input" or "parameters"):
// - a causal LM: each prompt plus options.generation.max_new_tokens fits the model's positions
//   (info().max_tokens; an empty prompt counts its start token), and the prompts times
//   max_new_tokens are at most kMaxGeneratedTokens (`block`.max_new_tokens);
// - a masked LM: its masks times top_k (default 5) are at most kMaxFilledTokens (`block`.top_k).
// Other models: OK.
inline constexpr int64_t kMaxGeneratedTokens = 32768;
inline constexpr int64_t kMaxFilledTokens = 65536;
class ServableModel;
Status CheckOutputFits(const ServableModel& model, const std::vector<ModelRow>& rows, const OutputOptions& options,
                       const std::string& block);

// The objective a model's config.json names, for requests that leave model.objective out: an
// image classifier's model_type, else a transformer's architectures (BertForMaskedLM, ...).
// InvalidArgument naming model.objective when it names none, model.path when it is unusable
// (the reason: a member out of range, not JSON).
Result<Objective> ObjectiveOfConfigJson(std::string_view text);

struct LoadSpec {
  std::optional<std::filesystem::path> model_dir;  // Hugging Face layout; none: from scratch
  nlohmann::json model_block = nlohmann::json::object();  // {preset | config, labels?} (scratch)
  std::optional<std::filesystem::path> tokenizer;  // default: model_dir
  std::string objective;                           // text-classification, masked-lm, no-objective, image-classification, ...
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
  int64_t type_vocab_size = 0;   // token type ids are below this (0: the model reads none)
  int64_t max_tokens = 0;        // inputs are truncated to this many tokens
  uint64_t parameter_bytes = 0;  // weights in memory
  std::string mask_token;        // fill-mask
  int64_t mask_id = -1;          // fill-mask: the mask token's id
  // How the model's embeddings compare (config_sentence_transformers.json similarity_fn_name):
  // "cosine" unless the model says otherwise; "dot" models embed at their own length.
  std::string similarity = "cosine";
  int64_t image_channels = 0, image_height = 0, image_width = 0;  // images: the input they are resized to
  nlohmann::json ToJson() const;
};

struct RunStats {
  double forward_ms = 0, postprocess_ms = 0;
  size_t tokens = 0, padded_tokens = 0;
};

class ServableModel {
 public:
  // Loads and prepares the model for inference, with the backend its objective takes.
  // InvalidArgument naming model.path / tokenizer.path for unusable files; Unimplemented for
  // objectives the engine does not serve. Runs on a thread of its own that ends with the load
  // (see compute_thread.h: a thread that has run libtorch operators keeps an OpenMP team for
  // its life); passes run on the compute thread.
  static Result<std::shared_ptr<const ServableModel>> Load(const LoadSpec& spec);
  virtual ~ServableModel() = default;
  ServableModel(const ServableModel&) = delete;
  ServableModel& operator=(const ServableModel&) = delete;

  const ModelInfo& info() const { return info_; }
  Modality modality() const { return modality_; }

  // Rows from texts (text models: tokenized); errors name `field` (e.g. an input without a
  // [MASK] for fill-mask; an image model: InvalidArgument).
  virtual Result<std::vector<ModelRow>> EncodeTexts(const std::vector<std::string>& texts,
                                                    const std::string& field) const;
  // Rows from text pairs (texts[i] with pairs[i], as one input: [CLS] a [SEP] b [SEP]) for
  // models that read pairs (text-classification, next-sentence-prediction); errors name
  // `field`. Other models: InvalidArgument naming `field`.
  virtual Result<std::vector<ModelRow>> EncodePairs(const std::vector<std::string>& texts,
                                                    const std::vector<std::string>& pairs,
                                                    const std::string& field) const;
  // Rows from questions about contexts (question-answering models; as many of each): each
  // context cut into windows that overlap; errors name `field`. Other models: InvalidArgument
  // naming `field`.
  virtual Result<std::vector<ModelRow>> EncodeQuestions(const std::vector<std::string>& questions,
                                                        const std::vector<std::string>& contexts,
                                                        const std::string& field) const;
  // Rows from encoded image files (PNG, JPEG; image models: decoded within the decoding
  // limits, converted to the model's channels, resized, normalised); errors name
  // `field`[i] (a text model: InvalidArgument).
  virtual Result<std::vector<ModelRow>> EncodeImages(const std::vector<std::string>& files,
                                                     const std::string& field) const;
  // Rows from `n` images of raw pixels, n x channels x height x width values in [0, 1]
  // (UINT8 tensors divided by 255), resized and normalised as EncodeImages does.
  virtual Result<std::vector<ModelRow>> ImagesFromPixels(const std::vector<float>& pixels, int64_t n,
                                                         int64_t channels, int64_t height, int64_t width,
                                                         const std::string& field) const;
  // One forward pass over `rows` (text rows padded to the longest): a prediction per row, in
  // order. InvalidArgument for rows of another kind than the model takes.
  virtual Result<std::vector<nlohmann::json>> Run(const std::vector<const ModelRow*>& rows,
                                                  const OutputOptions& options, RunStats* stats = nullptr) const = 0;
  // Run for a causal LM, with each row's generated text handed to `sink` piece by piece as it is
  // produced (on the compute thread); the sink returns false to stop (the client left). Other
  // models: InvalidArgument naming "stream".
  using TextSink = std::function<bool(size_t row, const std::string& piece)>;
  virtual Result<std::vector<nlohmann::json>> RunStreaming(const std::vector<const ModelRow*>& rows,
                                                           const OutputOptions& options, const TextSink& sink,
                                                           RunStats* stats = nullptr) const;
  // Run for rows that may be given up while they run (a request past its deadline): a causal LM
  // asks `wanted(row)` after each new token and stops the rows no longer wanted (their answers
  // are cut short, for nobody). Other models: Run (one pass is short).
  using RowWanted = std::function<bool(size_t row)>;
  virtual Result<std::vector<nlohmann::json>> RunUntil(const std::vector<const ModelRow*>& rows,
                                                       const OutputOptions& options, const RowWanted& wanted,
                                                       RunStats* stats = nullptr) const {
    (void)wanted;
    return Run(rows, options, stats);
  }
  // Embeddings (no-objective models): rows.size() x info().embedding_size floats, row-major.
  virtual Result<std::vector<float>> Embed(const std::vector<const ModelRow*>& rows, const OutputOptions& options,
                                           RunStats* stats = nullptr) const;

 protected:
  explicit ServableModel(Modality modality) : modality_(modality) {}
  ModelInfo info_;

 private:
  static Result<std::shared_ptr<const ServableModel>> LoadOnThisThread(const LoadSpec& spec);
  const Modality modality_;
};

}  // namespace mlaas::predict
