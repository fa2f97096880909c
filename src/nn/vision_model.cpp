#include "nn/vision_model.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cstdlib>
#include <map>
#include <set>

#include "checkpoint/pytorch_pickle.h"
#include "checkpoint/safetensors.h"
#include "common/file_util.h"
#include "nn/onednn_conv.h"
#include "nn/transformer.h"

namespace mlaas::nn {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::map<std::string, VisionArch>& Archs() {
  static const std::map<std::string, VisionArch> kArchs = {
      {"mlp", VisionArch::kMlp}, {"cnn-small", VisionArch::kCnnSmall}, {"resnet18", VisionArch::kResNet18}, {"resnet34", VisionArch::kResNet34}};
  return kArchs;
}

torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias));
}

// torchvision's BasicBlock: conv1, bn1, conv2, bn2, downsample (0: 1x1 conv, 1: bn).
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    conv1 = register_module("conv1", Conv(in, out, 3, stride, 1, false));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(out));
    conv2 = register_module("conv2", Conv(out, out, 3, 1, 1, false));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
    if (stride != 1 || in != out)
      downsample = register_module("downsample", torch::nn::Sequential(Conv(in, out, 1, stride, 0, false), torch::nn::BatchNorm2d(out)));
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor identity = downsample ? downsample->forward(x) : x;
    torch::Tensor y = torch::relu(bn1->forward(conv1->forward(x)));
    y = bn2->forward(conv2->forward(y));
    return torch::relu(y + identity);
  }
  // The same block on blocked activations (nn/onednn_conv.h), batch statistics.
  torch::Tensor BlockedForward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

torch::Tensor BlockedConv(const torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
  const auto& o = conv.options;
  return blocked::Conv2d(x, conv.weight, (*o.stride())[0], c10::get<torch::ExpandingArray<2>>(o.padding())->at(0));
}

torch::Tensor BlockedNorm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, bool relu) {
  const auto& o = bn.options;
  if (!bn.is_training()) {
    // A BatchNorm kept in evaluation mode inside a training model (a frozen backbone): its
    // running statistics, untouched, as an affine map per channel.
    const torch::Tensor scale = bn.weight * torch::rsqrt(bn.running_var + o.eps());
    const torch::Tensor shift = bn.bias - bn.running_mean * scale;
    const std::vector<int64_t> shape{1, x.size(1), 1, 1, blocked::kBlock};
    torch::Tensor y = torch::addcmul(shift.reshape(shape), x, scale.reshape(shape));
    return relu ? torch::relu(y) : y;
  }
  // As torch.nn.BatchNorm2d in training: the batch is counted, and without a momentum the
  // running statistics are the cumulative average.
  const double momentum = o.momentum() ? *o.momentum() : 1.0 / (bn.num_batches_tracked.item<double>() + 1);
  torch::Tensor y =
      blocked::BatchNormTrain(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum, o.eps(), relu);
  torch::NoGradGuard no_grad;
  bn.num_batches_tracked.add_(1);
  return y;
}

torch::Tensor BasicBlockImpl::BlockedForward(const torch::Tensor& x) {
  torch::Tensor identity =
      downsample ? BlockedNorm(*downsample[1]->as<torch::nn::BatchNorm2dImpl>(),
                               BlockedConv(*downsample[0]->as<torch::nn::Conv2dImpl>(), x), false)
                 : x;
  torch::Tensor y = BlockedNorm(*bn1, BlockedConv(*conv1, x), true);
  y = BlockedNorm(*bn2, BlockedConv(*conv2, y), false);
  return torch::relu(y + identity);
}

}  // namespace

std::string_view VisionArchName(VisionArch a) {
  for (const auto& [name, arch] : Archs())
    if (arch == a) return name;
  return "?";
}

std::vector<std::string> VisionPresetNames() {
  std::vector<std::string> out;
  for (const auto& [name, arch] : Archs()) out.push_back(name);
  return out;
}

Result<std::pair<int64_t, int64_t>> ImageSizeFromJson(const json& s, const std::string& field) {
  if (s.is_number_integer()) return std::pair<int64_t, int64_t>{s.get<int64_t>(), s.get<int64_t>()};
  if (s.is_array() && s.size() == 2 && s[0].is_number_integer() && s[1].is_number_integer())
    return std::pair<int64_t, int64_t>{s[0].get<int64_t>(), s[1].get<int64_t>()};
  return InvalidArgument(field + " is a size or [height, width]", field);
}

