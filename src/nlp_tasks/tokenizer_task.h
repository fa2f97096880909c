// mlaas::nlp_tasks — NLP work that runs as durable tasks. Here: training a tokenizer on a
// dataset column from the object store (POST /api/v1/ml/nlp/train/tokenizer).
#pragma once

#include "storage/storage_registry.h"
#include "tasks/task_manager.h"

namespace mlaas::nlp_tasks {

// Params: {"tokenizer_train": {model, vocab_size, min_frequency, special_tokens, lowercase,
// limit_alphabet}, "dataset": {path, storage_type, format?, loader_kwargs:
// {page_content_column (default "text"), ...}}, "model_save": {path, storage_type}}.
// Result: {"tokenizer": {...}, "dataset": {...}, "coverage": ..., "stats": {...}}.
inline constexpr const char* kTrainTokenizerTask = "nlp_train_tokenizer";
tasks::TaskHandler MakeTrainTokenizerHandler(const storage::StorageRegistry& storage);

}  // namespace mlaas::nlp_tasks
