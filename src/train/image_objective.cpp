// Image classification: the images of both splits converted once to the model's channels and
// size; each training batch drawn as random views (augmentation) on a helper thread while the
// previous batch computes; cross-entropy; accuracy, macro-F1, per-class scores and the
// confusion matrix on the held-out split.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "common/json_file.h"
#include "common/text.h"
#include "nn/vision_model.h"
#include "train/metrics.h"
#include "train/strategy.h"
#include "vision/augment.h"

namespace mlaas::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxPreparedBytes = 4ull << 30;

// A batch as the model takes it: normalised floats [B, C, H, W] and class ids [B].
struct ImageBatch {
  torch::Tensor pixels, labels;
  int64_t size = 0;
};

// Reads a list of floats (one, or one per channel) from block[key], if present.
Status FloatList(const json& block, const char* key, std::optional<std::vector<float>>& out) {
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) return Status::Ok();
  const std::string field = std::string("model.") + key;
  std::vector<float> v;
  if (it->is_number()) {
    v.push_back(it->get<float>());
  } else if (it->is_array() && !it->empty() && it->size() <= 3) {
    for (const auto& x : *it) {
      if (!x.is_number()) return InvalidArgument(field + " must be a number or a list of one per channel", field);
      v.push_back(x.get<float>());
    }
  } else {
    return InvalidArgument(field + " must be a number or a list of one per channel", field);
  }
  out = std::move(v);
  return Status::Ok();
}

// The size a model from scratch takes when the request does not say: the images' own when they
// all share one (up to 224 a side), else 224 for a ResNet and 64 for the small models.
std::pair<int64_t, int64_t> DefaultSize(const std::vector<dataset::ImageExample>& images, bool resnet) {
  const int64_t fallback = resnet ? 224 : 64;
  if (images.empty()) return {fallback, fallback};
  const int64_t h = images[0].image.height, w = images[0].image.width;
  for (const auto& e : images)
    if (e.image.height != h || e.image.width != w) return {fallback, fallback};
  if (std::max(h, w) > 224) return {fallback, fallback};
  // Sizes every preset takes: at least 8, multiples of 4 (cnn-small pools twice).
  auto fit = [](int64_t v) { return std::max<int64_t>(8, (v + 3) / 4 * 4); };
  return {fit(h), fit(w)};
}

// Training memory of one image beyond its weights, roughly: its input and the activations the
// backward pass keeps (about three tensors per convolution: its output, the normalised one, the
// activation), float32.
uint64_t BytesPerImage(const nn::VisionConfig& c) {
  const uint64_t hw = static_cast<uint64_t>(c.height) * static_cast<uint64_t>(c.width);
  uint64_t floats = hw * static_cast<uint64_t>(c.channels);
  switch (c.arch) {
    case nn::VisionArch::kMlp: floats += static_cast<uint64_t>(c.hidden_size) * 3; break;
    case nn::VisionArch::kCnnSmall: floats += hw * (32 * 3 * 2) + hw / 4 * (32 + 64 * 3 * 2) + hw / 16 * 64 + 128 * 3; break;
    case nn::VisionArch::kResNet18:
    case nn::VisionArch::kResNet34: {
      const uint64_t stem = c.small_stem ? hw : hw / 4, body = c.small_stem ? hw : hw / 16;
      const uint64_t deep = c.arch == nn::VisionArch::kResNet34 ? 2 : 1;
      floats += stem * 64 * 3 + deep * body * (64 * 12 + 128 * 12 / 4 + 256 * 12 / 16 + 512 * 12 / 64);
      break;
    }
  }
  return floats * 4;
}

class ImageClassification : public ObjectiveStrategy {
 public:
  explicit ImageClassification(const StrategyEnv& env) : env_(env), in_(env.in), spec_(env.spec) {}
  ~ImageClassification() override {
    if (next_.valid()) next_.wait();
  }

