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
#include "nn/cpu_allocator.h"
#include "nn/model.h"
#include "predict/model_files.h"
#include "tokenizers/tokenizer.h"

namespace mlaas::predict {

namespace fs = std::filesystem;
using json = nlohmann::json;
using nn::Objective;

namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A model ready to serve: weights on their device, its tokenizer truncating to the model's
// maximum length, and the token ids the objectives need.
struct LoadedModel {
  nn::TransformerModel model{nullptr};
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  Objective objective = Objective::kNoObjective;
  int64_t pad_id = 0;
  std::optional<uint32_t> mask_id;
  std::string mask_token;
  std::string source;  // where it came from, for the response
  bool from_scratch = false;
};
using LoadedPtr = std::shared_ptr<const LoadedModel>;

std::optional<uint32_t> FirstToken(const tokenizers::Tokenizer& t, std::initializer_list<const char*> names,
                                   std::string* which = nullptr) {
  for (const char* n : names) {
    if (auto id = t.TokenToId(n)) {
      if (which) *which = n;
      return id;
    }
  }
  return std::nullopt;
}

// What predict_input asks for beyond the texts.
struct PredictInput {
  std::vector<std::string> texts;
  std::optional<int64_t> top_k;
  nn::Pooling pooling = nn::Pooling::kMean;
  bool normalize = false;
  std::string device;
};

Result<PredictInput> ParseInput(const json& in) {
  if (!in.is_object()) return InvalidArgument("predict_input must be an object", "predict_input");
  PredictInput out;
  auto texts = in.find("input_text");
  if (texts == in.end() || !texts->is_array() || texts->empty())
    return InvalidArgument("input_text must be a non-empty list of strings", "predict_input.input_text");
  for (size_t i = 0; i < texts->size(); ++i) {
    if (!(*texts)[i].is_string())
      return InvalidArgument("input_text[" + std::to_string(i) + "] must be a string", "predict_input.input_text");
    out.texts.push_back((*texts)[i].get<std::string>());
  }
  if (auto k = in.find("top_k"); k != in.end() && !k->is_null()) {
    if (!k->is_number_integer() || k->get<int64_t>() < 1 || k->get<int64_t>() > 1000)
      return InvalidArgument("top_k must be an integer in 1..1000", "predict_input.top_k");
    out.top_k = k->get<int64_t>();
  }
  if (auto p = in.find("pooling"); p != in.end() && !p->is_null()) {
    if (*p == "mean") {
      out.pooling = nn::Pooling::kMean;
    } else if (*p == "cls") {
      out.pooling = nn::Pooling::kCls;
    } else {
      return InvalidArgument("pooling must be \"mean\" or \"cls\"", "predict_input.pooling");
    }
  }
  if (auto n = in.find("normalize"); n != in.end() && !n->is_null()) {
    if (!n->is_boolean()) return InvalidArgument("normalize must be true or false", "predict_input.normalize");
    out.normalize = n->get<bool>();
  }
  if (auto d = in.find("device"); d != in.end() && !d->is_null()) {
    if (!d->is_string()) return InvalidArgument("device must be a string", "predict_input.device");
    out.device = d->get<std::string>();
  }
  return out;
}

Result<Objective> PredictObjective(const json& model_block) {
  auto o = model_block.find("objective");
  if (o == model_block.end() || !o->is_string())
    return InvalidArgument("objective is required (text-classification, masked-lm or no-objective)", "model.objective");
  const std::string name = o->get<std::string>();
  if (name == "sentence-embedding") return Objective::kNoObjective;
  auto parsed = nn::ParseObjective(name);
  if (!parsed) {
    return Unimplemented("prediction for objective '" + name +
                             "' is not available yet (text-classification, masked-lm, no-objective are)",
                         "model.objective");
  }
  return *parsed;
}

std::vector<std::string> Labels(const json& model_block) {
  std::vector<std::string> out;
  if (auto l = model_block.find("labels"); l != model_block.end() && l->is_array()) {
    for (const auto& e : *l)
      if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

// A cache of loaded models, least recently used out first. Concurrent requests for a model
// being loaded wait for that one load.
class ModelCache {
 public:
  explicit ModelCache(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

  Result<LoadedPtr> Get(const std::string& key, const std::function<Result<LoadedPtr>()>& load) {
    std::shared_future<Result<LoadedPtr>> future;
    std::promise<Result<LoadedPtr>> promise;
    bool loader = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        ++hits_;
        it->second.last_use = ++clock_;
        future = it->second.future;
      } else {
        ++misses_;
        loader = true;
        future = promise.get_future().share();
        entries_[key] = {future, ++clock_};
        Evict();
      }
    }
    if (loader) {
      Result<LoadedPtr> r = Internal("model load did not finish");
      try {
        r = load();
      } catch (const std::exception& e) {
        r = Internal(std::string("loading the model failed: ") + e.what());
      }
      promise.set_value(r);
      if (!r.has_value()) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = entries_.find(key);
        if (it != entries_.end() && it->second.future.valid() && &it->second.future.get() == &future.get())
          entries_.erase(it);
      }
    }
    return future.get();
  }

  NlpPredictor::CacheStats Stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {hits_, misses_, entries_.size()};
  }

