#include "vector/vector_store.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>

#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "common/file_util.h"
#include "common/text.h"
#include "common/time_util.h"
#include "vector/bm25.h"
#include "vector/flat_scan.h"

namespace mlaas::vector {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using idx_t = faiss::Index::idx_t;  // (FAISS 1.7.3 has no faiss::idx_t)

faiss::MetricType FaissMetric(Metric m) { return m == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT; }

Status FaissError(const std::string& what, const faiss::FaissException& e) {
  return Internal(what + ": " + e.msg);
}

bool Matches(const json& metadata, const json& filter) {
  for (auto it = filter.begin(); it != filter.end(); ++it) {
    auto v = metadata.find(it.key());
    if (v == metadata.end() || *v != it.value()) return false;
  }
  return true;
}

}  // namespace

Result<IndexSpec> IndexSpec::FromJson(const json& j, const std::string& prefix) {
  IndexSpec s;
  if (j.is_null()) return s;
  if (j.is_string()) {
    s.type = j.get<std::string>();
  } else if (j.is_object()) {
    s.type = j.value("type", s.type);
    if (auto m = j.find("metric"); m != j.end()) {
      if (*m == "l2") {
        s.metric = Metric::kL2;
      } else if (*m == "inner_product" || *m == "ip") {
        s.metric = Metric::kInnerProduct;
      } else {
        return InvalidArgument("metric must be \"l2\" or \"inner_product\"", prefix + ".metric");
      }
    }
    struct Field {
      const char* name;
      int64_t* value;
      int64_t min, max;
    };
    const Field fields[] = {{"nlist", &s.nlist, 1, 1 << 20},       {"nprobe", &s.nprobe, 1, 1 << 20},
                            {"M", &s.hnsw_m, 2, 512},              {"efConstruction", &s.ef_construction, 1, 1 << 16},
                            {"efSearch", &s.ef_search, 1, 1 << 16}};
    for (const auto& f : fields) {
      auto v = j.find(f.name);
      if (v == j.end()) continue;
      if (!v->is_number_integer() || v->get<int64_t>() < f.min || v->get<int64_t>() > f.max)
        return InvalidArgument(std::string(f.name) + " must be an integer in " + std::to_string(f.min) + ".." +
                                   std::to_string(f.max),
                               prefix + "." + f.name);
      *f.value = v->get<int64_t>();
    }
  } else {
    return InvalidArgument("index must be a type name or an object", prefix);
  }
  if (s.type != "Flat" && s.type != "IVF" && s.type != "HNSW")
    return InvalidArgument("index type must be Flat, IVF or HNSW", prefix + ".type");
  return s;
}

json IndexSpec::ToJson() const {
  json j = {{"type", type}, {"metric", metric == Metric::kL2 ? "l2" : "inner_product"}};
  if (type == "IVF") j.update({{"nlist", nlist}, {"nprobe", nprobe}});
  if (type == "HNSW") j.update({{"M", hnsw_m}, {"efConstruction", ef_construction}, {"efSearch", ef_search}});
  return j;
}

struct VectorStore::Impl {
  int64_t dim = 0;
  IndexSpec spec;
  json manifest;
  std::unique_ptr<faiss::IndexIDMap2> index;
  std::map<int64_t, Document> docs;                 // by internal id (insertion order); absent: removed
  std::unordered_map<std::string, int64_t> by_id;   // document id -> internal id
  int64_t next_id = 0;
  std::string updated = FormatIsoUtc(NowMs());  // when the documents last changed
  mutable std::shared_mutex mu;
  // The lexical index over `docs`, built on first use (under a shared lock of `mu` and
  // `lexical_mu`) and dropped when documents change (under the unique lock of `mu`).
  struct Lexical {
    std::unique_ptr<Bm25Index> index;
    std::vector<int64_t> ids;  // BM25 document number -> internal id
  };
  mutable std::mutex lexical_mu;
  mutable std::shared_ptr<const Lexical> lexical;

