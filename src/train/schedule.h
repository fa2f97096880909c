// mlaas::train (internal) — the optimizer and its learning-rate schedule: AdamW, Adam or SGD
// over two parameter groups (decoupled weight decay, and none: biases, norms), and the linear
// warm-up then linear decay of transformers' get_linear_schedule_with_warmup.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "train/train_spec.h"

namespace mlaas::train {

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const OptimizerSpec& o, std::vector<torch::Tensor> decay,
                                                       std::vector<torch::Tensor> no_decay);

struct LinearSchedule {
  double init_lr = 0;
  int64_t warm_steps = 0;
  int64_t total_steps = 0;
  // The rate of optimizer step `step` (0-based).
  double Rate(int64_t step) const;
};

}  // namespace mlaas::train
