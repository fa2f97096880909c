#include "vector/searcher.h"

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "common/text.h"
#include "predict/model_files.h"
#include "vector/documents.h"
#include "vector/embedder.h"
#include "vector/lru.h"
#include "vector/vector_store.h"

namespace mlaas::vector {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

enum class Mode { kDense, kLexical, kHybrid };

struct SearchInput {
  std::vector<std::string> texts;
  size_t k = 4;
  json filter = json::object();
  Mode mode = Mode::kDense;
  HybridOptions hybrid;
  bool cls_pooling = false;  // plain datasets (a store records its own)
  std::optional<bool> normalize;  // plain datasets; unset: as the model's similarity says
};

Result<SearchInput> ParseSearchInput(const json& in) {
  const std::string p = "search_input";
  if (!in.is_object()) return InvalidArgument("search_input must be an object", p);
  SearchInput s;
  const auto texts = in.find("input_text");
  if (texts == in.end() || !texts->is_array() || texts->empty())
    return InvalidArgument("input_text must hold at least one query", p + ".input_text");
  for (const auto& t : *texts) {
    if (!t.is_string() || Trim(t.get<std::string>()).empty())
      return InvalidArgument("every query must be a non-empty string", p + ".input_text");
    s.texts.push_back(t.get<std::string>());
  }
  if (auto k = in.find("top_k"); k != in.end()) {
    if (!k->is_number_integer() || k->get<int64_t>() < 1 || k->get<int64_t>() > 1000)
      return InvalidArgument("top_k must be an integer in 1..1000", p + ".top_k");
    s.k = k->get<size_t>();
  }
  if (auto f = in.find("filter"); f != in.end() && !f->is_null()) {
    if (!f->is_object()) return InvalidArgument("filter must be an object of metadata values", p + ".filter");
    for (auto it = f->begin(); it != f->end(); ++it)
      if (it->is_object() || it->is_array())
        return InvalidArgument("filter values must be strings, numbers, booleans or null", p + ".filter." + it.key());
    s.filter = *f;
  }
  if (auto m = in.find("mode"); m != in.end()) {
    if (*m == "dense") {
      s.mode = Mode::kDense;
    } else if (*m == "lexical") {
      s.mode = Mode::kLexical;
    } else if (*m == "hybrid") {
      s.mode = Mode::kHybrid;
    } else {
      return InvalidArgument("mode must be dense, lexical or hybrid", p + ".mode");
    }
  }
  if (auto w = in.find("dense_weight"); w != in.end()) {
    if (!w->is_number() || w->get<double>() < 0 || w->get<double>() > 1)
      return InvalidArgument("dense_weight must be a number in 0..1", p + ".dense_weight");
    s.hybrid.dense_weight = w->get<float>();
  }
  if (auto c = in.find("candidates"); c != in.end()) {
    if (!c->is_number_integer() || c->get<int64_t>() < 1 || c->get<int64_t>() > 100000)
      return InvalidArgument("candidates must be an integer in 1..100000", p + ".candidates");
    s.hybrid.candidates = c->get<size_t>();
  }
  if (auto f = in.find("fusion"); f != in.end()) {
    if (*f == "rrf") {
      s.hybrid.fusion = Fusion::kRrf;
    } else if (*f == "linear") {
      s.hybrid.fusion = Fusion::kLinear;
    } else {
      return InvalidArgument("fusion must be rrf or linear", p + ".fusion");
    }
  }
  if (auto pool = in.find("pooling"); pool != in.end()) {
    if (*pool != "mean" && *pool != "cls") return InvalidArgument("pooling must be mean or cls", p + ".pooling");
    s.cls_pooling = *pool == "cls";
  }
  if (auto n = in.find("normalize"); n != in.end()) {
    if (!n->is_boolean()) return InvalidArgument("normalize must be true or false", p + ".normalize");
    s.normalize = n->get<bool>();
  }
  return s;
}

// How the documents of a store were embedded (its queries and new documents are embedded so).
predict::OutputOptions StoreOptions(const json& manifest) {
  predict::OutputOptions options;
  options.cls_pooling = manifest.value("pooling", std::string("mean")) == "cls";
  options.normalize = manifest.value("normalize", true);
  return options;
}

json HitJson(const Hit& h) {
  json j = {{"id", h.document.id}, {"page_content", h.document.page_content},
            {"metadata", h.document.metadata}, {"score", h.score}};
  if (h.dense_score) j["dense_score"] = *h.dense_score;
  if (h.lexical_score) j["lexical_score"] = *h.lexical_score;
  return j;
}

// A plain dataset too large to search without a vector store.
Status TooLargeForInline(const InlineSearchLimits& limits, const std::string& what) {
  return InvalidArgument("the dataset has " + what + "; a search over a plain dataset embeds at most " +
                             std::to_string(limits.max_documents) + " documents and " + std::to_string(limits.max_bytes) +
                             " bytes: index it into a vector store with POST /api/v1/ml/nlp/vector/index and search "
                             "that with POST /api/v1/ml/nlp/vector/search",
                         "dataset.path");
}

}  // namespace