 private:
  struct Entry {
    std::shared_future<Result<LoadedPtr>> future;
    uint64_t last_use = 0;
  };
  // Drops the least recently used finished entries beyond capacity (requests still holding
  // a model keep it alive through their shared_ptr).
  void Evict() {
    while (entries_.size() > capacity_) {
      auto victim = entries_.end();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->second.future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
        if (victim == entries_.end() || it->second.last_use < victim->second.last_use) victim = it;
      }
      if (victim == entries_.end()) return;
      entries_.erase(victim);
    }
  }

  mutable std::mutex mu_;
  size_t capacity_;
  std::map<std::string, Entry> entries_;
  uint64_t clock_ = 0, hits_ = 0, misses_ = 0;
};

}  // namespace

struct NlpPredictor::Impl {
  const storage::StorageRegistry& storage;
  PredictorOptions options;
  ModelCache cache;
  torch::ScalarType dtype = torch::kFloat32;
  Status dtype_status;

  Impl(const storage::StorageRegistry& s, PredictorOptions o) : storage(s), options(std::move(o)), cache(options.cache_capacity) {
    auto d = nn::ParseDType(options.dtype);
    if (d.has_value()) {
      dtype = *d;
    } else {
      dtype_status = d.error();
    }
    // libtorch's own default here is one thread (it mis-counts the cores): 0 means one per core.
    nn::ConfigureThreads(options.threads > 0 ? options.threads
                                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    nn::UseCachingCpuAllocator();
  }

  // Loads a tokenizer and a model directory (or a from-scratch config) onto `device`.
  Result<LoadedPtr> Load(const std::optional<fs::path>& model_dir, const json& model_block,
                         const std::optional<fs::path>& tokenizer_path, Objective objective, torch::Device device,
                         const std::string& source) {
    auto out = std::make_shared<LoadedModel>();
    out->objective = objective;
    out->device = device;
    out->dtype = dtype;
    out->source = source;
    const fs::path tok_path = tokenizer_path ? *tokenizer_path : *model_dir;
    auto tok = tokenizers::Tokenizer::Load(tok_path);
    if (!tok) {
      return InvalidArgument("cannot load the tokenizer: " + tok.error().message(),
                             tokenizer_path ? "tokenizer.path" : "model.path");
    }
    out->tokenizer = std::move(*tok);
    std::optional<uint32_t> pad = FirstToken(*out->tokenizer, {"[PAD]", "<pad>"});
    nn::ModelConfig config;
    if (model_dir) {
      auto loaded = nn::LoadModelDir(*model_dir, objective);
      if (!loaded) {
        const Status& e = loaded.error();
        return Status(e.code() == StatusCode::kNotFound ? StatusCode::kInvalidArgument : e.code(),
                      "model.path: " + e.message(), "model.path");
      }
      out->model = loaded->model;
      out->from_scratch = loaded->from_scratch;
      if (!loaded->report.unused.empty())
        spdlog::debug("model {}: {} checkpoint tensors unused by {}", source, loaded->report.unused.size(),
                  nn::ObjectiveName(objective));
    } else {
      auto c = nn::ScratchConfig(model_block, static_cast<int64_t>(out->tokenizer->VocabSize()),
                                 pad ? std::optional<int64_t>(*pad) : std::nullopt, Labels(model_block));
      if (!c) return c.error();
      out->model = nn::TransformerModel(*c, objective, /*with_pooler=*/false);
      nn::InitWeights(*out->model, 42);
      out->from_scratch = true;
    }
    const nn::ModelConfig& c = out->model->config();
    if (out->tokenizer->VocabSize() > static_cast<size_t>(c.vocab_size)) {
      return InvalidArgument("the tokenizer has " + std::to_string(out->tokenizer->VocabSize()) +
                                 " tokens but the model's vocabulary only " + std::to_string(c.vocab_size),
                             tokenizer_path ? "tokenizer.path" : "model.path");
    }
    out->pad_id = pad ? static_cast<int64_t>(*pad) : c.pad_token_id;
    out->mask_id = FirstToken(*out->tokenizer, {"[MASK]", "<mask>"}, &out->mask_token);
    if (objective == Objective::kMaskedLm && !out->mask_id)
      return InvalidArgument("the tokenizer has no [MASK] or <mask> token, which fill-mask needs", "tokenizer.path");
    tokenizers::TruncationParams trunc;
    trunc.max_length = static_cast<size_t>(nn::MaxInputTokens(c));
    // A tokenizer saved with a shorter truncation (a model trained on shorter inputs, see
    // train/) keeps it: positions beyond what training saw would be untrained.
    if (const auto& saved = out->tokenizer->truncation(); saved && saved->max_length > 0)
      trunc.max_length = std::min(trunc.max_length, saved->max_length);
    out->tokenizer->set_truncation(trunc);
    out->tokenizer->set_padding(std::nullopt);
    out->tokenizer->set_invalid_utf8(tokenizers::InvalidUtf8::kReplace);
    out->model->to(device, dtype);
    out->model->PrepareForInference();
    return LoadedPtr(out);
  }

  Result<torch::Device> DeviceFor(const PredictInput& in) const {
    auto d = nn::ParseDevice(in.device.empty() ? options.device : in.device);
    if (!d) return d.error().WithField("predict_input.device");
    return *d;
  }

  Result<json> Run(const LoadedModel& m, const PredictInput& in);
};

namespace {

json TopLabels(const torch::Tensor& scores, const std::vector<std::string>& labels, int64_t k) {
  k = std::min<int64_t>(k, scores.size(0));
  auto [values, idx] = scores.topk(k);
  json out = json::array();
  for (int64_t i = 0; i < k; ++i) {
    out.push_back({{"label", labels[idx[i].item<int64_t>()]}, {"score", values[i].item<double>()}});
  }
  return out;
}

}  // namespace

Result<json> NlpPredictor::Impl::Run(const LoadedModel& m, const PredictInput& in) {
  const auto t0 = Clock::now();
  std::vector<tokenizers::EncodeInput> inputs;
  inputs.reserve(in.texts.size());
  for (const auto& t : in.texts) inputs.push_back({t, std::nullopt});
  auto encoded = m.tokenizer->EncodeBatch(inputs, /*add_special_tokens=*/true, in.texts.size() > 8 ? 0 : 1);
  if (!encoded) return encoded.error().WithField("predict_input.input_text");
  auto& encs = *encoded;
  const auto t1 = Clock::now();

  nn::TransformerModel model = m.model;  // forward is logically const: it changes nothing
  const nn::ModelConfig& c = model->config();
  if (m.objective == Objective::kMaskedLm) {
    for (size_t i = 0; i < encs.size(); ++i) {
      if (std::find(encs[i].ids.begin(), encs[i].ids.end(), *m.mask_id) == encs[i].ids.end())
        return InvalidArgument("input_text[" + std::to_string(i) + "] has no " + m.mask_token + " token to fill",
                               "predict_input.input_text");
    }
  }
  // Longest first, so each batch pads only to inputs of similar length.
  std::vector<size_t> order(encs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return encs[a].size() > encs[b].size(); });

