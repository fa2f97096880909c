// The image backend of ServableModel: an image classifier (nn/vision_model.h) with the input
// its config.json describes. Rows are prepared on the caller's thread (decoded within the
// decoding limits, converted to the model's channels, resized, normalised); passes run on the
// compute thread.
#include <algorithm>
#include <cmath>
#include <semaphore>

#include "common/json_file.h"
#include "common/text.h"
#include "nn/model.h"
#include "nn/vision_model.h"
#include "predict/backends.h"
#include "predict/compute_thread.h"
#include "vision/image.h"

namespace mlaas::predict {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// What one call may prepare: rows of the model's input (floats), and pixels decoded on the way
// (a small file may decode to 40 megapixels). Beyond: a 400 asking for fewer images.
constexpr uint64_t kMaxPreparedBytes = 256u << 20;
constexpr int64_t kMaxDecodedPixels = 64'000'000;
// The largest input an image model is served at (height x width).
constexpr int64_t kMaxInputPixels = 1024 * 1024;

// Preparing images (decoding, resizing) is CPU and memory on the caller's thread: at most this
// many calls prepare at once in the process, the others wait their turn.
std::counting_semaphore<>& PrepareGate() {
  static std::counting_semaphore<> gate(4);
  return gate;
}
struct PrepareTurn {
  PrepareTurn() { PrepareGate().acquire(); }
  ~PrepareTurn() { PrepareGate().release(); }
  PrepareTurn(const PrepareTurn&) = delete;
  PrepareTurn& operator=(const PrepareTurn&) = delete;
};

class ImageModel final : public ServableModel {
 public:
  ImageModel() : ServableModel(Modality::kImage) {}

  nn::VisionModel model{nullptr};
  nn::VisionConfig config;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;

  void Publish(ModelInfo info) { info_ = std::move(info); }

  Result<std::vector<ModelRow>> EncodeImages(const std::vector<std::string>& files,
                                             const std::string& field) const override {
    MLAAS_RETURN_IF_ERROR(CheckPrepared(static_cast<int64_t>(files.size()), field));
    int64_t decoded = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      auto header = vision::PeekImage(files[i]);
      if (!header.has_value())
        return InvalidArgument(field + "[" + std::to_string(i) + "]: " + header.error().message(), field);
      if (Status size = vision::CheckImageSize(*header); !size.ok())  // one image too large: named, before the total
        return InvalidArgument(field + "[" + std::to_string(i) + "]: " + size.message(), field);
      decoded += std::min<int64_t>(header->width * header->height, kMaxDecodedPixels + 1);
      if (decoded > kMaxDecodedPixels)
        return InvalidArgument("the images hold more than " + std::to_string(kMaxDecodedPixels / 1'000'000) +
                                   " megapixels in all: send fewer or smaller ones",
                               field);
    }
    PrepareTurn turn;
    std::vector<ModelRow> rows;
    rows.reserve(files.size());
    for (size_t i = 0; i < files.size(); ++i) {
      auto image = vision::DecodeImage(files[i], static_cast<int>(config.channels));
      if (!image.has_value())
        return InvalidArgument(field + "[" + std::to_string(i) + "]: " + image.error().message(), field);
      MLAAS_ASSIGN_OR_RETURN(ImageRow row, Prepare(std::move(*image), field));
      rows.emplace_back(std::move(row));
    }
    return rows;
  }

  Result<std::vector<ModelRow>> ImagesFromPixels(const std::vector<float>& pixels, int64_t n, int64_t channels,
                                                 int64_t height, int64_t width, const std::string& field) const override {
    if (channels != 1 && channels != 3) return InvalidArgument("images have 1 (gray) or 3 (RGB) channels", field);
    if (n < 0 || height < 1 || width < 1 || height > 20'000 || width > 20'000 ||
        pixels.size() != static_cast<size_t>(n * channels * height * width))
      return InvalidArgument("the pixels do not fill [N, C, H, W]", field);
    MLAAS_RETURN_IF_ERROR(CheckPrepared(n, field));
    PrepareTurn turn;
    std::vector<ModelRow> rows;
    rows.reserve(static_cast<size_t>(n));
    const size_t plane = static_cast<size_t>(height * width);
    for (int64_t i = 0; i < n; ++i) {
      // CHW floats in [0, 1] to an HWC image of bytes: the same resize and conversion as files.
      vision::Image image;
      image.width = width;
      image.height = height;
      image.channels = channels;
      image.pixels.resize(plane * static_cast<size_t>(channels));
      const float* src = pixels.data() + static_cast<size_t>(i) * plane * static_cast<size_t>(channels);
      for (size_t p = 0; p < plane; ++p) {
        for (int64_t c = 0; c < channels; ++c) {
          const float v = src[static_cast<size_t>(c) * plane + p];
          if (!std::isfinite(v) || v < 0.0f || v > 1.0f)
            return InvalidArgument("pixel values are between 0 and 1 (FP32) or 0 and 255 (UINT8)", field);
          image.pixels[p * static_cast<size_t>(channels) + static_cast<size_t>(c)] =
              static_cast<uint8_t>(std::lround(v * 255.0f));
        }
      }
      MLAAS_ASSIGN_OR_RETURN(ImageRow row, Prepare(std::move(image), field));
      rows.emplace_back(std::move(row));
    }
    return rows;
  }

