#include "nn/model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <dlfcn.h>

#include <algorithm>
#include <thread>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "checkpoint/pytorch_pickle.h"
#include "checkpoint/safetensors.h"
#include "common/file_util.h"
#include "common/text.h"

namespace mlaas::nn {

namespace fs = std::filesystem;
using checkpoint::DType;

TransformerModelImpl::TransformerModelImpl(ModelConfig config, Objective objective, bool with_pooler)
    : config_(std::move(config)), objective_(objective), prefix_(ArchitectureName(config_.architecture)) {
  if (Status s = CheckArchitectureObjective(config_.architecture, objective_); !s.ok()) TORCH_CHECK(false, s.message());
  if (config_.architecture == Architecture::kGpt2) {
    prefix_ = "transformer";
    decoder = register_module(prefix_, Decoder(config_));
    return;
  }
  const bool pooler = objective_ == Objective::kNoObjective ? with_pooler
                                                             : HeadUsesPooler(config_.architecture, objective_);
  encoder = register_module(prefix_, Encoder(config_, pooler));
  switch (objective_) {
    case Objective::kTextClassification: head_ = MakeClassificationHead(config_, *this); break;
    case Objective::kMaskedLm: head_ = MakeMaskedLmHead(config_, *this, encoder->embeddings); break;
    case Objective::kTokenClassification: head_ = MakeTokenClassificationHead(config_, *this); break;
    case Objective::kQuestionAnswering: head_ = MakeQuestionAnsweringHead(config_, *this); break;
    case Objective::kNextSentencePrediction: head_ = MakeNextSentenceHead(config_, *this); break;
    default: break;  // no-objective: the encoder alone (ParseObjective admits no other)
  }
}

ModelOutput TransformerModelImpl::forward(const EncoderInput& in) {
  ModelOutput out;
  if (decoder) {
    out.encoder.last_hidden_state = decoder->forward(in.input_ids, in.attention_mask, torch::Tensor());
    out.logits = decoder->Logits(out.encoder.last_hidden_state);
    return out;
  }
  out.encoder = encoder(WithDefaultGlobalAttention(in));
  if (head_) out.logits = head_->Forward(out.encoder);
  return out;
}

EncoderInput TransformerModelImpl::WithDefaultGlobalAttention(const EncoderInput& in) const {
  if (config_.architecture != Architecture::kLongformer || objective_ != Objective::kTextClassification ||
      in.global_attention_mask.defined())
    return in;
  // LongformerForSequenceClassification: global attention on the first token (<s>).
  EncoderInput with_global = in;
  with_global.global_attention_mask = torch::zeros_like(in.input_ids);
  with_global.global_attention_mask.select(1, 0).fill_(1);
  return with_global;
}

std::vector<std::string> TransformerModelImpl::TiedAliases() const {
  if (decoder) return {"lm_head.weight"};
  return head_ ? head_->TiedAliases() : std::vector<std::string>{};
}

void TransformerModelImpl::PrepareForInference(bool drop_sources) {
  eval();
  if (decoder) return;  // nothing to pack
  encoder->FuseQkv(true);
  if (drop_sources) {
    for (auto& layer : encoder->layers) layer->DropPackedSources();
  }
}

bool TransformerModelImpl::inference_only() const {
  if (decoder) return false;
  return std::any_of(encoder->layers.begin(), encoder->layers.end(),
                     [](const EncoderLayer& layer) { return layer->sources_dropped(); });
}

int64_t TransformerModelImpl::PackedBytes() const {
  int64_t n = 0;
  if (decoder) return n;
  for (const auto& layer : encoder->layers) n += layer->PackedBytes();
  return n;
}

void TransformerModelImpl::SetDropoutGenerator(const std::optional<at::Generator>& gen) {
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* d = m->as<Dropout>()) d->set_generator(gen);
  }
}

// ---------------------------------------------------------------------------------------------
// Initialisation

namespace {

void SinusoidalPositions(torch::Tensor& w) {
  const int64_t n = w.size(0), dim = w.size(1);
  auto pos = torch::arange(n, torch::kFloat64).unsqueeze(1);
  auto j = torch::arange(dim, torch::kFloat64);
  auto angle = pos / torch::pow(10000.0, 2.0 * torch::floor(j / 2) / dim);
  auto table = torch::empty({n, dim}, torch::kFloat64);
  using torch::indexing::Slice;
  table.index_put_({Slice(), Slice(0, torch::indexing::None, 2)}, torch::sin(angle.index({Slice(), Slice(0, torch::indexing::None, 2)})));
  table.index_put_({Slice(), Slice(1, torch::indexing::None, 2)}, torch::cos(angle.index({Slice(), Slice(1, torch::indexing::None, 2)})));
  w.copy_(table);
}

}  // namespace