  std::vector<json> predictions(encs.size());
  double forward_ms = 0, post_ms = 0;
  size_t tokens = 0;
  const int64_t top_k = in.top_k.value_or(5);
  torch::InferenceMode guard;
  for (size_t start = 0; start < order.size(); start += options.max_batch) {
    const size_t end = std::min(order.size(), start + options.max_batch);
    const int64_t b = static_cast<int64_t>(end - start);
    const int64_t len = static_cast<int64_t>(encs[order[start]].size());
    auto ids = torch::full({b, len}, m.pad_id, torch::kInt64);
    auto mask = torch::zeros({b, len}, torch::kInt64);
    auto types = torch::zeros({b, len}, torch::kInt64);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    auto types_a = types.accessor<int64_t, 2>();
    for (int64_t r = 0; r < b; ++r) {
      const auto& e = encs[order[start + r]];
      tokens += e.size();
      for (size_t t = 0; t < e.size(); ++t) {
        ids_a[r][t] = e.ids[t];
        mask_a[r][t] = 1;
        types_a[r][t] = e.type_ids[t];
      }
    }
    const auto f0 = Clock::now();
    nn::EncoderInput batch{ids.to(m.device), mask.to(m.device),
                           c.architecture == nn::Architecture::kBert ? types.to(m.device) : torch::Tensor()};
    nn::EncoderOutput enc = model->encoder->forward(batch);
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
        result = nn::Pool(enc.last_hidden_state.to(torch::kFloat32), batch.attention_mask, in.pooling);
        if (in.normalize) result = torch::nn::functional::normalize(result, torch::nn::functional::NormalizeFuncOptions().dim(1));
        break;
      }
      case Objective::kMaskedLm: {
        // Only the masked positions go through the vocabulary projection.
        auto positions = batch.input_ids.eq(static_cast<int64_t>(*m.mask_id)).nonzero();  // [n, 2]
        auto hidden = enc.last_hidden_state.index({positions.select(1, 0), positions.select(1, 1)});
        nn::EncoderOutput masked{hidden.unsqueeze(0), torch::Tensor()};
        auto probs = torch::softmax(model->head()->Forward(masked).squeeze(0).to(torch::kFloat32), -1);  // [n, vocab]
        auto k = std::min<int64_t>(top_k, probs.size(1));
        auto [values, idx] = probs.topk(k, 1);
        result = torch::cat({positions.to(torch::kFloat64), values.to(torch::kFloat64), idx.to(torch::kFloat64)}, 1);
        break;
      }
    }
    result = result.to(torch::kCPU).contiguous();
    const auto f1 = Clock::now();
    forward_ms += Ms(f0, f1);

    if (m.objective == Objective::kTextClassification) {
      for (int64_t r = 0; r < b; ++r) {
        auto scores = result[r];
        json p;
        if (c.problem_type == "regression" && c.num_labels() == 1) {
          p = {{"label", c.id2label[0]}, {"score", scores[0].item<double>()}};
        } else {
          auto best = scores.argmax().item<int64_t>();
          p = {{"label", c.id2label[best]}, {"score", scores[best].item<double>()}};
          if (in.top_k) p["top_k"] = TopLabels(scores, c.id2label, *in.top_k);
        }
        predictions[order[start + r]] = std::move(p);
      }
    } else if (m.objective == Objective::kNoObjective) {
      const int64_t h = result.size(1);
      const float* data = result.data_ptr<float>();
      for (int64_t r = 0; r < b; ++r) {
        predictions[order[start + r]] = {{"embedding", std::vector<float>(data + r * h, data + (r + 1) * h)}};
      }
    } else {
      const int64_t k = (result.size(1) - 2) / 2;
      auto acc = result.accessor<double, 2>();
      std::vector<std::vector<uint32_t>> filled(static_cast<size_t>(b));
      std::vector<json> masks(static_cast<size_t>(b), json::array());
      for (int64_t r = 0; r < b; ++r) filled[r] = encs[order[start + r]].ids;
      for (int64_t n = 0; n < result.size(0); ++n) {
        const auto r = static_cast<int64_t>(acc[n][0]);
        const auto pos = static_cast<int64_t>(acc[n][1]);
        json candidates = json::array();
        for (int64_t j = 0; j < k; ++j) {
          const auto id = static_cast<uint32_t>(acc[n][2 + k + j]);
          auto token = m.tokenizer->Decode({id}, false);
          candidates.push_back({{"token", token ? *token : std::string()},
                                {"token_id", id},
                                {"score", acc[n][2 + j]}});
          if (j == 0) filled[r][pos] = id;
        }
        masks[r].push_back({{"position", pos}, {"candidates", std::move(candidates)}});
      }
      for (int64_t r = 0; r < b; ++r) {
        auto sequence = m.tokenizer->Decode(filled[r], /*skip_special_tokens=*/true);
        predictions[order[start + r]] = {{"masks", std::move(masks[r])},
                                         {"sequence", sequence ? *sequence : std::string()}};
      }
    }
    post_ms += Ms(f1, Clock::now());
  }
  const auto t2 = Clock::now();
  json response = {{"predictions", std::move(predictions)},
                   {"model",
                    {{"source", m.source},
                     {"model_type", std::string(nn::ArchitectureName(c.architecture))},
                     {"objective", std::string(nn::ObjectiveName(m.objective))},
                     {"device", m.device.str()},
                     {"dtype", m.dtype == torch::kBFloat16 ? "bfloat16" : "float32"},
                     {"from_scratch", m.from_scratch}}},
                   {"tokens", tokens},
                   {"timing_ms",
                    {{"tokenize", Ms(t0, t1)}, {"forward", forward_ms}, {"postprocess", post_ms}, {"total", Ms(t0, t2)}}}};
  if (m.objective == Objective::kNoObjective) response["model"]["pooling"] = in.pooling == nn::Pooling::kMean ? "mean" : "cls";
  return response;
}

