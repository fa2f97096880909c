#include "nn/embedding_projection.h"

#include <nlohmann/json.hpp>

#include "checkpoint/safetensors.h"
#include "common/file_util.h"
#include "common/json_file.h"

namespace mlaas::nn {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kDenseType = "sentence_transformers.models.Dense";
constexpr const char* kIdentity = "torch.nn.modules.linear.Identity";
constexpr const char* kTanh = "torch.nn.modules.activation.Tanh";

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A module path inside the directory: relative, no "..", no empty or hidden parts.
bool SafeModulePath(const std::string& p) {
  if (p.empty() || p.front() == '/') return false;
  for (const auto& part : fs::path(p)) {
    const std::string s = part.string();
    if (s.empty() || s == "." || s == ".." || s.front() == '.') return false;
  }
  return true;
}

Result<json> ReadJson(const fs::path& path, const std::string& field, const std::string& what) {
  auto j = ReadJsonFile(path, what, field, {.max_bytes = 1u << 20});
  if (!j.has_value()) return InvalidArgument(j.error().message(), field);
  return j;
}

// j[key] as a string / bool / integer when present (`fallback` when absent); an error naming
// `field` when it has another type.
Result<std::string> StringMember(const json& j, const char* key, std::string fallback, const std::string& field,
                                 const std::string& what) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_string()) return InvalidArgument(what + ": " + key + " must be a string", field);
  return it->get<std::string>();
}

Result<bool> BoolMember(const json& j, const char* key, bool fallback, const std::string& field,
                        const std::string& what) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_boolean()) return InvalidArgument(what + ": " + key + " must be true or false", field);
  return it->get<bool>();
}

Result<int64_t> IntegerMember(const json& j, const char* key, const std::string& field, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return InvalidArgument(what + " needs an integer " + key, field);
  return it->get<int64_t>();
}

// The Pooling module's mode: mean or CLS (what this platform pools); anything else is an error.
Result<Pooling> ReadPooling(const fs::path& dir, const std::string& path, const std::string& field) {
  const std::string what = path + "/config.json";
  std::error_code ec;
  if (!fs::exists(dir / path / "config.json", ec)) return Pooling::kMean;
  MLAAS_ASSIGN_OR_RETURN(json config, ReadJson(dir / path / "config.json", field, what));
  if (!config.is_object()) return InvalidArgument(what + " must be an object", field);
  std::vector<std::string> on;
  for (const char* mode : {"pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                           "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                           "pooling_mode_lasttoken"}) {
    MLAAS_ASSIGN_OR_RETURN(bool set, BoolMember(config, mode, false, field, what));
    if (set) on.push_back(mode);
  }
  if (on.size() == 1 && on[0] == "pooling_mode_cls_token") return Pooling::kCls;
  if (on.size() == 1 && on[0] == "pooling_mode_mean_tokens") return Pooling::kMean;
  if (on.empty()) return Pooling::kMean;
  std::string list;
  for (const auto& m : on) list += (list.empty() ? "" : " + ") + m;
  return InvalidArgument(what + ": " + list + " is not supported (mean or CLS pooling)", field);
}

}  // namespace

Result<torch::Tensor> ReadFloatTensor(const checkpoint::SafetensorsFile& file, const std::string& name,
                                      std::vector<int64_t> shape, const std::string& field, const std::string& what) {
  const checkpoint::TensorInfo* t = file.Find(name);
  if (t == nullptr) return InvalidArgument(what + " has no tensor " + name, field);
  std::optional<torch::ScalarType> dtype;
  switch (t->dtype) {
    case checkpoint::DType::kF32: dtype = torch::kFloat32; break;
    case checkpoint::DType::kF16: dtype = torch::kFloat16; break;
    case checkpoint::DType::kBF16: dtype = torch::kBFloat16; break;
    case checkpoint::DType::kF64: dtype = torch::kFloat64; break;
    default: break;
  }
  if (!dtype || t->shape != shape) {
    std::string want;
    for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
    return InvalidArgument(what + ": " + name + " must be a float tensor of shape [" + want + "]", field);
  }
  auto bytes = file.Data(*t);
  return torch::from_blob(const_cast<std::byte*>(bytes.data()), shape, *dtype).to(torch::kFloat32, false, true);
}

torch::Tensor EmbeddingProjection::Apply(const torch::Tensor& pooled) const {
  torch::Tensor y = torch::addmm(bias, pooled.to(weight.device(), torch::kFloat32), weight.t());
  return activation == ProjectionActivation::kTanh ? torch::tanh(y) : y;
}

