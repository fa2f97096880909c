// mlaas::nn — image classifiers (issue 22): presets mlp, cnn-small, resnet18 and resnet34
// with torchvision's parameter names (a torchvision ResNet state dict loads as it is, from
// safetensors or, through the safe unpickler, pytorch_model.bin / .pth), configured by a
// config.json that carries the input (channels, size, per-channel mean and std) and the labels.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace mlaas::nn {

enum class VisionArch { kMlp, kCnnSmall, kResNet18, kResNet34 };
std::string_view VisionArchName(VisionArch a);  // "mlp", "cnn-small", "resnet18", "resnet34"
std::vector<std::string> VisionPresetNames();

struct VisionConfig {
  VisionArch arch = VisionArch::kCnnSmall;
  int64_t channels = 1;
  int64_t height = 28, width = 28;
  std::vector<std::string> labels;                // id2label, in index order
  std::vector<float> mean{0.5f}, std{0.5f};       // per channel (or one for all)
  int64_t hidden_size = 256;                      // mlp
  double dropout = 0.25;                          // cnn-small, mlp
  bool small_stem = false;                        // resnet: 3x3 stride-1 stem, no max pool (small images)
};

// A preset's config for `channels` x `height` x `width` images and `labels`.
Result<VisionConfig> VisionPreset(const std::string& name, int64_t channels, int64_t height, int64_t width,
                                  std::vector<std::string> labels);
// config.json <-> VisionConfig (model_type is the preset name; image_mean/image_std/id2label as
// Hugging Face's image processors and configs name them). Errors name the field.
Result<VisionConfig> VisionConfigFromJson(const nlohmann::json& j);
nlohmann::json VisionConfigToJson(const VisionConfig& c);
// The model's parameter count, exact, computed from its config without building it (so that a
// config asking for too much is refused before anything is allocated; running statistics of
// BatchNorm, buffers, not counted).
uint64_t VisionParameterCount(const VisionConfig& c);
// A request's image_size: a size (square) or [height, width]. InvalidArgument naming `field`.
Result<std::pair<int64_t, int64_t>> ImageSizeFromJson(const nlohmann::json& value, const std::string& field);
// Whether a config.json describes one of these models (its model_type is a preset name).
bool IsVisionConfig(const nlohmann::json& j);

class VisionModelImpl : public torch::nn::Module {
 public:
  explicit VisionModelImpl(VisionConfig config);
  // [N, C, H, W] float (normalised) -> [N, labels] logits.
  torch::Tensor forward(torch::Tensor x);
  const VisionConfig& config() const { return config_; }
  // Dropout masks from `gen` (training; none: the process-wide generator).
  void SetDropoutGenerator(const std::optional<at::Generator>& gen);
  // The input normalisation the saved config.json records (the training data's statistics).
  void SetNormalization(std::vector<float> mean, std::vector<float> std) {
    config_.mean = std::move(mean);
    config_.std = std::move(std);
  }
  // Whether a ResNet in training mode runs its float32 CPU passes on oneDNN's blocked layout
  // (nn/onednn_conv.h; the default where the build has oneDNN). Off: libtorch's own path, the
  // reference the tests compare it with.
  void SetBlockedKernels(bool on) { blocked_kernels_ = on; }
  // Whether forward(x) takes that path now.
  bool UsesBlockedKernels(const torch::Tensor& x) const;

 private:
  torch::Tensor ResNetForward(torch::Tensor x);
  torch::Tensor BlockedResNetForward(const torch::Tensor& x);
  bool blocked_kernels_ = true;
  VisionConfig config_;
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};  // mlp, cnn-small
  torch::nn::Conv2d conv1_{nullptr};                               // resnet
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> layers_;
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(VisionModel);

// Initialises as torchvision does (Kaiming normal for convolutions, BatchNorm 1/0, Linear as
// PyTorch's default), from `seed`.
void InitVisionWeights(VisionModel& model, uint64_t seed);

struct VisionLoadReport {
  std::vector<std::string> newly_initialized;  // in the model, not in the checkpoint (a new head)
  std::vector<std::string> unused;             // in the checkpoint, not in the model
};
// Loads config-matching weights from a model directory (model.safetensors or pytorch_model.bin)
// by torchvision's names; with allow_new_head, a classifier of another shape (other labels)
// is left to its initialisation and reported. Errors name the tensor.
Status LoadVisionWeights(VisionModel& model, const std::filesystem::path& dir, bool allow_new_head, VisionLoadReport* report);
// Writes config.json and model.safetensors.
Status SaveVisionModel(VisionModel& model, const std::filesystem::path& dir);

}  // namespace mlaas::nn
