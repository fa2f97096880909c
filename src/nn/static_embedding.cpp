#include "nn/static_embedding.h"

#include "common/json_file.h"

#include <cmath>
#include <sstream>
#include <unordered_map>

#include "checkpoint/safetensors.h"
#include "common/file_util.h"
#include "nn/embedding_projection.h"

namespace mlaas::nn {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kModelType = "static-embedding";

Result<double> NumberMember(const json& j, const char* key, double fallback, double lo, double hi, bool open_lo,
                            const std::string& field) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  const std::string name = field + "." + key;
  if (!it->is_number()) return InvalidArgument(std::string(key) + " must be a number", name);
  const double v = it->get<double>();
  if (std::isfinite(v) && v <= hi && (open_lo ? v > lo : v >= lo)) return v;
  std::ostringstream range;
  range << key << " must be in " << (open_lo ? "(" : "[") << lo << ", " << hi << "]";
  return InvalidArgument(range.str(), name);
}

Result<int64_t> SizeMember(const json& j, const char* key, int64_t hi, const std::string& field) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > hi)
    return InvalidArgument(std::string(key) + " must be an integer in 1.." + std::to_string(hi), field + "." + key);
  return it->get<int64_t>();
}

}  // namespace

Result<StaticEmbeddingConfig> ParseStaticEmbeddingConfig(const json& j, const std::string& field) {
  if (!j.is_object()) return InvalidArgument("the config must be an object", field);
  if (j.value("model_type", std::string()) != kModelType)
    return InvalidArgument(std::string("model_type must be \"") + kModelType + "\"", field + ".model_type");
  StaticEmbeddingConfig c;
  MLAAS_ASSIGN_OR_RETURN(c.vocab_size, SizeMember(j, "vocab_size", int64_t{1} << 24, field));
  MLAAS_ASSIGN_OR_RETURN(c.hidden_size, SizeMember(j, "hidden_size", 65536, field));
  MLAAS_ASSIGN_OR_RETURN(c.k1, NumberMember(j, "k1", 1.2, 0, 100, false, field));
  MLAAS_ASSIGN_OR_RETURN(c.b, NumberMember(j, "b", 0.75, 0, 1, false, field));
  MLAAS_ASSIGN_OR_RETURN(c.average_length, NumberMember(j, "average_length", 1, 0, 1e9, true, field));
  return c;
}

uint64_t ParameterBytes(const StaticEmbeddingConfig& c) {
  return static_cast<uint64_t>(c.vocab_size) * static_cast<uint64_t>(c.hidden_size) * 4;
}