  Status Prepare() override;
  torch::nn::Module& Net() override { return *model_.ptr(); }
  void SetRandomGenerator(at::Generator gen) override { model_->SetDropoutGenerator(gen); }
  void SetTraining(bool on) override {
    model_->train(on);
    if (!on || !spec_.freeze_backbone) return;
    // A frozen backbone keeps its BatchNorm statistics too.
    for (auto& m : model_->named_modules("", /*include_self=*/false)) {
      if (!IsHead(m.key() + ".") && m.value()->as<torch::nn::BatchNorm2dImpl>()) m.value()->eval();
    }
  }
  // No decay on biases and BatchNorm scales (every 1-D parameter), as torchvision's recipes.
  bool Decays(const std::string&, const torch::Tensor& p) const override { return p.dim() > 1; }
  size_t TrainSize() const override { return train_.size(); }
  size_t EvalSize() const override { return eval_.size(); }
  Plan Batches(int64_t epoch) override {
    std::vector<size_t> order(train_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::mt19937_64 rng(Mix(spec_.seed, static_cast<uint64_t>(epoch)));
    std::shuffle(order.begin(), order.end(), rng);
    Plan plan;
    for (size_t i = 0; i < order.size(); i += static_cast<size_t>(spec_.batch_size)) {
      plan.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                        order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + static_cast<size_t>(spec_.batch_size))));
    }
    return plan;
  }
  torch::Tensor TrainStep(const Plan& plan, int64_t epoch, int64_t batch, Counters& c) override;
  void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, json)>& push) const override {
    push("accuracy", c.Accuracy());
  }
  Result<json> Evaluate() override;
  std::vector<std::string> LoggedMetrics() const override { return {"accuracy"}; }
  std::vector<std::string> Labels() const override { return config_.labels; }
  Status SaveWeights(const fs::path& dir) override { return nn::SaveVisionModel(model_, dir); }
  Status LoadWeights(const fs::path& dir) override {
    return nn::LoadVisionWeights(model_, dir, /*allow_new_head=*/false, nullptr);
  }
  Status Finish(const fs::path& dir, json&) override {
    SetTraining(false);
    return nn::SaveVisionModel(model_, dir);
  }
  json DatasetReport() const override;
  json ModelReport() const override;
  std::string_view Unit() const override { return "images"; }

 private:
  bool IsHead(const std::string& name) const {
    const bool resnet = config_.arch == nn::VisionArch::kResNet18 || config_.arch == nn::VisionArch::kResNet34;
    return name.rfind(resnet ? "fc." : "classifier.", 0) == 0;
  }
  void Log(std::string_view level, const std::string& m) const {
    if (env_.log) env_.log(level, m);
  }
  Status BuildModel();
  // The images of `idx` as a batch: random views from `seed` when `augment`, else as they are.
  ImageBatch MakeBatch(const std::vector<vision::Image>& images, const std::vector<int64_t>& labels,
                       const std::vector<size_t>& idx, uint64_t seed, bool augment) const;
  // Converts images to the model's channels and size, on every core; false: cancelled.
  bool Convert(const std::vector<dataset::ImageExample>& from, std::vector<vision::Image>& to,
               std::vector<int64_t>& labels, size_t done_before, size_t total);

  const StrategyEnv& env_;
  const TrainInputs& in_;
  const TrainSpec& spec_;
  nn::VisionConfig config_;
  nn::VisionModel model_{nullptr};
  std::optional<vision::Normalizer> normalizer_;
  std::vector<int64_t> class_of_;  // dataset label index -> the model's class id
  std::vector<vision::Image> train_, eval_;
  std::vector<int64_t> train_labels_, eval_labels_;
  bool from_scratch_ = true;
  bool mean_computed_ = false;
  nn::VisionLoadReport load_report_;
  // The next training batch, prepared while the current one computes.
  std::future<ImageBatch> next_;
  int64_t next_epoch_ = -1, next_batch_ = -1;
};

