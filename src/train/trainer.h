// mlaas::train — training on libtorch (behind a torch-free interface), for every objective:
// the text ones (classification, masked-LM, sentence embeddings) and image classification,
// each a strategy (strategy.h) of one loop: AdamW/Adam/SGD with decoupled weight decay except
// on biases and norms, linear warm-up then linear decay, gradient clipping and accumulation,
// evaluation after each epoch, early stopping, and checkpoints (model, optimizer, schedule,
// RNG and data position) from which an interrupted run resumes exactly.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dataset/image_dataset.h"
#include "train/text_data.h"
#include "train/train_spec.h"

namespace mlaas::train {

// How a data-parallel run's error begins when another member stopped it (cancelled, or its
// worker shutting down) rather than failed.
inline constexpr std::string_view kAnotherMemberStopped = "another member of the data-parallel group stopped";
// How it begins when the group itself failed (a collective's error: a member went away).
inline constexpr std::string_view kGroupFailed = "data-parallel training failed (a member of the group may have stopped)";
// True for the errors that are the group's, not a member's own: cancelled, another member
// stopped, or the group failed.
inline bool IsGroupFailure(const Status& st) {
  return st.code() == StatusCode::kCancelled ||
         (st.code() == StatusCode::kUnavailable &&
          (st.message().starts_with(kGroupFailed) || st.message().starts_with(kAnotherMemberStopped)));
}

class DataParallelGroup;  // data_parallel.h

struct TrainInputs {
  TrainSpec spec;
  // The starting model: a directory (config.json [+ weights]) or, when empty, the request's
  // model block with "preset" or "config" (from scratch).
  std::optional<std::filesystem::path> model_dir;
  nlohmann::json model_block = nlohmann::json::object();
  // Text objectives.
  std::filesystem::path tokenizer;  // tokenizer.json, vocab.txt or a directory
  std::vector<TextExample> train, eval;
  ReadStats read_stats;             // reported in the result's dataset block
  int64_t augmented = 0;            // training examples added by augmentation
  // Image classification: the decoded images of both splits (labels index `image_labels`).
  std::vector<dataset::ImageExample> train_images, eval_images;
  std::vector<std::string> image_labels;
  int64_t skipped_images = 0;                 // undecodable images left out
  std::vector<std::string> skipped_examples;  // the first of them: "<key>: <why>"
  // Checkpoints live here; when it holds one, training resumes from it.
  std::filesystem::path checkpoint_dir;
  std::filesystem::path output_dir;  // the trained model directory is written here
  // The largest model trained: its weights, gradients and AdamW's two moments (4x the float32
  // weight bytes from its config) at most this; checked before the model is built. 0: no limit.
  uint64_t max_model_bytes = 0;
  // Data-parallel training (data_parallel.h): this process's group and the run's key, the same
  // on every member. Each member trains on its share of every batch with the gradients averaged
  // over all; only rank 0 writes checkpoints and the model (the others read the checkpoint to
  // resume from, and write nothing).
  DataParallelGroup* data_parallel = nullptr;
  std::string run_key;
};

struct TrainProgress {
  double fraction = 0;
  int64_t epoch = 0, epochs = 0, step = 0, total_steps = 0;
  double loss = 0, learning_rate = 0;
  double units_per_s = 0;  // throughput in `unit`s ("tokens", "images") per second
  std::string unit = "tokens";
  std::string message;
  nlohmann::json history = nlohmann::json::object();  // the epochs ended so far (as the result's history)
};

struct TrainCallbacks {
  std::function<bool()> cancelled;  // polled between steps
  std::function<void(const TrainProgress&)> progress;
  std::function<void(std::string_view level, const std::string& message)> log;
  // After each checkpoint is complete in checkpoint_dir/current (at optimizer step `step`):
  // where it should also go (a shared store, so another host can resume); an error fails the run.
  std::function<Status(const std::filesystem::path& dir, int64_t step)> checkpointed;
  // After each epoch's evaluation and checkpoint, unless the run ends there (rank 0 only, in a
  // data-parallel run): the epoch (from 1) and the history so far. An error stops the run with
  // it (a sweep's trial waits here for the sweep's verdict on its rung, and is cancelled when
  // pruned); a data-parallel run stops on Cancelled at the next step boundary, all together.
  std::function<Status(int64_t epoch, const nlohmann::json& history)> epoch_end;
};

// Trains and writes the model directory (config.json, model.safetensors, tokenizer files) to
// inputs.output_dir. Returns {"history", "evaluation", "dataset", "stats", "model"}.
// Cancelled (keeping the last checkpoint) when callbacks.cancelled() turns true.
Result<nlohmann::json> RunTraining(const TrainInputs& inputs, const TrainCallbacks& callbacks);

}  // namespace mlaas::train