  Result<std::vector<json>> Run(const std::vector<const ModelRow*>& rows, const OutputOptions& options,
                                RunStats* stats) const override {
    std::vector<json> predictions(rows.size());
    if (rows.empty()) return predictions;
    const int64_t b = static_cast<int64_t>(rows.size());
    const int64_t c = config.channels, h = config.height, w = config.width;
    const size_t per_row = static_cast<size_t>(c * h * w);
    std::vector<const ImageRow*> images;
    for (const ModelRow* r : rows) {
      const auto* image = std::get_if<ImageRow>(r);
      if (!image) return InvalidArgument("this model takes images, not texts", "inputs");
      if (image->channels != c || image->height != h || image->width != w || image->pixels.size() != per_row)
        return InvalidArgument("an image row of another size than the model's input", "inputs");
      images.push_back(image);
    }
    try {
      torch::Tensor probs;
      const auto f0 = Clock::now();
      RunOnComputeThread([&] {
        torch::InferenceMode guard;
        torch::Tensor x = torch::empty({b, c, h, w}, torch::kFloat32);
        float* dst = x.data_ptr<float>();
        for (size_t i = 0; i < images.size(); ++i) std::copy_n(images[i]->pixels.data(), per_row, dst + i * per_row);
        nn::VisionModel net = model;  // forward is logically const in eval mode
        torch::Tensor logits = net->forward(x.to(device, dtype)).to(torch::kFloat32);
        probs = torch::softmax(logits, -1).to(torch::kCPU).contiguous();
      });
      const auto f1 = Clock::now();
      const int64_t n = probs.size(1);
      const float* data = probs.data_ptr<float>();
      for (int64_t r = 0; r < b; ++r) {
        auto scores = probs[r];
        const int64_t best = scores.argmax().item<int64_t>();
        json p = {{"label", config.labels[static_cast<size_t>(best)]}, {"score", data[r * n + best]}};
        if (options.top_k) p["top_k"] = TopLabels(scores, config.labels, *options.top_k);
        if (options.all_scores) p["scores"] = std::vector<float>(data + r * n, data + (r + 1) * n);
        predictions[static_cast<size_t>(r)] = std::move(p);
      }
      if (stats) {
        stats->forward_ms += Ms(f0, f1);
        stats->postprocess_ms += Ms(f1, Clock::now());
      }
    } catch (const c10::Error& e) {
      return Internal(std::string("the forward pass failed: ") + e.what_without_backtrace());
    }
    return predictions;
  }

 private:
  // `n` rows of the model's input fit what one call may prepare.
  Status CheckPrepared(int64_t n, const std::string& field) const {
    const uint64_t row = static_cast<uint64_t>(config.channels * config.height * config.width) * sizeof(float);
    if (static_cast<uint64_t>(n) * row <= kMaxPreparedBytes) return Status::Ok();
    return InvalidArgument(std::to_string(n) + " images of " + std::to_string(config.channels) + "x" +
                               std::to_string(config.height) + "x" + std::to_string(config.width) +
                               " take more than " + FormatBytes(kMaxPreparedBytes) + " prepared: send at most " +
                               std::to_string(std::max<uint64_t>(1, kMaxPreparedBytes / row)) + " per request",
                           field);
  }

  // An image as the model takes it: its channels, its size, normalised.
  Result<ImageRow> Prepare(vision::Image decoded, const std::string& field) const {
    vision::Image image = decoded.channels == config.channels ? std::move(decoded) : vision::ToChannels(decoded, config.channels);
    if (image.width != config.width || image.height != config.height)
      image = vision::Resize(image, config.width, config.height);
    ImageRow row;
    row.channels = config.channels;
    row.height = config.height;
    row.width = config.width;
    auto pixels = vision::ToNormalizedCHW(image, config.mean, config.std);
    if (!pixels.has_value()) return pixels.error().WithField(field);
    row.pixels = std::move(*pixels);
    return row;
  }
};

