// The training loop every objective shares (the objectives themselves are strategies:
// strategy.h): the optimizer and schedule, gradient accumulation and clipping, cancellation at
// step boundaries, progress, evaluation after each epoch, early stopping and the best epoch,
// checkpoints and resume, and the result report.
#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "common/text.h"
#include "nn/cpu_allocator.h"
#include "nn/model.h"
#include "train/autocast.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/run_group.h"
#include "train/schedule.h"
#include "train/strategy.h"

namespace mlaas::train {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

Status CheckTrainingBytes(uint64_t weight_bytes, uint64_t limit) {
  if (limit == 0) return Status::Ok();
  const uint64_t need = weight_bytes > UINT64_MAX / 4 ? UINT64_MAX : weight_bytes * 4;
  if (need <= limit) return Status::Ok();
  return InvalidArgument("training this model would hold " + FormatBytes(need) +
                             " (weights, gradients and optimizer state), more than the " + FormatBytes(limit) +
                             " this server allows",
                         "model");
}

torch::Tensor ToDevice(const torch::Tensor& host, const torch::Device& device) {
  if (!device.is_cuda()) return host.device() == device ? host : host.to(device);
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

namespace {

// One training run at a time per process: runs would compete for the same cores and for
// libtorch's process-wide thread count. (Each run's random draws come from a generator of its
// own, whose state its checkpoints save, so randomness does not depend on what else runs.)
std::timed_mutex& TrainingMutex() {
  static std::timed_mutex mu;
  return mu;
}

// A data-parallel member's share of each batch: a contiguous slice of it (sizes differ by one at
// most; a batch smaller than the group leaves some members nothing). `scale[b]` makes the mean
// loss of a share weigh as its examples do in the whole batch once the members' gradients are
// averaged.
Plan ShareOf(const Plan& plan, int rank, int world, std::vector<double>& scale) {
  Plan mine(plan.size());
  scale.assign(plan.size(), 0.0);
  for (size_t b = 0; b < plan.size(); ++b) {
    const size_t n = plan[b].size();
    const size_t from = n * static_cast<size_t>(rank) / static_cast<size_t>(world);
    const size_t to = n * static_cast<size_t>(rank + 1) / static_cast<size_t>(world);
    mine[b].assign(plan[b].begin() + static_cast<std::ptrdiff_t>(from), plan[b].begin() + static_cast<std::ptrdiff_t>(to));
    if (n > 0) scale[b] = static_cast<double>(to - from) * world / static_cast<double>(n);
  }
  return mine;
}

bool LowerIsBetter(const std::string& metric) {
  return metric.find("loss") != std::string::npos || metric.find("perplexity") != std::string::npos;
}

class Loop {
 public:
  Loop(const TrainInputs& in, const TrainCallbacks& cb) : in_(in), spec_(in.spec), cb_(cb) {}
  Result<json> Run();

 private:
  void Log(std::string_view level, const std::string& m) const {
    if (cb_.log) cb_.log(level, m);
  }
  bool StopRequested() const { return cb_.cancelled && cb_.cancelled(); }
  // Where only this process stops (preparation, evaluation, waiting for the training lock): in a
  // data-parallel run the members stop together at a step boundary instead (dp_->Any), or a
  // member left waiting in a collective would hang.
  bool LocalStop() const { return in_.data_parallel == nullptr && StopRequested(); }
  Status Checkpoint();
  // Every parameter and buffer of the model, in a fixed order (what load_best_model_at_end keeps).
  std::vector<torch::Tensor> ModelState() const;
  void KeepBestWeights();
  CheckpointParts Parts() { return {*strategy_, *optimizer_, rng_, best_weights_, total_steps_, env_->device}; }

  const TrainInputs& in_;
  const TrainSpec& spec_;
  const TrainCallbacks& cb_;
  std::unique_ptr<StrategyEnv> env_;
  std::unique_ptr<ObjectiveStrategy> strategy_;
  at::Generator rng_;  // the model's random draws (CPU; CUDA uses the global one)
  int threads_ = 1;
  bool bf16_ = false;  // forward passes under bf16 autocast (model_train.precision)
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<torch::Tensor> params_;
  LinearSchedule schedule_;
  int64_t steps_per_epoch_ = 0, total_steps_ = 0;
  LoopState s_;
  std::vector<torch::Tensor> best_weights_;
  bool stopped_early_ = false;
  int64_t resumed_from_step_ = -1;
  std::unique_ptr<RunGroup> dp_;  // data-parallel runs only
  bool writes_ = true;            // rank 0, or a run of its own: checkpoints and the model
  double eval_seconds_ = 0;  // of this run, left out of the throughput
};

std::vector<torch::Tensor> Loop::ModelState() const {
  std::vector<torch::Tensor> state = strategy_->Net().parameters();
  for (const auto& b : strategy_->Net().buffers()) state.push_back(b);
  return state;
}

void Loop::KeepBestWeights() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> state = ModelState();
  if (best_weights_.size() != state.size()) {
    best_weights_.clear();
    for (const auto& t : state) best_weights_.push_back(t.detach().clone());
    return;
  }
  for (size_t i = 0; i < state.size(); ++i) best_weights_[i].copy_(state[i]);
}

Status Loop::Checkpoint() {
  if (!writes_) return Status::Ok();  // rank 0 keeps the group's checkpoints
  MLAAS_RETURN_IF_ERROR(SaveCheckpoint(in_.checkpoint_dir, Parts(), s_));
  if (cb_.checkpointed) return cb_.checkpointed(in_.checkpoint_dir / "current", s_.step);
  return Status::Ok();
}

Result<json> Loop::Run() {
  const auto started = Clock::now();
  // A data-parallel member on a GPU host takes the GPU of its local rank (members beyond the
  // host's GPUs share them, in turn).
  const DataParallelConfig* dp_config = in_.data_parallel ? &in_.data_parallel->config() : nullptr;
  const int gpus = static_cast<int>(torch::cuda::device_count());
  auto device = nn::ParseDevice(dp_config && spec_.device == "cuda" && gpus > 0
                                    ? "cuda:" + std::to_string(dp_config->local_rank % gpus)
                                    : spec_.device);
  if (!device) return device.error().WithField("model_train.device");
  env_ = std::make_unique<StrategyEnv>(StrategyEnv{
      .in = in_,
      .spec = spec_,
      .device = *device,
      .log = cb_.log,
      .stop = [this] { return LocalStop(); },
      .preparing = [this](double fraction, const std::string& message) {
        if (cb_.progress) {
          TrainProgress p;
          p.fraction = 0.02 * fraction;
          p.epochs = spec_.epochs;
          p.message = message;
          cb_.progress(p);
        }
        return !LocalStop();
      }});
  if (spec_.precision == Precision::kBFloat16 && !DeviceComputesBf16(*device))
    return InvalidArgument(device->str() + " does not compute in bfloat16: use model_train.precision fp32 (or auto)",
                           "model_train.precision");
  bf16_ = UsesBf16(spec_.precision, *device);
  // Dropout and anything else drawn on the device comes from its default generator: seeded per
  // run (one run at a time per process).
  // (Members of a data-parallel group draw different dropout masks: seed + rank.)
  const uint64_t draw_seed = spec_.seed + (dp_config ? static_cast<uint64_t>(dp_config->rank) : 0);
  if (device->is_cuda()) torch::cuda::manual_seed_all(draw_seed);
  strategy_ = ModalityOf(spec_.objective) == Modality::kImage ? MakeImageStrategy(*env_) : MakeTextStrategy(*env_);
  if (!strategy_) return Unimplemented(std::string(ObjectiveName(spec_.objective)) + " is not trained yet", "model.objective");
  nn::UseCachingCpuAllocator();
  MLAAS_RETURN_IF_ERROR(strategy_->Prepare());
  if (spec_.load_best_model_at_end && strategy_->EvalSize() == 0)
    Log("warn", "load_best_model_at_end: no held-out examples, the last epoch is saved");

  const int64_t batches = (static_cast<int64_t>(strategy_->TrainSize()) + spec_.batch_size - 1) / spec_.batch_size;
  steps_per_epoch_ = (batches + spec_.gradient_accumulation_steps - 1) / spec_.gradient_accumulation_steps;
  total_steps_ = steps_per_epoch_ * spec_.epochs;
  if (spec_.max_steps > 0) total_steps_ = std::min(total_steps_, spec_.max_steps);
  schedule_ = {spec_.optimizer.init_lr, spec_.optimizer.num_warm_steps, total_steps_};
  {
    std::vector<torch::Tensor> decay, no_decay;
    for (const auto& item : strategy_->Net().named_parameters()) {
      if (!item.value().requires_grad()) continue;  // frozen
      (strategy_->Decays(item.key(), item.value()) ? decay : no_decay).push_back(item.value());
      params_.push_back(item.value());
    }
    optimizer_ = MakeOptimizer(spec_.optimizer, std::move(decay), std::move(no_decay));
  }

  std::unique_lock<std::timed_mutex> exclusive(TrainingMutex(), std::try_to_lock);
  if (!exclusive.owns_lock()) {
    Log("info", "waiting for another training task of this process to finish");
    while (!exclusive.try_lock_for(std::chrono::milliseconds(500))) {
      if (LocalStop()) return Cancelled("cancelled while waiting for another training task");
      if (cb_.progress) {
        TrainProgress p;
        p.fraction = 0.02;
        p.epochs = spec_.epochs;
        p.message = "waiting for another training task of this process to finish";
        cb_.progress(p);
      }
    }
  }
  // Threads for this run only (at most one per core), set once the process's training is ours
  // and put back when it ends: model_train.threads must not change what others run with.
  const nn::ScopedThreads threads(spec_.threads > 0 ? spec_.threads
                                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  threads_ = threads.count();
  rng_ = at::make_generator<at::CPUGeneratorImpl>(draw_seed);  // restored from a checkpoint below
  strategy_->SetRandomGenerator(rng_);
  if (!in_.checkpoint_dir.empty()) {
    std::optional<size_t> best_size;
    if (spec_.load_best_model_at_end) best_size = ModelState().size();
    MLAAS_ASSIGN_OR_RETURN(bool resumed, LoadCheckpoint(in_.checkpoint_dir, Parts(), s_, best_size, cb_.log));
    if (resumed) {
      resumed_from_step_ = s_.step;
      Log("info", "resuming from the checkpoint at epoch " + std::to_string(s_.epoch + 1) + ", step " + std::to_string(s_.step));
    }
  }
  if (in_.data_parallel != nullptr) {
    auto opened = RunGroup::Open(*in_.data_parallel, in_.run_key);  // fails when a member does not come
    if (!opened.has_value()) return Unavailable(std::string(kGroupFailed) + ": " + opened.error().message());
    dp_ = std::move(opened).value();
    writes_ = dp_->rank() == 0;
    // Every member starts where rank 0 does: the same step (each read the same checkpoint, or
    // none), the same data, and rank 0's weights.
    const bool first = dp_->rank() == 0;
    const std::vector<double> rank0 =
        dp_->Sum({first ? static_cast<double>(s_.step) : 0.0, first ? static_cast<double>(strategy_->TrainSize()) : 0.0,
                  first ? static_cast<double>(params_.size()) : 0.0});
    const bool differs = rank0[0] != static_cast<double>(s_.step) ||
                         rank0[1] != static_cast<double>(strategy_->TrainSize()) ||
                         rank0[2] != static_cast<double>(params_.size());
    if (dp_->Any(differs))
      return FailedPrecondition("the members of the data-parallel group do not start alike (this one: step " +
                                std::to_string(s_.step) + ", " + std::to_string(strategy_->TrainSize()) +
                                " examples): keep data and checkpoints in shared storage");
    dp_->Broadcast(ModelState());
    dp_->AttachGradients(params_);
    Log("info", "data-parallel: rank " + std::to_string(dp_->rank()) + " of " + std::to_string(dp_->world_size()) +
                    " (local rank " + std::to_string(dp_config->local_rank) + ", on " + env_->device.str() +
                    "), each training on its share of every batch of " + std::to_string(spec_.batch_size));
  }
  Log("info", "training " + std::string(ObjectiveName(spec_.objective)) + ": " + std::to_string(strategy_->TrainSize()) +
                  " examples (" + std::to_string(strategy_->EvalSize()) + " held out), " + std::to_string(spec_.epochs) +
                  " epochs of " + std::to_string(steps_per_epoch_) + " steps, " + std::to_string(threads_) +
                  " threads on " + env_->device.str());

  strategy_->SetTraining(true);
  const auto loop_start = Clock::now();
  const double seconds_before = s_.train_seconds;
  const int64_t units_before = s_.units_seen;
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(Clock::now() - loop_start).count(); };
  int64_t since_checkpoint = 0;
  bool done = s_.step >= total_steps_;
  for (; s_.epoch < spec_.epochs && !done; ++s_.epoch) {
    const Plan whole = strategy_->Batches(s_.epoch);
    std::vector<double> share_scale;
    const Plan plan = dp_ ? ShareOf(whole, dp_->rank(), dp_->world_size(), share_scale) : whole;
    const int64_t n = static_cast<int64_t>(plan.size());
    int64_t micro = 0;
    for (; s_.batch < n; ++s_.batch) {
      // Stop only at optimizer-step boundaries, so a checkpoint never holds half a step (every
      // member of a data-parallel group at the same one).
      if (micro == 0 && (dp_ ? dp_->Any(StopRequested()) : StopRequested())) {
        s_.train_seconds = elapsed();
        if (since_checkpoint > 0 && !in_.checkpoint_dir.empty()) MLAAS_RETURN_IF_ERROR(Checkpoint());
        const std::string at = "epoch " + std::to_string(s_.epoch + 1) + ", step " + std::to_string(s_.step);
        if (!StopRequested())  // another member was cancelled or is shutting down
          return Unavailable(std::string(kAnotherMemberStopped) + ": training stopped at " + at);
        return Cancelled("training stopped at " + at);
      }
      Counters step_counters;
      const bool ends_step = micro + 1 >= spec_.gradient_accumulation_steps || s_.batch + 1 >= n;
      if (dp_) dp_->BeginBackward(ends_step);
      if (!plan[static_cast<size_t>(s_.batch)].empty()) {
        torch::Tensor loss;
        {
          Bf16Autocast autocast(env_->device, bf16_);
          loss = strategy_->TrainStep(plan, s_.epoch, s_.batch, step_counters);
        }
        if (spec_.gradient_accumulation_steps > 1) loss = loss / static_cast<double>(spec_.gradient_accumulation_steps);
        if (dp_) loss = loss * share_scale[static_cast<size_t>(s_.batch)];
        loss.backward();
      }
      if (dp_ && ends_step) dp_->EndBackward();
      s_.counters.Add(step_counters);
      s_.units_seen += step_counters.units;
      ++micro;
      if (!ends_step) continue;
      micro = 0;
      if (spec_.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params_, spec_.max_grad_norm);
      const double lr = schedule_.Rate(s_.step);
      for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
      optimizer_->step();
      optimizer_->zero_grad();
      ++s_.step;
      ++since_checkpoint;
      if (cb_.progress) {
        TrainProgress p;
        p.epoch = s_.epoch + 1;
        p.epochs = spec_.epochs;
        p.step = s_.step;
        p.total_steps = total_steps_;
        p.fraction = 0.02 + 0.97 * static_cast<double>(s_.step) / static_cast<double>(std::max<int64_t>(1, total_steps_));
        p.loss = step_counters.Loss();
        p.learning_rate = lr;
        const double secs = elapsed() - seconds_before - eval_seconds_;
        p.units_per_s = secs > 0 ? static_cast<double>(s_.units_seen - units_before) / secs : 0.0;
        p.unit = std::string(strategy_->Unit());
        p.message = "epoch " + std::to_string(s_.epoch + 1) + "/" + std::to_string(spec_.epochs) + ", step " +
                    std::to_string(s_.step) + "/" + std::to_string(total_steps_);
        p.history = s_.history;
        cb_.progress(p);
      }
      if (s_.step >= total_steps_) {
        done = true;
        ++s_.batch;
        break;
      }
      if (spec_.checkpoint_steps > 0 && s_.step % spec_.checkpoint_steps == 0 && !in_.checkpoint_dir.empty()) {
        ++s_.batch;  // the checkpoint resumes after this batch
        s_.train_seconds = elapsed();
        MLAAS_RETURN_IF_ERROR(Checkpoint());
        --s_.batch;
        since_checkpoint = 0;
      }
    }

    // End of the epoch (or of max_steps): train metrics, evaluation, early stopping.
    if (dp_) {  // the whole group's
      Counters& mine = s_.counters;
      const std::vector<double> all =
          dp_->Sum({mine.loss_sum, mine.weight, static_cast<double>(mine.correct), static_cast<double>(mine.total)});
      mine.loss_sum = all[0];
      mine.weight = all[1];
      mine.correct = static_cast<int64_t>(all[2]);
      mine.total = static_cast<int64_t>(all[3]);
    }
    const Counters& c = s_.counters;
    const double train_loss = c.Loss();
    auto push = [&](const std::string& k, json v) { s_.history[k].push_back(std::move(v)); };
    push("epoch", s_.epoch + 1);
    push("loss", train_loss);
    strategy_->PushTrainMetrics(c, push);
    push("learning_rate", schedule_.Rate(std::max<int64_t>(0, s_.step - 1)));
    if (dp_) {  // statistics kept by the model (BatchNorm): the group's mean, the same everywhere
      std::vector<torch::Tensor> floats;
      for (const auto& b : strategy_->Net().buffers())
        if (b.is_floating_point()) floats.push_back(b);
      dp_->Average(floats);
    }
    const auto eval_start = Clock::now();
    Result<json> evaluated = [&] {
      Bf16Autocast autocast(env_->device, bf16_);
      return strategy_->Evaluate();
    }();
    MLAAS_ASSIGN_OR_RETURN(json ev, std::move(evaluated));
    eval_seconds_ += std::chrono::duration<double>(Clock::now() - eval_start).count();
    for (auto it = ev.begin(); it != ev.end(); ++it) {
      if (it.value().is_number() && it.key() != "masked_tokens") push("eval_" + it.key(), it.value());
    }
    if (!ev.empty()) s_.last_eval = ev;
    std::string line = "epoch " + std::to_string(s_.epoch + 1) + ": loss " + std::to_string(train_loss);
    if (ev.contains("loss")) line += ", eval_loss " + std::to_string(ev["loss"].get<double>());
    for (const auto& k : strategy_->LoggedMetrics()) {
      if (ev.contains(k) && ev[k].is_number()) line += ", eval_" + k + " " + std::to_string(ev[k].get<double>());
    }
    Log("info", line);
    s_.counters = Counters();
    s_.batch = 0;
    if ((spec_.early_stopping.patience > 0 || spec_.load_best_model_at_end) && !ev.empty()) {
      const std::string metric = spec_.early_stopping.metric;
      const std::string key = metric.rfind("eval_", 0) == 0 ? metric.substr(5) : metric;
      if (ev.contains(key) && ev[key].is_number()) {
        double v = ev[key];
        const bool better = !s_.best || (LowerIsBetter(metric) ? v < *s_.best - spec_.early_stopping.min_delta
                                                               : v > *s_.best + spec_.early_stopping.min_delta);
        if (better) {
          s_.best = v;
          s_.bad_epochs = 0;
          if (spec_.load_best_model_at_end) {
            s_.best_epoch = s_.epoch + 1;
            s_.best_eval = ev;
            KeepBestWeights();
          }
        } else if (++s_.bad_epochs >= spec_.early_stopping.patience && spec_.early_stopping.patience > 0) {
          Log("info", "early stopping: " + metric + " has not improved for " + std::to_string(s_.bad_epochs) + " epochs");
          stopped_early_ = true;
          done = true;
        }
      }
    }
    if (dp_) done = dp_->Sum({dp_->rank() == 0 && done ? 1.0 : 0.0})[0] > 0;  // rank 0 decides
    if (!in_.checkpoint_dir.empty() && !done) {
      ++s_.epoch;  // the checkpoint resumes at the next epoch
      s_.train_seconds = elapsed();
      MLAAS_RETURN_IF_ERROR(Checkpoint());
      --s_.epoch;
      since_checkpoint = 0;
    }
    // After the checkpoint (a stop here loses no work). A cancellation while it waits (a pruned
    // trial) ends a data-parallel run at the next step boundary, where the members stop together.
    if (cb_.epoch_end && writes_ && !done) {
      Status st = cb_.epoch_end(s_.epoch + 1, s_.history);
      if (!st.ok() && !(dp_ && st.code() == StatusCode::kCancelled)) return st;
    }
  }
  s_.train_seconds = elapsed();
  if (spec_.load_best_model_at_end && s_.best_epoch > 0) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> state = ModelState();
    for (size_t i = 0; i < state.size(); ++i) state[i].copy_(best_weights_[i]);
    s_.last_eval = s_.best_eval;
    Log("info", "keeping epoch " + std::to_string(s_.best_epoch) + ", the best by " + spec_.early_stopping.metric);
  }

  // The trained model directory (rank 0's, in a data-parallel run).
  if (writes_) {
    std::error_code ec;
    fs::create_directories(in_.output_dir, ec);
    if (ec) return Internal("cannot create the output directory: " + ec.message());
    MLAAS_RETURN_IF_ERROR(strategy_->Finish(in_.output_dir, s_.last_eval));
  }
  strategy_->SetTraining(false);

  const double loop_seconds = s_.train_seconds - seconds_before - eval_seconds_;
  json stats = {{"device", env_->device.str()},
                {"precision", bf16_ ? "bfloat16" : "float32"},
                {"threads", threads_},
                {"steps", s_.step},
                {"epochs_run", s_.history.contains("loss") ? s_.history["loss"].size() : 0},
                {"train_seconds", s_.train_seconds},
                {std::string(strategy_->Unit()) + "_per_s",
                 loop_seconds > 0 ? static_cast<double>(s_.units_seen - units_before) / loop_seconds : 0.0},
                {"stopped_early", stopped_early_},
                {"wall_seconds", std::chrono::duration<double>(Clock::now() - started).count()}};
  if (resumed_from_step_ >= 0) stats["resumed_from_step"] = resumed_from_step_;
  if (dp_)
    stats["data_parallel"] = {
        {"world_size", dp_->world_size()}, {"rank", dp_->rank()}, {"local_rank", in_.data_parallel->config().local_rank}};
  if (spec_.load_best_model_at_end && s_.best_epoch > 0) {
    stats["best_epoch"] = s_.best_epoch;
    stats["best_metric"] = {{"name", spec_.early_stopping.metric}, {"value", *s_.best}};
  }
  return json{{"history", s_.history},
              {"evaluation", s_.last_eval},
              {"dataset", strategy_->DatasetReport()},
              {"stats", stats},
              {"model", strategy_->ModelReport()}};
}

// The run, its exceptions as statuses.
Result<json> RunLoop(Loop& loop, const TrainInputs& inputs) {
  try {
    return loop.Run();
  } catch (const c10::OutOfMemoryError&) {
    // A device's memory (CUDA): what the run held is released as the loop unwinds.
    return Status(StatusCode::kResourceExhausted,
                  "the device ran out of memory with batches of " + std::to_string(inputs.spec.batch_size) +
                      ": lower model_train.batch_size (or max_length), or use gradient_accumulation_steps",
                  "model_train.batch_size");
  } catch (const GroupLost& e) {  // a collective failed: a member of the group went away
    return Unavailable(std::string(kGroupFailed) + ": " + e.what());
  } catch (const c10::Error& e) {
    return Internal(std::string("training failed: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted,
                  "not enough memory for this model with batches of " + std::to_string(inputs.spec.batch_size) +
                      ": lower model_train.batch_size",
                  "model_train.batch_size");
  } catch (const std::exception& e) {
    std::string what = e.what();
    return Internal("training failed: " + what.substr(0, what.find('\n')));
  }
}

}  // namespace

Result<json> RunTraining(const TrainInputs& inputs, const TrainCallbacks& callbacks) {
  Loop loop(inputs, callbacks);
  Result<json> result = RunLoop(loop, inputs);
  // A member's own failure (not the group's) is told to rank 0 while this member's share of the
  // group still stands: rank 0 finds it as soon as its collectives fail.
  if (!result.has_value() && inputs.data_parallel != nullptr && inputs.data_parallel->rank() != 0 &&
      !IsGroupFailure(result.error()))
    (void)inputs.data_parallel->ReportFailure(inputs.run_key, result.error().message());
  return result;
}

}  // namespace mlaas::train