bool IsVisionConfig(const json& j) {
  return j.is_object() && j.contains("model_type") && j["model_type"].is_string() && Archs().count(j["model_type"].get<std::string>());
}

Result<VisionConfig> VisionPreset(const std::string& name, int64_t channels, int64_t height, int64_t width,
                                  std::vector<std::string> labels) {
  auto it = Archs().find(name);
  if (it == Archs().end()) {
    std::string known;
    for (const auto& n : VisionPresetNames()) known += (known.empty() ? "" : ", ") + n;
    return InvalidArgument("unknown image model preset '" + name + "' (known: " + known + ")", "model.preset");
  }
  VisionConfig c;
  c.arch = it->second;
  c.channels = channels;
  c.height = height;
  c.width = width;
  c.labels = std::move(labels);
  c.small_stem = std::min(height, width) < 64;
  if (c.arch == VisionArch::kResNet18 || c.arch == VisionArch::kResNet34) {
    if (channels == 3) {  // ImageNet's statistics, as torchvision's pretrained ResNets expect
      c.mean = {0.485f, 0.456f, 0.406f};
      c.std = {0.229f, 0.224f, 0.225f};
    }
  }
  return c;
}

Result<VisionConfig> VisionConfigFromJson(const json& j) {
  if (!IsVisionConfig(j)) return InvalidArgument("not an image model's config.json (model_type: mlp, cnn-small, resnet18, resnet34)", "model_type");
  VisionConfig c;
  c.arch = Archs().at(j["model_type"].get<std::string>());
  try {
    c.channels = j.value("num_channels", int64_t{3});
    if (j.contains("image_size")) {
      const json& s = j["image_size"];
      if (s.is_number_integer()) c.height = c.width = s.get<int64_t>();
      else if (s.is_array() && s.size() == 2) {
        c.height = s[0].get<int64_t>();
        c.width = s[1].get<int64_t>();
      } else {
        return InvalidArgument("image_size is a size or [height, width]", "image_size");
      }
    }
    if (j.contains("image_mean")) c.mean = j["image_mean"].get<std::vector<float>>();
    if (j.contains("image_std")) c.std = j["image_std"].get<std::vector<float>>();
    c.hidden_size = j.value("hidden_size", int64_t{256});
    c.dropout = j.value("dropout", 0.25);
    c.small_stem = j.value("small_stem", false);
    if (j.contains("id2label")) {
      const json& m = j["id2label"];
      if (!m.is_object() || m.empty() || m.size() > 100000) return InvalidArgument("id2label maps 0..N-1 to names", "id2label");
      c.labels.assign(m.size(), "");
      for (auto it = m.begin(); it != m.end(); ++it) {
        size_t used = 0;
        const int64_t i = std::stoll(it.key(), &used);
        if (used != it.key().size() || i < 0 || i >= static_cast<int64_t>(m.size()) || !it.value().is_string())
          return InvalidArgument("id2label maps 0..N-1 to names", "id2label");
        c.labels[static_cast<size_t>(i)] = it.value().get<std::string>();
      }
    } else {
      const int64_t n = j.value("num_labels", int64_t{0});
      if (n < 1 || n > 100000) return InvalidArgument("an image classifier needs id2label (or num_labels)", "id2label");
      for (int64_t i = 0; i < n; ++i) c.labels.push_back(std::to_string(i));
    }
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("config.json: ") + e.what());
  }
  if (c.channels != 1 && c.channels != 3) return InvalidArgument("num_channels is 1 or 3", "num_channels");
  if (c.height < 8 || c.width < 8 || c.height > 4096 || c.width > 4096) return InvalidArgument("image_size is 8 to 4096", "image_size");
  if (c.hidden_size < 1 || c.hidden_size > 65536) return InvalidArgument("hidden_size is 1 to 65536", "hidden_size");
  for (const auto* v : {&c.mean, &c.std})
    if (v->size() != 1 && static_cast<int64_t>(v->size()) != c.channels)
      return InvalidArgument("image_mean and image_std have one value per channel", "image_mean");
  for (float s : c.std)
    if (!(s > 0)) return InvalidArgument("image_std values are positive", "image_std");
  if (c.arch == VisionArch::kCnnSmall && (c.height % 4 != 0 || c.width % 4 != 0))
    return InvalidArgument("cnn-small takes sizes that are multiples of 4", "image_size");
  return c;
}