  using Scored = std::pair<int64_t, float>;  // internal id, score
  Result<std::vector<std::vector<Scored>>> DenseRank(const std::vector<float>& queries, size_t k, const json& filter) const;
  std::vector<std::vector<Scored>> LexicalRank(const std::vector<std::string>& texts, size_t k, const json& filter) const;
  Status CheckQueries(const std::vector<float>& queries, const json& filter) const;
  Hit MakeHit(int64_t id, float score) const {
    Hit h;
    h.document = docs.at(id);
    h.score = score;
    return h;
  }

  std::shared_ptr<const Lexical> LexicalIndex() const {
    std::lock_guard<std::mutex> lock(lexical_mu);
    if (!lexical) {
      auto built = std::make_shared<Lexical>();
      std::vector<std::string_view> texts;
      texts.reserve(docs.size());
      for (const auto& [id, d] : docs) {
        built->ids.push_back(id);
        texts.push_back(d.page_content);
      }
      built->index = std::make_unique<Bm25Index>(texts);
      lexical = std::move(built);
    }
    return lexical;
  }

  json Manifest() const {
    json j = manifest;
    j["count"] = docs.size();
    j["dimension"] = dim;
    j["metric"] = spec.metric == Metric::kL2 ? "l2" : "inner_product";
    j["index"] = spec.ToJson();
    j["updated"] = updated;
    return j;
  }

  // Applies the search-time settings (they are not all saved with the index).
  void Tune() const {
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index->index)) ivf->nprobe = static_cast<size_t>(spec.nprobe);
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index->index)) hnsw->hnsw.efSearch = static_cast<int>(spec.ef_search);
  }
};

VectorStore::VectorStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VectorStore::~VectorStore() = default;

Result<std::unique_ptr<VectorStore>> VectorStore::Create(int64_t dim, IndexSpec spec, json manifest) {
  if (dim < 1 || dim > 65536) return InvalidArgument("the embedding dimension must be in 1..65536");
  auto impl = std::make_unique<Impl>();
  impl->dim = dim;
  impl->spec = spec;
  impl->manifest = manifest.is_object() ? std::move(manifest) : json::object();
  const auto metric = FaissMetric(spec.metric);
  try {
    faiss::Index* inner = nullptr;
    if (spec.type == "Flat") {
      inner = new FastFlatIndex(dim, metric);
    } else if (spec.type == "HNSW") {
      auto* hnsw = new faiss::IndexHNSWFlat(static_cast<int>(dim), static_cast<int>(spec.hnsw_m), metric);
      hnsw->hnsw.efConstruction = static_cast<int>(spec.ef_construction);
      delete hnsw->storage;
      hnsw->storage = new FastFlatIndex(dim, metric);  // vectorised distances for the graph
      inner = hnsw;
    } else {
      // Trained (and its nlist capped by the data) on the first Add.
      auto* quantizer = new faiss::IndexFlat(dim, metric);
      auto* ivf = new faiss::IndexIVFFlat(quantizer, dim, static_cast<size_t>(spec.nlist), metric);
      ivf->own_fields = true;
      inner = ivf;
    }
    impl->index = std::make_unique<faiss::IndexIDMap2>(inner);
    impl->index->own_fields = true;
  } catch (const faiss::FaissException& e) {
    return FaissError("cannot create the index", e);
  }
  impl->Tune();
  return std::unique_ptr<VectorStore>(new VectorStore(std::move(impl)));
}

