#include "importer/model_import.h"

#include <map>
#include <system_error>

#include "checkpoint/pytorch_pickle.h"
#include "common/file_util.h"
#include "common/text.h"
#include "storage/listing.h"

namespace mlaas::importer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

bool IsPytorchWeights(const std::string& path) {
  const std::string base = BaseName(path);
  return StartsWith(base, "pytorch_model") && EndsWith(base, ".bin");
}

}  // namespace

FileAction ActionFor(const std::string& path, bool has_safetensors) {
  const std::string base = BaseName(path);
  if (base.empty() || base[0] == '.') return FileAction::kSkip;  // .gitattributes, ...
  // and anything in a dot-folder (.git/config, .cache/...).
  if (path[0] == '.' || path.find("/.") != std::string::npos) return FileAction::kSkip;
  // Weights and exports of other frameworks, and the hub's ONNX / OpenVINO / Core ML folders.
  for (const char* folder : {"onnx/", "openvino/", "coreml/", "runs/", "checkpoint-"})
    if (StartsWith(path, folder) || path.find(std::string("/") + folder) != std::string::npos) return FileAction::kSkip;
  for (const char* suffix : {".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".tflite", ".mlmodel", ".pb", ".ckpt",
                             ".index", ".data-00000-of-00001", ".pt", ".pth", ".gguf", ".ggml"})
    if (EndsWith(base, suffix)) return FileAction::kSkip;
  if (StartsWith(base, "tf_model") || StartsWith(base, "flax_model") || StartsWith(base, "rust_model")) return FileAction::kSkip;
  if (IsPytorchWeights(path)) {
    // A directory with safetensors weights needs no second copy of them.
    return has_safetensors ? FileAction::kSkip : FileAction::kConvert;
  }
  // A sharded checkpoint's index: its shards become one model.safetensors.
  if (StartsWith(base, "pytorch_model") && EndsWith(base, ".bin.index.json")) return FileAction::kSkip;
  return FileAction::kCopy;
}

std::string SafetensorsNameFor(const std::string& path) { return DirName(path) + "model.safetensors"; }

tasks::TaskValidator MakeImportModelValidator(const storage::StorageRegistry& storage) {
  return [&storage](const json& params) -> Status {
    MLAAS_RETURN_IF_ERROR(storage.Resolve(params.value("model", json::object()), "model").status());
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef out, storage.Resolve(params.value("model_save", json::object()), "model_save"));
    if (out.store->storage_type() == "hugging_face_hub")
      return InvalidArgument("the Hugging Face Hub is read-only here: import into local or s3 storage", "model_save.storage_type");
    return Status::Ok();
  };
}

tasks::TaskHandler MakeImportModelHandler(const storage::StorageRegistry& storage, fs::path scratch) {
  return [&storage, scratch](tasks::TaskContext& ctx) -> Result<json> {
    const json& params = ctx.params();
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef source, storage.Resolve(params["model"], "model"));
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef out, storage.Resolve(params["model_save"], "model_save"));
    const std::string prefix = source.key + "/";
    ctx.ReportProgress({.fraction = 0.0, .message = "listing " + params["model"].value("path", std::string())});
    MLAAS_ASSIGN_OR_RETURN(std::vector<storage::ObjectInfo> objects, storage::ListAllObjects(*source.store, prefix, 100000));
    std::map<std::string, storage::ObjectInfo> files;  // by path in the directory
    for (auto& o : objects) {
      // Relative paths without ".." only (S3 keys may hold anything): nothing is written
      // outside the import's directory.
      const std::string rel = o.key.substr(prefix.size());
      if (Status st = storage::ValidateKey(rel); !st.ok())
        return InvalidArgument("the model directory holds a file whose name is not a path: '" + rel + "'", "model.path");
      files[rel] = o;
    }
    if (!files.count("config.json"))
      return InvalidArgument("no model directory with a config.json at '" + params["model"].value("path", std::string()) + "'",
                             "model.path");
    // Per directory (the model's, 2_Dense/, ...): safetensors weights there already?
    std::map<std::string, bool> has_safetensors;
    for (const auto& [path, info] : files)
      if (EndsWith(path, ".safetensors") || EndsWith(path, ".safetensors.index.json")) has_safetensors[DirName(path)] = true;

    const fs::path dir = scratch / ("import-" + ctx.id());
    std::error_code ec;
    fs::remove_all(dir, ec);
    struct Cleanup {
      fs::path dir;
      ~Cleanup() {
        std::error_code e;
        fs::remove_all(dir, e);
      }
    } cleanup{dir};
    std::map<std::string, std::vector<std::string>> to_convert;  // safetensors name -> its PyTorch files
    json skipped = json::array();
    uint64_t total = 0, done = 0;
    for (const auto& [path, info] : files) total += info.size;
    auto progress = [&](const std::string& what) {
      ctx.ReportProgress({.fraction = total ? 0.95 * static_cast<double>(done) / static_cast<double>(total) : 0.0,
                          .message = what});
    };
    for (const auto& [path, info] : files) {
      MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
      const FileAction action = ActionFor(path, has_safetensors[DirName(path)]);
      if (action == FileAction::kSkip) {
        skipped.push_back(path);
        done += info.size;
        continue;
      }
      if (action == FileAction::kConvert) {
        to_convert[SafetensorsNameFor(path)].push_back(path);
        continue;
      }
      progress("fetching " + path + " (" + FormatBytes(info.size) + ")");
      MLAAS_ASSIGN_OR_RETURN(storage::LocalizedPath local, source.store->Localize(info.key));
      const fs::path dest = dir / path;
      fs::create_directories(dest.parent_path(), ec);
      fs::copy_file(local.path(), dest, fs::copy_options::overwrite_existing, ec);
      if (ec) return Internal("cannot copy " + path + ": " + ec.message());
      done += info.size;
    }
    json converted = json::array();
    for (const auto& [name, parts] : to_convert) {
      std::vector<checkpoint::LoadedTensor> tensors;
      for (const auto& path : parts) {
        MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
        progress("converting " + path + " (" + FormatBytes(files[path].size) + ")");
        MLAAS_ASSIGN_OR_RETURN(storage::LocalizedPath local, source.store->Localize(files[path].key));
        auto read = checkpoint::ReadPytorchStateDict(local.path());
        if (!read.has_value()) return read.error().WithContext("model.path: " + path);
        for (auto& t : *read) tensors.push_back(std::move(t));
        done += files[path].size;
      }
      MLAAS_ASSIGN_OR_RETURN(std::string image, checkpoint::ToSafetensors(std::move(tensors)));
      fs::create_directories((dir / name).parent_path(), ec);
      MLAAS_RETURN_IF_ERROR(WriteFileAtomic(dir / name, image));
      converted.push_back({{"from", parts}, {"to", name}});
      ctx.Log("info", "converted " + Join(parts, ", ") + " to " + name);
    }
    progress("writing the model to " + out.key);
    auto keys = out.store->PutDirectory(out.key, dir, "config.json");
    if (!keys.has_value()) return keys.error().WithField("model_save.path");
    json written = json::array();
    for (const auto& k : *keys) written.push_back(k.substr(out.key.size() + 1));
    ctx.Log("info", "imported " + std::to_string(written.size()) + " files into " + out.key);
    return json{{"model",
                 {{"path", out.key},
                  {"storage_type", std::string(out.store->storage_type())},
                  {"files", written},
                  {"converted", converted},
                  {"skipped", skipped},
                  {"source", params["model"]}}}};
  };
}

}  // namespace mlaas::importer