Status ImageClassification::BuildModel() {
  const std::vector<std::string>& names = in_.image_labels;
  std::optional<std::vector<float>> mean, std;
  MLAAS_RETURN_IF_ERROR(FloatList(in_.model_block, "image_mean", mean));
  MLAAS_RETURN_IF_ERROR(FloatList(in_.model_block, "image_std", std));
  if (in_.model_dir) {
    auto j = ReadJsonFile(*in_.model_dir / "config.json", "config.json", "model.path");
    if (!j) return InvalidArgument("model.path: " + j.error().message(), "model.path");
    auto c = nn::VisionConfigFromJson(*j);
    if (!c) return InvalidArgument("model.path: " + c.error().message(), "model.path");
    config_ = *c;
    from_scratch_ = false;
    // The model's class ids when it knows the same classes; a new head otherwise.
    const std::set<std::string> theirs(config_.labels.begin(), config_.labels.end()), ours(names.begin(), names.end());
    if (theirs != ours) config_.labels = names;
  } else {
    const json& block = in_.model_block;
    const auto preset = block.find("preset");
    if (preset == block.end() || !preset->is_string())
      return InvalidArgument("an image model from scratch names its preset (" + Join(nn::VisionPresetNames(), ", ") + ")",
                             "model.preset");
    const std::string name = preset->get<std::string>();
    const bool resnet = name.starts_with("resnet");
    int64_t channels = 0;
    if (auto c = block.find("num_channels"); c != block.end() && !c->is_null()) {
      if (!c->is_number_integer() || (c->get<int64_t>() != 1 && c->get<int64_t>() != 3))
        return InvalidArgument("model.num_channels is 1 or 3", "model.num_channels");
      channels = c->get<int64_t>();
    } else {  // the data's: gray when every training image is
      channels = 1;
      for (const auto& e : in_.train_images)
        if (e.image.channels == 3) channels = 3;
    }
    int64_t height = 0, width = 0;
    std::tie(height, width) = DefaultSize(in_.train_images, resnet);
    if (auto s = block.find("image_size"); s != block.end() && !s->is_null()) {
      MLAAS_ASSIGN_OR_RETURN(std::tie(height, width), nn::ImageSizeFromJson(*s, "model.image_size"));
    }
    MLAAS_ASSIGN_OR_RETURN(config_, nn::VisionPreset(name, channels, height, width, names));
    mean_computed_ = !mean;
  }
  if (mean) config_.mean = *mean;
  if (std) config_.std = *std;
  // The checks a config.json gets (sizes, channels, normalisation).
  auto checked = nn::VisionConfigFromJson(nn::VisionConfigToJson(config_));
  if (!checked.has_value()) return checked.error().WithField("model." + checked.error().field());
  config_ = *checked;
  const uint64_t weight_bytes = nn::VisionParameterCount(config_) * 4;
  MLAAS_RETURN_IF_ERROR(CheckTrainingBytes(weight_bytes, in_.max_model_bytes));
  // The images converted to the model's input are kept for the run: 4 GiB at most.
  const uint64_t image_bytes = static_cast<uint64_t>(config_.channels * config_.height * config_.width);
  const uint64_t images = in_.train_images.size() + in_.eval_images.size();
  if (image_bytes * images > kMaxPreparedBytes)
    return InvalidArgument(std::to_string(images) + " images of " + std::to_string(config_.channels) + " x " +
                               std::to_string(config_.height) + " x " + std::to_string(config_.width) + " take " +
                               FormatBytes(image_bytes * images) + ", more than the " + FormatBytes(kMaxPreparedBytes) +
                               " a training run may hold; give a smaller model.image_size",
                           "model.image_size");
  // A batch's activations (two batches of input: the next is prepared meanwhile).
  if (in_.max_model_bytes > 0) {
    const uint64_t batch = static_cast<uint64_t>(std::max<int64_t>(spec_.batch_size, 64));
    const uint64_t need = weight_bytes * 4 + batch * (BytesPerImage(config_) + image_bytes * 4);
    if (need > in_.max_model_bytes)
      return InvalidArgument("batches of " + std::to_string(batch) + " images of " + std::to_string(config_.height) + " x " +
                                 std::to_string(config_.width) + " would take about " + FormatBytes(need) + " to train, more than the " +
                                 FormatBytes(in_.max_model_bytes) + " this server allows; give a smaller batch_size or image_size",
                             "model_train.batch_size");
  }
  model_ = nn::VisionModel(config_);
  nn::InitVisionWeights(model_, spec_.seed);
  if (in_.model_dir) {
    Status st = nn::LoadVisionWeights(model_, *in_.model_dir, /*allow_new_head=*/true, &load_report_);
    if (!st.ok()) return InvalidArgument("model.path: " + st.message(), "model.path");
    if (!load_report_.newly_initialized.empty())
      Log("info", "a new classifier for the dataset's " + std::to_string(names.size()) + " classes: " +
                      Join(load_report_.newly_initialized, ", "));
  }
  class_of_.resize(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    class_of_[i] = std::find(config_.labels.begin(), config_.labels.end(), names[i]) - config_.labels.begin();
  }
  if (spec_.freeze_backbone) {
    if (from_scratch_) Log("warn", "freeze_backbone on a model from scratch: only its classifier learns");
    for (auto& p : model_->named_parameters())
      if (!IsHead(p.key())) p.value().set_requires_grad(false);
  }
  model_->to(env_.device);
  return Status::Ok();
}

