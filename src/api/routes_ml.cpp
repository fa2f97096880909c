// The ML endpoints of SPEC.md §1 and the dataset-statistics task. Each validates its body
// against the SPEC request blocks and resolves every storage path before doing anything;
// a capability this build does not have yet answers 501, never a made-up result.
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>

#include "api/catalog_refs.h"
#include "api/schemas.h"
#include "common/text.h"
#include "api/ownership.h"
#include "api/server_state.h"
#include "common/objective.h"
#include "dataset/dataset_stats.h"
#include "dataset/record_reader.h"
#include "importer/model_import.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

// An async task's request schema with the optional `resources` block every task takes.
json WithResources(json schema) {
  schema["properties"]["resources"] = schemas::Resources();
  return schema;
}

// Request blocks that name something in storage, in the order they are checked.
constexpr const char* kStorageBlocks[] = {"tokenizer", "model", "dataset", "model_save",
                                          "vector_store_save"};

struct MlRoute {
  std::string pattern;
  std::string summary;
  json schema;
  std::string task_type;   // empty: answered synchronously
  std::string capability;  // named in the 501 message
};

// Answers a synchronous route, or nothing where this server has no such service.
using SyncRunner = std::function<std::optional<Result<json>>(ServerState&, const json&)>;

// Resolves every {path, storage_type} block of the body; errors name the field.
Status ResolveStorage(ServerState& s, const json& body) {
  for (const char* block : kStorageBlocks) {
    if (!body.contains(block) || !body[block].contains("path")) continue;
    MLAAS_RETURN_IF_ERROR(s.services.storage.Resolve(body[block], block).status());
  }
  return Status::Ok();
}

// A vector store is saved apart from any model: its manifest fingerprints the files of the
// model that embeds for it, so a store written into a model's folder changes that model, and
// every store built with it then refuses to load ("the model has changed").
Status StoreApartFromModels(ServerState& s, const json& body) {
  if (!body.contains("vector_store_save") || !body["vector_store_save"].contains("path")) return Status::Ok();
  const std::string field = "vector_store_save.path";
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef save, s.services.storage.Resolve(body["vector_store_save"], "vector_store_save"));
  auto nested = [](const std::string& a, const std::string& b) { return a == b || StartsWith(a, b + "/") || StartsWith(b, a + "/"); };
  if (body.contains("model") && body["model"].contains("path")) {
    auto model = s.services.storage.Resolve(body["model"], "model");
    if (model.has_value() && model->store == save.store && nested(save.key, model->key))
      return InvalidArgument("the vector store would be saved in the folder of its model (model.path): save it apart", field);
  }
  if (save.store->Stat(save.key + "/config.json").has_value())
    return InvalidArgument("'" + save.key.substr(save.key.rfind('/') + 1) + "' holds a model (config.json): save the vector store apart",
                           field);
  return Status::Ok();
}

// A task that reads a dataset file fails early, with a 400, when the file is not there.
Status DatasetExists(ServerState& s, const json& body, bool folder_ok) {
  if (!body.contains("dataset") || body["dataset"].value("format", "") == "vector_store") {
    return Status::Ok();
  }
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, s.services.storage.Resolve(body["dataset"], "dataset"));
  auto info = ref.store->Stat(ref.key);
  if (info.has_value()) return Status::Ok();
  if (info.error().code() == StatusCode::kNotFound && folder_ok) {
    // A folder of files (an image dataset: IDX files, class folders).
    storage::ListOptions list;
    list.prefix = ref.key + "/";
    list.max_keys = 1;
    auto listed = ref.store->List(list);
    if (listed.has_value() && !listed->objects.empty()) return Status::Ok();
  }
  if (info.error().code() == StatusCode::kNotFound) {
    return InvalidArgument("no dataset '" + ref.key + "' in " +
                               std::string(ref.store->storage_type()) + " storage",
                           "dataset.path");
  }
  return info.error();
}

