#include "vector/index_task.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "common/text.h"
#include "common/time_util.h"
#include "dataset/record_reader.h"
#include "predict/model_files.h"
#include "predict/servable_model.h"
#include "vector/vector_store.h"

namespace mlaas::vector {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr size_t kEmbedBatch = 32;

// What the request asks for, checked.
struct IndexRequest {
  IndexSpec index;
  bool cls_pooling = false;
  bool normalize = true;
  std::string text_column, id_column;
  std::vector<std::string> metadata_columns;  // empty: every other column
  bool all_metadata = true;
};

Result<IndexRequest> ParseRequest(const json& params) {
  IndexRequest r;
  const json save = params.value("vector_store_save", json::object());
  MLAAS_ASSIGN_OR_RETURN(r.index, IndexSpec::FromJson(save.value("index", json()), "vector_store_save.index"));
  r.cls_pooling = save.value("pooling", std::string("mean")) == "cls";
  r.normalize = save.value("normalize", true);
  const json kwargs = params.value("dataset", json::object()).value("loader_kwargs", json::object());
  r.text_column = kwargs.value("page_content_column", std::string("page_content"));
  r.id_column = kwargs.value("id_column", std::string());
  if (auto m = kwargs.find("metadata_columns"); m != kwargs.end() && m->is_array()) {
    r.all_metadata = false;
    for (const auto& c : *m) r.metadata_columns.push_back(c.get<std::string>());
  }
  return r;
}

// Opens the dataset and checks the columns the request names.
Result<std::unique_ptr<dataset::RecordReader>> OpenDataset(const storage::StorageRegistry& storage, const json& params,
                                                           const IndexRequest& r, uint64_t* size) {
  const json ds = params.value("dataset", json::object());
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(ds, "dataset"));
  MLAAS_ASSIGN_OR_RETURN(dataset::ReaderOptions options, dataset::ReaderOptionsFromRequest(ds, ref.key, "dataset"));
  auto source = ref.store->Open(ref.key);
  if (!source.has_value()) {
    if (source.error().code() == StatusCode::kNotFound)
      return InvalidArgument("no dataset '" + ref.key + "' in " + std::string(ref.store->storage_type()) + " storage",
                             "dataset.path");
    return source.error().WithField("dataset.path");
  }
  if (size) {
    auto info = ref.store->Stat(ref.key);
    *size = info.has_value() ? info->size : 0;
  }
  auto reader = dataset::OpenRecordReader(std::move(*source), options);
  if (!reader.has_value()) return reader.error().WithField("dataset.path");
  const auto& have = (*reader)->columns();
  auto check = [&](const std::string& column, const std::string& field) -> Status {
    if (std::find(have.begin(), have.end(), column) == have.end())
      return InvalidArgument("column '" + column + "' is not in " + ref.key + " (its columns: " + Join(have, ", ") + ")",
                             field);
    return Status::Ok();
  };
  MLAAS_RETURN_IF_ERROR(check(r.text_column, "dataset.loader_kwargs.page_content_column"));
  if (!r.id_column.empty()) MLAAS_RETURN_IF_ERROR(check(r.id_column, "dataset.loader_kwargs.id_column"));
  for (const auto& c : r.metadata_columns) MLAAS_RETURN_IF_ERROR(check(c, "dataset.loader_kwargs.metadata_columns"));
  return std::move(reader).value();
}

Status CheckModel(const storage::StorageRegistry& storage, const json& params) {
  const json model = params.value("model", json::object());
  if (!model.contains("path"))
    return InvalidArgument("indexing needs a trained model directory (model.path)", "model.path");
  const std::string objective = model.value("objective", std::string());
  if (objective != "no-objective" && objective != "sentence-embedding")
    return InvalidArgument("indexing embeds with a no-objective (or sentence-embedding) model", "model.objective");
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(model, "model"));
  if (!ref.store->Stat(ref.key + "/config.json").has_value())
    return InvalidArgument("no model directory (config.json) at '" + ref.key + "'", "model.path");
  if (params.contains("tokenizer")) MLAAS_RETURN_IF_ERROR(storage.Resolve(params["tokenizer"], "tokenizer").status());
  return storage.Resolve(params.value("vector_store_save", json::object()), "vector_store_save").status();
}