json VisionConfigToJson(const VisionConfig& c) {
  json id2label = json::object(), label2id = json::object();
  for (size_t i = 0; i < c.labels.size(); ++i) {
    id2label[std::to_string(i)] = c.labels[i];
    label2id[c.labels[i]] = i;
  }
  json j = {{"model_type", std::string(VisionArchName(c.arch))},
            {"architectures", {"ImageClassifier"}},
            {"library", "mlaas (torchvision parameter names)"},
            {"num_channels", c.channels},
            {"image_size", {c.height, c.width}},
            {"image_mean", c.mean},
            {"image_std", c.std},
            {"id2label", id2label},
            {"label2id", label2id},
            {"num_labels", c.labels.size()}};
  if (c.arch == VisionArch::kMlp) j["hidden_size"] = c.hidden_size;
  if (c.arch == VisionArch::kMlp || c.arch == VisionArch::kCnnSmall) j["dropout"] = c.dropout;
  if (c.arch == VisionArch::kResNet18 || c.arch == VisionArch::kResNet34) j["small_stem"] = c.small_stem;
  return j;
}

uint64_t VisionParameterCount(const VisionConfig& c) {
  const uint64_t classes = c.labels.size(), channels = static_cast<uint64_t>(c.channels);
  const uint64_t pixels = static_cast<uint64_t>(c.height) * static_cast<uint64_t>(c.width);
  switch (c.arch) {
    case VisionArch::kMlp: {
      const uint64_t hidden = static_cast<uint64_t>(c.hidden_size);
      return channels * pixels * hidden + hidden + hidden * classes + classes;
    }
    case VisionArch::kCnnSmall: {
      const uint64_t convs = channels * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9;
      const uint64_t norms = 2 * (32 + 32 + 64 + 64);
      const uint64_t flat = 64 * static_cast<uint64_t>(c.height / 4) * static_cast<uint64_t>(c.width / 4);
      return convs + norms + flat * 128 + 128 + 128 * classes + classes;
    }
    case VisionArch::kResNet18:
    case VisionArch::kResNet34: {
      // torchvision's backbones without conv1 and fc (the rest does not depend on the config).
      const uint64_t body = c.arch == VisionArch::kResNet18 ? 11'167'104 : 21'275'264;
      const uint64_t k = c.small_stem ? 3 : 7;
      return body + 64 * channels * k * k + 512 * classes + classes;
    }
  }
  return 0;
}

VisionModelImpl::VisionModelImpl(VisionConfig config) : config_(std::move(config)) {
  const int64_t classes = static_cast<int64_t>(config_.labels.size());
  switch (config_.arch) {
    case VisionArch::kMlp:
      features_ = register_module("features", torch::nn::Sequential(torch::nn::Flatten()));
      classifier_ = register_module(
          "classifier", torch::nn::Sequential(torch::nn::Linear(config_.channels * config_.height * config_.width, config_.hidden_size),
                                              torch::nn::ReLU(), Dropout(config_.dropout),
                                              torch::nn::Linear(config_.hidden_size, classes)));
      break;
    case VisionArch::kCnnSmall:
      features_ = register_module(
          "features",
          torch::nn::Sequential(Conv(config_.channels, 32, 3, 1, 1, false), torch::nn::BatchNorm2d(32), torch::nn::ReLU(),
                                Conv(32, 32, 3, 1, 1, false), torch::nn::BatchNorm2d(32), torch::nn::ReLU(),
                                torch::nn::MaxPool2d(2), Conv(32, 64, 3, 1, 1, false), torch::nn::BatchNorm2d(64),
                                torch::nn::ReLU(), Conv(64, 64, 3, 1, 1, false), torch::nn::BatchNorm2d(64), torch::nn::ReLU(),
                                torch::nn::MaxPool2d(2), torch::nn::Flatten()));
      classifier_ = register_module(
          "classifier", torch::nn::Sequential(Dropout(config_.dropout),
                                              torch::nn::Linear(64 * (config_.height / 4) * (config_.width / 4), 128), torch::nn::ReLU(),
                                              Dropout(config_.dropout), torch::nn::Linear(128, classes)));
      break;
    case VisionArch::kResNet18:
    case VisionArch::kResNet34: {
      const std::vector<int64_t> blocks = config_.arch == VisionArch::kResNet18 ? std::vector<int64_t>{2, 2, 2, 2}
                                                                                : std::vector<int64_t>{3, 4, 6, 3};
      conv1_ = register_module("conv1", config_.small_stem ? Conv(config_.channels, 64, 3, 1, 1, false)
                                                           : Conv(config_.channels, 64, 7, 2, 3, false));
      bn1_ = register_module("bn1", torch::nn::BatchNorm2d(64));
      int64_t in = 64;
      for (int64_t l = 0; l < 4; ++l) {
        const int64_t out = 64 << l;
        torch::nn::Sequential layer;
        for (int64_t b = 0; b < blocks[static_cast<size_t>(l)]; ++b) {
          layer->push_back(BasicBlock(in, out, b == 0 && l > 0 ? 2 : 1));
          in = out;
        }
        layers_.push_back(register_module("layer" + std::to_string(l + 1), layer));
      }
      fc_ = register_module("fc", torch::nn::Linear(512, classes));
      break;
    }
  }
}

