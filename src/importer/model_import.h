// mlaas::importer — bringing a pretrained model into the object store in the layout mlaas
// serves and trains from: `mlaas model import hf://org/name[@rev] --output KEY`, or the task of
// POST /api/v1/ml/models/import. The model's files are read from any store (the Hugging Face
// Hub through its cache, S3, the server's own), PyTorch checkpoints (pytorch_model.bin, sharded
// or not; sentence-transformers' 2_Dense too) become safetensors through the restricted
// unpickler (a malicious pickle is refused, never run), formats mlaas does not read (TensorFlow,
// Flax, ONNX, ...) are left behind, and config.json is written last, so a reader never sees a
// half-imported model.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "storage/storage_registry.h"
#include "tasks/task_manager.h"

namespace mlaas::importer {

// What a model directory's file becomes in the import.
enum class FileAction { kCopy, kConvert, kSkip };

// By its path in the model directory (and whether the directory has safetensors weights of its
// own, which make its PyTorch weights redundant).
FileAction ActionFor(const std::string& relative_path, bool has_safetensors);

// The safetensors name a PyTorch weights file becomes: "pytorch_model.bin" ->
// "model.safetensors", "2_Dense/pytorch_model.bin" -> "2_Dense/model.safetensors"; shards of
// one checkpoint all map to one model.safetensors of their directory.
std::string SafetensorsNameFor(const std::string& relative_path);

// Params: {"model": {path, storage_type, revision?} (the source directory),
//          "model_save": {path, storage_type}}.
// Result: {"model": {path, storage_type, files: [...], converted: [{from: [...], to}], skipped:
//          [...], source: {...}}}.
inline constexpr const char* kImportModelTask = "import_model";
tasks::TaskHandler MakeImportModelHandler(const storage::StorageRegistry& storage, std::filesystem::path scratch);
tasks::TaskValidator MakeImportModelValidator(const storage::StorageRegistry& storage);

}  // namespace mlaas::importer
