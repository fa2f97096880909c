#include "predict/nlp_predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include <spdlog/spdlog.h>
#include "common/file_util.h"
#include "common/text.h"
#include "nn/config.h"
#include "nn/cpu_allocator.h"
#include "nn/model.h"
#include "predict/model_cache.h"
#include "predict/model_files.h"
#include "predict/servable_model.h"

namespace mlaas::predict {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// What predict_input asks for: the texts or the images, the output options and the device.
struct PredictInput {
  std::vector<std::string> texts;
  std::vector<std::string> pairs;   // pair_text: the second text of each input (empty: none)
  std::vector<std::string> questions, contexts;  // question-answering
  std::vector<std::string> images;  // encoded files (PNG, JPEG)
  std::string images_field;         // predict_input.images or predict_input.paths
  OutputOptions options;
  std::string device;
};

constexpr size_t kMaxImages = 256;              // images in one request
constexpr uint64_t kMaxImageBytes = 32u << 20;  // one encoded image
constexpr uint64_t kMaxPathBytes = 64u << 20;   // the images named by key, in all
constexpr int64_t kMaxPassPixels = 64 * 224 * 224;  // image rows x pixels in one forward pass

// The images of predict_input: `images` (base64, or a data: URL) or `paths` (object keys in
// predict_input.storage_type, default local), in order.
Status ParseImages(const json& in, const storage::StorageRegistry* storage, PredictInput& out) {
  const auto images = in.find("images");
  const auto paths = in.find("paths");
  if (images != in.end() && paths != in.end())
    return InvalidArgument("give images or paths, not both", "predict_input.images");
  const bool by_path = paths != in.end();
  const json& list = by_path ? *paths : *images;
  out.images_field = by_path ? "predict_input.paths" : "predict_input.images";
  if (!list.is_array() || list.empty() || list.size() > kMaxImages)
    return InvalidArgument("a list of 1 to " + std::to_string(kMaxImages) + (by_path ? " object keys" : " base64 images"),
                           out.images_field);
  std::string storage_type = "local";
  if (auto t = in.find("storage_type"); t != in.end()) {
    if (!t->is_string()) return InvalidArgument("storage_type must be a string", "predict_input.storage_type");
    storage_type = t->get<std::string>();
  }
  uint64_t read = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = out.images_field + "[" + std::to_string(i) + "]";
    if (!list[i].is_string()) return InvalidArgument(at + " must be a string", out.images_field);
    const std::string& text = list[i].get_ref<const std::string&>();
    if (by_path) {
      json block = {{"path", text}, {"storage_type", storage_type}};
      auto ref = storage->Resolve(block, out.images_field);
      if (!ref.has_value()) return InvalidArgument(at + ": " + ref.error().message(), out.images_field);
      auto bytes = ref->store->GetString(ref->key, kMaxImageBytes);
      if (!bytes.has_value()) {
        if (bytes.error().code() == StatusCode::kResourceExhausted)
          return InvalidArgument(at + " is larger than " + FormatBytes(kMaxImageBytes), out.images_field);
        if (bytes.error().code() == StatusCode::kNotFound)
          return InvalidArgument(at + ": no object '" + text + "'", out.images_field);
        return bytes.error();
      }
      read += bytes->size();
      if (read > kMaxPathBytes)
        return InvalidArgument("the images named hold more than " + FormatBytes(kMaxPathBytes) + " in all: name fewer",
                               out.images_field);
      out.images.push_back(std::move(*bytes));
    } else {
      if (text.size() > kMaxImageBytes / 3 * 4 + 1024)
        return InvalidArgument(at + " is larger than " + FormatBytes(kMaxImageBytes), out.images_field);
      auto bytes = Base64Decode(text);
      if (!bytes) return InvalidArgument(at + " is not base64", out.images_field);
      out.images.push_back(std::move(*bytes));
    }
  }
  return Status::Ok();
}