Status VectorStore::Add(const std::vector<Document>& docs, const std::vector<float>& vectors) {
  Impl& m = *impl_;
  if (vectors.size() != docs.size() * static_cast<size_t>(m.dim))
    return InvalidArgument("expected " + std::to_string(docs.size()) + " vectors of " + std::to_string(m.dim) +
                           " floats, got " + std::to_string(vectors.size()) + " floats");
  std::unique_lock<std::shared_mutex> lock(m.mu);
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (docs[i].id.empty()) return InvalidArgument("document " + std::to_string(i) + " has no id", "documents");
    if (m.by_id.count(docs[i].id) || !seen.emplace(docs[i].id, i).second)
      return Status(StatusCode::kAlreadyExists, "a document with id '" + docs[i].id + "' is already in the store", "documents");
  }
  if (docs.empty()) return Status::Ok();
  const auto n = static_cast<idx_t>(docs.size());
  try {
    if (auto* ivf = dynamic_cast<faiss::IndexIVFFlat*>(m.index->index); ivf && !ivf->is_trained) {
      // k-means needs a few points per cluster: fewer vectors, fewer clusters.
      const auto nlist = static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(m.spec.nlist, n / 4)));
      if (nlist != ivf->nlist) {
        auto* quantizer = new faiss::IndexFlat(m.dim, FaissMetric(m.spec.metric));
        auto* rebuilt = new faiss::IndexIVFFlat(quantizer, m.dim, nlist, FaissMetric(m.spec.metric));
        rebuilt->own_fields = true;
        delete m.index->index;
        m.index->index = rebuilt;
        ivf = rebuilt;
        m.spec.nlist = static_cast<int64_t>(nlist);
      }
      ivf->train(n, vectors.data());
      m.Tune();
    }
    std::vector<idx_t> ids(docs.size());
    for (size_t i = 0; i < docs.size(); ++i) ids[i] = m.next_id + static_cast<int64_t>(i);
    m.index->add_with_ids(n, vectors.data(), ids.data());
  } catch (const faiss::FaissException& e) {
    return FaissError("cannot add to the index", e);
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    const int64_t id = m.next_id++;
    m.by_id[docs[i].id] = id;
    m.docs[id] = docs[i];
  }
  m.lexical.reset();
  m.updated = FormatIsoUtc(NowMs());
  return Status::Ok();
}

Result<size_t> VectorStore::Remove(const std::vector<std::string>& ids) {
  Impl& m = *impl_;
  std::unique_lock<std::shared_mutex> lock(m.mu);
  std::vector<idx_t> internal;
  for (const auto& id : ids) {
    auto it = m.by_id.find(id);
    if (it == m.by_id.end()) continue;
    internal.push_back(it->second);
    m.docs.erase(it->second);
    m.by_id.erase(it);
  }
  if (!internal.empty()) {
    m.lexical.reset();
    m.updated = FormatIsoUtc(NowMs());
    // Flat and IVF drop the vectors; HNSW cannot, and its removed ids are skipped at search.
    try {
      faiss::IDSelectorArray selector(internal.size(), internal.data());
      m.index->remove_ids(selector);
    } catch (const faiss::FaissException&) {
    }
  }
  return internal.size();
}

// The k best (internal id, score) pairs per query, under the caller's shared lock.
Result<std::vector<std::vector<VectorStore::Impl::Scored>>> VectorStore::Impl::DenseRank(const std::vector<float>& queries,
                                                                                     size_t k, const json& filter) const {
  const size_t nq = queries.size() / static_cast<size_t>(dim);
  std::vector<std::vector<Scored>> out(nq);
  const auto total = static_cast<size_t>(index->ntotal);
  if (k == 0 || total == 0 || docs.empty()) return out;
  // Removed (HNSW) and filtered-out documents take places: fetch more until k are found or
  // everything has been looked at.
  size_t fetch = std::min(total, k + (total - docs.size()) + (filter.empty() ? 0 : 4 * k));
  std::vector<size_t> pending(nq);
  for (size_t q = 0; q < nq; ++q) pending[q] = q;
  while (!pending.empty()) {
    std::vector<float> batch;
    for (size_t q : pending) batch.insert(batch.end(), queries.begin() + static_cast<std::ptrdiff_t>(q * dim),
                                          queries.begin() + static_cast<std::ptrdiff_t>((q + 1) * dim));
    std::vector<float> distances(pending.size() * fetch);
    std::vector<idx_t> labels(pending.size() * fetch);
    try {
      index->search(static_cast<idx_t>(pending.size()), batch.data(), static_cast<idx_t>(fetch), distances.data(),
                    labels.data());
    } catch (const faiss::FaissException& e) {
      return FaissError("search failed", e);
    }
    std::vector<size_t> again;
    for (size_t p = 0; p < pending.size(); ++p) {
      std::vector<Scored> hits;
      for (size_t j = 0; j < fetch && hits.size() < k; ++j) {
        const idx_t id = labels[p * fetch + j];
        if (id < 0) continue;
        auto doc = docs.find(id);
        if (doc == docs.end() || !Matches(doc->second.metadata, filter)) continue;
        hits.emplace_back(id, distances[p * fetch + j]);
      }
      if (hits.size() < k && fetch < total) {
        again.push_back(pending[p]);
      } else {
        out[pending[p]] = std::move(hits);
      }
    }
    pending = std::move(again);
    fetch = std::min(total, fetch * 4);
  }
  return out;
}