struct VectorSearcher::Impl {
  Impl(const storage::StorageRegistry& s, fs::path dir, InlineSearchLimits l, std::shared_ptr<predict::ModelCache> cache)
      : storage(s), scratch(std::move(dir)), limits(l), models(s, scratch, 4, std::move(cache)) {}
  const storage::StorageRegistry& storage;
  fs::path scratch;
  InlineSearchLimits limits;
  EmbeddingModels models;
  std::mutex mu;  // the caches and `building`
  Lru<std::shared_ptr<VectorStore>> stores{4};    // saved stores by their files' fingerprint
  Lru<std::shared_ptr<VectorStore>> datasets{4};  // embedded plain datasets
  // Long work of a search runs on a thread of its own, never on the request's: loading a saved
  // store, embedding a plain dataset, building a store's lexical index. Once per key however many
  // searches ask for it meanwhile; at most limits.max_concurrent at once, and 4 times as many
  // searches wait for them (each holds an HTTP thread), up to limits.max_wait.
  using Built = Result<std::shared_ptr<VectorStore>>;
  struct Job {
    std::shared_future<Built> result;
    std::thread thread;
  };
  std::map<std::string, Job> jobs;     // running, by key
  std::vector<std::thread> finished;   // threads of ended jobs, joined by the next start and at the end
  size_t waiting = 0;                  // searches waiting for a job
  std::shared_mutex files_mu;                     // store files: read (shared) vs replaced (unique)
  std::mutex update_mu;                           // one store update at a time
  size_t updates = 0;                             // running or waiting for update_mu (under mu)

