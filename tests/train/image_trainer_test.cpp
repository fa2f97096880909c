// Image classification through the trainer: a tiny synthetic set (a bright blob in one corner
// per class) learned to 100% by each small preset; resume from a checkpoint; a saved model
// fine-tuned with a frozen backbone and a new head.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "nn/vision_model.h"
#include "testutil/temp_dir.h"
#include "train/trainer.h"

namespace mlaas::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mlaas::testing::TempDir;

// `n` 12x12 images of `classes` classes: noise, and a 4x4 bright patch in the corner of the class.
std::vector<dataset::ImageExample> Corners(int n, int classes, int channels, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<dataset::ImageExample> out;
  for (int i = 0; i < n; ++i) {
    dataset::ImageExample e;
    e.label = i % classes;
    e.source = "img" + std::to_string(i);
    e.image.width = e.image.height = 12;
    e.image.channels = channels;
    e.image.pixels.resize(static_cast<size_t>(12 * 12 * channels));
    for (auto& p : e.image.pixels) p = static_cast<uint8_t>(rng() % 60);
    const int x0 = (e.label % 2) * 8, y0 = (e.label / 2) * 8;
    for (int y = y0; y < y0 + 4; ++y)
      for (int x = x0; x < x0 + 4; ++x)
        for (int c = 0; c < channels; ++c) e.image.pixels[static_cast<size_t>((y * 12 + x) * channels + c)] = 230;
    out.push_back(std::move(e));
  }
  return out;
}

class ImageTrainerTest : public ::testing::Test {
 protected:
  TrainInputs Inputs(const std::string& preset, const std::string& name, int classes = 4) const {
    TrainInputs in;
    in.spec.objective = Objective::kImageClassification;
    in.spec.epochs = 6;
    in.spec.batch_size = 16;
    in.spec.optimizer.init_lr = 3e-3;
    in.spec.seed = 5;
    in.spec.threads = 1;
    in.model_block = {{"preset", preset}};
    in.train_images = Corners(96, classes, 1, 1);
    in.eval_images = Corners(32, classes, 1, 2);
    for (int c = 0; c < classes; ++c) in.image_labels.push_back("class" + std::to_string(c));
    in.checkpoint_dir = dir_.path() / name / "checkpoints";
    in.output_dir = dir_.path() / name / "model";
    return in;
  }
  TempDir dir_;
};

TEST_F(ImageTrainerTest, EachSmallPresetLearnsASeparableSetCompletely) {
  for (const std::string preset : {"mlp", "cnn-small", "resnet18"}) {
    TrainInputs in = Inputs(preset, preset);
    if (preset == "resnet18") in.spec.epochs = 4;
    std::vector<TrainProgress> seen;
    TrainCallbacks cb;
    cb.progress = [&](const TrainProgress& p) { seen.push_back(p); };
    auto r = RunTraining(in, cb);
    ASSERT_TRUE(r.has_value()) << preset << ": " << r.error().ToString();
    const json& ev = (*r)["evaluation"];
    EXPECT_EQ(ev["accuracy"], 1.0) << preset << ": " << r->dump();
    EXPECT_EQ(ev["confusion_matrix"]["labels"], json({"class0", "class1", "class2", "class3"}));
    EXPECT_EQ(ev["per_class"]["class2"]["support"], 8);
    EXPECT_EQ((*r)["history"]["eval_accuracy"].size(), static_cast<size_t>(in.spec.epochs));
    EXPECT_GT((*r)["stats"]["images_per_s"].get<double>(), 0);
    EXPECT_EQ((*r)["dataset"]["samples_train"], 96);
    EXPECT_EQ((*r)["dataset"]["image_size"], json({12, 12}));
    EXPECT_EQ((*r)["dataset"]["normalization"], "computed");
    EXPECT_EQ((*r)["model"]["model_type"], preset);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().unit, "images");
    // The saved model: config.json with the labels, the input and the training data's statistics.
    std::ifstream f(in.output_dir / "config.json");
    auto config = nn::VisionConfigFromJson(json::parse(f));
    ASSERT_TRUE(config.has_value()) << config.error().ToString();
    EXPECT_EQ(config->labels, in.image_labels);
    EXPECT_EQ(config->height, 12);
    EXPECT_NEAR(config->mean[0], (*r)["dataset"]["image_mean"][0].get<double>(), 1e-6);
    EXPECT_GT(config->mean[0], 0.05);
    EXPECT_TRUE(fs::exists(in.output_dir / "model.safetensors"));
  }
}

TEST_F(ImageTrainerTest, Bfloat16AutocastTrainsTooAndSavesFloat32Weights) {
  TrainInputs in = Inputs("cnn-small", "bf16");
  in.spec.precision = Precision::kBFloat16;
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["evaluation"]["accuracy"], 1.0) << r->dump();
  EXPECT_EQ((*r)["stats"]["precision"], "bfloat16");
  std::ifstream f(in.output_dir / "config.json");
  auto config = nn::VisionConfigFromJson(json::parse(f));
  ASSERT_TRUE(config.has_value());
  nn::VisionModel m(*config);
  ASSERT_TRUE(nn::LoadVisionWeights(m, in.output_dir, false, nullptr).ok());
  EXPECT_EQ(m->parameters()[0].scalar_type(), torch::kFloat32);
  EXPECT_FALSE(at::autocast::is_cpu_enabled()) << "autocast is off again once the step is done";
}