Result<std::optional<EmbeddingProjection>> LoadEmbeddingProjection(const fs::path& dir, int64_t hidden_size,
                                                                   const std::string& field) {
  std::error_code ec;
  if (!fs::exists(dir / "modules.json", ec)) return std::optional<EmbeddingProjection>();
  MLAAS_ASSIGN_OR_RETURN(json modules, ReadJson(dir / "modules.json", field, "modules.json"));
  if (!modules.is_array()) return InvalidArgument("modules.json must be a list of modules", field);
  std::optional<std::string> dense;
  Pooling pooling = Pooling::kMean;
  for (const auto& m : modules) {
    if (!m.is_object()) return InvalidArgument("modules.json: every module must be an object", field);
    MLAAS_ASSIGN_OR_RETURN(std::string type, StringMember(m, "type", "", field, "modules.json"));
    MLAAS_ASSIGN_OR_RETURN(std::string path, StringMember(m, "path", "", field, "modules.json"));
    if (dense) {  // after the projection, only normalisation (which the request chooses anyway)
      if (!EndsWith(type, ".Normalize"))
        return InvalidArgument("modules.json: " + type + " after a Dense module is not supported", field);
      continue;
    }
    if (EndsWith(type, ".Transformer") || EndsWith(type, ".Normalize")) continue;
    if (!EndsWith(type, ".Pooling") && !EndsWith(type, ".Dense"))
      return InvalidArgument("modules.json: module type '" + type + "' is not supported", field);
    if (!SafeModulePath(path)) return InvalidArgument("modules.json: bad module path '" + path + "'", field);
    if (EndsWith(type, ".Pooling")) {
      MLAAS_ASSIGN_OR_RETURN(pooling, ReadPooling(dir, path, field));
    } else {
      dense = path;
    }
  }
  if (!dense) return std::optional<EmbeddingProjection>();

  const fs::path module = dir / *dense;
  const std::string what = *dense + "/config.json";
  MLAAS_ASSIGN_OR_RETURN(json config, ReadJson(module / "config.json", field, what));
  if (!config.is_object()) return InvalidArgument(what + " must be an object", field);
  MLAAS_ASSIGN_OR_RETURN(const int64_t in, IntegerMember(config, "in_features", field, what));
  MLAAS_ASSIGN_OR_RETURN(const int64_t out, IntegerMember(config, "out_features", field, what));
  if (in != hidden_size)
    return InvalidArgument(what + ": in_features " + std::to_string(in) + " is not the model's hidden size " +
                               std::to_string(hidden_size),
                           field);
  if (out < 1 || out > 1'000'000) return InvalidArgument(what + ": out_features must be in [1, 1000000]", field);
  MLAAS_ASSIGN_OR_RETURN(std::string activation, StringMember(config, "activation_function", kIdentity, field, what));
  MLAAS_ASSIGN_OR_RETURN(const bool has_bias, BoolMember(config, "bias", true, field, what));

  EmbeddingProjection p;
  p.pooling = pooling;
  if (activation == kIdentity || activation == "torch.nn.Identity") {
    p.activation = ProjectionActivation::kIdentity;
  } else if (activation == kTanh || activation == "torch.nn.Tanh") {
    p.activation = ProjectionActivation::kTanh;
  } else {
    return InvalidArgument(what + ": activation " + activation + " is not supported (identity or tanh)", field);
  }
  if (!fs::exists(module / "model.safetensors", ec))
    return InvalidArgument(*dense + "/model.safetensors is missing (only safetensors weights are read)", field);
  auto file = checkpoint::SafetensorsFile::Open(module / "model.safetensors");
  if (!file.has_value())
    return InvalidArgument(*dense + "/model.safetensors: " + file.error().message(), field);
  MLAAS_ASSIGN_OR_RETURN(p.weight, ReadFloatTensor(**file, "linear.weight", {out, in}, field, *dense));
  if (has_bias) {
    MLAAS_ASSIGN_OR_RETURN(p.bias, ReadFloatTensor(**file, "linear.bias", {out}, field, *dense));
  } else {
    p.bias = torch::zeros({out}, torch::kFloat32);
  }
  return std::optional<EmbeddingProjection>(std::move(p));
}

