#include "vector/vector_store.h"

// Debian's FAISS 1.7.3 headers use uint8_t without including <cstdint> (g++ 13 no longer
// brings it in through other headers).
#include <cstdint>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "common/json_file.h"
#include "common/text.h"
#include "common/time_util.h"
#include "vector/bm25.h"
#include "vector/flat_scan.h"
#include "vector/index_file.h"

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

// One file of a store, written beside its final name (`<name>.tmp-<id>`) and renamed over it
// after an fsync: a reader sees the old file or the new one. Removed unless committed. Errors
// name the file, never its directory.
class ReplacingFile {
 public:
  explicit ReplacingFile(fs::path path) : path_(std::move(path)) {
    tmp_ = path_;
    tmp_ += ".tmp-" + NewUuid().substr(0, 8);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) error_ = errno;
  }
  ReplacingFile(const ReplacingFile&) = delete;
  ReplacingFile& operator=(const ReplacingFile&) = delete;
  ~ReplacingFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  bool Write(const void* data, size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0 && error_ == 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno != EINTR) error_ = errno;
        continue;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return error_ == 0;
  }

  Status Commit() {
    if (error_ == 0 && ::fsync(fd_) != 0) error_ = errno;
    if (fd_ >= 0 && ::close(fd_) != 0 && error_ == 0) error_ = errno;
    fd_ = -1;
    if (error_ == 0 && ::rename(tmp_.c_str(), path_.c_str()) != 0) error_ = errno;
    if (error_ != 0) return Internal("cannot write " + path_.filename().string() + ": " + std::strerror(error_));
    committed_ = true;
    return Status::Ok();
  }

 private:
  fs::path path_, tmp_;
  int fd_ = -1;
  int error_ = 0;
  bool committed_ = false;
};

// FAISS's writer onto a ReplacingFile, hashing what it writes.
struct HashingWriter : faiss::IOWriter {
  explicit HashingWriter(ReplacingFile& f) : file(f) {}
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    if (size == 0 || nitems == 0) return nitems;
    if (!file.Write(ptr, size * nitems)) return 0;
    hash.Update(ptr, size * nitems);
    return nitems;
  }
  ReplacingFile& file;
  Fnv1a64 hash;
};

// An open file read at offsets (the same file throughout, even if its name is replaced meanwhile).
class OpenFile {
 public:
  explicit OpenFile(const fs::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  ~OpenFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  uint64_t size() const {
    struct stat st {};
    return ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  bool ReadAt(uint64_t offset, void* out, size_t n) const {
    auto* p = static_cast<char*>(out);
    while (n > 0) {
      const ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
    }
    return true;
  }

 private:
  int fd_;
};

// FAISS's reader over an OpenFile, from its start.
struct OpenFileReader : faiss::IOReader {
  explicit OpenFileReader(const OpenFile& f) : file(f) {}
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0 || nitems == 0) return nitems;
    if (!file.ReadAt(offset, ptr, size * nitems)) return 0;
    offset += size * nitems;
    return nitems;
  }
  const OpenFile& file;
  uint64_t offset = 0;
};

// What a manifest member must be, when present.
bool IsObject(const json& j) { return j.is_object(); }
bool IsString(const json& j) { return j.is_string(); }
bool IsInteger(const json& j) { return j.is_number_integer(); }
bool IsBoolean(const json& j) { return j.is_boolean(); }
bool IsObjectOrNull(const json& j) { return j.is_object() || j.is_null(); }
bool IsIndex(const json& j) { return j.is_object() || j.is_string(); }

