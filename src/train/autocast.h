// model_train.precision: the forward passes of a training run in bfloat16 under libtorch's
// autocast (matrix products and convolutions in bf16; losses, normalisation, the weights, the
// gradients and the optimizer state in float32), on the CPU or a CUDA device. Internal to the
// train module.
#pragma once

#include <torch/torch.h>

#include "train/train_spec.h"

namespace mlaas::train {

// Whether `device` runs bf16 autocast: the CPU always (natively with AVX512-BF16), a CUDA GPU
// when a small bf16 matrix product works there (Ampere and later).
bool DeviceComputesBf16(const torch::Device& device);

// Whether a run on `device` asking for `precision` computes its forward passes in bf16.
bool UsesBf16(Precision precision, const torch::Device& device);

// Autocast to bf16 on `device`'s type for this thread while alive (nothing when `on` is false);
// the previous state comes back after.
class Bf16Autocast {
 public:
  Bf16Autocast(const torch::Device& device, bool on);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_;
  bool cuda_;
  bool was_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

}  // namespace mlaas::train
