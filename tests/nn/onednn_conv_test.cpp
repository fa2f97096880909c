// The blocked-layout training kernels (nn/onednn_conv.h) against libtorch's own operations:
// each kernel's outputs, input and parameter gradients and running statistics, then whole
// ResNets (both stems) trained side by side for a few steps from the same weights.
#include "nn/onednn_conv.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

#include "nn/vision_model.h"

namespace mlaas::nn {
namespace {

// Largest absolute difference relative to the reference's largest magnitude.
double RelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  const double scale = std::max(want.abs().max().item<double>(), 1e-12);
  return (got - want).abs().max().item<double>() / scale;
}

// Every parameter's gradient on both models points the same way (cosine > 0.999) and, when
// `max_relative` is given, differs by less than that fraction of the reference's largest value.
void ExpectGradientsAlike(VisionModel& fast, VisionModel& reference, std::optional<double> max_relative) {
  const auto fast_params = fast->named_parameters();
  for (const auto& p : reference->named_parameters()) {
    const torch::Tensor& got = fast_params[p.key()].grad();
    const torch::Tensor& want = p.value().grad();
    ASSERT_TRUE(got.defined()) << p.key();
    if (max_relative) {
      EXPECT_LT(RelativeError(got, want), *max_relative) << p.key();
    }
    const double cosine = torch::cosine_similarity(got.flatten(), want.flatten(), 0).item<double>();
    EXPECT_GT(cosine, 0.999) << p.key();
  }
}

TEST(BlockedKernelsTest, ThisBuildHasThem) {
  // The Debian build links oneDNN (cmake/Dependencies.cmake): the fast path must be there.
  EXPECT_TRUE(blocked::Available());
}

TEST(BlockedKernelsTest, LayoutRoundTripsAndPoolsAsLibtorch) {
  torch::manual_seed(1);
  torch::Tensor x = torch::randn({3, 32, 9, 7});
  torch::Tensor b = blocked::ToBlocked(x);
  EXPECT_EQ(b.sizes().vec(), (std::vector<int64_t>{3, 2, 9, 7, 16}));
  EXPECT_TRUE(torch::equal(b[1][1][4][2][5], x[1][21][4][2]));
  EXPECT_TRUE(torch::equal(blocked::FromBlocked(b), x));
  EXPECT_TRUE(torch::equal(blocked::FromBlocked(blocked::MaxPool2d(b, 3, 2, 1)), torch::max_pool2d(x, 3, 2, 1)));
  EXPECT_LT(RelativeError(blocked::GlobalAvgPool(b), x.mean({2, 3})), 1e-6);
}

TEST(BlockedKernelsTest, ConvolutionAndGradientsMatchLibtorch) {
  if (!blocked::Available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(2);
  struct Case { int64_t batch, in, out, size, kernel, stride, pad; bool plain; };
  // Each case with direct kernels, then with Winograd wherever oneDNN has it (3x3, stride 1,
  // blocked input); the last case has the shape of a ResNet-18 layer at 32x32.
  for (const auto algorithm : {blocked::ConvAlgorithm::kDirect, blocked::ConvAlgorithm::kWinograd})
  for (const Case c : {Case{4, 3, 16, 12, 3, 1, 1, true}, Case{4, 1, 32, 15, 7, 2, 3, true},
                       Case{4, 16, 32, 10, 3, 2, 1, false}, Case{4, 32, 16, 8, 1, 2, 0, false},
                       Case{4, 16, 16, 5, 3, 1, 1, false}, Case{64, 64, 64, 16, 3, 1, 1, false}}) {
    SCOPED_TRACE(::testing::Message() << c.in << "->" << c.out << " k" << c.kernel << " s" << c.stride
                                      << (algorithm == blocked::ConvAlgorithm::kWinograd ? " winograd" : " direct"));
    blocked::ForceConvAlgorithm(algorithm);
    torch::Tensor x = torch::randn({c.batch, c.in, c.size, c.size}).requires_grad_(true);
    torch::Tensor w = (torch::randn({c.out, c.in, c.kernel, c.kernel}) * 0.2).requires_grad_(true);
    torch::Tensor want = torch::conv2d(x, w, {}, c.stride, c.pad);
    torch::Tensor upstream = torch::randn_like(want);
    auto [want_dx, want_dw] = [&] {
      auto g = torch::autograd::grad({want}, {x, w}, {upstream});
      return std::pair{g[0], g[1]};
    }();
    torch::Tensor input = c.plain ? x : blocked::ToBlocked(x);
    torch::Tensor got = blocked::Conv2d(input, w, c.stride, c.pad);
    ASSERT_EQ(got.dim(), 5);
    EXPECT_LT(RelativeError(blocked::FromBlocked(got), want), 1e-5);
    auto g = torch::autograd::grad({got}, {x, w}, {blocked::ToBlocked(upstream)});
    EXPECT_LT(RelativeError(g[0], want_dx), 1e-5);
    EXPECT_LT(RelativeError(g[1], want_dw), 1e-5);
    const std::string kernel = blocked::ConvForwardKernel(input, w, c.stride, c.pad);
    if (algorithm == blocked::ConvAlgorithm::kDirect) {
      EXPECT_EQ(kernel.find("wino"), std::string::npos) << kernel;
    } else if (c.batch == 64 && __builtin_cpu_supports("avx512f")) {  // oneDNN's Winograd kernels are AVX-512 ones
      EXPECT_NE(kernel.find("wino"), std::string::npos) << kernel;
    }
  }
  blocked::ForceConvAlgorithm(blocked::ConvAlgorithm::kFastest);
}

TEST(BlockedKernelsTest, BatchNormMatchesLibtorchWithAndWithoutRelu) {
  if (!blocked::Available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(3);
  for (const bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "with relu" : "without relu");
    torch::Tensor x = (torch::randn({5, 32, 6, 4}) * 3 + 1).requires_grad_(true);
    torch::Tensor weight = torch::rand({32}).add_(0.5).requires_grad_(true);
    torch::Tensor bias = torch::randn({32}).requires_grad_(true);
    torch::Tensor mean_ref = torch::randn({32}), var_ref = torch::rand({32}).add_(0.5);
    torch::Tensor mean = mean_ref.clone(), var = var_ref.clone();
    torch::Tensor want = torch::batch_norm(x, weight, bias, mean_ref, var_ref, true, 0.1, 1e-5, false);
    if (relu) want = torch::relu(want);
    torch::Tensor upstream = torch::randn_like(want);
    auto want_g = torch::autograd::grad({want}, {x, weight, bias}, {upstream});
    torch::Tensor got = blocked::BatchNormTrain(blocked::ToBlocked(x), weight, bias, mean, var, 0.1, 1e-5, relu);
    EXPECT_LT(RelativeError(blocked::FromBlocked(got), want), 1e-5);
    EXPECT_LT(RelativeError(mean, mean_ref), 1e-6);
    EXPECT_LT(RelativeError(var, var_ref), 1e-6);
    auto g = torch::autograd::grad({got}, {x, weight, bias}, {blocked::ToBlocked(upstream)});
    for (size_t i = 0; i < 3; ++i) EXPECT_LT(RelativeError(g[i], want_g[i]), 1e-4) << "gradient " << i;
  }
}

TEST(BlockedKernelsTest, BatchNormRefusesASingleValuePerChannelAsLibtorchDoes) {
  if (!blocked::Available()) GTEST_SKIP() << "built without oneDNN";
  torch::Tensor one = torch::ones({16}), zero = torch::zeros({16});
  EXPECT_THROW(blocked::BatchNormTrain(torch::randn({1, 1, 1, 1, 16}), one, zero, zero.clone(), one.clone(), 0.1, 1e-5,
                                       false),
               c10::Error);
  EXPECT_THROW(blocked::Conv2d(torch::randn({1, 3, 2, 2}), torch::randn({16, 3, 7, 7}), 1, 0), c10::Error)
      << "an input smaller than the kernel is a clear error";
}

TEST(BlockedKernelsTest, AFrozenBackbonesBatchNormsKeepTheirStatistics) {
  if (!blocked::Available()) GTEST_SKIP() << "built without oneDNN";
  // Fine-tuning with freeze_backbone: the model trains, its backbone's BatchNorms stay in
  // evaluation mode (running statistics, untouched), as train/image_objective.cpp sets them.
  auto config = VisionPreset("resnet18", 3, 16, 16, {"a", "b"});
  ASSERT_TRUE(config.has_value());
  VisionModel fast(*config), reference(*config);
  for (VisionModel* m : {&fast, &reference}) {
    InitVisionWeights(*m, 6);
    (*m)->train();
    torch::NoGradGuard no_grad;
    for (auto& sub : (*m)->modules(/*include_self=*/false)) {
      if (auto* bn = sub->as<torch::nn::BatchNorm2dImpl>()) {
        bn->running_mean.uniform_(-0.5, 0.5);
        bn->running_var.uniform_(0.5, 2.0);
        bn->eval();
      }
    }
  }
  {
    torch::NoGradGuard no_grad;
    const auto ref_buffers = reference->named_buffers();
    for (auto& b : fast->named_buffers()) b.value().copy_(ref_buffers[b.key()]);
  }
  reference->SetBlockedKernels(false);
  const auto before = reference->named_buffers();
  std::map<std::string, torch::Tensor> saved;
  for (const auto& b : before) saved[b.key()] = b.value().clone();
  torch::manual_seed(7);
  torch::Tensor x = torch::randn({4, 3, 16, 16});
  torch::Tensor y = torch::randint(0, 2, {4});
  ASSERT_TRUE(fast->UsesBlockedKernels(x));
  torch::Tensor fast_logits = fast->forward(x), ref_logits = reference->forward(x);
  EXPECT_LT(RelativeError(fast_logits, ref_logits), 1e-4);
  torch::cross_entropy_loss(fast_logits, y).backward();
  torch::cross_entropy_loss(ref_logits, y).backward();
  ExpectGradientsAlike(fast, reference, std::nullopt);
  for (const auto& b : fast->named_buffers()) EXPECT_TRUE(torch::equal(b.value(), saved[b.key()])) << b.key();
}

TEST(BlockedKernelsTest, ResNetsComputeWhatLibtorchsPathComputes) {
  if (!blocked::Available()) GTEST_SKIP() << "built without oneDNN";
  // Two copies of one ResNet-18 in training mode, on these kernels and on libtorch's path, take
  // two forward and backward passes (gradients accumulate; no optimiser step, whose updates
  // would let rounding grow). Logits and running statistics are compared tightly, gradients by
  // direction and a loose bound: the two paths round differently (Winograd more so), and with
  // about a million ReLU decisions a pass, an activation within rounding of zero lands on the
  // other side in most runs; that one element moves a weight's gradient by up to ~10% of its
  // largest value (measured over 12 seeds: otherwise within 1e-5, cosine always > 0.9999).
  // Both stems: 3x3 stride 1 below 64 pixels, 7x7 stride 2 + max pool from 64.
  for (const int64_t size : {16, 64}) {
    SCOPED_TRACE(::testing::Message() << size << " pixels");
    auto config = VisionPreset("resnet18", 3, size, size, {"a", "b", "c"});
    ASSERT_TRUE(config.has_value());
    VisionModel fast(*config), reference(*config);
    InitVisionWeights(fast, 5);
    InitVisionWeights(reference, 5);
    fast->train();
    reference->train();
    reference->SetBlockedKernels(false);
    torch::manual_seed(4);
    for (int pass = 0; pass < 2; ++pass) {
      SCOPED_TRACE(::testing::Message() << "pass " << pass);
      torch::Tensor x = torch::randn({8, 3, size, size});
      torch::Tensor y = torch::randint(0, 3, {8});
      ASSERT_TRUE(fast->UsesBlockedKernels(x));
      ASSERT_FALSE(reference->UsesBlockedKernels(x));
      torch::Tensor fast_logits = fast->forward(x), ref_logits = reference->forward(x);
      EXPECT_LT(RelativeError(fast_logits, ref_logits), 1e-4);
      torch::cross_entropy_loss(fast_logits, y).backward();
      torch::cross_entropy_loss(ref_logits, y).backward();
    }
    ExpectGradientsAlike(fast, reference, 0.25);
    const auto fast_buffers = fast->named_buffers();
    for (const auto& b : reference->named_buffers()) {
      if (b.value().is_floating_point()) {
        EXPECT_LT(RelativeError(fast_buffers[b.key()], b.value()), 1e-4) << b.key();
      } else {
        EXPECT_TRUE(torch::equal(fast_buffers[b.key()], b.value())) << b.key();  // num_batches_tracked
      }
    }
    // Evaluation mode keeps libtorch's path (running statistics).
    fast->eval();
    EXPECT_FALSE(fast->UsesBlockedKernels(torch::zeros({1, 3, size, size})));
  }
}

TEST(BlockedKernelsTest, TuningLeavesTheProcessRandomStreamAlone) {
  if (!blocked::Available()) GTEST_SKIP() << "built without oneDNN";
  // The first call of a new shape times its candidate kernels on data of its own (a size not
  // used before in this process, so that the shape is new on every repetition).
  static int64_t size = 10;
  ++size;
  torch::manual_seed(9);
  const torch::Tensor expected = torch::rand({4});
  torch::manual_seed(9);
  blocked::Conv2d(blocked::ToBlocked(torch::ones({2, 16, size, size})), torch::ones({16, 16, 3, 3}), 1, 1);
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

}  // namespace
}  // namespace mlaas::nn