bool ImageClassification::Convert(const std::vector<dataset::ImageExample>& from, std::vector<vision::Image>& to,
                                  std::vector<int64_t>& labels, size_t done_before, size_t total) {
  to.resize(from.size());
  labels.resize(from.size());
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  auto convert = [&](size_t i) {
    vision::Image im = vision::ToChannels(from[i].image, config_.channels);
    if (im.width != config_.width || im.height != config_.height) im = vision::Resize(im, config_.width, config_.height);
    to[i] = std::move(im);
    labels[i] = class_of_[static_cast<size_t>(from[i].label)];
    ++done;
  };
  std::exception_ptr failure;
  std::mutex failure_mu;
  auto guarded = [&](size_t i) {
    try {
      convert(i);
    } catch (...) {  // (out of memory): rethrown on this thread once the others are joined
      std::lock_guard<std::mutex> lock(failure_mu);
      if (!failure) failure = std::current_exception();
      stop = true;
    }
  };
  auto work = [&] {
    for (size_t i = next++; i < from.size() && !stop; i = next++) guarded(i);
  };
  const unsigned n = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::thread> workers;
  for (unsigned t = 1; t < n; ++t) workers.emplace_back(work);
  // This thread works too, and reports now and then.
  bool cancelled = false;
  size_t mine = 0;
  for (size_t i = next++; i < from.size() && !stop; i = next++) {
    guarded(i);
    if (++mine % 512 == 0 && env_.preparing &&
        !env_.preparing(static_cast<double>(done_before + done) / static_cast<double>(std::max<size_t>(1, total)),
                        "preparing images: " + std::to_string(done_before + done) + " of " + std::to_string(total)))
      stop = cancelled = true;
  }
  for (auto& w : workers) w.join();
  if (failure) std::rethrow_exception(failure);
  return !cancelled;
}