void InitWeights(TransformerModelImpl& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  // A generator of its own (the same stream torch::manual_seed(seed) would give): libtorch's
  // global one belongs to whatever trains in this process (dropout, see train/).
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double std = model.config().initializer_range;
  for (auto& m : model.modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, std, gen);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* conv = m->as<Conv1D>()) {
      conv->weight.normal_(0.0, std, gen);
      conv->bias.zero_();
    } else if (auto* emb = m->as<torch::nn::Embedding>()) {
      emb->weight.normal_(0.0, std, gen);
      if (auto pad = emb->options.padding_idx()) emb->weight[*pad].zero_();
    } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
  // Bare parameters (masked-LM output biases) start at zero.
  for (auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    if (name == "cls.predictions.bias" || name == "vocab_projector.bias" || name == "lm_head.bias") p.value().zero_();
  }
  if (model.decoder) {
    // GPT-2 scales the projections into the residual stream by 1/sqrt(2 x layers), as
    // transformers' _init_weights does.
    const double scaled = std / std::sqrt(2.0 * static_cast<double>(model.config().num_hidden_layers));
    for (auto& block : model.decoder->blocks) {
      block->attn_proj->weight.normal_(0.0, scaled, gen);
      block->mlp_proj->weight.normal_(0.0, scaled, gen);
    }
    return;
  }
  if (model.config().sinusoidal_pos_embds) {
    auto w = model.encoder->embeddings->position_embeddings->weight;
    SinusoidalPositions(w);
  }
  model.encoder->FuseQkv(false);
}

// ---------------------------------------------------------------------------------------------
// Loading

namespace {

struct Source {
  const checkpoint::SafetensorsFile* file;
  const checkpoint::TensorInfo* info;
};

std::string ShapeString(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::optional<torch::ScalarType> TorchDType(DType d) {
  switch (d) {
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kF64: return torch::kFloat64;
    default: return std::nullopt;
  }
}

// Names a checkpoint may use for one of our parameters, most specific first.
std::vector<std::string> Candidates(const std::string& name, const std::string& prefix) {
  std::vector<std::string> out{name};
  if (StartsWith(name, prefix + ".")) out.push_back(name.substr(prefix.size() + 1));
  // Original TF-converted BERT checkpoints call LayerNorm parameters gamma/beta.
  auto legacy = [&](const std::string& n) {
    if (n.ends_with("LayerNorm.weight")) return n.substr(0, n.size() - 6) + "gamma";
    if (n.ends_with("LayerNorm.bias")) return n.substr(0, n.size() - 4) + "beta";
    return std::string();
  };
  for (size_t i = 0, n = out.size(); i < n; ++i) {
    if (auto l = legacy(out[i]); !l.empty()) out.push_back(l);
  }
  return out;
}

bool IsHeadParameter(const std::string& name, const std::string& prefix) {
  return !StartsWith(name, prefix + ".") || name.find(".pooler.") != std::string::npos;
}

Status CopyInto(torch::Tensor& param, const std::string& name, const Source& src) {
  const auto& info = *src.info;
  auto dtype = TorchDType(info.dtype);
  if (!dtype)
    return InvalidArgument("tensor '" + info.name + "' has dtype " + std::string(checkpoint::DTypeName(info.dtype)) +
                           "; weights must be F32, F16, BF16 or F64");
  if (c10::IntArrayRef(info.shape) != param.sizes())
    return InvalidArgument("tensor '" + info.name + "' has shape " + ShapeString(info.shape) +
                           " in the checkpoint but the model config needs " + ShapeString(param.sizes()) + " for '" +
                           name + "'");
  auto bytes = src.file->Data(info);
  const size_t elem = checkpoint::DTypeSize(info.dtype);
  torch::Tensor view;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % elem == 0) {
    view = torch::from_blob(const_cast<std::byte*>(bytes.data()), info.shape, torch::TensorOptions().dtype(*dtype));
  } else {  // the format does not promise alignment: copy unaligned data first
    view = torch::empty(info.shape, torch::TensorOptions().dtype(*dtype));
    std::memcpy(view.data_ptr(), bytes.data(), bytes.size());
  }
  param.copy_(view);
  return Status::Ok();
}

std::string DTypeSummary(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : "+") + n;
  return out;
}

}  // namespace