void SubmitTask(ServerState& s, RequestContext& ctx, const std::string& type) {
  auto t = s.services.tasks.Submit(type, ctx.body, Submitter(s, ctx));
  if (!t.has_value()) {
    // The task queue is full: tasks take seconds to minutes, so come back in a while.
    if (t.error().code() == StatusCode::kResourceExhausted) ctx.res.set_header("Retry-After", "30");
    return ctx.Error(t.error());
  }
  ctx.res.set_header("Location", "/api/v1/tasks/" + t->id);
  ctx.Json(202, {{"task_id", t->id}, {"task_status", "queued"}});
}

// A training request's "catalog" block names the model its result is registered as: the name
// must be free or the caller's (checked now, so a task does not train for an hour and then fail).
Status CheckCatalogTarget(ServerState& s, RequestContext& ctx) {
  auto c = ctx.body.find("catalog");
  if (c == ctx.body.end()) return Status::Ok();
  if (s.services.catalog == nullptr) return Unimplemented("this server has no catalog", "catalog");
  const std::string name = (*c)["model"].get<std::string>();
  if (Status st = catalog::CheckSlug(name, "catalog.model"); !st.ok()) return st;
  if (c->contains("alias")) {
    if (Status st = catalog::CheckSlug((*c)["alias"].get<std::string>(), "catalog.alias"); !st.ok()) return st;
  }
  const catalog::Caller caller = CallerOf(s, ctx);
  auto e = s.services.catalog->Get(catalog::Kind::kModel, name, {"", true});
  (*c)["as_admin"] = caller.sees_all;
  if (!e.has_value()) return e.error().code() == StatusCode::kNotFound ? Status::Ok() : e.error();
  if (caller.sees_all || e->owner == caller.user) {
    (*c)["as_admin"] = caller.sees_all;  // registration at the end applies the same rule
    return Status::Ok();
  }
  return Status(StatusCode::kPermissionDenied, "catalog model '" + name + "' belongs to another user", "catalog.model");
}

// A synchronous answer says which catalog versions it used.
json WithCatalogVersions(json answer, const json& body) {
  if (!answer.is_object()) return answer;
  json used = json::object();
  for (const char* block : {"model", "tokenizer", "dataset"}) {
    if (body.contains(block) && body[block].is_object() && body[block].contains("catalog")) used[block] = body[block]["catalog"];
  }
  if (!used.empty()) answer["catalog"] = used;
  return answer;
}

}  // namespace

namespace {

// POST /api/v1/ml/nlp/predict with predict_input.stream: a causal LM's text as server-sent
// events while it is generated — "token" events {index, text} (a piece of input `index`'s
// continuation), then "done" with the whole response, or "error". What can be refused before
// generating is answered as any other error, with its status. The generation runs on a thread
// of its own and queues its events; this connection's thread writes them, so a slow reader
// never holds up the compute thread, and a reader that leaves (or a server stopping) ends it.
class PredictionStream {
 public:
  PredictionStream(ServerState& s, RequestContext& ctx)
      : s_(s), body_(std::make_shared<json>(ctx.body)), home_(HomeOf(s, ctx)), slot_(ctx.compute_slot),
        request_id_(ctx.request_id) {}