Status CheckManifestTypes(const json& m) {
  if (!m.is_object()) return InvalidArgument("manifest.json is not a JSON object");
  struct Member {
    const char* key;
    bool (*ok)(const json&);
    const char* want;
    bool required;
  };
  static const Member kMembers[] = {
      {"dimension", IsInteger, "an integer", true}, {"index", IsIndex, "an object", true},
      {"next_id", IsInteger, "an integer", false},  {"count", IsInteger, "an integer", false},
      {"metric", IsString, "a string", false},      {"updated", IsString, "a string", false},
      {"index_checksum", IsString, "a string", false}, {"model", IsObject, "an object", false},
      {"tokenizer", IsObjectOrNull, "an object", false}, {"pooling", IsString, "a string", false},
      {"normalize", IsBoolean, "true or false", false}, {"max_tokens", IsInteger, "an integer", false},
      {"source", IsString, "a string", false},      {"page_content_column", IsString, "a string", false},
      {"created", IsString, "a string", false}};
  for (const auto& member : kMembers) {
    auto it = m.find(member.key);
    if (it == m.end()) {
      if (member.required) return InvalidArgument(std::string("manifest.json has no ") + member.key);
      continue;
    }
    if (!member.ok(*it)) return InvalidArgument(std::string("manifest.json: ") + member.key + " must be " + member.want);
  }
  if (auto model = m.find("model"); model != m.end()) {
    for (const char* key : {"path", "storage_type", "fingerprint"})
      if (auto v = model->find(key); v != model->end() && !v->is_string())
        return InvalidArgument(std::string("manifest.json: model.") + key + " must be a string");
  }
  if (m["dimension"].get<int64_t>() < 1 || m["dimension"].get<int64_t>() > 65536)
    return InvalidArgument("manifest.json: dimension must be in 1..65536");
  if (m.value("next_id", int64_t{0}) < 0) return InvalidArgument("manifest.json: next_id must not be negative");
  return Status::Ok();
}