  // A turn to update a store: it waits for the one before; beyond 4 waiting, none.
  class UpdateTurn {
   public:
    explicit UpdateTurn(Impl& m) : m_(m) {}
    ~UpdateTurn() {
      if (lock_.owns_lock()) lock_.unlock();
      std::lock_guard<std::mutex> lock(m_.mu);
      --m_.updates;
    }
    Impl& m_;
    std::unique_lock<std::mutex> lock_;
  };
  Result<std::unique_ptr<UpdateTurn>> TakeUpdateTurn() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (updates >= 5) return ResourceExhausted("a store update is in progress and 4 wait for it: retry shortly");
      ++updates;
    }
    auto turn = std::make_unique<UpdateTurn>(*this);
    turn->lock_ = std::unique_lock<std::mutex>(update_mu);
    return turn;
  }

  ~Impl() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [key, job] : jobs) threads.push_back(std::move(job.thread));
      for (auto& t : finished) threads.push_back(std::move(t));
    }
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }

  // `work`'s result, run as the job `key` (started unless it runs already); `keep` is called
  // with it under `mu` when it ends (it caches it). `what` names the work in messages.
  Built Await(const std::string& key, const std::string& what, std::function<Built()> work,
              std::function<void(const Built&)> keep) {
    std::shared_future<Built> result;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (waiting >= 4 * limits.max_concurrent)
        return ResourceExhausted("too many searches are waiting for stores to load or datasets to embed: retry shortly");
      if (auto it = jobs.find(key); it != jobs.end()) {
        result = it->second.result;
      } else {
        if (jobs.size() >= limits.max_concurrent)
          return ResourceExhausted("too many vector stores are loading or datasets embedding for search at once: retry "
                                   "shortly, or index large datasets with POST /api/v1/ml/nlp/vector/index");
        for (auto& t : finished) t.join();
        finished.clear();
        auto promise = std::make_shared<std::promise<Built>>();
        result = promise->get_future().share();
        try {
          // Started under `mu`, which the job takes before it ends: its thread is in `jobs` by then.
          std::thread thread([this, key, what, promise, work = std::move(work), keep = std::move(keep)] {
            Built built = Internal(what + " failed");
            try {
              built = work();
            } catch (const std::exception& e) {
              built = Internal(what + " failed: " + e.what());
            } catch (...) {
            }
            std::lock_guard<std::mutex> done(mu);
            if (keep) keep(built);
            auto self = jobs.find(key);
            finished.push_back(std::move(self->second.thread));
            jobs.erase(self);
            promise->set_value(std::move(built));
          });
          jobs[key] = Job{result, std::move(thread)};
        } catch (const std::system_error&) {
          return ResourceExhausted("no thread is available for " + what + ": retry shortly");
        }
      }
      ++waiting;
    }
    const bool ready = result.wait_for(limits.max_wait) == std::future_status::ready;
    {
      std::lock_guard<std::mutex> lock(mu);
      --waiting;
    }
    if (!ready)
      return Unavailable(what + " takes a while; it goes on, and a retry will find it done (--search-wait-seconds)");
    return result.get();
  }

  struct Located {
    storage::ObjectRef ref;
    predict::ModelFiles files;
  };

  Result<Located> Locate(const json& block, const std::string& field) {
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(block, field));
    if (!ref.store->Stat(ref.key + "/manifest.json").has_value())
      return InvalidArgument("no vector store at '" + ref.key + "' (manifest.json is missing)", field + ".path");
    std::shared_lock<std::shared_mutex> lock(files_mu);
    MLAAS_ASSIGN_OR_RETURN(predict::ModelFiles files, predict::LocalizeDirectory(ref, field + ".path", scratch));
    return Located{ref, std::move(files)};
  }

  // The store `at` points to, loaded as a job and cached by its files' fingerprint; `fresh`: a
  // copy of its own, loaded here (an update changes it, then publishes it).
  Result<std::shared_ptr<VectorStore>> OpenStore(const Located& at, const std::string& field, bool fresh) {
    if (fresh) return LoadStore(at, field);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auto hit = stores.Get(at.files.fingerprint)) return *hit;
    }
    const std::string fingerprint = at.files.fingerprint;
    return Await("store:" + fingerprint, "loading the vector store '" + at.ref.key + "'",
                 [this, at, field] { return LoadStore(at, field); },
                 [this, fingerprint](const Built& built) {
                   if (built.has_value()) stores.Put(fingerprint, *built);
                 });
  }

  Built LoadStore(const Located& at, const std::string& field) {
    std::shared_lock<std::shared_mutex> lock(files_mu);
    if (limits.max_store_bytes > 0) {
      uint64_t bytes = 0;
      for (const char* name : {"index.faiss", "documents.jsonl"}) {
        std::error_code ec;
        const auto size = fs::file_size(at.files.path / name, ec);
        if (!ec) bytes += size;
      }
      if (bytes > limits.max_store_bytes)
        return InvalidArgument("vector store '" + at.ref.key + "' takes " + FormatBytes(bytes) + ", more than the " +
                                   FormatBytes(limits.max_store_bytes) + " this server loads (--max-vector-store-bytes)",
                               field + ".path");
    }
    auto r = VectorStore::Load(at.files.path);
    if (!r.has_value()) return InvalidArgument("vector store '" + at.ref.key + "': " + r.error().message(), field + ".path");
    return std::shared_ptr<VectorStore>(std::move(r).value());
  }

  // `store` with its lexical index built (as a job the first time).
  Status PrepareLexical(const std::shared_ptr<VectorStore>& store) {
    if (store->LexicalReady()) return Status::Ok();
    const auto id = reinterpret_cast<uintptr_t>(store.get());  // the job holds the store: unique while it runs
    return Await("lexical:" + std::to_string(id), "building the lexical index",
                 [store]() -> Built {
                   store->BuildLexical();
                   return store;
                 },
                 nullptr)
        .status();
  }

  // The model that built `manifest`'s store, checked against the request's (when given).
  Result<EmbeddingModel> StoreModel(const json& manifest, const json* request) {
    const json built = manifest.value("model", json::object());
    json model_block = {{"path", built.value("path", std::string())},
                        {"storage_type", built.value("storage_type", std::string("local"))}};
    json tokenizer = manifest.value("tokenizer", json());
    if (request != nullptr) {
      model_block = request->value("model", json::object());
      MLAAS_RETURN_IF_ERROR(CheckEmbeddingObjective(model_block.value("objective", std::string("no-objective"))));
      if (request->contains("tokenizer")) tokenizer = (*request)["tokenizer"];
    }
    auto model = models.Get(model_block, tokenizer);
    if (!model.has_value()) {
      if (request != nullptr) return model.error();
      return FailedPrecondition("the model that built this store ('" + model_block.value("path", std::string()) +
                                "') cannot be loaded: " + model.error().message());
    }
    const std::string fingerprint = built.value("fingerprint", std::string());
    if (!fingerprint.empty() && fingerprint != model->fingerprint) {
      if (request == nullptr)
        return FailedPrecondition("the model at '" + model_block.value("path", std::string()) +
                                  "' has changed since this store was built: rebuild the index");
      return InvalidArgument("the vector store was built with the model at '" + built.value("path", std::string()) +
                                 "'; this model's files differ, so its embeddings would not match",
                             "model.path");
    }
    return model;
  }

  // Saves `store` back to where `at` points and keeps it as the current one: file by file, its
  // manifest last (a store read or left half written meanwhile is refused at load).
  Status Publish(const Located& at, const std::shared_ptr<VectorStore>& store, const std::string& field) {
    if (at.files.holder == nullptr) {  // the storage's own directory
      std::unique_lock<std::shared_mutex> lock(files_mu);
      MLAAS_RETURN_IF_ERROR(store->Save(at.files.path).WithField(field));
    } else {
      std::error_code ec;
      fs::create_directories(scratch, ec);
      const fs::path local = scratch / ("vector-store-update-" + NewUuid());
      MLAAS_RETURN_IF_ERROR(store->Save(local));
      Result<std::vector<std::string>> put = std::vector<std::string>();
      {
        std::unique_lock<std::shared_mutex> lock(files_mu);
        put = at.ref.store->PutDirectory(at.ref.key, local, "manifest.json");
      }
      fs::remove_all(local, ec);
      if (!put.has_value()) return put.error().WithField(field);
    }
    auto files = Locate({{"path", at.ref.key}, {"storage_type", std::string(at.ref.store->storage_type())}}, "store");
    if (files.has_value()) {
      std::lock_guard<std::mutex> lock(mu);
      stores.Put(files->files.fingerprint, store);
    }
    return Status::Ok();
  }
};

