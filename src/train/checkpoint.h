// mlaas::train (internal) — a training run's checkpoints: the model's weights (the strategy
// writes them), the optimizer's state, the random generator, the best epoch's weights and the
// loop's position and history (state.json, written last). checkpoint_dir/current always holds
// one complete checkpoint: a new one is written to incoming/ and rotated in.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "train/strategy.h"

namespace mlaas::train {

// The loop's position and history: everything a checkpoint holds besides tensors.
struct LoopState {
  int64_t epoch = 0, batch = 0, step = 0;
  Counters counters;  // the current epoch's, so far
  nlohmann::json history = nlohmann::json::object();
  nlohmann::json last_eval = nlohmann::json::object();
  std::optional<double> best;
  int64_t bad_epochs = 0;
  int64_t best_epoch = 0;  // load_best_model_at_end: the best epoch (1-based; 0: none yet)
  nlohmann::json best_eval = nlohmann::json::object();
  double train_seconds = 0;
  int64_t units_seen = 0;
};

struct CheckpointParts {
  ObjectiveStrategy& strategy;
  torch::optim::Optimizer& optimizer;
  at::Generator& rng;
  std::vector<torch::Tensor>& best_weights;  // empty: none kept
  int64_t total_steps = 0;                   // a checkpoint of another plan does not resume
  // Where the run computes: the optimizer's state and the best weights load onto it, so a
  // checkpoint written on a CUDA device resumes on the CPU and the other way round.
  torch::Device device{torch::kCPU};
};

// Writes a checkpoint of `state` to dir/current.
Status SaveCheckpoint(const std::filesystem::path& dir, const CheckpointParts& parts, const LoopState& state);

// Restores the checkpoint in dir (current, else previous) into the model, the optimizer, the
// generator and `state`; false when there is none or it belongs to other data (logged).
// `best_size`: the number of tensors of the model's state, when best weights are to be restored.
Result<bool> LoadCheckpoint(const std::filesystem::path& dir, const CheckpointParts& parts, LoopState& state,
                            std::optional<size_t> best_size,
                            const std::function<void(std::string_view, const std::string&)>& log);

}  // namespace mlaas::train
