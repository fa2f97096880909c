#include "vector/embedder.h"

#include <algorithm>
#include <numeric>

namespace mlaas::vector {

namespace fs = std::filesystem;
using json = nlohmann::json;

Status CheckEmbeddingObjective(const std::string& objective) {
  if (objective != "no-objective" && objective != "sentence-embedding" && objective != "masked-lm")
    return InvalidArgument("embeddings come from a no-objective, sentence-embedding or masked-lm model (its encoder)",
                           "model.objective");
  return Status::Ok();
}

Result<storage::ObjectRef> ResolveModelDirectory(const storage::StorageRegistry& storage, const json& model_block) {
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(model_block, "model"));
  if (!ref.store->Stat(ref.key + "/config.json").has_value())
    return InvalidArgument("no model directory (config.json) at '" + ref.key + "'", "model.path");
  return ref;
}

EmbeddingModels::EmbeddingModels(const storage::StorageRegistry& storage, fs::path scratch, size_t capacity,
                                 std::shared_ptr<predict::ModelCache> cache)
    : storage_(storage),
      scratch_(std::move(scratch)),
      cache_(cache ? std::move(cache) : std::make_shared<predict::ModelCache>(capacity, 0)) {}

Result<EmbeddingModel> EmbeddingModels::Get(const json& model_block, const json& tokenizer_block) {
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, ResolveModelDirectory(storage_, model_block));
  MLAAS_ASSIGN_OR_RETURN(predict::ModelFiles files, predict::LocalizeDirectory(ref, "model.path", scratch_));
  // The same weights with another tokenizer are another model.
  const std::string key = files.fingerprint + "|tokenizer=" + (tokenizer_block.is_null() ? "" : tokenizer_block.dump());
  MLAAS_ASSIGN_OR_RETURN(predict::LoadedPtr model, cache_->Get("embeddings|" + key, [&]() -> Result<predict::LoadedPtr> {
    predict::LoadSpec spec;
    spec.model_dir = files.path;
    spec.objective = "no-objective";
    spec.source = model_block.value("path", std::string());
    predict::ModelFiles tokenizer_files;
    if (!tokenizer_block.is_null()) {
      MLAAS_ASSIGN_OR_RETURN(tokenizer_files, predict::LocalizeTokenizer(storage_, tokenizer_block, "tokenizer", scratch_));
      spec.tokenizer = tokenizer_files.path;
    }
    spec.admit = [this](uint64_t bytes) {
      return predict::CheckModelBytes(bytes, cache_->max_bytes(), "the model cache's memory budget");
    };
    return predict::ServableModel::Load(spec);
  }));
  return EmbeddingModel{std::move(model), files.fingerprint, key, ref.key, std::string(ref.store->storage_type()),
                        files.holder};
}

Result<std::vector<float>> EmbedTexts(const predict::ServableModel& model, const std::vector<std::string>& texts,
                                      const predict::OutputOptions& options, const std::string& field,
                                      const std::function<Status(size_t, size_t)>& progress, size_t* tokens,
                                      size_t batch) {
  MLAAS_ASSIGN_OR_RETURN(auto encodings, model.EncodeTexts(texts, field));
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return predict::RowCost(encodings[a]) > predict::RowCost(encodings[b]); });
  const auto dim = static_cast<size_t>(model.info().embedding_size);
  std::vector<float> vectors(texts.size() * dim);
  batch = std::max<size_t>(1, batch);
  for (size_t start = 0; start < order.size(); start += batch) {
    const size_t end = std::min(order.size(), start + batch);
    std::vector<const predict::ModelRow*> rows;
    for (size_t i = start; i < end; ++i) {
      rows.push_back(&encodings[order[i]]);
      if (tokens) *tokens += static_cast<size_t>(predict::RowCost(encodings[order[i]]));
    }
    MLAAS_ASSIGN_OR_RETURN(auto out, model.Embed(rows, options));
    for (size_t i = start; i < end; ++i)
      std::copy_n(out.begin() + static_cast<std::ptrdiff_t>((i - start) * dim), dim,
                  vectors.begin() + static_cast<std::ptrdiff_t>(order[i] * dim));
    if (progress) MLAAS_RETURN_IF_ERROR(progress(end, order.size()));
  }
  return vectors;
}

}  // namespace mlaas::vector