Status ImageClassification::Prepare() {
  if (in_.train_images.empty()) return InvalidArgument("the training split has no images", "dataset.path");
  std::set<int64_t> classes;
  for (const auto& e : in_.train_images) classes.insert(e.label);
  for (const auto& e : in_.eval_images) classes.insert(e.label);
  if (in_.image_labels.size() > 1000)
    return InvalidArgument(std::to_string(in_.image_labels.size()) + " classes, more than the 1000 an image classifier may have",
                           "dataset.label_names");
  if (in_.image_labels.size() < 2 || classes.size() < 2)
    return InvalidArgument("the dataset has " + std::to_string(classes.size()) + " class; classification needs at least two",
                           "dataset.path");
  for (int64_t c : classes)
    if (c < 0 || c >= static_cast<int64_t>(in_.image_labels.size())) return Internal("an image's class is out of range");
  MLAAS_RETURN_IF_ERROR(BuildModel());
  const size_t total = in_.train_images.size() + in_.eval_images.size();
  if (!Convert(in_.train_images, train_, train_labels_, 0, total) ||
      !Convert(in_.eval_images, eval_, eval_labels_, in_.train_images.size(), total))
    return Cancelled("cancelled while preparing the images");
  if (mean_computed_) {  // the training images' own statistics, saved with the model
    std::vector<const vision::Image*> all;
    for (const auto& im : train_) all.push_back(&im);
    vision::ChannelStats(all, config_.channels, config_.mean, config_.std);
    model_->SetNormalization(config_.mean, config_.std);
  }
  MLAAS_ASSIGN_OR_RETURN(vision::Normalizer n, vision::Normalizer::Make(config_.channels, config_.mean, config_.std));
  normalizer_ = std::move(n);
  return Status::Ok();
}

ImageBatch ImageClassification::MakeBatch(const std::vector<vision::Image>& images, const std::vector<int64_t>& labels,
                                          const std::vector<size_t>& idx, uint64_t seed, bool augment) const {
  ImageBatch b;
  b.size = static_cast<int64_t>(idx.size());
  const int64_t plane = config_.channels * config_.height * config_.width;
  b.pixels = torch::empty({b.size, config_.channels, config_.height, config_.width}, torch::kFloat32);
  float* out = b.pixels.data_ptr<float>();
  std::vector<int64_t> y;
  y.reserve(idx.size());
  const vision::AugmentParams params{spec_.image_augment.crop_padding, spec_.image_augment.horizontal_flip,
                                     spec_.image_augment.rotation};
  for (size_t k = 0; k < idx.size(); ++k) {
    const vision::Image& im = images[idx[k]];
    if (augment && params.any()) {
      std::mt19937_64 rng(Mix(seed, k));
      normalizer_->ToCHW(vision::Augment(im, params, rng), out + static_cast<int64_t>(k) * plane);
    } else {
      normalizer_->ToCHW(im, out + static_cast<int64_t>(k) * plane);
    }
    y.push_back(labels[idx[k]]);
  }
  b.labels = torch::tensor(y, torch::kLong);
  b.pixels = ToDevice(b.pixels, env_.device);
  b.labels = ToDevice(b.labels, env_.device);
  return b;
}

torch::Tensor ImageClassification::TrainStep(const Plan& plan, int64_t epoch, int64_t batch, Counters& c) {
  auto seed = [&](int64_t e, int64_t b) { return Mix(Mix(spec_.seed, static_cast<uint64_t>(e)), static_cast<uint64_t>(b)); };
  ImageBatch b;
  if (next_.valid() && next_epoch_ == epoch && next_batch_ == batch) {
    b = next_.get();
  } else {
    if (next_.valid()) next_.wait();
    b = MakeBatch(train_, train_labels_, plan[static_cast<size_t>(batch)], seed(epoch, batch), true);
  }
  if (batch + 1 < static_cast<int64_t>(plan.size())) {  // the next one meanwhile
    next_epoch_ = epoch;
    next_batch_ = batch + 1;
    next_ = std::async(std::launch::async, [this, idx = plan[static_cast<size_t>(batch + 1)], s = seed(epoch, batch + 1)] {
      return MakeBatch(train_, train_labels_, idx, s, true);
    });
  }
  torch::Tensor logits = model_->forward(b.pixels);  // under the trainer's autocast when bf16
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), b.labels);
  c.loss_sum += loss.item<double>() * static_cast<double>(b.size);
  c.weight += static_cast<double>(b.size);
  c.correct += logits.argmax(1).eq(b.labels).sum().item<int64_t>();
  c.total += b.size;
  c.units += b.size;
  return loss;
}

