#include "predict/servable_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/json_file.h"
#include "common/text.h"
#include "nn/config.h"
#include "nn/vision_model.h"
#include "predict/backends.h"

namespace mlaas::predict {

using json = nlohmann::json;

namespace {

Result<Objective> ServedObjective(const std::string& name) {
  MLAAS_ASSIGN_OR_RETURN(Objective o, ParseObjective(name));
  MLAAS_RETURN_IF_ERROR(CheckImplemented(o, Use::kPredict));
  return ServedAs(o);
}

}  // namespace

Status CheckServedObjective(const std::string& objective) { return ServedObjective(objective).status(); }

std::vector<std::string> Labels(const json& model_block) {
  std::vector<std::string> out;
  if (auto l = model_block.find("labels"); l != model_block.end() && l->is_array()) {
    for (const auto& e : *l)
      if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

json TopLabels(const torch::Tensor& scores, const std::vector<std::string>& labels, int64_t k) {
  k = std::min<int64_t>(k, scores.size(0));
  auto [values, idx] = scores.topk(k);
  json out = json::array();
  for (int64_t i = 0; i < k; ++i) {
    out.push_back({{"label", labels[idx[i].item<int64_t>()]}, {"score", values[i].item<double>()}});
  }
  return out;
}


Result<Objective> ObjectiveOfConfigJson(std::string_view text) {
  const auto missing = [] {
    return InvalidArgument("model.objective is required: the model's config.json does not name its objective "
                           "(architectures)",
                           "model.objective");
  };
  if (auto j = ParseJsonText(text, "config.json"); j.has_value() && nn::IsVisionConfig(*j))
    return Objective::kImageClassification;
  auto config = nn::LoadConfig(std::string(text));
  // An unusable config.json is that, whatever it names (its own error, naming the member).
  if (!config.has_value()) return InvalidArgument("config.json: " + config.error().message(), "model.path");
  auto o = nn::ObjectiveFromArchitectures(*config);
  if (!o) return missing();
  return *o;
}

int64_t RowCost(const ModelRow& row) {
  if (const auto* e = std::get_if<tokenizers::Encoding>(&row)) return static_cast<int64_t>(e->size());
  if (const auto* p = std::get_if<TextRow>(&row)) return static_cast<int64_t>(p->encoding.size());
  if (const auto* q = std::get_if<QuestionRow>(&row)) {
    int64_t n = 0;
    for (const auto& w : q->windows) n += static_cast<int64_t>(w.size());
    return n;
  }
  if (const auto* w = std::get_if<QuestionWindow>(&row))
    return w->question && w->window < w->question->windows.size()
               ? static_cast<int64_t>(w->question->windows[w->window].size())
               : 0;
  const auto& image = std::get<ImageRow>(row);
  return image.height * image.width;
}

std::vector<ModelRow> SplitQuestionWindows(std::vector<ModelRow> rows, std::vector<size_t>& windows) {
  std::vector<ModelRow> out;
  windows.clear();
  for (auto& row : rows) {
    auto* q = std::get_if<QuestionRow>(&row);
    if (!q) {
      out.push_back(std::move(row));
      windows.push_back(1);
      continue;
    }
    auto shared = std::make_shared<const QuestionRow>(std::move(*q));
    for (size_t w = 0; w < shared->windows.size(); ++w) out.emplace_back(QuestionWindow{shared, w});
    windows.push_back(shared->windows.size());
  }
  return out;
}

json NoAnswer() { return {{"answer", ""}, {"score", 0.0}, {"start", 0}, {"end", 0}}; }

std::vector<json> MergeWindowAnswers(std::vector<json> answers, const std::vector<size_t>& windows) {
  std::vector<json> out;
  out.reserve(windows.size());
  size_t next = 0;
  for (size_t n : windows) {
    const json* best = nullptr;
    for (size_t w = next; w < next + n && w < answers.size(); ++w) {
      const json& a = answers[w];
      if (a.is_object() && a.contains("score") && (!best || a["score"].get<double>() > (*best)["score"].get<double>()))
        best = &a;
    }
    out.push_back(best ? *best : NoAnswer());
    next += n;
  }
  return out;
}

Status CheckOutputFits(const ServableModel& model, const std::vector<ModelRow>& rows, const OutputOptions& options,
                       const std::string& block) {
  if (model.info().objective == "masked-lm" && model.info().mask_id >= 0) {
    // Each mask answers top_k predictions: their count bounds the answer (and the pass).
    int64_t masks = 0;
    for (const auto& row : rows)
      if (const auto* e = std::get_if<tokenizers::Encoding>(&row))
        masks += std::count(e->ids.begin(), e->ids.end(), static_cast<uint32_t>(model.info().mask_id));
    const int64_t top_k = options.top_k.value_or(5);
    if (masks * top_k > kMaxFilledTokens)
      return InvalidArgument(std::to_string(masks) + " masks with top_k " + std::to_string(top_k) + " ask for " +
                                 std::to_string(masks * top_k) + " predictions; a request fills at most " +
                                 std::to_string(kMaxFilledTokens) + " (fewer masks or a smaller top_k a request)",
                             block + ".top_k");
    return Status::Ok();
  }
  if (model.info().objective != "causal-lm") return Status::Ok();
  const std::string field = block + ".max_new_tokens";
  const int64_t positions = model.info().max_tokens, wanted = options.generation.max_new_tokens;
  // A request's generation holds the compute thread for all its steps: its prompts times
  // max_new_tokens are bounded, so that one request cannot hold every other prediction for hours.
  if (const auto total = static_cast<int64_t>(rows.size()) * wanted; total > kMaxGeneratedTokens)
    return InvalidArgument(std::to_string(rows.size()) + " prompts with max_new_tokens " + std::to_string(wanted) + " ask for " +
                               std::to_string(total) + " tokens; a request generates at most " +
                               std::to_string(kMaxGeneratedTokens) + " (fewer prompts or fewer tokens a request)",
                           field);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t tokens = std::max<int64_t>(1, RowCost(rows[i]));
    if (tokens + wanted > positions)
      return InvalidArgument("input " + std::to_string(i) + " has " + std::to_string(tokens) + " tokens: with max_new_tokens " +
                                 std::to_string(wanted) + " it exceeds the model's " + std::to_string(positions) +
                                 " positions (at most " + std::to_string(std::max<int64_t>(positions - tokens, 0)) +
                                 " new tokens)",
                             field);
  }
  return Status::Ok();
}

json ModelInfo::ToJson() const {
  json j = {{"source", source},          {"model_type", architecture}, {"objective", objective},
            {"device", device},          {"dtype", dtype},             {"from_scratch", from_scratch},
            {"max_tokens", max_tokens},  {"hidden_size", hidden_size},
            {"embedding_size", embedding_size}, {"parameter_bytes", parameter_bytes}};
  if (!labels.empty()) j["labels"] = labels;
  if (!mask_token.empty()) j["mask_token"] = mask_token;
  if (objective == "no-objective") j["similarity"] = similarity;
  if (image_channels > 0) {
    j["num_channels"] = image_channels;
    j["image_size"] = {image_height, image_width};
    j.erase("max_tokens");
    j.erase("hidden_size");
    j.erase("embedding_size");
  }
  return j;
}

namespace {

// The gate of concurrent loads (SetLoadLimits).
struct LoadGate {
  std::mutex mu;
  std::condition_variable cv;
  int max_loads = 2, loading = 0;
  std::chrono::milliseconds wait{60'000};
  uint64_t max_model_bytes = 0;
};
LoadGate& Gate() {
  static LoadGate gate;
  return gate;
}

}  // namespace

Status CheckModelBytes(uint64_t bytes, uint64_t limit, const std::string& what) {
  if (limit == 0 || bytes <= limit) return Status::Ok();
  return InvalidArgument("the model's weights would take " + FormatBytes(bytes) + ", more than " + what + " (" +
                             FormatBytes(limit) + ")",
                         "model");
}

void SetLoadLimits(int max_concurrent_loads, std::chrono::milliseconds wait, uint64_t max_model_bytes) {
  LoadGate& g = Gate();
  std::lock_guard<std::mutex> lock(g.mu);
  g.max_loads = std::max(1, max_concurrent_loads);
  g.wait = wait;
  g.max_model_bytes = max_model_bytes;
  g.cv.notify_all();
}


Status AdmitWeights(const LoadSpec& spec, uint64_t bytes) {
  uint64_t limit = 0;
  {
    std::lock_guard<std::mutex> lock(Gate().mu);
    limit = Gate().max_model_bytes;
  }
  MLAAS_RETURN_IF_ERROR(CheckModelBytes(bytes, limit, "the largest model this server loads"));
  return spec.admit ? spec.admit(bytes) : Status::Ok();
}


Result<std::shared_ptr<const ServableModel>> ServableModel::Load(const LoadSpec& spec) {
  LoadGate& g = Gate();
  {
    std::unique_lock<std::mutex> lock(g.mu);
    if (!g.cv.wait_for(lock, g.wait, [&] { return g.loading < g.max_loads; }))
      return ResourceExhausted("too many models are loading at once (at most " + std::to_string(g.max_loads) +
                               "); try again shortly");
    ++g.loading;
  }
  Result<std::shared_ptr<const ServableModel>> out = Internal("the model did not load");
  std::thread([&] {
    // Nothing a model's files hold may end the process: every failure becomes a Status.
    try {
      out = LoadOnThisThread(spec);
    } catch (const std::bad_alloc&) {
      out = ResourceExhausted("not enough memory to load the model");
    } catch (const std::exception& e) {
      out = InvalidArgument(std::string("the model could not be loaded: ") + e.what(), "model.path");
    } catch (...) {
      out = Internal("the model could not be loaded");
    }
  }).join();
  {
    std::lock_guard<std::mutex> lock(g.mu);
    --g.loading;
  }
  g.cv.notify_one();
  return out;
}

Result<std::shared_ptr<const ServableModel>> ServableModel::LoadOnThisThread(const LoadSpec& spec) {
  MLAAS_ASSIGN_OR_RETURN(Objective objective, ServedObjective(spec.objective));
  if (ModalityOf(objective) == Modality::kImage) return LoadImageModel(spec);
  return LoadTextModel(spec, objective);
}

Result<std::vector<ModelRow>> ServableModel::EncodeTexts(const std::vector<std::string>&, const std::string& field) const {
  return InvalidArgument("this model (" + info_.objective + ") takes images, not texts", field);
}

Result<std::vector<ModelRow>> ServableModel::EncodePairs(const std::vector<std::string>&, const std::vector<std::string>&,
                                                         const std::string& field) const {
  return InvalidArgument("text pairs apply to text-classification and next-sentence-prediction models, not to " +
                             info_.objective,
                         field);
}

Result<std::vector<ModelRow>> ServableModel::EncodeQuestions(const std::vector<std::string>&,
                                                             const std::vector<std::string>&,
                                                             const std::string& field) const {
  return InvalidArgument("question and context apply to question-answering models, not to " + info_.objective, field);
}

Result<std::vector<ModelRow>> ServableModel::EncodeImages(const std::vector<std::string>&, const std::string& field) const {
  return InvalidArgument("this model (" + info_.objective + ") takes texts, not images", field);
}

Result<std::vector<ModelRow>> ServableModel::ImagesFromPixels(const std::vector<float>&, int64_t, int64_t, int64_t, int64_t,
                                                              const std::string& field) const {
  return InvalidArgument("this model (" + info_.objective + ") takes texts, not images", field);
}

Result<std::vector<json>> ServableModel::RunStreaming(const std::vector<const ModelRow*>&, const OutputOptions&,
                                                      const TextSink&, RunStats*) const {
  return InvalidArgument("streaming applies to generation (causal-lm models), not to " + info_.objective, "stream");
}

Result<std::vector<float>> ServableModel::Embed(const std::vector<const ModelRow*>&, const OutputOptions&, RunStats*) const {
  return InvalidArgument("embeddings need a no-objective (or sentence-embedding) model", "model.objective");
}

}  // namespace mlaas::predict
