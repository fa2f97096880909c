#include "vector/index_task.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "common/time_util.h"
#include "vector/documents.h"
#include "vector/embedder.h"
#include "vector/vector_store.h"

namespace mlaas::vector {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// What the request asks for, checked.
struct IndexRequest {
  IndexSpec index;
  bool cls_pooling = false;
  std::optional<bool> normalize;  // unset: as the model's similarity says
  bool metric_given = false;
  DocumentColumns columns;
};

Result<IndexRequest> ParseRequest(const json& params) {
  IndexRequest r;
  const json save = params.value("vector_store_save", json::object());
  const json index = save.value("index", json());
  MLAAS_ASSIGN_OR_RETURN(r.index, IndexSpec::FromJson(index, "vector_store_save.index"));
  r.cls_pooling = save.value("pooling", std::string("mean")) == "cls";
  if (auto n = save.find("normalize"); n != save.end()) {
    if (!n->is_boolean()) return InvalidArgument("normalize must be true or false", "vector_store_save.normalize");
    r.normalize = n->get<bool>();
  }
  r.metric_given = index.is_object() && index.contains("metric");
  MLAAS_ASSIGN_OR_RETURN(r.columns, DocumentColumns::FromLoaderKwargs(
                                        params.value("dataset", json::object()).value("loader_kwargs", json())));
  return r;
}

Status CheckModel(const storage::StorageRegistry& storage, const json& params) {
  const json model = params.value("model", json::object());
  if (!model.contains("path"))
    return InvalidArgument("indexing needs a trained model directory (model.path)", "model.path");
  MLAAS_RETURN_IF_ERROR(CheckEmbeddingObjective(model.value("objective", std::string())));
  MLAAS_RETURN_IF_ERROR(ResolveModelDirectory(storage, model).status());
  if (params.contains("tokenizer")) MLAAS_RETURN_IF_ERROR(storage.Resolve(params["tokenizer"], "tokenizer").status());
  return storage.Resolve(params.value("vector_store_save", json::object()), "vector_store_save").status();
}

Status Validate(const storage::StorageRegistry& storage, const json& params) {
  MLAAS_RETURN_IF_ERROR(CheckModel(storage, params));
  MLAAS_ASSIGN_OR_RETURN(IndexRequest r, ParseRequest(params));
  return CheckDocuments(storage, params.value("dataset", json::object()), r.columns).status();
}

}  // namespace

tasks::TaskValidator MakeVectorIndexValidator(const storage::StorageRegistry& storage) {
  return [&storage](const json& params) { return Validate(storage, params); };
}

tasks::TaskHandler MakeVectorIndexHandler(const storage::StorageRegistry& storage, fs::path scratch) {
  return [&storage, scratch](tasks::TaskContext& ctx) -> Result<json> {
    const auto started = std::chrono::steady_clock::now();
    const json& params = ctx.params();
    MLAAS_RETURN_IF_ERROR(CheckModel(storage, params));
    MLAAS_ASSIGN_OR_RETURN(IndexRequest req, ParseRequest(params));

    ctx.Log("info", "loading the model " + params["model"].value("path", std::string()));
    EmbeddingModels models(storage, scratch, 1);
    MLAAS_ASSIGN_OR_RETURN(EmbeddingModel model, models.Get(params["model"], params.value("tokenizer", json())));
    // A model trained for the inner product (similarity "dot") is indexed so unless the request says otherwise.
    const bool dot = model.model->info().similarity == "dot";
    if (!req.normalize) req.normalize = !dot;
    if (!req.metric_given && dot) req.index.metric = Metric::kInnerProduct;

    // The documents.
    DocumentSource source;
    MLAAS_ASSIGN_OR_RETURN(
        auto docs, ReadDocuments(storage, params["dataset"], req.columns, &source, [&](double f, size_t n) -> Status {
          MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
          ctx.ReportProgress({.fraction = 0.05 * f, .message = "reading: " + std::to_string(n) + " documents"});
          return Status::Ok();
        }));

    // Embeddings, in batches of similar lengths.
    std::vector<std::string> texts;
    texts.reserve(docs.size());
    for (const auto& d : docs) texts.push_back(d.page_content);
    predict::OutputOptions options;
    options.cls_pooling = req.cls_pooling;
    options.normalize = *req.normalize;
    size_t tokens = 0;
    const auto embed_start = std::chrono::steady_clock::now();
    MLAAS_ASSIGN_OR_RETURN(
        auto vectors, EmbedTexts(
                          *model.model, texts, options, "dataset.path",
                          [&](size_t done, size_t total) -> Status {
                            MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
                            ctx.ReportProgress({.fraction = 0.05 + 0.9 * static_cast<double>(done) / static_cast<double>(total),
                                                .message = "embedding: " + std::to_string(done) + " of " +
                                                           std::to_string(total) + " documents"});
                            return Status::Ok();
                          },
                          &tokens));
    const double embed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - embed_start).count();
    const int64_t dim = model.model->info().embedding_size;

    // The store, assembled locally and uploaded with its manifest last.
    json manifest = {{"model", {{"path", model.path}, {"storage_type", model.storage_type}, {"fingerprint", model.fingerprint}}},
                     {"pooling", req.cls_pooling ? "cls" : "mean"},
                     {"normalize", *req.normalize},
                     {"max_tokens", model.model->info().max_tokens},
                     {"source", source.key},
                     {"page_content_column", req.columns.text},
                     {"created", FormatIsoUtc(NowMs())}};
    if (params.contains("tokenizer")) manifest["tokenizer"] = params["tokenizer"];
    MLAAS_ASSIGN_OR_RETURN(auto store, VectorStore::Create(dim, req.index, manifest));
    ctx.ReportProgress({.fraction = 0.96, .message = "building the " + req.index.type + " index"});
    const auto index_start = std::chrono::steady_clock::now();
    MLAAS_RETURN_IF_ERROR(NameIdColumn(store->Add(docs, vectors)));
    const double index_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - index_start).count();
    const fs::path local = scratch / ("vector-store-" + ctx.id());
    std::error_code ec;
    fs::remove_all(local, ec);
    fs::create_directories(scratch, ec);
    MLAAS_RETURN_IF_ERROR(store->Save(local));
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef out,
                           storage.Resolve(params.value("vector_store_save", json::object()), "vector_store_save"));
    auto files = out.store->PutDirectory(out.key, local, "manifest.json");
    fs::remove_all(local, ec);
    if (!files.has_value()) return files.error().WithField("vector_store_save.path");
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ctx.Log("info", "indexed " + std::to_string(docs.size()) + " documents into " + out.key);
    return json{{"documents", docs.size()},
                {"tokens", tokens},
                {"dimension", dim},
                {"index", req.index.ToJson()},
                {"elapsed_seconds", elapsed},
                {"docs_per_second", static_cast<double>(docs.size()) / std::max(elapsed, 1e-9)},
                {"embedding_seconds", embed_seconds},
                {"index_seconds", index_seconds},
                {"vector_store", {{"path", out.key}, {"storage_type", std::string(out.store->storage_type())}, {"files", *files}}}};
  };
}

}  // namespace mlaas::vector
