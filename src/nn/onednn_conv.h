#pragma once
// Training kernels for convolutional networks on oneDNN in its blocked activation layout.
//
// libtorch 1.13 runs a float32 convolution on oneDNN too, but keeps its activations in plain
// NCHW: every convolution reorders its input into oneDNN's blocked layout (nChw16c) and its
// output back, forward and backward. For a ResNet-18 step on 32x32 images those reorders are a
// third of oneDNN's time (docs/benchmarks.md). Here activations stay blocked from the first
// convolution to the pooling at the end, stored in libtorch tensors of shape
// [N, C/16, H, W, 16], so libtorch's own elementwise operations (ReLU, the residual add) and
// autograd work on them unchanged; convolutions and batch normalisation are autograd functions
// over oneDNN primitives. Weights stay plain (OIHW) parameters: only they are reordered per
// step, a few megabytes against the activations' hundreds.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace mlaas::nn::blocked {

// Whether this build has oneDNN (the functions below throw without it).
bool Available();

// The channel block of the layout.
constexpr int64_t kBlock = 16;

// Plain NCHW (C a multiple of kBlock) -> blocked [N, C/16, H, W, 16], and back; differentiable.
torch::Tensor ToBlocked(const torch::Tensor& x);
torch::Tensor FromBlocked(const torch::Tensor& x);

// A convolution without bias: x plain float32 NCHW (any channel count) or blocked; weight
// [out, in, kh, kw] with out a multiple of kBlock. Returns the blocked result; differentiable in
// x and weight.
torch::Tensor Conv2d(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding);

// Which kernel each convolution shape runs: the faster of direct and Winograd (timed at its
// first use; the default), or one of them wherever oneDNN has it (tests).
enum class ConvAlgorithm { kFastest, kDirect, kWinograd };
void ForceConvAlgorithm(ConvAlgorithm algorithm);
// oneDNN's name for the forward kernel Conv2d(x, weight, stride, padding) runs ("jit:avx512_core",
// "jit_wino_4x3:avx512_core", ...).
std::string ConvForwardKernel(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding);

// Batch normalisation of blocked x with batch statistics (training mode), the running mean and
// (unbiased) variance updated in place as torch.nn.BatchNorm2d does; with relu, followed by a
// ReLU fused into the same pass. Differentiable in x, weight and bias.
torch::Tensor BatchNormTrain(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             torch::Tensor running_mean, torch::Tensor running_var, double momentum, double eps,
                             bool relu);

// 2-D max pooling of blocked x (kernel, stride, padding), differentiable.
torch::Tensor MaxPool2d(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t padding);

// Global average pooling of blocked x: [N, C].
torch::Tensor GlobalAvgPool(const torch::Tensor& x);

}  // namespace mlaas::nn::blocked