Status Validate(const storage::StorageRegistry& storage, const json& params) {
  MLAAS_RETURN_IF_ERROR(CheckModel(storage, params));
  MLAAS_ASSIGN_OR_RETURN(IndexRequest r, ParseRequest(params));
  return OpenDataset(storage, params, r, nullptr).status();
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

    // The model.
    const json model_block = params["model"];
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef model_ref, storage.Resolve(model_block, "model"));
    MLAAS_ASSIGN_OR_RETURN(predict::ModelFiles model_files, predict::LocalizeDirectory(model_ref, "model.path", scratch));
    predict::LoadSpec spec;
    spec.model_dir = model_files.path;
    spec.objective = "no-objective";
    spec.source = model_block.value("path", std::string());
    predict::ModelFiles tokenizer_files;
    if (params.contains("tokenizer")) {
      MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef tref, storage.Resolve(params["tokenizer"], "tokenizer"));
      MLAAS_ASSIGN_OR_RETURN(tokenizer_files, predict::LocalizeTokenizer(tref, "tokenizer.path", scratch));
      spec.tokenizer = tokenizer_files.path;
    }
    ctx.Log("info", "loading the model " + spec.source);
    MLAAS_ASSIGN_OR_RETURN(auto model, predict::ServableModel::Load(spec));

    // The documents.
    uint64_t size = 0;
    MLAAS_ASSIGN_OR_RETURN(auto reader, OpenDataset(storage, params, req, &size));
    const auto& columns = reader->columns();
    const auto index_of = [&](const std::string& c) {
      return static_cast<size_t>(std::find(columns.begin(), columns.end(), c) - columns.begin());
    };
    const size_t text_at = index_of(req.text_column);
    const size_t id_at = req.id_column.empty() ? columns.size() : index_of(req.id_column);
    std::vector<size_t> meta_at;
    for (size_t i = 0; i < columns.size(); ++i) {
      const bool listed = std::find(req.metadata_columns.begin(), req.metadata_columns.end(), columns[i]) !=
                          req.metadata_columns.end();
      if (i != text_at && i != id_at && (req.all_metadata || listed)) meta_at.push_back(i);
    }
    std::vector<Document> docs;
    dataset::Row row;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool more, reader->Next(row));
      if (!more) break;
      if (row.missing[text_at] || Trim(row.values[text_at]).empty()) continue;
      Document d;
      d.id = id_at < columns.size() ? row.values[id_at] : std::to_string(docs.size());
      d.page_content = row.values[text_at];
      for (size_t i : meta_at) d.metadata[columns[i]] = row.missing[i] ? json() : json(row.values[i]);
      docs.push_back(std::move(d));
      if (docs.size() % 4096 == 0) {
        MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
        const double f = size ? static_cast<double>(reader->bytes_read()) / static_cast<double>(size) : 0.0;
        ctx.ReportProgress({.fraction = 0.05 * f, .message = "reading: " + std::to_string(docs.size()) + " documents"});
      }
    }
    if (docs.empty())
      return InvalidArgument("the dataset has no documents with text in '" + req.text_column + "'", "dataset.path");

    // Embeddings, in batches of similar lengths.
    std::vector<std::string> texts;
    texts.reserve(docs.size());
    for (const auto& d : docs) texts.push_back(d.page_content);
    MLAAS_ASSIGN_OR_RETURN(auto encodings, model->Encode(texts, "dataset.path"));
    std::vector<size_t> order(docs.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return encodings[a].size() > encodings[b].size(); });
    const int64_t dim = model->info().hidden_size;
    std::vector<float> vectors(docs.size() * static_cast<size_t>(dim));
    predict::OutputOptions options;
    options.cls_pooling = req.cls_pooling;
    options.normalize = req.normalize;
    size_t tokens = 0;
    const auto embed_start = std::chrono::steady_clock::now();
    for (size_t start = 0; start < order.size(); start += kEmbedBatch) {
      MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
      const size_t end = std::min(order.size(), start + kEmbedBatch);
      std::vector<const tokenizers::Encoding*> rows;
      for (size_t i = start; i < end; ++i) {
        rows.push_back(&encodings[order[i]]);
        tokens += encodings[order[i]].size();
      }
      MLAAS_ASSIGN_OR_RETURN(auto out, model->Run(rows, options));
      for (size_t i = start; i < end; ++i) {
        const auto& e = out[i - start]["embedding"];
        for (int64_t d = 0; d < dim; ++d) vectors[order[i] * static_cast<size_t>(dim) + static_cast<size_t>(d)] = e[d].get<float>();
      }
      ctx.ReportProgress({.fraction = 0.05 + 0.9 * static_cast<double>(end) / static_cast<double>(order.size()),
                          .message = "embedding: " + std::to_string(end) + " of " + std::to_string(order.size()) +
                                     " documents"});
    }
    const double embed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - embed_start).count();

    // The store, assembled locally and uploaded with its manifest last.
    json manifest = {{"model", {{"path", model_block.value("path", std::string())},
                                {"storage_type", std::string(model_ref.store->storage_type())},
                                {"fingerprint", model_files.fingerprint}}},
                     {"pooling", req.cls_pooling ? "cls" : "mean"},
                     {"normalize", req.normalize},
                     {"max_tokens", model->info().max_tokens},
                     {"source", params["dataset"].value("path", std::string())},
                     {"page_content_column", req.text_column},
                     {"created", FormatIsoUtc(NowMs())}};
    if (params.contains("tokenizer")) manifest["tokenizer"] = params["tokenizer"];
    MLAAS_ASSIGN_OR_RETURN(auto store, VectorStore::Create(dim, req.index, manifest));
    ctx.ReportProgress({.fraction = 0.96, .message = "building the " + req.index.type + " index"});
    const auto index_start = std::chrono::steady_clock::now();
    MLAAS_RETURN_IF_ERROR(store->Add(docs, vectors).WithField("dataset.loader_kwargs.id_column"));
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
