// Image classifiers: a torchvision ResNet-18 state dict (written by Debian's python3-torchvision,
// as pytorch_model.bin) loads by its names and gives torchvision's logits; save/load round
// trips; a checkpoint with other labels gets a new head, reported; every preset learns a
// separable toy set; config.json errors name the field.
#include "nn/vision_model.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "testutil/temp_dir.h"

namespace mlaas::nn {
namespace {

namespace fs = std::filesystem;
using mlaas::testing::TempDir;

torch::Tensor ReadFloats(const fs::path& file, std::vector<int64_t> shape) {
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return torch::from_blob(bytes.data(), shape, torch::kFloat32).clone();
}

bool HaveTorchvision() { return std::system("/usr/bin/python3 -c 'import torchvision' 2>/dev/null") == 0; }

TEST(VisionModelTest, ATorchvisionResNetStateDictGivesTorchvisionsLogits) {
  if (!HaveTorchvision()) GTEST_SKIP() << "python3-torchvision is not installed (scripts/install-deps.sh)";
  TempDir dir;
  const std::string cmd = "/usr/bin/python3 " MLAAS_SOURCE_DIR "/tests/nn/torchvision_reference.py " + dir.path().string() +
                          " resnet18 5 64";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto config = VisionPreset("resnet18", 3, 64, 64, {"a", "b", "c", "d", "e"});
  ASSERT_TRUE(config.has_value());
  config->small_stem = false;  // torchvision's stem
  VisionModel model(*config);
  VisionLoadReport report;
  Status st = LoadVisionWeights(model, dir.path(), false, &report);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(report.newly_initialized.empty());
  EXPECT_TRUE(report.unused.empty()) << report.unused.size() << " unused, first " << report.unused.front();
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model->forward(ReadFloats(dir.path() / "input.bin", {2, 3, 64, 64}));
  torch::Tensor expected = ReadFloats(dir.path() / "logits.bin", {2, 5});
  EXPECT_LT((logits - expected).abs().max().item<float>(), 1e-4) << logits << expected;

  // Saved in our layout (config.json + model.safetensors) and loaded again: the same logits.
  ASSERT_TRUE(SaveVisionModel(model, dir.path() / "saved").ok());
  std::ifstream cfg(dir.path() / "saved" / "config.json");
  auto again_config = VisionConfigFromJson(nlohmann::json::parse(cfg));
  ASSERT_TRUE(again_config.has_value()) << again_config.error().ToString();
  EXPECT_EQ(again_config->labels, config->labels);
  VisionModel again(*again_config);
  ASSERT_TRUE(LoadVisionWeights(again, dir.path() / "saved", false, nullptr).ok());
  again->eval();
  EXPECT_TRUE(torch::equal(again->forward(ReadFloats(dir.path() / "input.bin", {2, 3, 64, 64})), logits));

  // Other labels: the backbone loads, the head is new and reported.
  auto three = VisionPreset("resnet18", 3, 64, 64, {"x", "y", "z"});
  three->small_stem = false;
  VisionModel finetune(*three);
  VisionLoadReport fresh;
  ASSERT_TRUE(LoadVisionWeights(finetune, dir.path(), true, &fresh).ok());
  EXPECT_EQ(fresh.newly_initialized, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_FALSE(LoadVisionWeights(finetune, dir.path(), false, nullptr).ok()) << "without allow_new_head, a wrong shape is an error";
}

TEST(VisionModelTest, EveryPresetLearnsASeparableToySet) {
  // Two classes: bright top half or bright bottom half, with noise.
  torch::manual_seed(0);
  const int64_t n = 32;
  torch::Tensor x = torch::randn({n, 1, 16, 16}) * 0.3;
  torch::Tensor y = torch::arange(n) % 2;
  for (int64_t i = 0; i < n; ++i) {
    if (y[i].item<int64_t>() == 0) x[i].slice(1, 0, 8) += 1.5;
    else x[i].slice(1, 8, 16) += 1.5;
  }
  // (resnet34 is resnet18 with more blocks of the same kind: its shape is checked below, not
  // trained here, which would take half a minute.)
  for (const std::string preset : {"mlp", "cnn-small", "resnet18"}) {
    auto c = VisionPreset(preset, 1, 16, 16, {"top", "bottom"});
    ASSERT_TRUE(c.has_value()) << preset;
    VisionModel model(*c);
    InitVisionWeights(model, 7);
    torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3));
    model->train();
    for (int step = 0; step < 30; ++step) {
      opt.zero_grad();
      torch::Tensor loss = torch::cross_entropy_loss(model->forward(x), y);
      loss.backward();
      opt.step();
    }
    model->eval();
    torch::NoGradGuard no_grad;
    const double accuracy = (model->forward(x).argmax(1) == y).to(torch::kFloat32).mean().item<double>();
    EXPECT_EQ(accuracy, 1.0) << preset;
  }
  auto c34 = VisionPreset("resnet34", 3, 32, 32, {"a", "b", "c"});
  ASSERT_TRUE(c34.has_value());
  VisionModel r34(*c34);
  InitVisionWeights(r34, 1);
  r34->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(r34->forward(torch::randn({2, 3, 32, 32})).sizes().vec(), (std::vector<int64_t>{2, 3}));
  int64_t params = 0;
  for (const auto& p : r34->parameters()) params += p.numel();
  EXPECT_EQ(params, 21'278'531) << "torchvision's resnet34 with a 3-class head and a 3x3 stem";
}

TEST(VisionModelTest, ConfigErrorsNameTheField) {
  using nlohmann::json;
  EXPECT_FALSE(VisionPreset("vgg16", 3, 32, 32, {"a"}).has_value());
  struct Case {
    json config;
    const char* field;
  };
  const std::vector<Case> cases = {
      {{{"model_type", "bert"}}, "model_type"},
      {{{"model_type", "resnet18"}}, "id2label"},
      {{{"model_type", "resnet18"}, {"num_labels", 2}, {"num_channels", 4}}, "num_channels"},
      {{{"model_type", "resnet18"}, {"num_labels", 2}, {"image_size", 100000}}, "image_size"},
      {{{"model_type", "cnn-small"}, {"num_labels", 2}, {"image_size", 30}}, "image_size"},
      {{{"model_type", "mlp"}, {"id2label", {{"1", "a"}}}}, "id2label"},
      {{{"model_type", "mlp"}, {"num_labels", 2}, {"image_std", {0.0}}}, "image_std"},
      {{{"model_type", "mlp"}, {"num_labels", 2}, {"num_channels", 3}, {"image_mean", {0.1, 0.2}}}, "image_mean"},
  };
  for (const auto& c : cases) {
    auto r = VisionConfigFromJson(c.config);
    ASSERT_FALSE(r.has_value()) << c.config.dump();
    EXPECT_EQ(r.error().field(), c.field) << c.config.dump() << ": " << r.error().ToString();
  }
  EXPECT_TRUE(IsVisionConfig(json{{"model_type", "cnn-small"}}));
  EXPECT_FALSE(IsVisionConfig(json{{"model_type", "bert"}}));
}

}  // namespace
}  // namespace mlaas::nn

namespace mlaas::nn {
namespace {

// The count admitted before a model is built is the count built, for every preset, input and
// head (torchvision's ResNet-18 has 11,689,512 parameters with its 1,000 classes).
TEST(VisionModelTest, ParameterCountFromTheConfigIsExact) {
  std::vector<std::string> thousand(1000, "c");
  auto imagenet = VisionPreset("resnet18", 3, 224, 224, thousand);
  ASSERT_TRUE(imagenet.has_value());
  EXPECT_EQ(VisionParameterCount(*imagenet), 11'689'512u);
  for (const std::string preset : {"mlp", "cnn-small", "resnet18", "resnet34"}) {
    for (int64_t channels : {1, 3}) {
      for (int64_t size : {28, 64}) {
        auto c = VisionPreset(preset, channels, size, size, {"a", "b", "c"});
        ASSERT_TRUE(c.has_value());
        VisionModel model(*c);
        uint64_t n = 0;
        for (const auto& p : model->parameters()) n += static_cast<uint64_t>(p.numel());
        EXPECT_EQ(VisionParameterCount(*c), n) << preset << " " << channels << "x" << size;
      }
    }
  }
}

}  // namespace
}  // namespace mlaas::nn