TEST_F(ImageTrainerTest, ResumesFromACheckpointToTheSameModel) {
  TrainInputs whole = Inputs("cnn-small", "whole");
  whole.spec.epochs = 3;
  whole.spec.image_augment = {2, false, 10};  // (a flip would make corner classes alike)
  auto a = RunTraining(whole, {});
  ASSERT_TRUE(a.has_value()) << a.error().ToString();

  TrainInputs parts = Inputs("cnn-small", "parts");
  parts.spec.epochs = 3;
  parts.spec.image_augment = {2, false, 10};
  parts.spec.checkpoint_steps = 5;
  int steps = 0;
  TrainCallbacks stop;
  stop.progress = [&](const TrainProgress& p) { steps = static_cast<int>(p.step); };
  stop.cancelled = [&] { return steps >= 8; };
  auto cancelled = RunTraining(parts, stop);
  ASSERT_FALSE(cancelled.has_value());
  EXPECT_EQ(cancelled.error().code(), StatusCode::kCancelled);
  ASSERT_TRUE(fs::exists(parts.checkpoint_dir / "current" / "state.json"));
  auto b = RunTraining(parts, {});
  ASSERT_TRUE(b.has_value()) << b.error().ToString();
  EXPECT_EQ((*b)["stats"]["resumed_from_step"], 8);
  EXPECT_EQ((*b)["stats"]["steps"], (*a)["stats"]["steps"]);
  // The same data order, augmentation and dropout masks: the same model.
  EXPECT_EQ((*b)["history"]["loss"].back(), (*a)["history"]["loss"].back());
  EXPECT_EQ((*b)["evaluation"], (*a)["evaluation"]);
}

TEST_F(ImageTrainerTest, FineTunesASavedModelWithAFrozenBackboneAndANewHead) {
  TrainInputs first = Inputs("cnn-small", "base");
  ASSERT_TRUE(RunTraining(first, {}).has_value());
  std::ifstream f(first.output_dir / "config.json");
  const json saved_config = json::parse(f);

  // Two of the classes, named otherwise: a new classifier on the trained features.
  TrainInputs tune = Inputs("cnn-small", "tuned", 2);
  tune.model_block = json::object();
  tune.model_dir = first.output_dir;
  tune.spec.freeze_backbone = true;
  tune.image_labels = {"left", "right"};
  auto r = RunTraining(tune, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& model = (*r)["model"];
  EXPECT_FALSE(model["from_scratch"].get<bool>());
  EXPECT_FALSE(model["newly_initialized"].empty());
  EXPECT_LT(model["trainable_parameters"].get<int64_t>(), model["parameters"].get<int64_t>());
  EXPECT_EQ((*r)["evaluation"]["accuracy"], 1.0) << r->dump();
  EXPECT_EQ((*r)["dataset"]["normalization"], "given");  // the saved model's statistics
  // The backbone is unchanged.
  auto load = [](const fs::path& dir) {
    std::ifstream cf(dir / "config.json");
    auto c = nn::VisionConfigFromJson(json::parse(cf));
    nn::VisionModel m(*c);
    EXPECT_TRUE(nn::LoadVisionWeights(m, dir, false, nullptr).ok());
    return m;
  };
  nn::VisionModel before = load(first.output_dir), after = load(tune.output_dir);
  auto pb = before->named_parameters(), pa = after->named_parameters();
  EXPECT_TRUE(torch::equal(pb["features.0.weight"], pa["features.0.weight"]));
  EXPECT_FALSE(pb["classifier.1.weight"].sizes() == pa["classifier.4.weight"].sizes() &&
               torch::equal(pb["classifier.1.weight"], pa["classifier.1.weight"]));
  EXPECT_EQ(saved_config["image_mean"], json::parse(std::ifstream(tune.output_dir / "config.json"))["image_mean"]);
}

TEST_F(ImageTrainerTest, BadDataNamesTheField) {
  TrainInputs one_class = Inputs("cnn-small", "one", 4);
  for (auto& e : one_class.train_images) e.label = 0;
  one_class.eval_images.clear();
  auto r = RunTraining(one_class, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "dataset.path");

  TrainInputs empty = Inputs("cnn-small", "empty");
  empty.train_images.clear();
  r = RunTraining(empty, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "dataset.path");

  TrainInputs preset = Inputs("resnet-tiny", "preset");
  r = RunTraining(preset, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "model.preset");

  TrainInputs wide = Inputs("resnet18", "wide");  // batches too large for the memory allowed
  wide.model_block["image_size"] = 224;
  wide.max_model_bytes = 400ull << 20;
  r = RunTraining(wide, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "model_train.batch_size") << r.error().ToString();

  TrainInputs odd = Inputs("cnn-small", "odd");  // 10 x 10 images: cnn-small gets 12 x 12
  for (auto* split : {&odd.train_images, &odd.eval_images})
    for (auto& e : *split) e.image = vision::Resize(e.image, 10, 10);
  odd.spec.epochs = 1;
  r = RunTraining(odd, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["dataset"]["image_size"], json({12, 12}));

  TrainInputs big = Inputs("resnet18", "big");
  big.max_model_bytes = 1 << 20;
  r = RunTraining(big, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "model");
}

}  // namespace
}  // namespace mlaas::train