NlpPredictor::NlpPredictor(const storage::StorageRegistry& storage, PredictorOptions options)
    : impl_(std::make_unique<Impl>(storage, std::move(options))) {}
NlpPredictor::~NlpPredictor() = default;

NlpPredictor::CacheStats NlpPredictor::cache_stats() const { return impl_->cache.Stats(); }

Result<json> NlpPredictor::Predict(const json& request) {
  if (!request.is_object()) return InvalidArgument("the request body must be a JSON object");
  const json model_block = request.value("model", json::object());
  if (!model_block.is_object()) return InvalidArgument("model must be an object", "model");
  MLAAS_ASSIGN_OR_RETURN(Objective objective, PredictObjective(model_block));
  MLAAS_ASSIGN_OR_RETURN(PredictInput input, ParseInput(request.value("predict_input", json())));
  MLAAS_ASSIGN_OR_RETURN(torch::Device device, impl_->DeviceFor(input));
  if (!impl_->dtype_status.ok()) return impl_->dtype_status;

  std::optional<ModelFiles> model_files, tokenizer_files;
  std::string key = std::string(nn::ObjectiveName(objective)) + "|" + device.str();
  if (model_block.contains("path")) {
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, impl_->storage.Resolve(model_block, "model"));
    MLAAS_ASSIGN_OR_RETURN(model_files, LocalizeDirectory(ref, "model.path", impl_->options.scratch));
    key += "|model=" + model_files->fingerprint;
  } else {
    if (!request.contains("tokenizer"))
      return InvalidArgument("a model from scratch (preset/config) needs a tokenizer block", "tokenizer");
    key += "|scratch=" + model_block.dump();
  }
  if (request.contains("tokenizer")) {
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, impl_->storage.Resolve(request["tokenizer"], "tokenizer"));
    MLAAS_ASSIGN_OR_RETURN(tokenizer_files, LocalizeTokenizer(ref, "tokenizer.path", impl_->options.scratch));
    key += "|tokenizer=" + tokenizer_files->fingerprint;
  }
  const std::string source = model_block.contains("path") ? model_block["path"].get<std::string>()
                                                          : "scratch:" + model_block.value("preset", std::string("config"));
  MLAAS_ASSIGN_OR_RETURN(LoadedPtr loaded, impl_->cache.Get(key, [&]() -> Result<LoadedPtr> {
    return impl_->Load(model_files ? std::optional<fs::path>(model_files->path) : std::nullopt, model_block,
                       tokenizer_files ? std::optional<fs::path>(tokenizer_files->path) : std::nullopt, objective,
                       device, source);
  }));
  return impl_->Run(*loaded, input);
}