VectorSearcher::VectorSearcher(const storage::StorageRegistry& storage, fs::path scratch, InlineSearchLimits limits,
                               std::shared_ptr<predict::ModelCache> models)
    : impl_(std::make_unique<Impl>(storage, std::move(scratch), limits, std::move(models))) {}
VectorSearcher::~VectorSearcher() = default;

Result<json> VectorSearcher::Search(const json& request) {
  Impl& m = *impl_;
  MLAAS_ASSIGN_OR_RETURN(SearchInput input, ParseSearchInput(request.value("search_input", json::object())));
  const json dataset = request.value("dataset", json::object());
  std::shared_ptr<VectorStore> store;
  std::optional<EmbeddingModel> model;
  predict::OutputOptions options;
  std::string metric = "l2";

  if (dataset.value("format", std::string()) == "vector_store") {
    MLAAS_ASSIGN_OR_RETURN(Impl::Located at, m.Locate(dataset, "dataset"));
    MLAAS_ASSIGN_OR_RETURN(store, m.OpenStore(at, "dataset", false));
    const json manifest = store->manifest();
    metric = manifest.value("metric", metric);
    options = StoreOptions(manifest);
    if (input.mode != Mode::kLexical) {
      MLAAS_ASSIGN_OR_RETURN(model, m.StoreModel(manifest, &request));
      if (model->model->info().embedding_size != store->dim())
        return InvalidArgument("the model makes " + std::to_string(model->model->info().embedding_size) +
                                   "-dimensional embeddings; the store holds " + std::to_string(store->dim()),
                               "model.path");
    }
  } else {
    // A plain dataset: its documents embedded once per (dataset version, model, columns, pooling).
    const json model_block = request.value("model", json::object());
    MLAAS_RETURN_IF_ERROR(CheckEmbeddingObjective(model_block.value("objective", std::string("no-objective"))));
    MLAAS_ASSIGN_OR_RETURN(DocumentColumns columns,
                           DocumentColumns::FromLoaderKwargs(dataset.value("loader_kwargs", json())));
    // The dataset's version from its metadata only; it is read (and its columns checked) on a miss.
    MLAAS_ASSIGN_OR_RETURN(DocumentSource source, StatDocuments(m.storage, dataset));
    MLAAS_ASSIGN_OR_RETURN(model, m.models.Get(model_block, request.value("tokenizer", json())));
    options.cls_pooling = input.cls_pooling;
    const bool dot = model->model->info().similarity == "dot";  // inner product, embeddings at their own length
    options.normalize = input.normalize.value_or(!dot);
    if (dot) metric = "inner_product";
    const std::string key = json{source.storage_type, source.key,         source.etag,
                                 dataset.value("format", std::string()), dataset.value("loader_kwargs", json()),
                                 model->key,          options.cls_pooling, options.normalize}
                                .dump();
    if (source.size > m.limits.max_bytes) return TooLargeForInline(m.limits, std::to_string(source.size) + " bytes");
    std::optional<std::shared_ptr<VectorStore>> hit;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      hit = m.datasets.Get(key);
    }
    if (hit) {
      store = *hit;
    } else {
      const InlineSearchLimits limits = m.limits;
      const EmbeddingModel embedder = *model;
      const storage::StorageRegistry& storage = m.storage;
      MLAAS_ASSIGN_OR_RETURN(
          store, m.Await(
                     "dataset:" + key, "embedding the dataset '" + source.key + "'",
                     [&storage, dataset, columns, limits, embedder, options, dot]() -> Impl::Built {
                       MLAAS_ASSIGN_OR_RETURN(auto docs,
                                              ReadDocuments(storage, dataset, columns, nullptr, [&](double, size_t n) -> Status {
                                                if (n > limits.max_documents)
                                                  return TooLargeForInline(
                                                      limits, "more than " + std::to_string(limits.max_documents) + " documents");
                                                return Status::Ok();
                                              }));
                       if (docs.size() > limits.max_documents)
                         return TooLargeForInline(limits, std::to_string(docs.size()) + " documents");
                       std::vector<std::string> texts;
                       texts.reserve(docs.size());
                       for (const auto& d : docs) texts.push_back(d.page_content);
                       MLAAS_ASSIGN_OR_RETURN(auto vectors, EmbedTexts(*embedder.model, texts, options, "dataset.path"));
                       IndexSpec spec;
                       if (dot) spec.metric = Metric::kInnerProduct;
                       MLAAS_ASSIGN_OR_RETURN(auto built, VectorStore::Create(embedder.model->info().embedding_size, spec));
                       MLAAS_RETURN_IF_ERROR(NameIdColumn(built->Add(docs, vectors)));
                       return std::shared_ptr<VectorStore>(std::move(built));
                     },
                     [&m, key](const Impl::Built& built) {
                       if (built.has_value()) m.datasets.Put(key, *built);
                     }));
    }
  }

  if (input.mode != Mode::kDense) MLAAS_RETURN_IF_ERROR(m.PrepareLexical(store));
  std::vector<float> queries;
  if (input.mode != Mode::kLexical) {
    MLAAS_ASSIGN_OR_RETURN(queries, EmbedTexts(*model->model, input.texts, options, "search_input.input_text"));
  }
  Result<std::vector<std::vector<Hit>>> hits = std::vector<std::vector<Hit>>();
  switch (input.mode) {
    case Mode::kDense: hits = store->Search(queries, input.k, input.filter); break;
    case Mode::kLexical:
      hits = store->LexicalSearch(input.texts, input.k, input.filter);
      metric = "bm25";
      break;
    case Mode::kHybrid:
      hits = store->HybridSearch(queries, input.texts, input.k, input.filter, input.hybrid);
      metric = input.hybrid.fusion == Fusion::kRrf ? "rrf" : "linear";
      break;
  }
  if (!hits.has_value()) return hits.error();
  json results = json::array();
  for (const auto& per_query : *hits) {
    json list = json::array();
    for (const auto& h : per_query) list.push_back(HitJson(h));
    results.push_back(std::move(list));
  }
  return json{{"results", std::move(results)}, {"metric", metric}};
}

