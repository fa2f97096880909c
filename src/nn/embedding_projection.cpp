#include "nn/embedding_projection.h"

#include <nlohmann/json.hpp>

#include "checkpoint/safetensors.h"
#include "common/file_util.h"

namespace mlaas::nn {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kDenseType = "sentence_transformers.models.Dense";
constexpr const char* kIdentity = "torch.nn.modules.linear.Identity";

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
  auto text = ReadFile(path, 1u << 20);
  if (!text.has_value()) return InvalidArgument("cannot read " + what + ": " + text.error().message(), field);
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument(what + " is not valid JSON", field);
  return j;
}

Result<torch::Tensor> ReadF32(const checkpoint::SafetensorsFile& file, const std::string& name,
                              std::vector<int64_t> shape, const std::string& field, const std::string& what) {
  const checkpoint::TensorInfo* t = file.Find(name);
  if (t == nullptr) return InvalidArgument(what + " has no tensor " + name, field);
  if (t->dtype != checkpoint::DType::kF32 || t->shape != shape) {
    std::string want;
    for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
    return InvalidArgument(what + ": " + name + " must be F32 of shape [" + want + "]", field);
  }
  auto bytes = file.Data(*t);
  return torch::from_blob(const_cast<std::byte*>(bytes.data()), shape, torch::kFloat32).clone();
}

}  // namespace

torch::Tensor EmbeddingProjection::Apply(const torch::Tensor& pooled) const {
  return torch::addmm(bias, pooled.to(weight.device(), torch::kFloat32), weight.t());
}

Result<std::optional<EmbeddingProjection>> LoadEmbeddingProjection(const fs::path& dir, int64_t hidden_size,
                                                                   const std::string& field) {
  std::error_code ec;
  if (!fs::exists(dir / "modules.json", ec)) return std::optional<EmbeddingProjection>();
  MLAAS_ASSIGN_OR_RETURN(json modules, ReadJson(dir / "modules.json", field, "modules.json"));
  if (!modules.is_array()) return InvalidArgument("modules.json must be a list of modules", field);
  std::optional<std::string> dense;
  for (const auto& m : modules) {
    if (!m.is_object() || !m.contains("type") || !m["type"].is_string())
      return InvalidArgument("modules.json: every module needs a type", field);
    const std::string type = m["type"];
    if (dense) {  // after the projection, only normalisation (which the request chooses anyway)
      if (!EndsWith(type, ".Normalize"))
        return InvalidArgument("modules.json: " + type + " after a Dense module is not supported", field);
      continue;
    }
    if (!EndsWith(type, ".Dense")) continue;
    const std::string path = m.value("path", std::string());
    if (!SafeModulePath(path)) return InvalidArgument("modules.json: bad Dense module path '" + path + "'", field);
    dense = path;
  }
  if (!dense) return std::optional<EmbeddingProjection>();

  const fs::path module = dir / *dense;
  const std::string what = *dense + "/config.json";
  MLAAS_ASSIGN_OR_RETURN(json config, ReadJson(module / "config.json", field, what));
  if (!config.is_object() || !config.contains("in_features") || !config["in_features"].is_number_integer() ||
      !config.contains("out_features") || !config["out_features"].is_number_integer())
    return InvalidArgument(what + " needs integer in_features and out_features", field);
  const int64_t in = config["in_features"], out = config["out_features"];
  if (in != hidden_size)
    return InvalidArgument(what + ": in_features " + std::to_string(in) + " is not the model's hidden size " +
                               std::to_string(hidden_size),
                           field);
  if (out < 1 || out > 1'000'000) return InvalidArgument(what + ": out_features must be in [1, 1000000]", field);
  const std::string activation = config.value("activation_function", std::string(kIdentity));
  if (activation != kIdentity && activation != "torch.nn.Identity")
    return InvalidArgument(what + ": activation " + activation + " is not supported (identity only)", field);
  const bool has_bias = config.value("bias", true);

  auto file = checkpoint::SafetensorsFile::Open(module / "model.safetensors");
  if (!file.has_value())
    return InvalidArgument(*dense + "/model.safetensors: " + file.error().message(), field);
  EmbeddingProjection p;
  MLAAS_ASSIGN_OR_RETURN(p.weight, ReadF32(**file, "linear.weight", {out, in}, field, *dense));
  if (has_bias) {
    MLAAS_ASSIGN_OR_RETURN(p.bias, ReadF32(**file, "linear.bias", {out}, field, *dense));
  } else {
    p.bias = torch::zeros({out}, torch::kFloat32);
  }
  return std::optional<EmbeddingProjection>(std::move(p));
}

Status SaveEmbeddingProjection(const fs::path& dir, const EmbeddingProjection& projection, Pooling pooling) {
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
                {"activation_function", kIdentity}};
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

Result<EmbeddingProjection> FitWhitening(const torch::Tensor& embeddings, double power, const std::string& field) {
  if (embeddings.dim() != 2 || embeddings.size(0) < 2)
    return InvalidArgument("whitening needs at least 2 embeddings", field);
  if (!(power > 0) || power > 1) return InvalidArgument("the whitening power must be in (0, 1]", field);
  torch::NoGradGuard no_grad;
  torch::Tensor x = embeddings.detach().to(torch::kCPU, torch::kFloat64);
  torch::Tensor mean = x.mean(0);
  torch::Tensor centred = x - mean;
  torch::Tensor cov = torch::matmul(centred.t(), centred) / static_cast<double>(x.size(0) - 1);
  auto [values, vectors] = torch::linalg_eigh(cov);  // ascending
  const double largest = values.max().item<double>();
  if (!(largest > 0)) return InvalidArgument("the embeddings have no variance to whiten", field);
  torch::Tensor keep = values.gt(1e-7 * largest).nonzero().squeeze(1).flip(0);  // largest first
  torch::Tensor v = vectors.index_select(1, keep);                               // [d, k]
  torch::Tensor scale = values.index_select(0, keep).pow(-power);                // [k]
  torch::Tensor w = v.t() * scale.unsqueeze(1);                                  // [k, d]
  EmbeddingProjection p;
  p.weight = w.to(torch::kFloat32).contiguous();
  p.bias = (-torch::matmul(w, mean)).to(torch::kFloat32).contiguous();
  return p;
}

}  // namespace mlaas::nn