// The checks FAISS does not make on what it read, for what searches trust: the id map's ids
// are unique, and an IVF index's list labels are exactly its positions 0..ntotal-1 (the id
// map translates them by position).
Status CheckLoadedIndex(const faiss::IndexIDMap2& map) {
  if (map.rev_map.size() != map.id_map.size()) return InvalidArgument("index.faiss maps two vectors to one id");
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(map.index)) {
    const auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists);
    if (lists == nullptr) return InvalidArgument("index.faiss has no inverted lists");
    std::vector<bool> seen(map.id_map.size());
    for (const auto& ids : lists->ids) {
      for (idx_t label : ids) {
        if (label < 0 || static_cast<size_t>(label) >= seen.size() || seen[static_cast<size_t>(label)])
          return InvalidArgument("index.faiss has inverted lists that do not match its id map (rebuild the store)");
        seen[static_cast<size_t>(label)] = true;
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<IndexSpec> IndexSpec::FromJson(const json& j, const std::string& prefix) {
  IndexSpec s;
  if (j.is_null()) return s;
  if (j.is_string()) {
    s.type = j.get<std::string>();
  } else if (j.is_object()) {
    if (auto t = j.find("type"); t != j.end()) {
      if (!t->is_string()) return InvalidArgument("index type must be Flat, IVF or HNSW", prefix + ".type");
      s.type = t->get<std::string>();
    }
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
      // IndexIDMap2 compacts its id map (labels are positions in it), which renumbers a flat
      // index's vectors too, but an IVF index keeps its list labels: renumber them the same way.
      std::vector<idx_t> position;
      auto* ivf = dynamic_cast<faiss::IndexIVF*>(m.index->index);
      if (ivf != nullptr) {
        const std::unordered_set<idx_t> gone(internal.begin(), internal.end());
        position.assign(m.index->id_map.size(), -1);
        idx_t next = 0;
        for (size_t i = 0; i < position.size(); ++i)
          if (!gone.count(m.index->id_map[i])) position[i] = next++;
      }
      faiss::IDSelectorArray selector(internal.size(), internal.data());
      m.index->remove_ids(selector);
      if (auto* lists = ivf ? dynamic_cast<faiss::ArrayInvertedLists*>(ivf->invlists) : nullptr)
        for (auto& labels : lists->ids)
          for (idx_t& label : labels) label = position[static_cast<size_t>(label)];
    } catch (const faiss::FaissException&) {
    }
  }
  return internal.size();
}

// The k best (internal id, score) pairs per query, under the caller's shared lock. Removed
// (HNSW) and filtered-out documents take places in the index's answers, so it is asked for
// more, four times more each round up to kMaxFetch (or 2k); queries still short then, and
// filters that keep few documents, are answered by an exact scan of the documents that may
// match. No query costs more than a few searches of kMaxFetch plus one pass over the vectors.
Result<std::vector<std::vector<VectorStore::Impl::Scored>>> VectorStore::Impl::DenseRank(const std::vector<float>& queries,
                                                                                     size_t k, const json& filter) const {
  constexpr size_t kMaxFetch = 4096;
  const size_t nq = queries.size() / static_cast<size_t>(dim);
  std::vector<std::vector<Scored>> out(nq);
  const auto total = static_cast<size_t>(index->ntotal);
  if (k == 0 || total == 0 || docs.empty()) return out;
  // The filter's documents, found once for all the queries.
  std::unordered_set<int64_t> allowed;
  if (!filter.empty()) {
    for (const auto& [id, d] : docs)
      if (Matches(d.metadata, filter)) allowed.insert(id);
    if (allowed.empty()) return out;
  }
  const auto wanted = [&](idx_t id) { return filter.empty() ? docs.count(id) > 0 : allowed.count(id) > 0; };
  const size_t candidates = filter.empty() ? docs.size() : allowed.size();
  const size_t limit = std::min(total, std::max(kMaxFetch, 2 * k));
  std::vector<size_t> pending;
  if (candidates * 8 > total) {  // else the scan below is cheaper than the index
    size_t fetch = std::min(limit, k + (total - docs.size()) + (filter.empty() ? 0 : 4 * k));
    for (size_t q = 0; q < nq; ++q) pending.push_back(q);
    for (;;) {
      std::vector<size_t> again;
      // Queries in groups of at most kMaxResults answers (12 bytes each) at a time.
      constexpr size_t kMaxResults = 1 << 22;
      const size_t group = std::max<size_t>(1, kMaxResults / fetch);
      for (size_t first = 0; first < pending.size(); first += group) {
        const size_t count = std::min(group, pending.size() - first);
        std::vector<float> batch;
        for (size_t p = first; p < first + count; ++p)
          batch.insert(batch.end(), queries.begin() + static_cast<std::ptrdiff_t>(pending[p] * dim),
                       queries.begin() + static_cast<std::ptrdiff_t>((pending[p] + 1) * dim));
        std::vector<float> distances(count * fetch);
        std::vector<idx_t> labels(count * fetch);
        try {
          index->search(static_cast<idx_t>(count), batch.data(), static_cast<idx_t>(fetch), distances.data(),
                        labels.data());
        } catch (const faiss::FaissException& e) {
          return FaissError("search failed", e);
        }
        for (size_t p = 0; p < count; ++p) {
          std::vector<Scored> hits;
          for (size_t j = 0; j < fetch && hits.size() < k; ++j) {
            const idx_t id = labels[p * fetch + j];
            if (id >= 0 && wanted(id)) hits.emplace_back(id, distances[p * fetch + j]);
          }
          if (hits.size() < k && fetch < total && hits.size() < candidates) {
            again.push_back(pending[first + p]);
          } else {
            out[pending[first + p]] = std::move(hits);
          }
        }
      }
      pending = std::move(again);
      if (pending.empty() || fetch == limit) break;
      fetch = std::min(limit, fetch * 4);
    }
  } else {
    for (size_t q = 0; q < nq; ++q) pending.push_back(q);
  }
  if (pending.empty()) return out;
  // The exact scan: each candidate's vector read from the index's own storage.
  std::vector<std::pair<int64_t, const float*>> vectors;
  vectors.reserve(candidates);
  const faiss::Index* inner = index->index;
  if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(inner)) inner = hnsw->storage;
  if (const auto* flat = dynamic_cast<const faiss::IndexFlat*>(inner)) {
    for (const auto& [external, position] : index->rev_map)
      if (wanted(external)) vectors.emplace_back(external, flat->get_xb() + position * dim);
  } else if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(inner)) {
    const auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists);
    for (size_t l = 0; lists != nullptr && l < lists->nlist; ++l) {
      for (size_t j = 0; j < lists->ids[l].size(); ++j) {
        const idx_t external = index->id_map[static_cast<size_t>(lists->ids[l][j])];
        if (wanted(external))
          vectors.emplace_back(external, reinterpret_cast<const float*>(lists->codes[l].data() + j * lists->code_size));
      }
    }
  }
  const bool l2 = spec.metric == Metric::kL2;
  const auto better = [l2](const Scored& a, const Scored& b) {
    if (a.second != b.second) return l2 ? a.second < b.second : a.second > b.second;
    return a.first < b.first;
  };
  for (size_t q : pending) {
    const float* query = queries.data() + q * static_cast<size_t>(dim);
    std::vector<Scored> scored;
    scored.reserve(vectors.size());
    for (const auto& [id, v] : vectors)
      scored.emplace_back(id, l2 ? L2Sqr(query, v, static_cast<size_t>(dim)) : InnerProduct(query, v, static_cast<size_t>(dim)));
    const size_t keep = std::min(k, scored.size());
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep), scored.end(), better);
    scored.resize(keep);
    out[q] = std::move(scored);
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