Result<PredictInput> ParseInput(const json& in, const storage::StorageRegistry* storage) {
  if (!in.is_object()) return InvalidArgument("predict_input must be an object", "predict_input");
  PredictInput out;
  auto given = [&in](const char* key) { auto it = in.find(key); return it != in.end() && !it->is_null(); };
  // One kind of input a request: texts (and their pairs), questions about contexts, or images.
  const bool text = given("input_text"), qa = given("question") || given("context"),
             images = given("images") || given("paths");
  if (text + qa + images > 1)
    return InvalidArgument("give one kind of input: input_text (with pair_text for pairs), question and context "
                           "(question-answering), or images",
                           qa ? (given("question") ? "predict_input.question" : "predict_input.context")
                              : (given("images") ? "predict_input.images" : "predict_input.paths"));
  if (qa && given("pair_text"))
    return InvalidArgument("pair_text goes with input_text (text pairs), not with question and context",
                           "predict_input.pair_text");
  auto texts = in.find("input_text");
  if (qa) {
    for (const char* key : {"question", "context"}) {
      const std::string field = std::string("predict_input.") + key;
      auto list = in.find(key);
      if (list == in.end() || !list->is_array() || list->empty())
        return InvalidArgument(std::string(key) + " must be a non-empty list of strings", field);
      auto& into = std::string(key) == "question" ? out.questions : out.contexts;
      for (size_t i = 0; i < list->size(); ++i) {
        if (!(*list)[i].is_string()) return InvalidArgument(std::string(key) + "[" + std::to_string(i) + "] must be a string", field);
        into.push_back((*list)[i].get<std::string>());
      }
    }
    if (out.contexts.size() != out.questions.size())
      return InvalidArgument("context must have as many texts as question", "predict_input.context");
    out.texts = out.questions;  // what the response counts and echoes
  } else if (images) {
    if (!storage && in.contains("paths")) return InvalidArgument("give images, not object keys, here", "predict_input.paths");
    MLAAS_RETURN_IF_ERROR(ParseImages(in, storage, out));
  } else {
    if (texts == in.end() || !texts->is_array() || texts->empty())
      return InvalidArgument("input_text must be a non-empty list of strings", "predict_input.input_text");
    for (size_t i = 0; i < texts->size(); ++i) {
      if (!(*texts)[i].is_string())
        return InvalidArgument("input_text[" + std::to_string(i) + "] must be a string", "predict_input.input_text");
      out.texts.push_back((*texts)[i].get<std::string>());
    }
    if (auto pairs = in.find("pair_text"); pairs != in.end() && !pairs->is_null()) {
      if (!pairs->is_array() || pairs->size() != out.texts.size())
        return InvalidArgument("pair_text must be a list of as many strings as input_text", "predict_input.pair_text");
      for (size_t i = 0; i < pairs->size(); ++i) {
        if (!(*pairs)[i].is_string())
          return InvalidArgument("pair_text[" + std::to_string(i) + "] must be a string", "predict_input.pair_text");
        out.pairs.push_back((*pairs)[i].get<std::string>());
      }
    }
  }
  MLAAS_ASSIGN_OR_RETURN(out.options, ParseOutputOptions(in, "predict_input"));
  if (auto s = in.find("stream"); s != in.end() && !s->is_null()) {
    // Whether the route streams (PredictStream); the input is the same either way.
    if (!s->is_boolean()) return InvalidArgument("stream must be true or false", "predict_input.stream");
  }
  if (auto d = in.find("device"); d != in.end() && !d->is_null()) {
    if (!d->is_string()) return InvalidArgument("device must be a string", "predict_input.device");
    out.device = d->get<std::string>();
  }
  return out;
}

}  // namespace

struct NlpPredictor::Impl {
  const storage::StorageRegistry& storage;
  PredictorOptions options;
  std::shared_ptr<ModelCache> shared_cache;
  ModelCache& cache;
  Status dtype_status;

  Impl(const storage::StorageRegistry& s, PredictorOptions o)
      : storage(s),
        options(std::move(o)),
        shared_cache(options.cache ? options.cache
                                   : std::make_shared<ModelCache>(options.cache_capacity, options.cache_max_bytes)),
        cache(*shared_cache) {
    // libtorch's own default here is one thread (it mis-counts the cores): 0 means one per core.
    nn::ConfigureThreads(options.threads > 0 ? options.threads
                                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    nn::UseCachingCpuAllocator();
    if (auto d = nn::ParseDType(options.dtype); !d) dtype_status = d.error();
  }

  // The device a request runs on, checked before anything is loaded.
  Result<std::string> Device(const PredictInput& in) const {
    const std::string name = in.device.empty() ? options.device : in.device;
    if (auto d = nn::ParseDevice(name); !d) return d.error().WithField("predict_input.device");
    if (!dtype_status.ok()) return dtype_status;
    return name;
  }


  Result<LoadedPtr> Load(LoadSpec spec) {
    spec.dtype = options.dtype;
    // (One model's size against the process's limit is checked by every load: SetLoadLimits.)
    spec.admit = [this](uint64_t bytes) {
      return CheckModelBytes(bytes, cache.max_bytes(), "the model cache's memory budget");
    };
    return ServableModel::Load(spec);
  }

  Result<json> Run(const ServableModel& m, const PredictInput& in, const StreamSink& sink = nullptr);
  // The request's model (loaded, or from the cache) and its parsed input.
  struct Resolved {
    LoadedPtr model;
    PredictInput input;
  };
  Result<Resolved> Resolve(const json& request);
};

Result<json> NlpPredictor::Impl::Run(const ServableModel& m, const PredictInput& in, const StreamSink& sink) {
  const auto t0 = Clock::now();
  const bool images = !in.images_field.empty();
  if (images != (m.modality() == Modality::kImage)) {
    return InvalidArgument(images ? "this model (" + m.info().objective + ") takes texts: predict_input.input_text"
                                  : "this model (" + m.info().objective + ") takes images: predict_input.images or paths",
                           images ? in.images_field : "predict_input.input_text");
  }
  MLAAS_ASSIGN_OR_RETURN(std::vector<ModelRow> encs, images ? m.EncodeImages(in.images, in.images_field)
                                           : !in.questions.empty() ? m.EncodeQuestions(in.questions, in.contexts, "predict_input.question")
                                           : !in.pairs.empty() ? m.EncodePairs(in.texts, in.pairs, "predict_input.pair_text")
                                                               : m.EncodeTexts(in.texts, "predict_input.input_text"));
  MLAAS_RETURN_IF_ERROR(CheckOutputFits(m, encs, in.options, "predict_input"));
  const auto t1 = Clock::now();
  // Longest first, so each batch pads only to inputs of similar length.
  std::vector<size_t> order(encs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return RowCost(encs[a]) > RowCost(encs[b]); });