Status LoadWeights(TransformerModelImpl& model, const fs::path& dir, const LoadOptions& options, LoadReport* report) {
  std::vector<std::unique_ptr<checkpoint::SafetensorsFile>> files;
  std::map<std::string, Source, std::less<>> by_name;
  auto add_file = [&](const fs::path& path) -> Status {
    auto opened = checkpoint::SafetensorsFile::Open(path);
    if (!opened) return opened.error().WithContext(path.filename().string());
    files.push_back(std::move(*opened));
    for (const auto& t : files.back()->tensors()) {
      if (!by_name.emplace(t.name, Source{files.back().get(), &t}).second)
        return InvalidArgument("tensor '" + t.name + "' appears in more than one shard");
    }
    return Status::Ok();
  };
  if (fs::exists(dir / "model.safetensors")) {
    if (Status s = add_file(dir / "model.safetensors"); !s.ok()) return s;
  } else if (fs::exists(dir / "model.safetensors.index.json")) {
    auto index = checkpoint::ReadShardIndex(dir / "model.safetensors.index.json");
    if (!index) return index.error();
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : *index) shards.insert(shard);
    for (const auto& shard : shards) {
      if (Status s = add_file(dir / shard); !s.ok()) return s;
    }
    for (const auto& [tensor, shard] : *index) {
      auto it = by_name.find(tensor);
      if (it == by_name.end() || it->second.file->Find(tensor) == nullptr)
        return InvalidArgument("model.safetensors.index.json maps tensor '" + tensor + "' to " + shard +
                               ", which does not hold it");
    }
  } else if (fs::exists(dir / "pytorch_model.bin") || fs::exists(dir / "pytorch_model.bin.index.json")) {
    // PyTorch's pickle format, read by the restricted unpickler (no code runs) into safetensors
    // images in memory, so that one loader maps both.
    std::vector<fs::path> shards;
    if (fs::exists(dir / "pytorch_model.bin")) {
      shards.push_back(dir / "pytorch_model.bin");
    } else {
      auto index = checkpoint::ReadShardIndex(dir / "pytorch_model.bin.index.json");
      if (!index) return index.error();
      std::set<std::string> names;
      for (const auto& [tensor, shard] : *index) names.insert(shard);
      for (const auto& n : names) shards.push_back(dir / n);
    }
    for (const auto& shard : shards) {
      if (shard.filename().string().find('/') != std::string::npos || shard.parent_path() != dir)
        return InvalidArgument("a shard outside the model directory: " + shard.filename().string());
      auto tensors = checkpoint::ReadPytorchStateDict(shard);
      if (!tensors) return tensors.error();
      auto image = checkpoint::ToSafetensors(std::move(tensors).value());
      if (!image) return image.error().WithContext(shard.filename().string());
      auto opened = checkpoint::SafetensorsFile::FromBytes(std::move(image).value());
      if (!opened) return opened.error().WithContext(shard.filename().string());
      files.push_back(std::move(*opened));
      for (const auto& t : files.back()->tensors()) {
        if (!by_name.emplace(t.name, Source{files.back().get(), &t}).second)
          return InvalidArgument("tensor '" + t.name + "' appears in more than one shard");
      }
    }
  } else {
    return NotFound("the model directory has no model.safetensors, model.safetensors.index.json or pytorch_model.bin");
  }

  torch::NoGradGuard no_grad;
  LoadReport local;
  LoadReport& rep = report ? *report : local;
  std::set<std::string> used, dtypes;
  std::vector<std::pair<std::string, torch::Tensor>> missing;
  for (auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    const Source* src = nullptr;
    if (options.fresh_head && !StartsWith(name, model.prefix() + ".")) {
      missing.emplace_back(name, p.value());
      continue;
    }
    for (const auto& cand : Candidates(name, model.prefix())) {
      if (auto it = by_name.find(cand); it != by_name.end()) {
        src = &it->second;
        used.insert(cand);
        break;
      }
    }
    if (!src) {
      missing.emplace_back(name, p.value());
      continue;
    }
    dtypes.insert(std::string(checkpoint::DTypeName(src->info->dtype)));
    if (Status s = CopyInto(p.value(), name, *src); !s.ok()) return s;
  }
  for (auto& [name, tensor] : missing) {
    if (!((options.allow_missing_head || options.fresh_head) && IsHeadParameter(name, model.prefix())))
      return InvalidArgument("the checkpoint has no tensor '" + name + "' (nor '" +
                             Candidates(name, model.prefix()).back() + "'), which a " +
                             ArchitectureClassName(model.config().architecture, model.objective()) + " needs");
  }
  if (!missing.empty()) {
    // A fresh head on a pre-trained encoder: initialise just those parameters, as
    // transformers' _init_weights would.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    for (auto& [name, tensor] : missing) {
      if (name.ends_with(".bias")) {
        tensor.zero_();
      } else if (name.find("LayerNorm") != std::string::npos || name.find("layer_norm") != std::string::npos) {
        tensor.fill_(1.0);
      } else {
        tensor.normal_(0.0, model.config().initializer_range, gen);
      }
      rep.initialized.push_back(name);
    }
  }
  std::set<std::string> aliases;
  for (const auto& a : model.TiedAliases()) aliases.insert(a);
  for (const auto& [name, src] : by_name) {
    if (used.count(name) || aliases.count(name)) continue;
    // GPT-2 checkpoints of older transformers hold each layer's causal-mask buffers.
    if (model.decoder && (name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias"))) continue;
    rep.unused.push_back(name);
  }
  rep.source_dtype = DTypeSummary(dtypes);
  if (model.encoder) model.encoder->FuseQkv(false);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Saving

namespace {

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;  // CPU float32, contiguous
};

std::vector<NamedTensor> CollectForSave(TransformerModelImpl& model) {
  std::vector<NamedTensor> out;
  const bool bare = model.objective() == Objective::kNoObjective;
  const std::string prefix = model.prefix() + ".";
  for (auto& p : model.named_parameters()) {
    std::string name = p.key();
    if (bare && StartsWith(name, prefix)) name = name.substr(prefix.size());
    out.push_back({name, p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous()});
  }
  return out;
}

std::vector<checkpoint::TensorToWrite> ToWrite(const std::vector<NamedTensor>& tensors) {
  std::vector<checkpoint::TensorToWrite> out;
  for (const auto& t : tensors) {
    checkpoint::TensorToWrite w;
    w.name = t.name;
    w.dtype = DType::kF32;
    w.shape.assign(t.tensor.sizes().begin(), t.tensor.sizes().end());
    w.data = {static_cast<const std::byte*>(t.tensor.data_ptr()), static_cast<size_t>(t.tensor.nbytes())};
    out.push_back(std::move(w));
  }
  return out;
}

void RemoveShards(const fs::path& dir, const std::set<std::string>& keep) {
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (StartsWith(name, "model-") && name.ends_with(".safetensors") && name.find("-of-") != std::string::npos &&
        !keep.count(name)) {
      fs::remove(it->path(), ec);
    }
  }
}

}  // namespace

