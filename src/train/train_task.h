// mlaas::train — model training as a durable task (POST /api/v1/ml/nlp/train/model and
// /api/v1/ml/cv/train/model):
// reads the dataset from the object store, splits and augments it, trains (trainer.h) with
// checkpoints under the data directory, and writes the model directory with its model card
// to model_save. No libtorch in this header.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "storage/storage_registry.h"
#include "tasks/task_manager.h"

namespace mlaas::train {

class DataParallelGroup;  // data_parallel.h

inline constexpr const char* kTrainNlpModelTask = "nlp_train_model";
inline constexpr const char* kTrainCvModelTask = "cv_train_model";

struct TrainTaskOptions {
  std::filesystem::path scratch;          // local copies of remote models, outputs in progress
  std::filesystem::path checkpoint_root;  // <root>/<task id>/ holds a task's checkpoints
  uint64_t max_model_bytes = 0;           // TrainInputs::max_model_bytes (0: no limit)
  // When set (the server's own store is shared, e.g. S3), checkpoints are also kept there under
  // .mlaas/checkpoints/<task id>/ and a retry with none on its disk resumes from them.
  storage::ObjectStore* checkpoint_store = nullptr;
  // This process's data-parallel group, when it is a member of one (`mlaas worker` with
  // WORLD_SIZE > 1): a task asking resources.workers = its size trains across the group. Rank 0
  // (which claimed the task) hands it to the others, trains, and writes checkpoints and the model;
  // the others run it detached (TaskManager::RunDetached) and write nothing.
  DataParallelGroup* data_parallel = nullptr;
  // A group gathered through the database for one task (TaskContext::group(), the worker not in
  // a torchrun group): the address its rank 0 serves the group's store on (a free port of this
  // host) and tells the others, and how long members wait for one another.
  std::string group_host = "127.0.0.1";
  std::chrono::milliseconds group_timeout{std::chrono::minutes(5)};
};

tasks::TaskHandler MakeTrainNlpModelHandler(const storage::StorageRegistry& storage, TrainTaskOptions options);

// Submit-time checks: the request's fields, the tokenizer (required unless the model directory
// has one), that the model and dataset exist and the dataset has the columns asked for.
tasks::TaskValidator MakeTrainNlpModelValidator(const storage::StorageRegistry& storage);

// Image classification (POST /api/v1/ml/cv/train/model): the image dataset read from the
// object store (dataset::ReadImageDataset), split stratified (or dataset.eval_dataset), trained
// from a preset or a saved image model, published the same way.
tasks::TaskHandler MakeTrainCvModelHandler(const storage::StorageRegistry& storage, TrainTaskOptions options);
tasks::TaskValidator MakeTrainCvModelValidator(const storage::StorageRegistry& storage);

}  // namespace mlaas::train
