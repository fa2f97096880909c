#include "vector/searcher.h"

#include <map>
#include <mutex>

#include "predict/model_files.h"
#include "predict/servable_model.h"
#include "vector/vector_store.h"

namespace mlaas::vector {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct VectorSearcher::Impl {
  Impl(const storage::StorageRegistry& s, fs::path dir) : storage(s), scratch(std::move(dir)) {}
  const storage::StorageRegistry& storage;
  fs::path scratch;
  std::mutex mu;
  // Loaded stores and models by their files' fingerprints (a few of each, oldest out).
  std::map<std::string, std::shared_ptr<VectorStore>> stores;
  std::map<std::string, std::shared_ptr<const predict::ServableModel>> models;

  template <class T>
  static void Keep(std::map<std::string, T>& cache, const std::string& key, T value) {
    if (cache.size() >= 4) cache.erase(cache.begin());
    cache[key] = std::move(value);
  }
};

VectorSearcher::VectorSearcher(const storage::StorageRegistry& storage, fs::path scratch)
    : impl_(std::make_unique<Impl>(storage, std::move(scratch))) {}
VectorSearcher::~VectorSearcher() = default;

Result<json> VectorSearcher::Search(const json& request) {
  Impl& m = *impl_;
  const json input = request.value("search_input", json::object());
  const auto texts = input.value("input_text", std::vector<std::string>{});
  if (texts.empty()) return InvalidArgument("input_text must hold at least one query", "search_input.input_text");
  const int64_t top_k = input.value("top_k", int64_t{4});
  if (top_k < 1) return InvalidArgument("top_k must be at least 1", "search_input.top_k");

  // The store.
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef store_ref, m.storage.Resolve(request.value("dataset", json::object()), "dataset"));
  if (!store_ref.store->Stat(store_ref.key + "/manifest.json").has_value())
    return InvalidArgument("no vector store at '" + store_ref.key + "' (manifest.json is missing)", "dataset.path");
  MLAAS_ASSIGN_OR_RETURN(predict::ModelFiles store_files, predict::LocalizeDirectory(store_ref, "dataset.path", m.scratch));
  std::shared_ptr<VectorStore> store;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (auto it = m.stores.find(store_files.fingerprint); it != m.stores.end()) store = it->second;
  }
  if (!store) {
    auto loaded = VectorStore::Load(store_files.path);
    if (!loaded.has_value()) return InvalidArgument(loaded.error().message(), "dataset.path");
    store = std::shared_ptr<VectorStore>(std::move(*loaded));
    std::lock_guard<std::mutex> lock(m.mu);
    Impl::Keep(m.stores, store_files.fingerprint, store);
  }
  const json manifest = store->manifest();

  // The model: the one that embedded the documents.
  const json model_block = request.value("model", json::object());
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef model_ref, m.storage.Resolve(model_block, "model"));
  MLAAS_ASSIGN_OR_RETURN(predict::ModelFiles model_files, predict::LocalizeDirectory(model_ref, "model.path", m.scratch));
  const std::string built_with = manifest.value("model", json::object()).value("fingerprint", std::string());
  if (!built_with.empty() && built_with != model_files.fingerprint) {
    return InvalidArgument("the vector store was built with the model at '" +
                               manifest["model"].value("path", std::string()) +
                               "'; this model's files differ, so its embeddings would not match",
                           "model.path");
  }
  std::shared_ptr<const predict::ServableModel> model;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (auto it = m.models.find(model_files.fingerprint); it != m.models.end()) model = it->second;
  }
  if (!model) {
    predict::LoadSpec spec;
    spec.model_dir = model_files.path;
    spec.objective = "no-objective";
    spec.source = model_block.value("path", std::string());
    predict::ModelFiles tokenizer_files;
    if (request.contains("tokenizer")) {
      MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef tref, m.storage.Resolve(request["tokenizer"], "tokenizer"));
      MLAAS_ASSIGN_OR_RETURN(tokenizer_files, predict::LocalizeTokenizer(tref, "tokenizer.path", m.scratch));
      spec.tokenizer = tokenizer_files.path;
    }
    MLAAS_ASSIGN_OR_RETURN(model, predict::ServableModel::Load(spec));
    std::lock_guard<std::mutex> lock(m.mu);
    Impl::Keep(m.models, model_files.fingerprint, model);
  }
  if (model->info().hidden_size != store->dim())
    return InvalidArgument("the model makes " + std::to_string(model->info().hidden_size) +
                               "-dimensional embeddings; the store holds " + std::to_string(store->dim()),
                           "model.path");

  // The queries, embedded as the documents were.
  MLAAS_ASSIGN_OR_RETURN(auto encodings, model->Encode(texts, "search_input.input_text"));
  std::vector<const tokenizers::Encoding*> rows;
  for (const auto& e : encodings) rows.push_back(&e);
  predict::OutputOptions options;
  options.cls_pooling = manifest.value("pooling", std::string("mean")) == "cls";
  options.normalize = manifest.value("normalize", true);
  MLAAS_ASSIGN_OR_RETURN(auto embedded, model->Run(rows, options));
  std::vector<float> queries;
  for (const auto& e : embedded)
    for (const auto& x : e["embedding"]) queries.push_back(x.get<float>());
  MLAAS_ASSIGN_OR_RETURN(auto hits, store->Search(queries, static_cast<size_t>(top_k)));
  json results = json::array();
  for (const auto& per_query : hits) {
    json list = json::array();
    for (const auto& h : per_query)
      list.push_back({{"id", h.document.id}, {"page_content", h.document.page_content},
                      {"metadata", h.document.metadata}, {"score", h.score}});
    results.push_back(std::move(list));
  }
  return json{{"results", std::move(results)}, {"metric", manifest.value("metric", std::string("l2"))}};
}

}  // namespace mlaas::vector
