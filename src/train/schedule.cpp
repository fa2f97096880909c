#include "train/schedule.h"

#include <algorithm>

namespace mlaas::train {

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const OptimizerSpec& o, std::vector<torch::Tensor> decay,
                                                       std::vector<torch::Tensor> no_decay) {
  switch (o.kind) {
    case OptimizerKind::kAdam: {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(std::move(decay), std::make_unique<torch::optim::AdamOptions>(
                                                torch::optim::AdamOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(o.weight_decay_rate)));
      groups.emplace_back(std::move(no_decay), std::make_unique<torch::optim::AdamOptions>(
                                                   torch::optim::AdamOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(0)));
      return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(o.init_lr));
    }
    case OptimizerKind::kSgd: {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(std::move(decay), std::make_unique<torch::optim::SGDOptions>(
                                                torch::optim::SGDOptions(o.init_lr).momentum(o.momentum).weight_decay(o.weight_decay_rate)));
      groups.emplace_back(std::move(no_decay), std::make_unique<torch::optim::SGDOptions>(
                                                   torch::optim::SGDOptions(o.init_lr).momentum(o.momentum).weight_decay(0)));
      return std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(o.init_lr));
    }
    case OptimizerKind::kAdamW:
    default: {
      std::vector<torch::optim::OptimizerParamGroup> groups;
      groups.emplace_back(std::move(decay), std::make_unique<torch::optim::AdamWOptions>(
                                                torch::optim::AdamWOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(o.weight_decay_rate)));
      groups.emplace_back(std::move(no_decay), std::make_unique<torch::optim::AdamWOptions>(
                                                   torch::optim::AdamWOptions(o.init_lr).betas({o.beta1, o.beta2}).eps(o.epsilon).weight_decay(0)));
      return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(o.init_lr));
    }
  }
}

double LinearSchedule::Rate(int64_t step) const {
  if (step < warm_steps) return init_lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warm_steps));
  return init_lr * std::max(0.0, static_cast<double>(total_steps - step) /
                                     static_cast<double>(std::max<int64_t>(1, total_steps - warm_steps)));
}

}  // namespace mlaas::train