namespace {

bool CpuAutocastOn() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

}  // namespace

bool VisionModelImpl::UsesBlockedKernels(const torch::Tensor& x) const {
  // Training mode only (batch statistics); float32 on the CPU outside autocast.
  // MLAAS_CONV_KERNELS=libtorch turns the path off process-wide (a safety switch).
  static const bool enabled = [] {
    const char* v = std::getenv("MLAAS_CONV_KERNELS");
    return v == nullptr || std::string_view(v) != "libtorch";
  }();
  return enabled && conv1_ && blocked_kernels_ && is_training() && blocked::Available() && x.dim() == 4 && x.device().is_cpu() &&
         x.scalar_type() == torch::kFloat32 && conv1_->weight.scalar_type() == torch::kFloat32 &&
         conv1_->weight.device().is_cpu() && !CpuAutocastOn();
}

torch::Tensor VisionModelImpl::BlockedResNetForward(const torch::Tensor& input) {
  torch::Tensor x = BlockedNorm(*bn1_, BlockedConv(*conv1_, input), true);
  if (!config_.small_stem) x = blocked::MaxPool2d(x, 3, 2, 1);
  for (auto& layer : layers_)
    for (auto& block : *layer) x = block.get<BasicBlockImpl>().BlockedForward(x);
  return fc_->forward(blocked::GlobalAvgPool(x));
}

torch::Tensor VisionModelImpl::ResNetForward(torch::Tensor x) {
  if (UsesBlockedKernels(x)) return BlockedResNetForward(x);
  x = torch::relu(bn1_->forward(conv1_->forward(x)));
  if (!config_.small_stem) x = torch::max_pool2d(x, 3, 2, 1);
  for (auto& layer : layers_) x = layer->forward(x);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc_->forward(x);
}

void VisionModelImpl::SetDropoutGenerator(const std::optional<at::Generator>& gen) {
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* d = m->as<Dropout>()) d->set_generator(gen);
  }
}

torch::Tensor VisionModelImpl::forward(torch::Tensor x) {
  if (conv1_) return ResNetForward(x);
  return classifier_->forward(features_->forward(x));
}

void InitVisionWeights(VisionModel& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& m : model->modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      // kaiming_normal_(mode="fan_out", nonlinearity="relu"), as torchvision's ResNet.
      const auto& w = conv->weight;
      const double fan_out = static_cast<double>(w.size(0) * w.size(2) * w.size(3));
      w.normal_(0.0, std::sqrt(2.0 / fan_out), gen);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    } else if (auto* linear = m->as<torch::nn::LinearImpl>()) {
      // PyTorch's default: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias the same.
      const double bound = 1.0 / std::sqrt(static_cast<double>(linear->weight.size(1)));
      linear->weight.uniform_(-bound, bound, gen);
      linear->bias.uniform_(-bound, bound, gen);
    }
  }
}

namespace {

std::optional<torch::ScalarType> TorchType(checkpoint::DType d) {
  switch (d) {
    case checkpoint::DType::kF32: return torch::kFloat32;
    case checkpoint::DType::kF16: return torch::kFloat16;
    case checkpoint::DType::kBF16: return torch::kBFloat16;
    case checkpoint::DType::kF64: return torch::kFloat64;
    case checkpoint::DType::kI64: return torch::kInt64;
    default: return std::nullopt;
  }
}

bool IsHead(const VisionConfig& c, const std::string& name) {
  if (c.arch == VisionArch::kResNet18 || c.arch == VisionArch::kResNet34) return name.rfind("fc.", 0) == 0;
  return name.rfind("classifier.", 0) == 0;
}

}  // namespace