  std::vector<json> predictions(encs.size());
  RunStats stats;
  bool reader_left = false;
  // Image passes within a pixel budget too (a pass's activations grow with its pixels).
  size_t per_pass = options.max_batch;
  if (images && !encs.empty())
    per_pass = std::clamp<size_t>(static_cast<size_t>(kMaxPassPixels / std::max<int64_t>(1, RowCost(encs[0]))), 1, per_pass);
  for (size_t start = 0; start < order.size(); start += per_pass) {
    const size_t end = std::min(order.size(), start + per_pass);
    std::vector<const ModelRow*> rows;
    for (size_t i = start; i < end; ++i) rows.push_back(&encs[order[i]]);
    std::vector<json> out;
    if (sink) {  // pieces named by the input they continue; a reader that left stops every pass
      if (reader_left) return Cancelled("the client stopped reading");
      auto pass_sink = [&](size_t row, const std::string& piece) {
        if (!reader_left && !sink(order[start + row], piece)) reader_left = true;
        return !reader_left;
      };
      MLAAS_ASSIGN_OR_RETURN(out, m.RunStreaming(rows, in.options, pass_sink, &stats));
    } else {
      MLAAS_ASSIGN_OR_RETURN(out, m.Run(rows, in.options, &stats));
    }
    for (size_t i = start; i < end; ++i) predictions[order[i]] = std::move(out[i - start]);
  }
  const auto t2 = Clock::now();
  const ModelInfo& info = m.info();
  json response = {{"predictions", std::move(predictions)},
                   {"model",
                    {{"source", info.source},
                     {"model_type", info.architecture},
                     {"objective", info.objective},
                     {"device", info.device},
                     {"dtype", info.dtype},
                     {"from_scratch", info.from_scratch}}},
                   {"timing_ms",
                    {{images ? "decode" : "tokenize", Ms(t0, t1)},
                     {"forward", stats.forward_ms},
                     {"postprocess", stats.postprocess_ms},
                     {"total", Ms(t0, t2)}}}};
  if (info.objective == "no-objective") response["model"]["pooling"] = in.options.cls_pooling ? "cls" : "mean";
  if (images) response["images"] = encs.size();
  else response["tokens"] = stats.tokens;
  return response;
}

NlpPredictor::NlpPredictor(const storage::StorageRegistry& storage, PredictorOptions options)
    : impl_(std::make_unique<Impl>(storage, std::move(options))) {}
NlpPredictor::~NlpPredictor() = default;

NlpPredictor::CacheStats NlpPredictor::cache_stats() const { return impl_->cache.Stats(); }

namespace {

std::string ObjectiveOf(const json& model_block) {
  auto o = model_block.find("objective");
  return o != model_block.end() && o->is_string() ? o->get<std::string>() : std::string();
}

// The objective a model directory's config.json names, when the request leaves
// model.objective out.
Result<std::string> ObjectiveOfDirectory(const std::filesystem::path& dir) {
  auto text = ReadFile(dir / "config.json", 16u << 20);
  if (!text.has_value())
    return InvalidArgument("model.objective is required: the model has no config.json", "model.objective");
  MLAAS_ASSIGN_OR_RETURN(Objective o, ObjectiveOfConfigJson(*text));
  return std::string(ObjectiveName(o));
}

}  // namespace

Result<json> NlpPredictor::Predict(const json& request) {
  MLAAS_ASSIGN_OR_RETURN(Impl::Resolved r, impl_->Resolve(request));
  return impl_->Run(*r.model, r.input);
}

namespace {

Status CheckStreamable(const ServableModel& m) {
  if (m.info().objective == "causal-lm") return Status::Ok();
  return InvalidArgument("streaming applies to generation (causal-lm models), not to " + m.info().objective,
                         "predict_input.stream");
}

}  // namespace