// A preset from the model block: {preset, labels, image_size?, num_channels?}; resnets default
// to 224 x 224 RGB, the small presets to 28 x 28 gray (MNIST's shape).
Result<nn::VisionConfig> PresetConfig(const json& block) {
  const auto preset = block.find("preset");
  if (preset == block.end() || !preset->is_string())
    return InvalidArgument("an image model from scratch names its preset (" +
                               [] {
                                 std::string known;
                                 for (const auto& n : nn::VisionPresetNames()) known += (known.empty() ? "" : ", ") + n;
                                 return known;
                               }() +
                               ")",
                           "model.preset");
  const std::string name = preset->get<std::string>();
  const bool resnet = name.starts_with("resnet");
  int64_t channels = resnet ? 3 : 1, height = resnet ? 224 : 28, width = height;
  if (auto c = block.find("num_channels"); c != block.end()) {
    if (!c->is_number_integer()) return InvalidArgument("num_channels is 1 or 3", "model.num_channels");
    channels = c->get<int64_t>();
  }
  if (auto s = block.find("image_size"); s != block.end()) {
    MLAAS_ASSIGN_OR_RETURN(std::tie(height, width), nn::ImageSizeFromJson(*s, "model.image_size"));
  }
  std::vector<std::string> labels = Labels(block);
  if (labels.empty()) return InvalidArgument("an image classifier from scratch needs its labels", "model.labels");
  MLAAS_ASSIGN_OR_RETURN(nn::VisionConfig c, nn::VisionPreset(name, channels, height, width, std::move(labels)));
  // The checks config.json gets.
  auto checked = nn::VisionConfigFromJson(nn::VisionConfigToJson(c));
  if (!checked.has_value()) return checked.error().WithField("model." + checked.error().field());
  return *checked;
}

}  // namespace

Result<std::shared_ptr<const ServableModel>> LoadImageModel(const LoadSpec& spec) {
  auto m = std::make_shared<ImageModel>();
  auto device = nn::ParseDevice(spec.device);
  if (!device) return device.error().WithField("device");
  m->device = *device;
  auto dtype = nn::ParseDType(spec.dtype);
  if (!dtype) return dtype.error().WithField("dtype");
  m->dtype = *dtype;
  bool from_scratch = true;
  if (spec.model_dir) {
    MLAAS_ASSIGN_OR_RETURN(json j, ReadJsonFile(*spec.model_dir / "config.json", "config.json", "model.path"));
    auto config = nn::VisionConfigFromJson(j);
    if (!config.has_value())
      return InvalidArgument("config.json: " + config.error().message() +
                                 (config.error().field().empty() ? "" : " (" + config.error().field() + ")"),
                             "model.path");
    m->config = std::move(*config);
  } else {
    MLAAS_ASSIGN_OR_RETURN(m->config, PresetConfig(spec.model_block));
  }
  if (m->config.height * m->config.width > kMaxInputPixels)
    return InvalidArgument("image models are served at up to 1024 x 1024 pixels (this one takes " +
                               std::to_string(m->config.height) + " x " + std::to_string(m->config.width) + ")",
                           spec.model_dir ? "model.path" : "model.image_size");
  MLAAS_RETURN_IF_ERROR(AdmitWeights(spec, nn::VisionParameterCount(m->config) * 4));
  try {
    m->model = nn::VisionModel(m->config);
    if (spec.model_dir) {
      nn::VisionLoadReport report;
      Status st = nn::LoadVisionWeights(m->model, *spec.model_dir, /*allow_new_head=*/false, &report);
      if (!st.ok()) {
        if (st.code() == StatusCode::kNotFound) return InvalidArgument("model.path: " + st.message(), "model.path");
        return Status(st.code(), "model.path: " + st.message(), "model.path");
      }
      from_scratch = false;
    } else {
      nn::InitVisionWeights(m->model, 42);
    }
    m->model->eval();
    m->model->to(m->device, m->dtype);
  } catch (const c10::Error& e) {
    return Internal(std::string("loading the model failed: ") + e.what_without_backtrace());
  }
  ModelInfo info;
  info.source = spec.source;
  info.objective = std::string(ObjectiveName(Objective::kImageClassification));
  info.architecture = std::string(nn::VisionArchName(m->config.arch));
  info.device = m->device.str();
  info.dtype = m->dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  info.from_scratch = from_scratch;
  info.labels = m->config.labels;
  info.image_channels = m->config.channels;
  info.image_height = m->config.height;
  info.image_width = m->config.width;
  for (const auto& p : m->model->parameters()) info.parameter_bytes += p.numel() * p.element_size();
  m->Publish(std::move(info));
  return std::shared_ptr<const ServableModel>(std::move(m));
}

}  // namespace mlaas::predict