Status SaveWeights(TransformerModelImpl& model, const fs::path& dir, const SaveOptions& options) {
  if (model.inference_only())
    return FailedPrecondition("this copy of the model keeps only packed inference weights and cannot be saved");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create the model directory: " + ec.message());
  auto tensors = CollectForSave(model);
  uint64_t total = 0;
  for (const auto& t : tensors) total += static_cast<uint64_t>(t.tensor.nbytes());
  if (options.max_shard_bytes == 0 || total <= options.max_shard_bytes) {
    if (Status s = checkpoint::WriteSafetensors(dir / "model.safetensors", ToWrite(tensors)); !s.ok()) return s;
    fs::remove(dir / "model.safetensors.index.json", ec);
    RemoveShards(dir, {});
    return Status::Ok();
  }
  // Greedy shards in parameter order, as transformers' shard_checkpoint does.
  std::vector<std::vector<NamedTensor>> shards(1);
  uint64_t in_shard = 0;
  for (auto& t : tensors) {
    const uint64_t size = static_cast<uint64_t>(t.tensor.nbytes());
    if (in_shard > 0 && in_shard + size > options.max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(std::move(t));
    in_shard += size;
  }
  char buf[64];
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::set<std::string> names;
  std::vector<std::pair<std::string, std::string>> entries;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    names.insert(buf);
    if (Status s = checkpoint::WriteSafetensors(dir / buf, ToWrite(shards[i])); !s.ok()) return s;
    for (const auto& t : shards[i]) entries.emplace_back(t.name, buf);
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& [tensor, file] : entries) weight_map[tensor] = file;
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  if (Status s = WriteFileAtomic(dir / "model.safetensors.index.json", index.dump(2) + "\n"); !s.ok()) return s;
  fs::remove(dir / "model.safetensors", ec);
  RemoveShards(dir, names);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Model directories

Result<ModelConfig> ReadModelConfig(const fs::path& dir) {
  auto text = ReadFile(dir / "config.json", 16u << 20);
  if (!text) {
    if (text.error().code() == StatusCode::kNotFound) return NotFound("the model directory has no config.json");
    return text.error();
  }
  auto config = LoadConfig(*text);
  if (!config) return config.error().WithContext("config.json");
  return config;
}

namespace {

bool CheckpointHasPooler(const fs::path& dir) {
  std::vector<std::string> names;
  if (fs::exists(dir / "model.safetensors")) {
    auto f = checkpoint::SafetensorsFile::Open(dir / "model.safetensors");
    if (!f) return false;
    for (const auto& t : (*f)->tensors()) names.push_back(t.name);
  } else if (auto index = checkpoint::ReadShardIndex(dir / "model.safetensors.index.json")) {
    for (const auto& [name, shard] : *index) names.push_back(name);
  }
  return std::any_of(names.begin(), names.end(),
                     [](const std::string& n) { return n.find("pooler.dense.weight") != std::string::npos; });
}

}  // namespace

Result<LoadedModel> LoadModelDir(const fs::path& dir, std::optional<Objective> objective, const LoadOptions& options,
                                 const ModelConfig* given) {
  ModelConfig config;
  if (given != nullptr) {
    config = *given;
  } else {
    MLAAS_ASSIGN_OR_RETURN(config, ReadModelConfig(dir));
  }
  Objective obj = objective ? *objective : ObjectiveFromArchitectures(config).value_or(Objective::kNoObjective);
  LoadedModel out;
  const bool has_weights = fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json");
  const bool pooler = obj == Objective::kNoObjective && (!has_weights || CheckpointHasPooler(dir));
  try {
    out.model = TransformerModel(config, obj, pooler);
    if (!has_weights && !fs::exists(dir / "pytorch_model.bin")) {
      InitWeights(*out.model, options.seed);
      out.from_scratch = true;
      return out;
    }
    if (Status s = LoadWeights(*out.model, dir, options, &out.report); !s.ok()) return s;
  } catch (const c10::Error& e) {
    return Internal(std::string("building the model failed: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("not enough memory for the model");
  }
  return out;
}

Status SaveModelDir(TransformerModelImpl& model, const fs::path& dir, const SaveOptions& options) {
  if (Status s = SaveWeights(model, dir, options); !s.ok()) return s;
  return WriteFileAtomic(dir / "config.json", ConfigToJson(model.config(), model.objective()).dump(2) + "\n");
}

Result<torch::Device> ParseDevice(const std::string& name) {
  if (name.empty() || name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda" || StartsWith(name, "cuda:")) {
    if (!torch::cuda::is_available())
      return InvalidArgument("device '" + name + "' was asked for but this build/machine has no CUDA", "device");
    try {
      return torch::Device(name);
    } catch (const c10::Error&) {
      return InvalidArgument("device '" + name + "' is not a valid CUDA device", "device");
    }
  }
  return InvalidArgument("device must be cpu, cuda or cuda:N (got '" + name + "')", "device");
}

Result<torch::ScalarType> ParseDType(const std::string& name) {
  if (name.empty() || name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  return InvalidArgument("dtype must be float32 or bfloat16 (got '" + name + "')", "dtype");
}

int ConfigureThreads(int n) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  // libtorch's GEMMs run on the system BLAS (OpenBLAS, installed by install-deps.sh); its
  // thread count follows ours, so the two pools never add up to more threads than asked.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (n > 0) {
    n = std::min(n, cores);
    using SetThreads = void (*)(int);
    if (auto set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set_blas(n);
    torch::set_num_threads(n);
  }
  return torch::get_num_threads();
}

ScopedThreads::ScopedThreads(int n) : previous_(torch::get_num_threads()), count_(ConfigureThreads(n)) {}

ScopedThreads::~ScopedThreads() { ConfigureThreads(previous_); }

}  // namespace mlaas::nn
