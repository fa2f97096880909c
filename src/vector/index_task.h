// The vector-indexing task (POST /api/v1/ml/nlp/vector/index): reads a dataset's documents,
// embeds them with a model (objective no-objective) in batches, builds a VectorStore and saves
// it to vector_store_save (manifest last). Torch-free header.
#pragma once

#include <filesystem>

#include "storage/storage_registry.h"
#include "tasks/task_manager.h"

namespace mlaas::vector {

inline constexpr const char* kVectorIndexTask = "nlp_vector_index";

// Submit-time checks: the model and tokenizer exist, the dataset and its columns, the index
// options; InvalidArgument naming the field.
tasks::TaskValidator MakeVectorIndexValidator(const storage::StorageRegistry& storage);
// `scratch`: where the store is assembled (and remote models copied) before the upload.
tasks::TaskHandler MakeVectorIndexHandler(const storage::StorageRegistry& storage, std::filesystem::path scratch);

}  // namespace mlaas::vector