  bool operator()(size_t, httplib::DataSink& sink) {
    auto state = std::make_shared<State>();
    auto worker = std::async(std::launch::async, [this, state] { Generate(*state); });
    bool writable = true;
    auto last_write = std::chrono::steady_clock::now();
    for (;;) {
      std::deque<std::string> ready;
      bool finished = false;
      {
        std::unique_lock lock(state->mu);
        state->cv.wait_for(lock, std::chrono::seconds(1), [&] { return state->finished || !state->events.empty(); });
        ready.swap(state->events);
        finished = state->finished;
        if (s_.stopping) state->stop = true;
      }
      // Waiting behind other work on the compute thread: a comment now and then keeps proxies
      // and client timeouts from giving up, and notices a reader that left.
      if (ready.empty() && !finished && std::chrono::steady_clock::now() - last_write > std::chrono::seconds(10))
        ready.push_back(": waiting\n\n");
      for (const auto& e : ready) {
        if (writable && !(sink.is_writable() && sink.write(e.data(), e.size()))) {
          writable = false;
          std::lock_guard lock(state->mu);
          state->stop = true;  // the reader left: stop generating
        }
        last_write = std::chrono::steady_clock::now();
      }
      // The worker always marks the end (Generate catches everything), but never wait on one
      // that is gone.
      if (finished || worker.wait_for(std::chrono::seconds(0)) == std::future_status::ready) break;
    }
    worker.get();
    std::deque<std::string> rest;  // what the worker queued after the last look
    {
      std::lock_guard lock(state->mu);
      rest.swap(state->events);
    }
    for (const auto& e : rest)
      if (writable && !(sink.is_writable() && sink.write(e.data(), e.size()))) writable = false;
    sink.done();
    return true;
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> events;
    bool finished = false, stop = false;
  };

  std::string Event(const std::string& event, const json& data) const {
    return "event: " + event + "\ndata: " + StripHome(home_, RedactServerPaths(s_, DumpJson(data))) + "\n\n";
  }

  void Generate(State& state) {
    // Whatever happens below, the writer learns that generation ended.
    struct MarkFinished {
      State& state;
      ~MarkFinished() {
        std::lock_guard lock(state.mu);
        state.finished = true;
        state.cv.notify_all();
      }
    } mark{state};
    auto push = [&](std::string event) {
      std::lock_guard lock(state.mu);
      state.events.push_back(std::move(event));
      state.cv.notify_all();
    };
    std::string last;
    try {
      auto result = s_.services.nlp_predictor->PredictStream(*body_, [&](size_t index, const std::string& piece) {
        {
          std::lock_guard lock(state.mu);
          if (state.stop) return false;
        }
        push(Event("token", json{{"index", index}, {"text", piece}}));
        return true;
      });
      if (result.has_value()) {
        CountCatalogUse(s_, *body_, metadata::CatalogCounter::kPredictions);
        last = Event("done", WithCatalogVersions(std::move(result.value()), *body_));
      } else {
        last = Event("error", ErrorBody(result.error(), request_id_));
      }
    } catch (const std::exception& e) {
      spdlog::error("request {}: streamed prediction failed: {}", request_id_, e.what());
      last = "event: error\ndata: {\"error\": {\"code\": \"internal\", \"message\": \"internal error while generating\"}}\n\n";
    } catch (...) {
      spdlog::error("request {}: streamed prediction failed", request_id_);
      last = "event: error\ndata: {\"error\": {\"code\": \"internal\", \"message\": \"internal error while generating\"}}\n\n";
    }
    std::lock_guard lock(state.mu);
    state.events.push_back(std::move(last));
  }

  ServerState& s_;
  std::shared_ptr<const json> body_;
  std::string home_;
  std::shared_ptr<void> slot_;  // this request's place among the compute requests, while it streams
  std::string request_id_;
};

void StreamPrediction(ServerState& s, RequestContext& ctx) {
  if (Status st = s.services.nlp_predictor->CheckStream(ctx.body); !st.ok()) return ctx.Error(st);
  ctx.res.status = 200;
  ctx.res.set_header("Cache-Control", "no-cache");
  ctx.res.set_header("X-Accel-Buffering", "no");
  ctx.res.set_chunked_content_provider("text/event-stream", PredictionStream(s, ctx));
}

}  // namespace

