// mlaas::vector — a vector store: a FAISS index (Flat, IVF or HNSW; L2 or inner product) over
// document embeddings, the documents themselves (id, page content, metadata) and a manifest
// (what embedded them, metric, dimension, count, index type, the index file's checksum). Saved
// as three files in a directory, each replaced atomically, manifest.json last: index.faiss,
// documents.jsonl, manifest.json. Loading checks every file before trusting it (stores are
// objects clients can upload): the manifest's types, the index's checksum and structure
// (vector/index_file.h), each document line. Documents can be added and removed without a
// rebuild. No libtorch here; embedding the texts is the caller's business.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace mlaas::vector {

enum class Metric { kL2, kInnerProduct };

struct IndexSpec {
  std::string type = "Flat";  // Flat, IVF or HNSW
  Metric metric = Metric::kL2;
  int64_t nlist = 100;        // IVF: clusters (capped by the number of training vectors)
  int64_t nprobe = 8;         // IVF: clusters searched
  int64_t hnsw_m = 32;        // HNSW: neighbours per node
  int64_t ef_construction = 40;
  int64_t ef_search = 16;
  // {"type", "metric": "l2"|"inner_product", "nlist", "nprobe", "M", "efConstruction",
  // "efSearch"}; errors name `prefix`.<member>.
  static Result<IndexSpec> FromJson(const nlohmann::json& j, const std::string& prefix);
  nlohmann::json ToJson() const;
};

struct Document {
  std::string id;
  std::string page_content;
  nlohmann::json metadata = nlohmann::json::object();
};

struct Hit {
  Document document;
  // Dense: L2 squared distance (lower is closer) or inner product (higher is closer); lexical:
  // BM25 (higher is better); hybrid: the fused reciprocal-rank score (higher is better).
  float score = 0;
  std::optional<float> dense_score, lexical_score;  // hybrid: each ranking's own score, when it found the document
};

// Hybrid search: the dense and the lexical (BM25) rankings, each `candidates` deep, fused
//  - by reciprocal rank (kRrf): score(d) = w / (rrf_k + rank_dense(d)) + (1 - w) / (rrf_k + rank_lexical(d));
//  - or linearly (kLinear): score(d) = w * dense(d) + (1 - w) * lexical(d), each ranking's scores
//    mapped to 0..1 over its candidates (similarity for dense), 0 where it did not find d.
enum class Fusion { kRrf, kLinear };
struct HybridOptions {
  float dense_weight = 0.5f;  // w, in 0..1
  size_t candidates = 100;    // how deep each ranking goes (at least k)
  float rrf_k = 60.0f;
  Fusion fusion = Fusion::kRrf;
};

class VectorStore {
 public:
  // An empty store of `dim`-dimensional vectors. `manifest` holds what the caller wants kept
  // (model, tokenizer, pooling, ...); counts, dimension, metric and index are added.
  static Result<std::unique_ptr<VectorStore>> Create(int64_t dim, IndexSpec spec,
                                                     nlohmann::json manifest = nlohmann::json::object());
  // InvalidArgument naming the file (never `dir`) when a file is missing, corrupt or does not
  // match the others.
  static Result<std::unique_ptr<VectorStore>> Load(const std::filesystem::path& dir);
  ~VectorStore();

  // Adds documents with their vectors (row-major, docs.size() x dim). An IVF index that is
  // not trained yet trains on these vectors first. Ids must be new and unique.
  Status Add(const std::vector<Document>& docs, const std::vector<float>& vectors);
  // Removes the documents with these ids; returns how many there were.
  Result<size_t> Remove(const std::vector<std::string>& ids);
  // The k closest documents to each query (row-major, n x dim), best first; with `filter`
  // ({"field": value, ...}) only documents whose metadata has those values.
  Result<std::vector<std::vector<Hit>>> Search(const std::vector<float>& queries, size_t k,
                                               const nlohmann::json& filter = nlohmann::json::object()) const;
  // BM25 over the documents' page content (the lexical index is built on first use and again
  // after documents change).
  Result<std::vector<std::vector<Hit>>> LexicalSearch(const std::vector<std::string>& texts, size_t k,
                                                      const nlohmann::json& filter = nlohmann::json::object()) const;
  // Whether the lexical index is built; builds it now (a search would on first use).
  bool LexicalReady() const;
  void BuildLexical() const;
  // Both, fused; queries[i] is the embedding of texts[i].
  Result<std::vector<std::vector<Hit>>> HybridSearch(const std::vector<float>& queries,
                                                     const std::vector<std::string>& texts, size_t k,
                                                     const nlohmann::json& filter, const HybridOptions& options) const;
  // Writes the store's three files into `dir` (created if needed), replacing each atomically,
  // manifest.json last; nothing else in `dir` is touched.
  Status Save(const std::filesystem::path& dir) const;

  int64_t dim() const;
  size_t size() const;
  const IndexSpec& spec() const;
  nlohmann::json manifest() const;  // with count, dimension, metric, index

 private:
  struct Impl;
  explicit VectorStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::vector