std::vector<std::vector<VectorStore::Impl::Scored>> VectorStore::Impl::LexicalRank(const std::vector<std::string>& texts,
                                                                               size_t k, const json& filter) const {
  std::vector<std::vector<Scored>> out(texts.size());
  if (k == 0 || docs.empty()) return out;
  const auto lex = LexicalIndex();
  std::function<bool(uint32_t)> keep;
  if (!filter.empty()) keep = [&](uint32_t doc) { return Matches(docs.at(lex->ids[doc]).metadata, filter); };
  for (size_t q = 0; q < texts.size(); ++q)
    for (const auto& [doc, score] : lex->index->Search(texts[q], k, keep)) out[q].emplace_back(lex->ids[doc], score);
  return out;
}

Status VectorStore::Impl::CheckQueries(const std::vector<float>& queries, const json& filter) const {
  if (queries.size() % static_cast<size_t>(dim) != 0 || queries.empty())
    return InvalidArgument("queries must be vectors of " + std::to_string(dim) + " floats");
  if (!filter.is_object()) return InvalidArgument("filter must be an object of metadata values", "filter");
  return Status::Ok();
}

Result<std::vector<std::vector<Hit>>> VectorStore::Search(const std::vector<float>& queries, size_t k,
                                                          const json& filter) const {
  const Impl& m = *impl_;
  MLAAS_RETURN_IF_ERROR(m.CheckQueries(queries, filter));
  std::shared_lock<std::shared_mutex> lock(m.mu);
  MLAAS_ASSIGN_OR_RETURN(auto ranked, m.DenseRank(queries, k, filter));
  std::vector<std::vector<Hit>> out(ranked.size());
  for (size_t q = 0; q < ranked.size(); ++q)
    for (const auto& [id, score] : ranked[q]) out[q].push_back(m.MakeHit(id, score));
  return out;
}

Result<std::vector<std::vector<Hit>>> VectorStore::LexicalSearch(const std::vector<std::string>& texts, size_t k,
                                                                 const json& filter) const {
  const Impl& m = *impl_;
  if (!filter.is_object()) return InvalidArgument("filter must be an object of metadata values", "filter");
  std::shared_lock<std::shared_mutex> lock(m.mu);
  const auto ranked = m.LexicalRank(texts, k, filter);
  std::vector<std::vector<Hit>> out(ranked.size());
  for (size_t q = 0; q < ranked.size(); ++q) {
    for (const auto& [id, score] : ranked[q]) {
      Hit h = m.MakeHit(id, score);
      h.lexical_score = score;
      out[q].push_back(std::move(h));
    }
  }
  return out;
}