Result<json> NlpPredictor::PredictLocal(const fs::path& model_dir, const std::optional<fs::path>& tokenizer,
                                        const std::string& objective_name, const json& predict_input) {
  MLAAS_ASSIGN_OR_RETURN(Objective objective, PredictObjective(json{{"objective", objective_name}}));
  MLAAS_ASSIGN_OR_RETURN(PredictInput input, ParseInput(predict_input));
  MLAAS_ASSIGN_OR_RETURN(torch::Device device, impl_->DeviceFor(input));
  if (!impl_->dtype_status.ok()) return impl_->dtype_status;
  MLAAS_ASSIGN_OR_RETURN(std::string model_fp, FingerprintDirectory(model_dir, "model.path"));
  std::string key = std::string(nn::ObjectiveName(objective)) + "|" + device.str() + "|model=" + model_fp;
  if (tokenizer) {
    MLAAS_ASSIGN_OR_RETURN(std::string tok_fp, FingerprintDirectory(*tokenizer, "tokenizer.path"));
    key += "|tokenizer=" + tok_fp;
  }
  MLAAS_ASSIGN_OR_RETURN(LoadedPtr loaded, impl_->cache.Get(key, [&]() -> Result<LoadedPtr> {
    return impl_->Load(model_dir, json::object(), tokenizer, objective, device, model_dir.string());
  }));
  return impl_->Run(*loaded, input);
}

}  // namespace mlaas::predict