Status LoadVisionWeights(VisionModel& model, const fs::path& dir, bool allow_new_head, VisionLoadReport* report) {
  std::unique_ptr<checkpoint::SafetensorsFile> file;
  if (fs::exists(dir / "model.safetensors")) {
    MLAAS_ASSIGN_OR_RETURN(file, checkpoint::SafetensorsFile::Open(dir / "model.safetensors"));
  } else {
    fs::path pickle;
    for (const char* name : {"pytorch_model.bin", "model.pth", "model.pt"})
      if (fs::exists(dir / name)) pickle = dir / name;
    if (pickle.empty()) return NotFound("the model directory has no model.safetensors or pytorch_model.bin");
    MLAAS_ASSIGN_OR_RETURN(auto tensors, checkpoint::ReadPytorchStateDict(pickle));
    MLAAS_ASSIGN_OR_RETURN(std::string image, checkpoint::ToSafetensors(std::move(tensors)));
    MLAAS_ASSIGN_OR_RETURN(file, checkpoint::SafetensorsFile::FromBytes(std::move(image)));
  }
  std::map<std::string, const checkpoint::TensorInfo*> by_name;
  for (const auto& t : file->tensors()) by_name[t.name] = &t;
  VisionLoadReport local;
  VisionLoadReport& rep = report ? *report : local;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor& target) -> Status {
    auto it = by_name.find(name);
    const bool head = IsHead(model->config(), name);
    if (it == by_name.end()) {
      if (allow_new_head && head) {
        rep.newly_initialized.push_back(name);
        return Status::Ok();
      }
      if (name.ends_with("num_batches_tracked")) return Status::Ok();  // older checkpoints have none
      return InvalidArgument("the checkpoint has no tensor '" + name + "', which a " + std::string(VisionArchName(model->config().arch)) +
                             " needs");
    }
    const checkpoint::TensorInfo& t = *it->second;
    const std::vector<int64_t>& shape = t.shape;
    if (shape != target.sizes().vec()) {
      if (allow_new_head && head) {  // other labels: a new head
        rep.newly_initialized.push_back(name);
        return Status::Ok();
      }
      return InvalidArgument("tensor '" + name + "' has the wrong shape for this model");
    }
    auto type = TorchType(t.dtype);
    if (!type) return InvalidArgument("tensor '" + name + "' has a dtype a vision model does not read");
    auto bytes = file->Data(t);
    torch::Tensor src = torch::from_blob(const_cast<std::byte*>(bytes.data()), shape, torch::TensorOptions().dtype(*type));
    target.copy_(src.to(target.scalar_type()));
    used.insert(name);
    return Status::Ok();
  };
  for (auto& p : model->named_parameters()) MLAAS_RETURN_IF_ERROR(load(p.key(), p.value()));
  for (auto& b : model->named_buffers()) MLAAS_RETURN_IF_ERROR(load(b.key(), b.value()));
  for (const auto& [name, info] : by_name)
    if (!used.count(name)) rep.unused.push_back(name);
  return Status::Ok();
}

Status SaveVisionModel(VisionModel& model, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir.string() + ": " + ec.message());
  std::vector<torch::Tensor> keep;
  std::vector<checkpoint::TensorToWrite> tensors;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    keep.push_back(c);
    const bool integer = c.scalar_type() == torch::kInt64;
    tensors.push_back({name, integer ? checkpoint::DType::kI64 : checkpoint::DType::kF32, c.sizes().vec(),
                       std::span<const std::byte>(static_cast<const std::byte*>(c.data_ptr()), c.nbytes())});
  };
  for (const auto& p : model->named_parameters()) add(p.key(), p.value().to(torch::kFloat32));
  for (const auto& b : model->named_buffers()) add(b.key(), b.value().scalar_type() == torch::kInt64 ? b.value() : b.value().to(torch::kFloat32));
  MLAAS_RETURN_IF_ERROR(checkpoint::WriteSafetensors(dir / "model.safetensors", std::move(tensors)));
  return WriteFileAtomic(dir / "config.json", VisionConfigToJson(model->config()).dump(2));
}

}  // namespace mlaas::nn