Result<std::vector<std::vector<Hit>>> VectorStore::HybridSearch(const std::vector<float>& queries,
                                                                const std::vector<std::string>& texts, size_t k,
                                                                const json& filter, const HybridOptions& options) const {
  const Impl& m = *impl_;
  MLAAS_RETURN_IF_ERROR(m.CheckQueries(queries, filter));
  if (queries.size() != texts.size() * static_cast<size_t>(m.dim))
    return InvalidArgument("hybrid search needs one embedding per query text");
  if (!(options.dense_weight >= 0.0f && options.dense_weight <= 1.0f))
    return InvalidArgument("the dense weight must be in 0..1", "dense_weight");
  const size_t depth = std::max(k, options.candidates);
  std::shared_lock<std::shared_mutex> lock(m.mu);
  MLAAS_ASSIGN_OR_RETURN(auto dense, m.DenseRank(queries, depth, filter));
  const auto lexical = m.LexicalRank(texts, depth, filter);
  const bool lower_is_closer = m.spec.metric == Metric::kL2;
  struct Fused {
    float score = 0;
    std::optional<float> dense, lexical;
  };
  std::vector<std::vector<Hit>> out(texts.size());
  for (size_t q = 0; q < texts.size(); ++q) {
    // Fused on internal ids; only the k kept become documents.
    std::unordered_map<int64_t, Fused> fused;
    const auto add = [&](const std::vector<Impl::Scored>& ranking, float weight, bool is_dense) {
      // Linear fusion: each ranking's scores mapped to 0..1 over its candidates (higher is better).
      const auto similarity = [&](float score) { return is_dense && lower_is_closer ? -score : score; };
      float lo = 0, hi = 0;
      for (size_t r = 0; r < ranking.size(); ++r) {
        const float v = similarity(ranking[r].second);
        lo = r == 0 ? v : std::min(lo, v);
        hi = r == 0 ? v : std::max(hi, v);
      }
      for (size_t r = 0; r < ranking.size(); ++r) {
        const auto& [id, score] = ranking[r];
        Fused& f = fused[id];
        if (options.fusion == Fusion::kLinear) {
          f.score += weight * (hi > lo ? (similarity(score) - lo) / (hi - lo) : 1.0f);
        } else {
          f.score += weight / (options.rrf_k + static_cast<float>(r + 1));
        }
        (is_dense ? f.dense : f.lexical) = score;
      }
    };
    add(dense[q], options.dense_weight, true);
    add(lexical[q], 1.0f - options.dense_weight, false);
    std::vector<std::pair<const Document*, const Fused*>> ranked;
    ranked.reserve(fused.size());
    for (const auto& [id, f] : fused) ranked.emplace_back(&m.docs.at(id), &f);
    const auto better = [](const auto& a, const auto& b) {
      return a.second->score != b.second->score ? a.second->score > b.second->score : a.first->id < b.first->id;
    };
    const size_t keep = std::min(k, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(keep), ranked.end(), better);
    for (size_t i = 0; i < keep; ++i) {
      Hit h;
      h.document = *ranked[i].first;
      h.score = ranked[i].second->score;
      h.dense_score = ranked[i].second->dense;
      h.lexical_score = ranked[i].second->lexical;
      out[q].push_back(std::move(h));
    }
  }
  return out;
}

Status VectorStore::Save(const fs::path& dir) const {
  const Impl& m = *impl_;
  std::shared_lock<std::shared_mutex> lock(m.mu);
  std::error_code ec;
  const fs::path tmp = dir.parent_path() / (dir.filename().string() + ".tmp-" + NewUuid());
  fs::create_directories(tmp, ec);
  if (ec) return Internal("cannot create " + tmp.string() + ": " + ec.message());
  auto fail = [&](const Status& st) {
    fs::remove_all(tmp, ec);
    return st;
  };
  try {
    faiss::write_index(m.index.get(), (tmp / "index.faiss").c_str());
  } catch (const faiss::FaissException& e) {
    return fail(FaissError("cannot write the index", e));
  }
  {
    std::ofstream docs(tmp / "documents.jsonl", std::ios::binary);
    for (const auto& [id, d] : m.docs)
      docs << json{{"_id", id}, {"id", d.id}, {"page_content", d.page_content}, {"metadata", d.metadata}}.dump(
                  -1, ' ', false, json::error_handler_t::replace)
           << "\n";
    docs.close();  // flushes: a full disk shows here
    if (!docs) return fail(Internal("cannot write " + (tmp / "documents.jsonl").string()));
  }
  json manifest = m.Manifest();
  manifest["next_id"] = m.next_id;
  if (Status st = WriteFileAtomic(tmp / "manifest.json", manifest.dump(2)); !st.ok()) return fail(st);
  // Swap directories: at every moment one complete store exists under `dir` or its backup.
  const fs::path old = dir.parent_path() / (dir.filename().string() + ".old-" + NewUuid());
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  if (ec) return fail(Internal("cannot replace " + dir.string() + ": " + ec.message()));
  fs::rename(tmp, dir, ec);
  if (ec) {
    fs::rename(old, dir, ec);
    return fail(Internal("cannot write " + dir.string()));
  }
  fs::remove_all(old, ec);
  return Status::Ok();
}