Result<json> VectorSearcher::Describe(const json& block) {
  Impl& m = *impl_;
  MLAAS_ASSIGN_OR_RETURN(Impl::Located at, m.Locate(block, "store"));
  MLAAS_ASSIGN_OR_RETURN(auto store, m.OpenStore(at, "store", false));
  json manifest = store->manifest();
  manifest["path"] = at.ref.key;
  manifest["storage_type"] = std::string(at.ref.store->storage_type());
  return manifest;
}

Result<json> VectorSearcher::AddDocuments(const json& block, const json& body) {
  Impl& m = *impl_;
  const auto list = body.find("documents");
  if (list == body.end() || !list->is_array() || list->empty())
    return InvalidArgument("documents must be a non-empty list", "documents");
  if (list->size() > 100000) return InvalidArgument("at most 100000 documents per request", "documents");
  std::vector<Document> docs;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& d = (*list)[i];
    const std::string field = "documents[" + std::to_string(i) + "]";
    if (!d.is_object()) return InvalidArgument("a document is an object {id?, page_content, metadata?}", field);
    Document doc;
    const auto text = d.find("page_content");
    if (text == d.end() || !text->is_string() || Trim(text->get<std::string>()).empty())
      return InvalidArgument("page_content must be a non-empty string", field + ".page_content");
    doc.page_content = text->get<std::string>();
    if (auto id = d.find("id"); id != d.end() && !id->is_null()) {
      if (id->is_string() && !id->get<std::string>().empty()) {
        doc.id = id->get<std::string>();
      } else if (id->is_number_integer()) {
        doc.id = std::to_string(id->get<int64_t>());
      } else {
        return InvalidArgument("id must be a non-empty string or an integer", field + ".id");
      }
    } else {
      doc.id = NewUuid();
    }
    if (auto meta = d.find("metadata"); meta != d.end() && !meta->is_null()) {
      if (!meta->is_object()) return InvalidArgument("metadata must be an object", field + ".metadata");
      doc.metadata = *meta;
    }
    docs.push_back(std::move(doc));
  }

  MLAAS_ASSIGN_OR_RETURN(auto turn, m.TakeUpdateTurn());
  MLAAS_ASSIGN_OR_RETURN(Impl::Located at, m.Locate(block, "store"));
  MLAAS_ASSIGN_OR_RETURN(auto store, m.OpenStore(at, "store", true));
  const json manifest = store->manifest();
  MLAAS_ASSIGN_OR_RETURN(EmbeddingModel model, m.StoreModel(manifest, nullptr));
  const predict::OutputOptions options = StoreOptions(manifest);
  std::vector<std::string> texts;
  for (const auto& d : docs) texts.push_back(d.page_content);
  MLAAS_ASSIGN_OR_RETURN(auto vectors, EmbedTexts(*model.model, texts, options, "documents"));
  MLAAS_RETURN_IF_ERROR(store->Add(docs, vectors));
  MLAAS_RETURN_IF_ERROR(m.Publish(at, store, "store.path"));
  json ids = json::array();
  for (const auto& d : docs) ids.push_back(d.id);
  return json{{"added", docs.size()}, {"ids", std::move(ids)}, {"count", store->size()}};
}

Result<json> VectorSearcher::RemoveDocuments(const json& block, const json& body) {
  Impl& m = *impl_;
  const auto list = body.find("ids");
  if (list == body.end() || !list->is_array() || list->empty())
    return InvalidArgument("ids must be a non-empty list of document ids", "ids");
  std::vector<std::string> ids;
  for (const auto& id : *list) {
    if (id.is_string()) {
      ids.push_back(id.get<std::string>());
    } else if (id.is_number_integer()) {
      ids.push_back(std::to_string(id.get<int64_t>()));
    } else {
      return InvalidArgument("ids must be strings or integers", "ids");
    }
  }
  MLAAS_ASSIGN_OR_RETURN(auto turn, m.TakeUpdateTurn());
  MLAAS_ASSIGN_OR_RETURN(Impl::Located at, m.Locate(block, "store"));
  MLAAS_ASSIGN_OR_RETURN(auto store, m.OpenStore(at, "store", true));
  MLAAS_ASSIGN_OR_RETURN(size_t removed, store->Remove(ids));
  if (removed > 0) MLAAS_RETURN_IF_ERROR(m.Publish(at, store, "store.path"));
  return json{{"removed", removed}, {"count", store->size()}};
}

}  // namespace mlaas::vector