nlohmann::ordered_json StaticEmbeddingConfigToJson(const StaticEmbeddingConfig& c) {
  return {{"model_type", kModelType}, {"architectures", {"StaticEmbedding"}},
          {"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
          {"k1", c.k1},                 {"b", c.b},
          {"average_length", c.average_length}};
}

TermWeights WeighTerms(const std::vector<int64_t>& ids, const StaticEmbeddingConfig& c) {
  TermWeights out;
  std::unordered_map<int64_t, size_t> slot;
  std::vector<int64_t> counts;
  for (int64_t id : ids) {
    auto [it, fresh] = slot.emplace(id, out.ids.size());
    if (fresh) {
      out.ids.push_back(id);
      counts.push_back(0);
    }
    ++counts[it->second];
  }
  const double norm = c.k1 * (1 - c.b + c.b * static_cast<double>(ids.size()) / c.average_length);
  for (int64_t tf : counts)
    out.weights.push_back(static_cast<float>(static_cast<double>(tf) * (c.k1 + 1) / (static_cast<double>(tf) + norm)));
  return out;
}

StaticEmbeddingImpl::StaticEmbeddingImpl(StaticEmbeddingConfig c) : config_(c) {
  embedding = register_module("embedding", torch::nn::Embedding(c.vocab_size, c.hidden_size));
}

torch::Tensor StaticEmbeddingImpl::forward(const std::vector<std::vector<int64_t>>& texts) {
  std::vector<int64_t> flat, offsets;
  std::vector<float> weights;
  for (const auto& text : texts) {
    offsets.push_back(static_cast<int64_t>(flat.size()));
    TermWeights t = WeighTerms(text, config_);
    flat.insert(flat.end(), t.ids.begin(), t.ids.end());
    weights.insert(weights.end(), t.weights.begin(), t.weights.end());
  }
  const torch::Device device = embedding->weight.device();
  auto ids = torch::tensor(flat, torch::kInt64).to(device);
  auto off = torch::tensor(offsets, torch::kInt64).to(device);
  auto w = torch::tensor(weights, torch::kFloat32).to(device, embedding->weight.scalar_type());
  namespace F = torch::nn::functional;
  return F::embedding_bag(ids, embedding->weight,
                          F::EmbeddingBagFuncOptions().offsets(off).mode(torch::kSum).per_sample_weights(w));
}

Status StaticEmbeddingImpl::InitFromDocuments(const std::vector<std::vector<int64_t>>& documents, uint64_t seed,
                                              const std::string& field) {
  std::vector<int64_t> df(static_cast<size_t>(config_.vocab_size), 0);
  uint64_t tokens = 0;
  for (const auto& doc : documents) {
    for (int64_t id : WeighTerms(doc, config_).ids) {
      if (id < 0 || id >= config_.vocab_size)
        return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary", field);
      ++df[static_cast<size_t>(id)];
    }
    tokens += doc.size();
  }
  if (documents.empty() || tokens == 0) return InvalidArgument("no document tokens to fit the weights on", field);
  const double n = static_cast<double>(documents.size());
  std::vector<float> scale;
  for (int64_t d : df) scale.push_back(static_cast<float>(std::sqrt(std::log1p((n - d + 0.5) / (d + 0.5)))));
  config_.average_length = static_cast<double>(tokens) / n;
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto w = at::normal(0.0, 1.0 / std::sqrt(static_cast<double>(config_.hidden_size)),
                      {config_.vocab_size, config_.hidden_size}, gen);
  w.mul_(torch::tensor(scale).unsqueeze(1));
  embedding->weight.copy_(w);
  return Status::Ok();
}

bool IsStaticEmbeddingConfig(const json& config) {
  if (!config.is_object()) return false;
  auto it = config.find("model_type");
  return it != config.end() && it->is_string() && *it == kModelType;
}

bool IsStaticEmbeddingDir(const fs::path& dir) {
  auto config = ReadJsonFile(dir / "config.json", "config.json", {}, {.max_bytes = 1u << 20});
  return config.has_value() && IsStaticEmbeddingConfig(*config);
}

Status SaveStaticEmbedding(StaticEmbeddingImpl& model, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir.string() + ": " + ec.message());
  torch::Tensor w = model.embedding->weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  MLAAS_RETURN_IF_ERROR(checkpoint::WriteSafetensors(
      dir / "model.safetensors",
      {{"embedding.weight", checkpoint::DType::kF32, {w.size(0), w.size(1)},
        std::span<const std::byte>(static_cast<const std::byte*>(w.data_ptr()), w.numel() * sizeof(float))}}));
  return WriteFileAtomic(dir / "config.json", StaticEmbeddingConfigToJson(model.config()).dump(2) + "\n");
}

Result<StaticEmbeddingConfig> ReadStaticEmbeddingConfig(const fs::path& dir, const std::string& field) {
  auto j = ReadJsonFile(dir / "config.json", "config.json", field, {.max_bytes = 1u << 20});
  if (!j.has_value()) return InvalidArgument(j.error().message(), field);
  auto parsed = ParseStaticEmbeddingConfig(*j, "config");
  if (!parsed.has_value()) return InvalidArgument("config.json: " + parsed.error().message(), field);
  return parsed;
}

Result<StaticEmbedding> LoadStaticEmbedding(const fs::path& dir, const std::string& field,
                                            const StaticEmbeddingConfig* given) {
  StaticEmbeddingConfig c;
  if (given != nullptr) {
    c = *given;
  } else {
    MLAAS_ASSIGN_OR_RETURN(c, ReadStaticEmbeddingConfig(dir, field));
  }
  auto file = checkpoint::SafetensorsFile::Open(dir / "model.safetensors");
  if (!file.has_value()) return InvalidArgument("model.safetensors: " + file.error().message(), field);
  MLAAS_ASSIGN_OR_RETURN(torch::Tensor w, ReadFloatTensor(**file, "embedding.weight", {c.vocab_size, c.hidden_size},
                                                          field, "model.safetensors"));
  StaticEmbedding model(c);
  torch::NoGradGuard no_grad;
  model->embedding->weight.copy_(w);
  return model;
}

}  // namespace mlaas::nn