Result<std::unique_ptr<VectorStore>> VectorStore::Load(const fs::path& dir) {
  MLAAS_ASSIGN_OR_RETURN(std::string text, ReadFile(dir / "manifest.json"));
  json manifest = json::parse(text, nullptr, false);
  if (!manifest.is_object() || !manifest.contains("dimension") || !manifest.contains("index"))
    return InvalidArgument("no vector store at " + dir.string() + " (manifest.json is missing or corrupt)");
  if (!manifest["dimension"].is_number_integer() || !manifest.value("next_id", json(0)).is_number_integer())
    return InvalidArgument("the manifest at " + dir.string() + " is corrupt (dimension, next_id)");
  MLAAS_ASSIGN_OR_RETURN(IndexSpec spec, IndexSpec::FromJson(manifest["index"], "index"));
  auto impl = std::make_unique<Impl>();
  impl->dim = manifest["dimension"].get<int64_t>();
  impl->spec = spec;
  impl->next_id = manifest.value("next_id", int64_t{0});
  if (manifest.contains("updated") && manifest["updated"].is_string()) impl->updated = manifest["updated"];
  try {
    faiss::Index* index = faiss::read_index((dir / "index.faiss").c_str());
    auto* map = dynamic_cast<faiss::IndexIDMap2*>(index);
    if (map == nullptr || index->d != impl->dim) {
      delete index;
      return InvalidArgument("the index at " + dir.string() + " does not match its manifest");
    }
    impl->index.reset(map);
    // FAISS reads plain flat indexes: give them the vectorised scan again.
    if (auto* flat = dynamic_cast<faiss::IndexFlat*>(map->index); flat && !dynamic_cast<FastFlatIndex*>(flat)) {
      auto fast = ToFastFlat(*flat);
      delete map->index;
      map->index = fast.release();
    } else if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(map->index)) {
      if (auto* storage = dynamic_cast<faiss::IndexFlat*>(hnsw->storage)) {
        auto fast = ToFastFlat(*storage);
        if (hnsw->own_fields) delete hnsw->storage;
        hnsw->storage = fast.release();
        hnsw->own_fields = true;
      }
    }
  } catch (const faiss::FaissException& e) {
    return FaissError("cannot read the index at " + dir.string(), e);
  }
  std::ifstream docs(dir / "documents.jsonl", std::ios::binary);
  if (!docs) return InvalidArgument("no documents.jsonl at " + dir.string());
  for (std::string line; std::getline(docs, line);) {
    json d = json::parse(line, nullptr, false);
    if (!d.is_object() || !d.contains("_id") || !d["_id"].is_number_integer() || !d.value("id", json()).is_string() ||
        !d.value("page_content", json()).is_string() || !d.value("metadata", json::object()).is_object())
      return InvalidArgument("corrupt documents.jsonl at " + dir.string());
    Document doc{d["id"].get<std::string>(), d["page_content"].get<std::string>(), d.value("metadata", json::object())};
    const int64_t id = d["_id"].get<int64_t>();
    // Every document has its vector: the files were written together (a store half written
    // by an interrupted update is refused, not served wrong).
    if (impl->index->rev_map.count(id) == 0)
      return InvalidArgument("the vector store at " + dir.string() + " is inconsistent: document '" + doc.id +
                             "' has no vector in index.faiss");
    impl->next_id = std::max(impl->next_id, id + 1);  // ids are never reused
    impl->by_id[doc.id] = id;
    impl->docs[id] = std::move(doc);
  }
  for (const char* key : {"count", "dimension", "metric", "index", "next_id", "updated"}) manifest.erase(key);
  impl->manifest = std::move(manifest);
  impl->Tune();
  return std::unique_ptr<VectorStore>(new VectorStore(std::move(impl)));
}

int64_t VectorStore::dim() const { return impl_->dim; }
size_t VectorStore::size() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  return impl_->docs.size();
}
const IndexSpec& VectorStore::spec() const { return impl_->spec; }

json VectorStore::manifest() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  return impl_->Manifest();
}

}  // namespace mlaas::vector