// The store's files are replaced one by one, each written beside its name and renamed over
// it: the index, the documents, then the manifest, which holds the index's checksum. A reader
// between two renames finds a new index.faiss that does not match the old manifest's checksum
// and refuses the store; nothing else in `dir` is touched.
Status VectorStore::Save(const fs::path& dir) const {
  const Impl& m = *impl_;
  std::shared_lock<std::shared_mutex> lock(m.mu);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create the vector store's directory: " + ec.message());
  std::string checksum;
  {
    ReplacingFile file(dir / "index.faiss");
    HashingWriter writer(file);
    try {
      faiss::write_index(m.index.get(), &writer);
    } catch (const faiss::FaissException& e) {
      return FaissError("cannot write index.faiss", e);  // the temporary file is removed
    }
    MLAAS_RETURN_IF_ERROR(file.Commit());
    checksum = writer.hash.Text();
  }
  {
    ReplacingFile file(dir / "documents.jsonl");
    std::string chunk;
    for (const auto& [id, d] : m.docs) {
      chunk += json{{"_id", id}, {"id", d.id}, {"page_content", d.page_content}, {"metadata", d.metadata}}.dump(
          -1, ' ', false, json::error_handler_t::replace);
      chunk += '\n';
      if (chunk.size() >= (1 << 20)) {
        file.Write(chunk.data(), chunk.size());
        chunk.clear();
      }
    }
    file.Write(chunk.data(), chunk.size());
    MLAAS_RETURN_IF_ERROR(file.Commit());
  }
  json manifest = m.Manifest();
  manifest["next_id"] = m.next_id;
  manifest["index_checksum"] = checksum;
  const std::string text = manifest.dump(2, ' ', false, json::error_handler_t::replace);
  ReplacingFile file(dir / "manifest.json");
  file.Write(text.data(), text.size());
  return file.Commit();
}

namespace {

// The largest manifest.json and documents.jsonl line read.
constexpr JsonLimits kManifestLimits{.max_bytes = 4ull << 20, .max_depth = 32};
constexpr JsonLimits kDocumentLimits{.max_bytes = 16ull << 20, .max_depth = 64};

// index.faiss read as FAISS reads it, after CheckIndexFile and the checksum (when the
// manifest has one) accepted it, from the same open file.
Result<std::unique_ptr<faiss::IndexIDMap2>> ReadIndex(const fs::path& path, const json& manifest, const IndexSpec& spec) {
  OpenFile file(path);
  if (!file.ok()) return InvalidArgument("the vector store has no readable index.faiss");
  const uint64_t size = file.size();
  // Stores written before checksums were recorded have none; they are still read (checked
  // by CheckIndexFile alone).
  if (auto recorded = manifest.find("index_checksum"); recorded != manifest.end()) {
    Fnv1a64 hash;
    std::vector<char> block(1 << 20);
    for (uint64_t at = 0; at < size; at += block.size()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), size - at));
      if (!file.ReadAt(at, block.data(), n)) return InvalidArgument("index.faiss cannot be read");
      hash.Update(block.data(), n);
    }
    if (hash.Text() != recorded->get<std::string>())
      return InvalidArgument("index.faiss does not match the checksum in manifest.json (a changed or half-written store)");
  }
  MLAAS_RETURN_IF_ERROR(CheckIndexFile([&](uint64_t at, void* out, size_t n) { return file.ReadAt(at, out, n); }, size,
                                       {.dim = manifest["dimension"].get<int64_t>(),
                                        .type = spec.type,
                                        .inner_product = spec.metric == Metric::kInnerProduct}));
  OpenFileReader reader(file);
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::read_index(&reader));
  } catch (const faiss::FaissException&) {
    return InvalidArgument("index.faiss could not be read");
  } catch (const std::exception&) {  // std::bad_alloc, std::length_error: never past the checks, but not a crash
    return InvalidArgument("index.faiss could not be read");
  }
  auto* map = dynamic_cast<faiss::IndexIDMap2*>(index.get());
  if (map == nullptr) return InvalidArgument("index.faiss is not a vector-store index");
  index.release();
  std::unique_ptr<faiss::IndexIDMap2> out(map);
  MLAAS_RETURN_IF_ERROR(CheckLoadedIndex(*out));
  return out;
}

}  // namespace

