// mlaas::train (internal) — the per-objective half of training: what the trainer's loop
// (trainer.cpp) asks of an objective. A strategy owns its data (tokenized texts, prepared
// images) and its model; it makes the batches, computes the loss and the train metrics,
// evaluates, and writes the trained model directory. The loop owns everything objectives
// share: the optimizer and its schedule (schedule.h), gradient accumulation and clipping,
// checkpoints and resume (checkpoint.h), early stopping, the best epoch, progress and the
// result report. Adding an objective is adding a strategy.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "train/trainer.h"

namespace mlaas::train {

// Sums over batches of one epoch (or one step): the loss weighted by what it averages over,
// the predictions right of all made, and the units (tokens, images) seen.
struct Counters {
  double loss_sum = 0, weight = 0;
  int64_t correct = 0, total = 0;
  int64_t units = 0;
  double Loss() const { return weight > 0 ? loss_sum / weight : 0.0; }
  double Accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
  void Add(const Counters& o) {
    loss_sum += o.loss_sum;
    weight += o.weight;
    correct += o.correct;
    total += o.total;
    units += o.units;
  }
  nlohmann::json ToJson() const { return {loss_sum, weight, correct, total}; }
  void FromJson(const nlohmann::json& j) {
    loss_sum = j[0];
    weight = j[1];
    correct = j[2];
    total = j[3];
  }
};

// The batches of an epoch, as index lists into the training examples.
using Plan = std::vector<std::vector<size_t>>;

// What a strategy may use of the run.
struct StrategyEnv {
  const TrainInputs& in;
  const TrainSpec& spec;
  torch::Device device{torch::kCPU};
  std::function<void(std::string_view level, const std::string& message)> log;
  std::function<bool()> stop;  // cancellation, polled in long loops
  // Preparation (tokenizing, converting images): `fraction` of it done. False: cancelled.
  std::function<bool(double fraction, const std::string& message)> preparing;
};

// A host tensor on the run's device: on CUDA through pinned memory and a non-blocking copy (it
// overlaps what the device still computes); on the CPU, the tensor itself.
torch::Tensor ToDevice(const torch::Tensor& host, const torch::Device& device);

class ObjectiveStrategy {
 public:
  virtual ~ObjectiveStrategy() = default;

  // Builds the model (from the request's block or the starting model's directory) on the
  // run's device and prepares both splits. Errors are InvalidArgument naming the field.
  virtual Status Prepare() = 0;
  virtual torch::nn::Module& Net() = 0;
  // The model's random draws (dropout) from `gen`, which checkpoints save.
  virtual void SetRandomGenerator(at::Generator /*gen*/) {}
  // Train (on) or evaluation mode.
  virtual void SetTraining(bool on) { Net().train(on); }
  // Whether decoupled weight decay applies to parameter `name` (a trainable one).
  virtual bool Decays(const std::string& name, const torch::Tensor& p) const = 0;

  virtual size_t TrainSize() const = 0;
  virtual size_t EvalSize() const = 0;
  // The training batches of `epoch`: shuffled, deterministic in (seed, epoch).
  virtual Plan Batches(int64_t epoch) = 0;
  // Forward and loss of batch `batch` of `plan` (epoch `epoch`, whose random draws — masks,
  // augmentation — are seeded by both); adds to `c`. Returns the loss to back-propagate.
  virtual torch::Tensor TrainStep(const Plan& plan, int64_t epoch, int64_t batch, Counters& c) = 0;
  // The epoch's train metrics besides "loss" (accuracy, perplexity, ...) into the history.
  virtual void PushTrainMetrics(const Counters& c, const std::function<void(const std::string&, nlohmann::json)>& push) const = 0;
  // The held-out split's metrics ({} when there is none); numbers go to the history as eval_<key>.
  virtual Result<nlohmann::json> Evaluate() = 0;
  // Keys of Evaluate's result the epoch's log line shows after the loss.
  virtual std::vector<std::string> LoggedMetrics() const = 0;

  // The class names (a checkpoint of other classes does not resume); empty: none.
  virtual std::vector<std::string> Labels() const { return {}; }
  // The model's weights into / from a checkpoint directory.
  virtual Status SaveWeights(const std::filesystem::path& dir) = 0;
  virtual Status LoadWeights(const std::filesystem::path& dir) = 0;
  // Writes the trained model directory; may add to the final evaluation.
  virtual Status Finish(const std::filesystem::path& dir, nlohmann::json& evaluation) = 0;

  // The result's "dataset" and "model" blocks.
  virtual nlohmann::json DatasetReport() const = 0;
  virtual nlohmann::json ModelReport() const = 0;
  // What the throughput counts ("tokens", "images").
  virtual std::string_view Unit() const = 0;
};

std::unique_ptr<ObjectiveStrategy> MakeTextStrategy(const StrategyEnv& env);
std::unique_ptr<ObjectiveStrategy> MakeImageStrategy(const StrategyEnv& env);

// A 64-bit mix of two values: the seeds of an epoch's, a batch's random draws.
inline uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  return x ^ (x >> 29);
}

// The largest model trained: InvalidArgument naming `model` when training a model of
// `weight_bytes` (its weights, gradients and two optimizer moments: 4x) exceeds `limit` (0: none).
Status CheckTrainingBytes(uint64_t weight_bytes, uint64_t limit);

}  // namespace mlaas::train