Status NlpPredictor::CheckStream(const json& request) {
  MLAAS_ASSIGN_OR_RETURN(Impl::Resolved r, impl_->Resolve(request));
  MLAAS_RETURN_IF_ERROR(CheckStreamable(*r.model));
  MLAAS_ASSIGN_OR_RETURN(std::vector<ModelRow> rows, r.model->EncodeTexts(r.input.texts, "predict_input.input_text"));
  return CheckOutputFits(*r.model, rows, r.input.options, "predict_input");
}

Result<json> NlpPredictor::PredictStream(const json& request, const StreamSink& sink) {
  MLAAS_ASSIGN_OR_RETURN(Impl::Resolved r, impl_->Resolve(request));
  MLAAS_RETURN_IF_ERROR(CheckStreamable(*r.model));
  return impl_->Run(*r.model, r.input, sink);
}

Result<NlpPredictor::Impl::Resolved> NlpPredictor::Impl::Resolve(const json& request) {
  if (!request.is_object()) return InvalidArgument("the request body must be a JSON object");
  const json model_block = request.value("model", json::object());
  if (!model_block.is_object()) return InvalidArgument("model must be an object", "model");
  LoadSpec spec;
  spec.objective = ObjectiveOf(model_block);
  spec.model_block = model_block;
  if (!spec.objective.empty() || !model_block.contains("path")) MLAAS_RETURN_IF_ERROR(CheckServedObjective(spec.objective));
  MLAAS_ASSIGN_OR_RETURN(PredictInput input, ParseInput(request.value("predict_input", json()), &storage));
  MLAAS_ASSIGN_OR_RETURN(spec.device, Device(input));

  std::optional<ModelFiles> model_files, tokenizer_files;
  std::string key;
  if (model_block.contains("path")) {
    MLAAS_ASSIGN_OR_RETURN(model_files, LocalizeDirectory(storage, model_block, "model", options.scratch));
    if (spec.objective.empty()) {
      MLAAS_ASSIGN_OR_RETURN(spec.objective, ObjectiveOfDirectory(model_files->path));
      spec.model_block["objective"] = spec.objective;
    }
    key = spec.objective + "|" + spec.device + "|model=" + model_files->fingerprint;
    spec.model_dir = model_files->path;
  } else {
    const auto objective = ParseObjective(spec.objective);
    const bool image = objective.has_value() && ModalityOf(*objective) == Modality::kImage;
    if (!request.contains("tokenizer") && !image)
      return InvalidArgument("a model from scratch (preset/config) needs a tokenizer block", "tokenizer");
    key = spec.objective + "|" + spec.device + "|scratch=" + model_block.dump();
  }
  if (request.contains("tokenizer")) {
    MLAAS_ASSIGN_OR_RETURN(tokenizer_files,
                           LocalizeTokenizer(storage, request["tokenizer"], "tokenizer", options.scratch));
    key += "|tokenizer=" + tokenizer_files->fingerprint;
    spec.tokenizer = tokenizer_files->path;
  }
  spec.source = model_block.contains("path") ? model_block["path"].get<std::string>()
                                             : "scratch:" + model_block.value("preset", std::string("config"));
  MLAAS_ASSIGN_OR_RETURN(LoadedPtr loaded, cache.Get(key, [&] { return Load(spec); }));
  return Resolved{std::move(loaded), std::move(input)};
}

Result<json> NlpPredictor::PredictLocal(const fs::path& model_dir, const std::optional<fs::path>& tokenizer,
                                        const std::string& objective_name, const json& predict_input) {
  MLAAS_RETURN_IF_ERROR(CheckServedObjective(objective_name));
  MLAAS_ASSIGN_OR_RETURN(PredictInput input, ParseInput(predict_input, nullptr));
  LoadSpec spec;
  spec.objective = objective_name;
  spec.model_dir = model_dir;
  spec.tokenizer = tokenizer;
  MLAAS_ASSIGN_OR_RETURN(spec.device, impl_->Device(input));
  spec.source = model_dir.string();
  MLAAS_ASSIGN_OR_RETURN(std::string model_fp, FingerprintDirectory(model_dir, "model.path"));
  std::string key = objective_name + "|" + spec.device + "|model=" + model_fp;
  if (tokenizer) {
    MLAAS_ASSIGN_OR_RETURN(std::string tok_fp, FingerprintDirectory(*tokenizer, "tokenizer.path"));
    key += "|tokenizer=" + tok_fp;
  }
  MLAAS_ASSIGN_OR_RETURN(LoadedPtr loaded, impl_->cache.Get(key, [&] { return impl_->Load(spec); }));
  return impl_->Run(*loaded, input);
}

}  // namespace mlaas::predict