Result<std::unique_ptr<VectorStore>> VectorStore::Load(const fs::path& dir) {
  auto read = ReadJsonFile(dir / "manifest.json", "manifest.json", {}, kManifestLimits);
  if (!read.has_value()) {
    if (read.error().code() == StatusCode::kNotFound) return InvalidArgument("no vector store here (no manifest.json)");
    return read.error();
  }
  json manifest = std::move(read).value();
  MLAAS_RETURN_IF_ERROR(CheckManifestTypes(manifest));
  auto spec = IndexSpec::FromJson(manifest["index"], "index");
  if (!spec.has_value()) return InvalidArgument("manifest.json: " + spec.error().message());
  auto impl = std::make_unique<Impl>();
  impl->dim = manifest["dimension"].get<int64_t>();
  impl->spec = *spec;
  impl->next_id = manifest.value("next_id", int64_t{0});
  if (manifest.contains("updated")) impl->updated = manifest["updated"];
  MLAAS_ASSIGN_OR_RETURN(impl->index, ReadIndex(dir / "index.faiss", manifest, *spec));
  try {
    auto* map = impl->index.get();
    // FAISS reads plain flat indexes: give them the vectorised scan again.
    if (auto* flat = dynamic_cast<faiss::IndexFlat*>(map->index); flat && !dynamic_cast<FastFlatIndex*>(flat)) {
      auto fast = ToFastFlat(*flat);
      delete map->index;
      map->index = fast.release();
    } else if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(map->index)) {
      hnsw->hnsw.efConstruction = static_cast<int>(impl->spec.ef_construction);
      if (auto* storage = dynamic_cast<faiss::IndexFlat*>(hnsw->storage)) {
        auto fast = ToFastFlat(*storage);
        if (hnsw->own_fields) delete hnsw->storage;
        hnsw->storage = fast.release();
        hnsw->own_fields = true;
      }
    }
  } catch (const faiss::FaissException&) {
    return InvalidArgument("index.faiss could not be read");
  }
  // Ids are never reused: new ones start past every id in the index and the documents.
  for (idx_t id : impl->index->id_map) impl->next_id = std::max<int64_t>(impl->next_id, id + 1);
  std::ifstream docs(dir / "documents.jsonl", std::ios::binary);
  if (!docs) return InvalidArgument("the vector store has no documents.jsonl");
  size_t line_number = 0;
  // Lines are read within the document limit: a file of gigabytes without a newline is refused
  // when its first line passes the limit, not held whole.
  std::vector<char> buffer(kDocumentLimits.max_bytes + 2);
  for (;;) {
    docs.getline(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(docs.gcount());
    if (got == 0 && docs.eof()) break;
    if (docs.fail() && !docs.eof())
      return InvalidArgument("documents.jsonl line " + std::to_string(line_number + 1) + " is longer than " +
                             FormatBytes(kDocumentLimits.max_bytes));
    const std::string line(buffer.data(), got > 0 && !docs.eof() ? got - 1 : got);  // without its '\n'
    ++line_number;
    const std::string where = "documents.jsonl line " + std::to_string(line_number);
    MLAAS_ASSIGN_OR_RETURN(json d, ParseJsonText(line, where, {}, kDocumentLimits));
    const auto metadata = d.is_object() ? d.find("metadata") : d.end();
    if (!d.is_object() || !d.contains("_id") || !d["_id"].is_number_integer() || !d.value("id", json()).is_string() ||
        !d.value("page_content", json()).is_string() || (metadata != d.end() && !metadata->is_object()))
      return InvalidArgument(where + " is not a document {_id, id, page_content, metadata}");
    Document doc{d["id"].get<std::string>(), d["page_content"].get<std::string>(),
                 metadata != d.end() ? *metadata : json::object()};
    const int64_t id = d["_id"].get<int64_t>();
    // Every document has its vector: the files were written together (a store half written
    // by an interrupted update is refused, not served wrong).
    if (impl->index->rev_map.count(id) == 0)
      return InvalidArgument("the vector store is inconsistent: document '" + doc.id + "' has no vector in index.faiss");
    if (impl->docs.count(id) || impl->by_id.count(doc.id))
      return InvalidArgument(where + " repeats a document ('" + doc.id + "')");
    impl->by_id[doc.id] = id;
    impl->docs[id] = std::move(doc);
  }
  for (const char* key : {"count", "dimension", "metric", "index", "next_id", "updated", "index_checksum"})
    manifest.erase(key);
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

bool VectorStore::LexicalReady() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  std::lock_guard<std::mutex> lexical(impl_->lexical_mu);
  return impl_->lexical != nullptr;
}

void VectorStore::BuildLexical() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  impl_->LexicalIndex();
}

json VectorStore::manifest() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  return impl_->Manifest();
}

}  // namespace mlaas::vector
