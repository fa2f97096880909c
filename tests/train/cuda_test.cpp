// Tests labelled `cuda` (issue 23; docs/gpu.md): a CUDA device computes what the CPU does, trains
// a tiny task to the same place, hands checkpoints across devices, and runs out of memory with a
// clear error. Where libtorch sees no CUDA device each test is skipped with a notice;
// scripts/device-check.sh runs them on a GPU machine.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "nn/model.h"
#include "train/autocast.h"
#include "train/text_fixture.h"

namespace mlaas::train {
namespace {

class CudaTest : public TextTrainingFixture {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available())
      GTEST_SKIP() << "no CUDA device here (libtorch " << TORCH_VERSION
                   << "): the cuda tests run on a GPU machine through scripts/device-check.sh";
    TextTrainingFixture::SetUp();
  }

  // A model trained one epoch on the CPU, saved.
  fs::path SmallModel() {
    TrainInputs in = Inputs(Objective::kTextClassification, "small");
    in.spec.epochs = 1;
    in.train = Sentiment(32, 1);
    auto r = RunTraining(in, {});
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return in.output_dir;
  }
};

TEST_F(CudaTest, ForwardPassesMatchTheCpuInFloat32AndBfloat16) {
  const fs::path dir = SmallModel();
  auto cpu = nn::LoadModelDir(dir, std::nullopt);
  auto gpu = nn::LoadModelDir(dir, std::nullopt);
  ASSERT_TRUE(cpu.has_value() && gpu.has_value());
  cpu->model->eval();
  gpu->model->eval();
  gpu->model->to(torch::Device("cuda"));
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  nn::EncoderInput in;
  in.input_ids = torch::randint(5, 25, {4, 12}, torch::kLong);
  nn::EncoderInput on_gpu = in;
  on_gpu.input_ids = in.input_ids.to(torch::Device("cuda"));
  const torch::Tensor want = cpu->model->forward(in).logits;
  const torch::Tensor fp32 = gpu->model->forward(on_gpu).logits.cpu();
  EXPECT_LE((fp32 - want).abs().max().item<double>(), 1e-3);
  torch::Tensor bf16;
  {
    Bf16Autocast autocast(torch::Device("cuda"), true);
    bf16 = gpu->model->forward(on_gpu).logits.to(torch::kFloat32).cpu();
  }
  EXPECT_LE((bf16 - want).abs().max().item<double>(), 2e-2);
}

TEST_F(CudaTest, ATinyTaskConvergesOnCudaAsOnTheCpu) {
  auto run = [&](const std::string& device) {
    TrainInputs in = Inputs(Objective::kTextClassification, "converge-" + device);
    in.spec.device = device;
    in.spec.precision = Precision::kFloat32;
    in.train = Sentiment(160, 1);
    in.eval = Sentiment(40, 2);
    return RunTraining(in, {});
  };
  auto cpu = run("cpu");
  auto gpu = run("cuda");
  ASSERT_TRUE(cpu.has_value()) << cpu.error().ToString();
  ASSERT_TRUE(gpu.has_value()) << gpu.error().ToString();
  EXPECT_EQ((*gpu)["stats"]["device"], "cuda");
  EXPECT_EQ((*gpu)["evaluation"]["accuracy"], (*cpu)["evaluation"]["accuracy"]);
  const double a = (*cpu)["history"]["loss"].back().get<double>(), b = (*gpu)["history"]["loss"].back().get<double>();
  EXPECT_NEAR(a, b, 0.05 + 0.2 * a) << "final losses: cpu " << a << ", cuda " << b;
  // bf16 by default on a GPU that has it, and it learns too.
  TrainInputs in = Inputs(Objective::kTextClassification, "auto");
  in.spec.device = "cuda";
  in.train = Sentiment(160, 1);
  in.eval = Sentiment(40, 2);
  auto bf16 = RunTraining(in, {});
  ASSERT_TRUE(bf16.has_value()) << bf16.error().ToString();
  EXPECT_EQ((*bf16)["stats"]["precision"], "bfloat16");
  EXPECT_GE((*bf16)["evaluation"]["accuracy"].get<double>(), 0.95);
}

TEST_F(CudaTest, ACheckpointWrittenOnCudaResumesOnTheCpuAndBack) {
  for (const auto& [first, second] : {std::pair<std::string, std::string>{"cuda", "cpu"}, {"cpu", "cuda"}}) {
    TrainInputs in = Inputs(Objective::kTextClassification, "resume-" + first);
    in.spec.epochs = 3;
    in.spec.checkpoint_steps = 4;
    in.spec.device = first;
    in.spec.precision = Precision::kFloat32;
    in.train = Sentiment(80, 3);
    in.eval = Sentiment(16, 4);
    int64_t steps = 0;
    TrainCallbacks stop;
    stop.progress = [&](const TrainProgress& p) { steps = std::max(steps, p.step); };
    stop.cancelled = [&] { return steps >= 13; };
    auto cut = RunTraining(in, stop);
    ASSERT_FALSE(cut.has_value());
    in.spec.device = second;
    auto resumed = RunTraining(in, {});
    ASSERT_TRUE(resumed.has_value()) << first << " -> " << second << ": " << resumed.error().ToString();
    EXPECT_EQ((*resumed)["stats"]["resumed_from_step"], 13) << first << " -> " << second;
    EXPECT_EQ((*resumed)["stats"]["steps"], 30);
    EXPECT_GE((*resumed)["evaluation"]["accuracy"].get<double>(), 0.9) << first << " -> " << second;
  }
}

TEST_F(CudaTest, RunningOutOfDeviceMemoryFailsTheRunNamingTheBatchSize) {
  TrainInputs in = Inputs(Objective::kTextClassification, "oom");
  in.model_block["config"]["hidden_size"] = 1024;
  in.model_block["config"]["num_attention_heads"] = 16;
  in.model_block["config"]["intermediate_size"] = 16384;
  in.model_block["config"]["num_hidden_layers"] = 8;
  in.spec.device = "cuda";
  in.spec.epochs = 1;
  in.spec.batch_size = 65536;
  in.train = Sentiment(65536, 5);
  auto r = RunTraining(in, {});
  ASSERT_FALSE(r.has_value()) << "65,536 sequences through eight 1024-wide layers fit?";
  EXPECT_EQ(r.error().code(), StatusCode::kResourceExhausted) << r.error().ToString();
  EXPECT_EQ(r.error().field(), "model_train.batch_size");
  EXPECT_NE(r.error().message().find("65536"), std::string::npos) << r.error().message();
  // The memory came back: a small run on the same device works.
  TrainInputs small = Inputs(Objective::kTextClassification, "after-oom");
  small.spec.device = "cuda";
  small.spec.epochs = 1;
  small.train = Sentiment(32, 1);
  auto after = RunTraining(small, {});
  EXPECT_TRUE(after.has_value()) << after.error().ToString();
}

}  // namespace
}  // namespace mlaas::train