Result<json> ImageClassification::Evaluate() {
  if (next_.valid()) next_.wait();
  if (eval_.empty()) return json::object();
  torch::NoGradGuard no_grad;
  SetTraining(false);
  Counters c;
  ConfusionMatrix cm(config_.labels.size());
  const size_t batch = static_cast<size_t>(std::max<int64_t>(spec_.batch_size, 64));
  for (size_t s = 0; s < eval_.size(); s += batch) {
    if (env_.stop && env_.stop()) return Cancelled("cancelled");
    std::vector<size_t> idx(std::min(batch, eval_.size() - s));
    std::iota(idx.begin(), idx.end(), s);
    ImageBatch b = MakeBatch(eval_, eval_labels_, idx, 0, false);
    torch::Tensor logits = model_->forward(b.pixels).to(torch::kFloat32);
    c.loss_sum += torch::nn::functional::cross_entropy(logits, b.labels).item<double>() * static_cast<double>(b.size);
    c.weight += static_cast<double>(b.size);
    auto pred = logits.argmax(1).cpu();
    auto truth = b.labels.cpu();
    auto pp = pred.accessor<int64_t, 1>();
    auto pt = truth.accessor<int64_t, 1>();
    for (int64_t k = 0; k < b.size; ++k) cm.Add(pt[k], pp[k]);
  }
  SetTraining(true);
  json out = {{"loss", c.Loss()}};
  out.update(cm.ToJson(config_.labels));
  return out;
}

json ImageClassification::DatasetReport() const {
  std::vector<int64_t> counts(config_.labels.size(), 0);
  for (int64_t l : train_labels_) ++counts[static_cast<size_t>(l)];
  json per_class = json::object();
  for (size_t i = 0; i < counts.size(); ++i) per_class[config_.labels[i]] = counts[i];
  json dataset = {{"samples_train", train_.size()},
                  {"samples_test", eval_.size()},
                  {"images", in_.train_images.size() + in_.eval_images.size() + static_cast<size_t>(in_.skipped_images)},
                  {"skipped_images", in_.skipped_images},
                  {"labels", config_.labels},
                  {"class_counts", per_class},
                  {"image_size", {config_.height, config_.width}},
                  {"channels", config_.channels},
                  {"image_mean", config_.mean},
                  {"image_std", config_.std},
                  {"normalization", mean_computed_ ? "computed" : "given"}};
  if (!in_.skipped_examples.empty()) dataset["skipped_examples"] = in_.skipped_examples;
  if (spec_.image_augment.crop_padding > 0 || spec_.image_augment.horizontal_flip || spec_.image_augment.rotation > 0)
    dataset["augment"] = {{"crop_padding", spec_.image_augment.crop_padding},
                          {"horizontal_flip", spec_.image_augment.horizontal_flip},
                          {"rotation", spec_.image_augment.rotation}};
  return dataset;
}

json ImageClassification::ModelReport() const {
  int64_t parameters = 0, trainable = 0;
  for (const auto& p : model_->parameters()) {
    parameters += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  json model = {{"objective", std::string(ObjectiveName(spec_.objective))},
                {"model_type", std::string(nn::VisionArchName(config_.arch))},
                {"architecture", std::string(nn::VisionArchName(config_.arch))},
                {"parameters", parameters},
                {"trainable_parameters", trainable},
                {"from_scratch", from_scratch_},
                {"image_size", {config_.height, config_.width}},
                {"channels", config_.channels}};
  if (!from_scratch_) {
    model["newly_initialized"] = load_report_.newly_initialized;
    model["unused_checkpoint_weights"] = load_report_.unused;
  }
  return model;
}

}  // namespace

std::unique_ptr<ObjectiveStrategy> MakeImageStrategy(const StrategyEnv& env) {
  return std::make_unique<ImageClassification>(env);
}

}  // namespace mlaas::train