void AddMlRoutes(ServerState& s) {
  using schemas::Object;
  // A text route's schema admits every text objective (the ones not implemented yet answer 501
  // naming model.objective); an image route the image ones.
  std::vector<Objective> text, image;
  for (Objective o : AllObjectives()) (ModalityOf(o) == Modality::kImage ? image : text).push_back(o);
  std::vector<Objective> text_train = text;
  std::erase(text_train, Objective::kNoObjective);
  const auto nlp_train_objectives = ObjectiveNames(text_train);
  const auto nlp_predict_objectives = ObjectiveNames(text);
  const auto embedding_objectives =
      ObjectiveNames({Objective::kNoObjective, Objective::kSentenceEmbedding, Objective::kMaskedLm});
  const auto cv_objectives = ObjectiveNames(image);
  const std::vector<std::string> tabular = {"csv", "tsv", "jsonl"};

  const std::vector<MlRoute> routes = {
      {"/api/v1/ml/cv/train/model", "Train an image-classification model (async task)",
       Object({{"model", schemas::ImageTrainModel(cv_objectives)},
               {"dataset", schemas::ImageDataset()},
               {"model_train", schemas::ModelTrain()},
               {"model_save", schemas::Save()},
               {"catalog", schemas::CatalogTarget()}},
              {"model", "dataset", "model_save"}),
       "cv_train_model", "Computer-vision training"},
      {"/api/v1/ml/cv/predict", "Predict with an image-classification model",
       Object({{"model", schemas::ImageModel(cv_objectives, false)},
               {"predict_input", schemas::ImageInput()}},
              {"model", "predict_input"}),
       "", "Computer-vision prediction"},
      {"/api/v1/ml/nlp/train/model", "Train or fine-tune an NLP model (async task)",
       Object({{"tokenizer", schemas::Tokenizer()},
               {"model", schemas::TrainModel(nlp_train_objectives)},
               {"dataset", schemas::Dataset({"csv", "tsv", "jsonl", "conll"})},
               {"model_train", schemas::ModelTrain()},
               {"model_save", schemas::Save()},
               {"catalog", schemas::CatalogTarget()}},
              {"model", "dataset", "model_save"}),
       "nlp_train_model", "NLP model training"},
      {"/api/v1/ml/nlp/train/sweep",
       "Search hyperparameters: train trials of an NLP model, prune the weak ones early, keep the best (async task)",
       Object({{"tokenizer", schemas::Tokenizer()},
               {"model", schemas::TrainModel(nlp_train_objectives)},
               {"dataset", schemas::Dataset({"csv", "tsv", "jsonl", "conll"})},
               {"model_train", schemas::ModelTrain()},
               {"model_save", schemas::Save()},
               {"sweep", schemas::Sweep()},
               {"catalog", schemas::CatalogTarget()}},
              {"model", "dataset", "model_save", "sweep"}),
       "nlp_sweep", "Hyperparameter sweeps"},
      {"/api/v1/ml/nlp/train/tokenizer", "Train a tokenizer on a dataset column (async task)",
       Object({{"tokenizer_train", schemas::TokenizerTrain()},
               {"dataset", schemas::Dataset(tabular)},
               {"model_save", schemas::Save()}},
              {"dataset", "model_save"}),
       "nlp_train_tokenizer", "Tokenizer training"},
      {"/api/v1/ml/nlp/predict", "Predict with an NLP model (classification, fill-mask, ...)",
       Object({{"tokenizer", schemas::Tokenizer()},
               {"model", schemas::Model(nlp_predict_objectives, false)},
               {"predict_input", schemas::NlpPredictInput()}},
              {"model", "predict_input"}),
       "", "NLP prediction"},
      {"/api/v1/ml/nlp/search", "Semantic search of query texts over a dataset",
       Object({{"tokenizer", schemas::Tokenizer()},
               {"model", schemas::Model(embedding_objectives, false)},
               {"dataset", schemas::Dataset({"csv", "tsv", "jsonl", "vector_store"})},
               {"search_input", schemas::SearchInput()}},
              {"model", "dataset", "search_input"}),
       "", "Semantic search"},
      {"/api/v1/ml/nlp/vector/search", "Search a saved vector-store index",
       Object({{"tokenizer", schemas::Tokenizer()},
               {"model", schemas::Model(embedding_objectives, false)},
               {"dataset", schemas::Dataset({"vector_store"})},
               {"search_input", schemas::SearchInput()}},
              {"model", "dataset", "search_input"}),
       "", "Vector-store search"},
      {"/api/v1/ml/nlp/vector/index",
       "Embed a dataset's documents and save a vector-store index (async task)",
       Object({{"tokenizer", schemas::Tokenizer()},
               {"model", schemas::Model(embedding_objectives, false)},
               {"dataset", schemas::Dataset(tabular)},
               {"vector_store_save", schemas::Save("vector_store")}},
              {"model", "dataset", "vector_store_save"}),
       "nlp_vector_index", "Vector-store indexing"},
  };

  const std::map<std::string, SyncRunner> runners = {
      {"/api/v1/ml/nlp/predict", [](ServerState& st, const json& body) -> std::optional<Result<json>> {
         if (st.services.nlp_predictor == nullptr) return std::nullopt;
         return st.services.nlp_predictor->Predict(body);
       }},
      {"/api/v1/ml/cv/predict", [](ServerState& st, const json& body) -> std::optional<Result<json>> {
         if (st.services.nlp_predictor == nullptr) return std::nullopt;
         return st.services.nlp_predictor->Predict(body);  // the model's backend takes the images
       }},
      {"/api/v1/ml/nlp/search", [](ServerState& st, const json& body) -> std::optional<Result<json>> {
         if (st.services.vector_searcher == nullptr) return std::nullopt;
         return st.services.vector_searcher->Search(body);
       }},
      {"/api/v1/ml/nlp/vector/search", [](ServerState& st, const json& body) -> std::optional<Result<json>> {
         if (st.services.vector_searcher == nullptr) return std::nullopt;
         json request = body;
         request["dataset"]["format"] = "vector_store";  // this route searches saved stores only
         return st.services.vector_searcher->Search(request);
       }}};

  for (const auto& r : routes) {
    auto runner = runners.find(r.pattern);
    SyncRunner run = runner == runners.end() ? SyncRunner() : runner->second;
    const bool is_task = !r.task_type.empty();
    std::map<int, std::string> responses = {
        {400, "invalid request; error.field names the offending field"},
        {413, "request body too large"},
        {501, "valid request for a capability this version does not have yet"}};
    responses[is_task ? 202 : 200] = is_task ? "task queued" : "result";
    if (!is_task) responses[429] = "too many prediction and search requests in progress (Retry-After)";
    s.router.Add({.method = "POST",
                  .access = r.task_type.empty() ? Access::kRead : Access::kWrite,
                  .pattern = r.pattern,
                  .tag = "ml",
                  .summary = r.summary,
                  .body = BodyKind::kJson,
                  .request_schema = is_task ? WithResources(r.schema) : r.schema,
                  .responses = responses,
                  .response_schema = is_task ? schemas::TaskAccepted() : json(),
                  .compute = !is_task,
                  .handler = [&s, r, run](RequestContext& ctx) {
                    if (Status st = PathsToHome(s, ctx, ctx.body); !st.ok()) return ctx.Error(st);
                    const Modality datasets = r.task_type == "cv_train_model" ? Modality::kImage : Modality::kText;
                    if (Status st = ResolveCatalogRefs(s, ctx, ctx.body, datasets); !st.ok()) return ctx.Error(st);
                    if (Status st = ResolveStorage(s, ctx.body); !st.ok()) return ctx.Error(st);
                    if (Status st = StoreApartFromModels(s, ctx.body); !st.ok()) return ctx.Error(st);
                    if (!r.task_type.empty() && s.services.tasks.HasType(r.task_type)) {
                      if (Status st = CheckCatalogTarget(s, ctx); !st.ok()) return ctx.Error(st);
                      const bool folder_ok = r.task_type == "cv_train_model";  // image datasets are folders
                      if (Status st = DatasetExists(s, ctx.body, folder_ok); !st.ok()) return ctx.Error(st);
                      return SubmitTask(s, ctx, r.task_type);
                    }
                    if (r.pattern == "/api/v1/ml/nlp/predict" && s.services.nlp_predictor != nullptr &&
                        ctx.body.contains("predict_input") && ctx.body["predict_input"].value("stream", false) == true)
                      return StreamPrediction(s, ctx);
                    if (run) {
                      if (auto result = run(s, ctx.body)) {
                        if (!result->has_value()) return ctx.Error(result->error());
                        CountCatalogUse(s, ctx.body, metadata::CatalogCounter::kPredictions);
                        return ctx.Json(200, WithCatalogVersions(std::move(result->value()), ctx.body));
                      }
                    }
                    ctx.Error(Unimplemented(r.capability +
                                            " is not available in this version of mlaas yet"));
                  }});
  }

  s.router.Add(
      {.method = "POST",
       .access = Access::kWrite,
       .pattern = "/api/v1/ml/utilities/dataset/stats",
       .tag = "ml",
       .summary = "Compute statistics of a dataset: rows, column lengths, tokens, distinct "
                  "values (async task)",
       .body = BodyKind::kJson,
       .request_schema = WithResources(Object({{"dataset", schemas::Dataset(tabular)}}, {"dataset"})),
       .responses = {{202, "task queued"}, {400, "invalid request or unknown dataset"}},
       .response_schema = schemas::TaskAccepted(),
       .handler = [&s](RequestContext& ctx) {
         if (Status st = PathsToHome(s, ctx, ctx.body); !st.ok()) return ctx.Error(st);
         if (Status st = ResolveCatalogRefs(s, ctx, ctx.body); !st.ok()) return ctx.Error(st);
         auto ref = s.services.storage.Resolve(ctx.body["dataset"], "dataset");
         if (!ref.has_value()) return ctx.Error(ref.error());
         if (Status st = DatasetExists(s, ctx.body, /*folder_ok=*/false); !st.ok()) return ctx.Error(st);
         auto options = dataset::ReaderOptionsFromRequest(ctx.body["dataset"], ref->key);
         if (!options.has_value()) return ctx.Error(options.error());
         SubmitTask(s, ctx, dataset::kDatasetStatsTask);
       }});

  s.router.Add(
      {.method = "POST",
       .access = Access::kWrite,
       .pattern = "/api/v1/ml/models/import",
       .tag = "ml",
       .summary = "Import a pretrained model (the Hugging Face Hub, S3, the server's store) into the object store in "
                  "mlaas's layout: PyTorch checkpoints converted to safetensors, other frameworks' files left out (async task)",
       .body = BodyKind::kJson,
       .request_schema = WithResources(
           Object({{"model", schemas::ModelSource()}, {"model_save", schemas::Save()}}, {"model", "model_save"})),
       .responses = {{202, "task queued"}, {400, "invalid request"}, {403, "an S3 bucket not shared with accounts"}},
       .response_schema = schemas::TaskAccepted(),
       .handler = [&s](RequestContext& ctx) {
         if (Status st = PathsToHome(s, ctx, ctx.body); !st.ok()) return ctx.Error(st);
         if (Status st = NotIntoCatalog(s, ctx.body["model_save"], "model_save", "model_save.path"); !st.ok())
           return ctx.Error(st);
         if (Status st = ResolveStorage(s, ctx.body); !st.ok()) return ctx.Error(st);
         if (!s.services.tasks.HasType(importer::kImportModelTask))
           return ctx.Error(Unimplemented("this server does not import models"));
         SubmitTask(s, ctx, importer::kImportModelTask);
       }});
}

}  // namespace mlaas::api