Status SaveEmbeddingProjection(const fs::path& dir, const EmbeddingProjection& projection) {
  const Pooling pooling = projection.pooling;
  std::error_code ec;
  for (const char* sub : {"1_Pooling", "2_Dense"}) {
    fs::create_directories(dir / sub, ec);
    if (ec) return Internal("cannot create " + (dir / sub).string() + ": " + ec.message());
  }
  torch::Tensor w = projection.weight.to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor b = projection.bias.to(torch::kCPU, torch::kFloat32).contiguous();
  auto bytes = [](const torch::Tensor& t) {
    return std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.numel() * sizeof(float));
  };
  MLAAS_RETURN_IF_ERROR(checkpoint::WriteSafetensors(
      dir / "2_Dense" / "model.safetensors",
      {{"linear.bias", checkpoint::DType::kF32, {b.size(0)}, bytes(b)},
       {"linear.weight", checkpoint::DType::kF32, {w.size(0), w.size(1)}, bytes(w)}}));
  json dense = {{"in_features", w.size(1)},
                {"out_features", w.size(0)},
                {"bias", true},
                {"activation_function",
                 projection.activation == ProjectionActivation::kTanh ? kTanh : kIdentity}};
  MLAAS_RETURN_IF_ERROR(WriteFileAtomic(dir / "2_Dense" / "config.json", dense.dump(2) + "\n"));
  json pool = {{"word_embedding_dimension", w.size(1)},
               {"pooling_mode_cls_token", pooling == Pooling::kCls},
               {"pooling_mode_mean_tokens", pooling == Pooling::kMean},
               {"pooling_mode_max_tokens", false},
               {"pooling_mode_mean_sqrt_len_tokens", false}};
  MLAAS_RETURN_IF_ERROR(WriteFileAtomic(dir / "1_Pooling" / "config.json", pool.dump(2) + "\n"));
  json modules = json::array(
      {{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
       {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}},
       {{"idx", 2}, {"name", "2"}, {"path", "2_Dense"}, {"type", kDenseType}}});
  return WriteFileAtomic(dir / "modules.json", modules.dump(2) + "\n");
}

void WhiteningFit::Add(const torch::Tensor& batch) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = batch.detach().to(torch::kCPU, torch::kFloat64).reshape({batch.size(0), -1});
  if (!sum_.defined()) {
    sum_ = torch::zeros({x.size(1)}, torch::kFloat64);
    outer_ = torch::zeros({x.size(1), x.size(1)}, torch::kFloat64);
  }
  sum_ += x.sum(0);
  outer_ += torch::matmul(x.t(), x);
  rows_ += x.size(0);
}

Result<EmbeddingProjection> WhiteningFit::Finish(double power, const std::string& field) const {
  if (rows_ < 2) return InvalidArgument("whitening needs at least 2 embeddings", field);
  if (!(power > 0) || power > 1) return InvalidArgument("the whitening power must be in (0, 1]", field);
  torch::NoGradGuard no_grad;
  const auto n = static_cast<double>(rows_);
  torch::Tensor mean = sum_ / n;
  torch::Tensor cov = (outer_ - n * torch::outer(mean, mean)) / (n - 1);
  if (!torch::isfinite(cov).all().item<bool>())
    return InvalidArgument("the embeddings to whiten are not all finite", field);
  auto [values, vectors] = torch::linalg_eigh(cov);  // ascending
  // Variance below rounding level of the rows' own size is none (identical rows give ~1e-17).
  const double largest = values.max().item<double>();
  const double mean_square = (torch::trace(outer_) / n).item<double>();
  if (!(largest > 1e-10 * mean_square)) return InvalidArgument("the embeddings have no variance to whiten", field);
  torch::Tensor keep = values.gt(1e-5 * largest).nonzero().squeeze(1).flip(0);  // largest first
  torch::Tensor v = vectors.index_select(1, keep);                               // [d, k]
  torch::Tensor scale = values.index_select(0, keep).pow(-power);                // [k]
  torch::Tensor w = v.t() * scale.unsqueeze(1);                                  // [k, d]
  EmbeddingProjection p;
  p.weight = w.to(torch::kFloat32).contiguous();
  p.bias = (-torch::matmul(w, mean)).to(torch::kFloat32).contiguous();
  return p;
}

Result<EmbeddingProjection> FitWhitening(const torch::Tensor& embeddings, double power, const std::string& field) {
  if (embeddings.dim() != 2) return InvalidArgument("whitening needs a [rows, dimensions] matrix", field);
  WhiteningFit fit;
  if (embeddings.size(0) > 0) fit.Add(embeddings);
  return fit.Finish(power, field);
}

constexpr const char* kSimilarityFile = "config_sentence_transformers.json";

Result<std::string> ReadSimilarity(const fs::path& dir, const std::string& field) {
  std::error_code ec;
  if (!fs::exists(dir / kSimilarityFile, ec)) return std::string("cosine");
  MLAAS_ASSIGN_OR_RETURN(json j, ReadJsonFile(dir / kSimilarityFile, kSimilarityFile, field, {.max_bytes = 1u << 20}));
  if (!j.is_object()) return InvalidArgument(std::string(kSimilarityFile) + " is not a JSON object", field);
  auto it = j.find("similarity_fn_name");
  if (it == j.end() || it->is_null()) return std::string("cosine");
  if (!it->is_string()) return InvalidArgument(std::string(kSimilarityFile) + ": similarity_fn_name must be a string", field);
  return it->get<std::string>();
}

Status SaveSimilarity(const fs::path& dir, const std::string& similarity) {
  return WriteFileAtomic(dir / kSimilarityFile, json{{"similarity_fn_name", similarity}}.dump(2) + "\n");
}

}  // namespace mlaas::nn
