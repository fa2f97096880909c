// mlaas::train (internal) — one training run's share of a data-parallel group
// (data_parallel.h): a Gloo process group opened under the run's key, the initial weights
// broadcast from rank 0, the per-step agreement on stopping, sums of counters, and the
// gradient averaging. Gradients are averaged in buckets (about 4 MB each, in the reverse order
// of the parameters, roughly the order backward produces them): a bucket's all-reduce starts
// as soon as the last of its gradients is computed, while backward goes on with the earlier
// layers, and the step waits for them all at the end. Buckets are all-reduced strictly in their
// order on every member (Gloo pairs collectives by the order they are issued).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/result.h"
#include "train/data_parallel.h"

namespace mlaas::train {

// What a collective throws when it fails: the group broke (a member went away, or timed out),
// as opposed to an error in the training itself.
class GroupLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every collective below throws GroupLost when the group fails.
class RunGroup {
 public:
  static Result<std::unique_ptr<RunGroup>> Open(DataParallelGroup& group, const std::string& run_key);
  ~RunGroup();

  int rank() const { return rank_; }
  int world_size() const { return world_; }

  // Every member gets rank 0's values of `tensors` (in place, outside autograd).
  void Broadcast(const std::vector<torch::Tensor>& tensors);
  // The element-wise sums of `values` over the members.
  std::vector<double> Sum(const std::vector<double>& values);
  // True on every member when it is true on any.
  bool Any(bool value) { return Sum({value ? 1.0 : 0.0})[0] > 0; }
  // Each of `tensors` becomes the members' mean (in place, outside autograd).
  void Average(const std::vector<torch::Tensor>& tensors);

  // Averages the gradients of `params` over the members: hooks on each parameter copy its
  // gradient into its bucket during backward. Call once, before the first backward.
  void AttachGradients(const std::vector<torch::Tensor>& params, size_t bucket_bytes = 4u << 20);
  // Before a backward pass: whether this one ends an optimizer step (then its gradients, with
  // what earlier micro-batches accumulated, are averaged) or only accumulates.
  void BeginBackward(bool sync);
  // After a backward pass that syncs: waits for every bucket and leaves the averages in .grad.
  void EndBackward();

 private:
  struct Impl;
  explicit RunGroup(std::unique_ptr<Impl> impl, int rank, int world);
  void OnGradient(size_t param, const torch::Tensor& grad);
  void Launch(size_t bucket);

  std::unique_ptr<Impl> impl_;
  int rank_ = 0, world_ = 1;
};

}  // namespace mlaas::train
