#include "vector/vector_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <numeric>
#include <random>
#include <set>

#include "common/file_util.h"
#include "testutil/temp_dir.h"

namespace mlaas::vector {
namespace {

using json = nlohmann::json;
using mlaas::testing::TempDir;

constexpr int64_t kDim = 16;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n * kDim);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<Document> Docs(size_t n, size_t offset = 0) {
  std::vector<Document> docs;
  for (size_t i = 0; i < n; ++i) {
    const size_t k = i + offset;
    docs.push_back({"doc-" + std::to_string(k), "text " + std::to_string(k),
                    {{"group", k % 3 == 0 ? "a" : "b"}, {"n", k}}});
  }
  return docs;
}

// Exact top-k ids by squared L2 distance (or inner product).
std::vector<std::string> BruteForce(const std::vector<float>& base, const float* q, size_t k, bool ip) {
  const size_t n = base.size() / kDim;
  std::vector<std::pair<float, size_t>> scored;
  for (size_t i = 0; i < n; ++i) {
    float s = 0;
    for (int64_t d = 0; d < kDim; ++d) {
      const float a = base[i * kDim + d], b = q[d];
      s += ip ? -a * b : (a - b) * (a - b);
    }
    scored.emplace_back(s, i);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < k; ++i) out.push_back("doc-" + std::to_string(scored[i].second));
  return out;
}

// Exact top-k ids by squared L2 distance among the rows of `base` that `keep` accepts.
std::vector<std::string> BruteForceAmong(const std::vector<float>& base, const std::function<bool(size_t)>& keep,
                                         const float* q, size_t k) {
  std::vector<float> kept;
  std::vector<size_t> rows;
  for (size_t i = 0; i < base.size() / kDim; ++i) {
    if (!keep(i)) continue;
    kept.insert(kept.end(), base.begin() + static_cast<std::ptrdiff_t>(i * kDim),
                base.begin() + static_cast<std::ptrdiff_t>((i + 1) * kDim));
    rows.push_back(i);
  }
  std::vector<std::string> out;
  for (const auto& id : BruteForce(kept, q, k, false)) out.push_back("doc-" + std::to_string(rows[std::stoul(id.substr(4))]));
  return out;
}

std::vector<std::string> Ids(const std::vector<Hit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) out.push_back(h.document.id);
  return out;
}

TEST(VectorStoreTest, FlatSearchIsExactForBothMetrics) {
  const auto base = Random(500, 1), queries = Random(5, 2);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
    IndexSpec spec;
    spec.metric = metric;
    auto store = VectorStore::Create(kDim, spec);
    ASSERT_TRUE(store.has_value());
    ASSERT_TRUE((*store)->Add(Docs(500), base).ok());
    auto hits = (*store)->Search(queries, 10);
    ASSERT_TRUE(hits.has_value()) << hits.error().ToString();
    ASSERT_EQ(hits->size(), 5u);
    for (size_t q = 0; q < 5; ++q) {
      EXPECT_EQ(Ids((*hits)[q]), BruteForce(base, queries.data() + q * kDim, 10, metric == Metric::kInnerProduct));
      EXPECT_EQ((*hits)[q][0].document.page_content, "text " + (*hits)[q][0].document.id.substr(4));
    }
    // L2 scores are squared distances, ascending; inner products descend.
    const auto& h = (*hits)[0];
    EXPECT_TRUE(metric == Metric::kL2 ? h[0].score <= h[9].score : h[0].score >= h[9].score);
  }
}

TEST(VectorStoreTest, IvfAndHnswFindMostTrueNeighbours) {
  const auto base = Random(2000, 3), queries = Random(20, 4);
  for (const char* type : {"IVF", "HNSW"}) {
    auto spec = IndexSpec::FromJson({{"type", type}, {"nlist", 16}, {"nprobe", 8}, {"efSearch", 64}}, "index");
    ASSERT_TRUE(spec.has_value());
    auto store = VectorStore::Create(kDim, *spec);
    ASSERT_TRUE(store.has_value());
    ASSERT_TRUE((*store)->Add(Docs(2000), base).ok());
    auto hits = (*store)->Search(queries, 10);
    ASSERT_TRUE(hits.has_value());
    size_t found = 0;
    for (size_t q = 0; q < 20; ++q) {
      auto truth = BruteForce(base, queries.data() + q * kDim, 10, false);
      std::set<std::string> t(truth.begin(), truth.end());
      for (const auto& hit : (*hits)[q]) found += t.count(hit.document.id);
    }
    EXPECT_GE(found, 150u) << type << ": recall@10 " << found / 200.0;  // >= 0.75
  }
}

TEST(VectorStoreTest, RemovedDocumentsAreNeverReturnedAndFiltersApply) {
  const auto base = Random(300, 5), queries = Random(3, 6);
  for (const char* type : {"Flat", "HNSW"}) {
    auto store = VectorStore::Create(kDim, *IndexSpec::FromJson(json(type), "index"));
    ASSERT_TRUE(store.has_value());
    ASSERT_TRUE((*store)->Add(Docs(300), base).ok());
    auto before = (*store)->Search(queries, 5);
    ASSERT_TRUE(before.has_value());
    std::vector<std::string> gone = Ids((*before)[0]);
    gone.push_back("not-there");
    auto removed = (*store)->Remove(gone);
    ASSERT_TRUE(removed.has_value());
    EXPECT_EQ(*removed, 5u);
    EXPECT_EQ((*store)->size(), 295u);
    auto after = (*store)->Search(queries, 5);
    ASSERT_TRUE(after.has_value());
    ASSERT_EQ((*after)[0].size(), 5u);
    for (const auto& hit : (*after)[0]) EXPECT_EQ(std::count(gone.begin(), gone.end(), hit.document.id), 0) << type;
    auto filtered = (*store)->Search(queries, 7, {{"group", "a"}});
    ASSERT_TRUE(filtered.has_value());
    for (const auto& hits : *filtered) {
      EXPECT_EQ(hits.size(), 7u);
      for (const auto& hit : hits) EXPECT_EQ(hit.document.metadata["group"], "a");
    }
    // A removed id can come back.
    std::vector<float> one(base.begin(), base.begin() + kDim);
    EXPECT_TRUE((*store)->Add({{gone[0], "again", json::object()}}, one).ok());
  }
}

TEST(VectorStoreTest, SavesAtomicallyAndLoadsTheSameStore) {
  TempDir dir;
  const auto base = Random(200, 7), queries = Random(4, 8);
  auto store = VectorStore::Create(kDim, *IndexSpec::FromJson({{"type", "IVF"}, {"nlist", 8}, {"nprobe", 8}}, "index"),
                                   {{"model", {{"path", "models/emb"}}}, {"pooling", "mean"}});
  ASSERT_TRUE(store.has_value());
  ASSERT_TRUE((*store)->Add(Docs(200), base).ok());
  ASSERT_TRUE((*store)->Remove({"doc-3"}).has_value());
  const auto path = dir.path() / "stores" / "s1";
  std::filesystem::create_directories(path.parent_path());
  ASSERT_TRUE((*store)->Save(path).ok());
  ASSERT_TRUE((*store)->Save(path).ok());  // replaces
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(path.parent_path()), {}), 1);  // no leftovers
  auto loaded = VectorStore::Load(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ((*loaded)->size(), 199u);
  const json m = (*loaded)->manifest();
  EXPECT_EQ(m["count"], 199);
  EXPECT_EQ(m["dimension"], kDim);
  EXPECT_EQ(m["index"]["type"], "IVF");
  EXPECT_EQ(m["model"]["path"], "models/emb");
  auto a = (*store)->Search(queries, 6), b = (*loaded)->Search(queries, 6);
  ASSERT_TRUE(a.has_value() && b.has_value());
  for (size_t q = 0; q < 4; ++q) EXPECT_EQ(Ids((*a)[q]), Ids((*b)[q]));
  // Adding after a load continues the ids.
  EXPECT_TRUE((*loaded)->Add(Docs(1, 500), Random(1, 9)).ok());
  EXPECT_EQ((*loaded)->size(), 200u);
  EXPECT_FALSE(VectorStore::Load(dir.path() / "nothing").has_value());
}

TEST(VectorStoreTest, HnswAndFlatSurviveASaveWithTheirResults) {
  TempDir dir;
  const auto base = Random(400, 11), queries = Random(3, 12);
  for (const char* type : {"Flat", "HNSW"}) {
    IndexSpec spec;
    spec.type = type;
    spec.ef_search = 64;
    auto store = VectorStore::Create(kDim, spec);
    ASSERT_TRUE(store.has_value());
    ASSERT_TRUE((*store)->Add(Docs(400), base).ok());
    ASSERT_TRUE((*store)->Save(dir.path() / type).ok());
    auto loaded = VectorStore::Load(dir.path() / type);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
    auto a = (*store)->Search(queries, 5), b = (*loaded)->Search(queries, 5);
    ASSERT_TRUE(a.has_value() && b.has_value());
    for (size_t q = 0; q < 3; ++q) {
      EXPECT_EQ(Ids((*a)[q]), Ids((*b)[q])) << type;
      EXPECT_FLOAT_EQ((*a)[q][0].score, (*b)[q][0].score) << type;
    }
  }
}

// Documents whose words and vectors point different ways: "alpha" texts sit far from the
// query vector, "beta" texts close to it.
struct MixedStore {
  std::unique_ptr<VectorStore> store;
  std::vector<float> query;
};

MixedStore MakeMixedStore() {
  std::vector<Document> docs;
  std::vector<float> vectors;
  for (int i = 0; i < 20; ++i) {
    const bool alpha = i < 10;
    docs.push_back({"d" + std::to_string(i), alpha ? "alpha report number " + std::to_string(i) : "beta note",
                    {{"kind", alpha ? "alpha" : "beta"}}});
    for (int64_t d = 0; d < kDim; ++d) vectors.push_back(d == 0 ? (alpha ? 10.0f + static_cast<float>(i) : static_cast<float>(i - 10)) : 0.0f);
  }
  // d10 (beta, at 0) is the nearest vector to the query; d0 ("alpha report number 0", far) has
  // the best words for it; d1 is second for both.
  docs[1].page_content = "alpha report";
  vectors[1 * kDim] = 0.5f;
  auto store = VectorStore::Create(kDim, {});
  EXPECT_TRUE(store.has_value());
  EXPECT_TRUE((*store)->Add(docs, vectors).ok());
  return {std::move(store).value(), std::vector<float>(kDim, 0.0f)};
}

TEST(VectorStoreTest, LexicalAndHybridSearchRankByWordsAndByBoth) {
  auto s = MakeMixedStore();
  auto lexical = s.store->LexicalSearch({"alpha report"}, 3);
  ASSERT_TRUE(lexical.has_value());
  ASSERT_EQ((*lexical)[0].size(), 3u);
  EXPECT_EQ((*lexical)[0][0].document.id, "d1");  // the shortest document with both words
  EXPECT_TRUE((*lexical)[0][0].lexical_score.has_value());
  auto dense = s.store->Search(s.query, 2);
  ASSERT_TRUE(dense.has_value());
  EXPECT_EQ(Ids((*dense)[0]), (std::vector<std::string>{"d10", "d1"}));

  // Equal weights: d1, second in one ranking and first in the other, wins.
  HybridOptions equal;
  auto hybrid = s.store->HybridSearch(s.query, {"alpha report"}, 3, json::object(), equal);
  ASSERT_TRUE(hybrid.has_value()) << hybrid.error().ToString();
  ASSERT_EQ((*hybrid)[0].size(), 3u);
  const Hit& top = (*hybrid)[0][0];
  EXPECT_EQ(top.document.id, "d1");
  ASSERT_TRUE(top.dense_score.has_value() && top.lexical_score.has_value());
  EXPECT_NEAR(top.score, 0.5f / 61 + 0.5f / 62, 1e-6);
  EXPECT_GE((*hybrid)[0][0].score, (*hybrid)[0][1].score);
  // All the weight on one side reproduces that side's order.
  HybridOptions dense_only;
  dense_only.dense_weight = 1.0f;
  auto d = s.store->HybridSearch(s.query, {"alpha report"}, 2, json::object(), dense_only);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(Ids((*d)[0]), Ids((*dense)[0]));
  HybridOptions lexical_only;
  lexical_only.dense_weight = 0.0f;
  auto l = s.store->HybridSearch(s.query, {"alpha report"}, 1, json::object(), lexical_only);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ((*l)[0][0].document.id, "d1");
  // Linear fusion: d1 is best in words (1.0) and nearly best in distance (0.9993 of the span
  // from the farthest candidate to d10, the nearest vector, which has no query word); with all
  // the weight on the dense side d10 wins.
  HybridOptions linear;
  linear.fusion = Fusion::kLinear;
  auto lin = s.store->HybridSearch(s.query, {"alpha report"}, 3, json::object(), linear);
  ASSERT_TRUE(lin.has_value());
  EXPECT_EQ((*lin)[0][0].document.id, "d1");
  EXPECT_GT((*lin)[0][0].score, 0.5f);
  EXPECT_LE((*lin)[0][0].score, 1.0f);
  linear.dense_weight = 1.0f;
  auto lin_dense = s.store->HybridSearch(s.query, {"alpha report"}, 1, json::object(), linear);
  ASSERT_TRUE(lin_dense.has_value());
  EXPECT_EQ((*lin_dense)[0][0].document.id, "d10");
  EXPECT_FALSE((*lin_dense)[0][0].lexical_score.has_value());
  // Filters apply to both rankings.
  auto betas = s.store->HybridSearch(s.query, {"alpha report"}, 3, {{"kind", "beta"}}, equal);
  ASSERT_TRUE(betas.has_value());
  for (const auto& h : (*betas)[0]) EXPECT_EQ(h.document.metadata["kind"], "beta");
  HybridOptions bad;
  bad.dense_weight = 2.0f;
  EXPECT_FALSE(s.store->HybridSearch(s.query, {"alpha report"}, 3, json::object(), bad).has_value());
  EXPECT_FALSE(s.store->HybridSearch(s.query, {"a", "b"}, 3, json::object(), equal).has_value());
}

TEST(VectorStoreTest, TheLexicalIndexFollowsAddsAndRemovals) {
  auto s = MakeMixedStore();
  auto before = s.store->LexicalSearch({"gamma"}, 3);
  ASSERT_TRUE(before.has_value());
  EXPECT_TRUE((*before)[0].empty());
  ASSERT_TRUE(s.store->Add({{"g", "gamma ray burst", {}}}, std::vector<float>(kDim, 3.0f)).ok());
  auto added = s.store->LexicalSearch({"gamma"}, 3);
  ASSERT_TRUE(added.has_value());
  ASSERT_EQ((*added)[0].size(), 1u);
  EXPECT_EQ((*added)[0][0].document.id, "g");
  ASSERT_EQ(*s.store->Remove({"g"}), 1u);
  auto removed = s.store->LexicalSearch({"gamma"}, 3);
  ASSERT_TRUE(removed.has_value());
  EXPECT_TRUE((*removed)[0].empty());
}

TEST(VectorStoreTest, AHalfWrittenStoreIsRefusedAndIdsAreNeverReused) {
  TempDir dir;
  auto store = VectorStore::Create(kDim, {});
  ASSERT_TRUE(store.has_value());
  ASSERT_TRUE((*store)->Add(Docs(5), Random(5, 21)).ok());
  ASSERT_TRUE((*store)->Save(dir.path() / "old").ok());
  const std::string updated = (*store)->manifest()["updated"];
  ASSERT_TRUE((*store)->Add(Docs(3, 5), Random(3, 22)).ok());
  ASSERT_TRUE((*store)->Save(dir.path() / "new").ok());
  // An upload that stopped after documents.jsonl: new documents beside the old index.
  std::filesystem::copy_file(dir.path() / "new" / "documents.jsonl", dir.path() / "old" / "documents.jsonl",
                             std::filesystem::copy_options::overwrite_existing);
  auto half = VectorStore::Load(dir.path() / "old");
  ASSERT_FALSE(half.has_value());
  EXPECT_EQ(half.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(half.error().message().find("inconsistent"), std::string::npos) << half.error().message();
  // A manifest whose next_id lags behind its documents: new documents still get new ids.
  auto text = ReadFile(dir.path() / "new" / "manifest.json");
  ASSERT_TRUE(text.has_value());
  json manifest = json::parse(*text);
  EXPECT_NE(manifest["updated"], "");
  manifest["next_id"] = 0;
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "new" / "manifest.json", manifest.dump()).ok());
  auto loaded = VectorStore::Load(dir.path() / "new");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ((*loaded)->manifest()["updated"], manifest["updated"]);  // kept, not "now"
  ASSERT_TRUE((*loaded)->Add(Docs(1, 100), Random(1, 23)).ok());
  EXPECT_EQ((*loaded)->size(), 9u);
  auto all = (*loaded)->Search(Random(1, 24), 9);
  ASSERT_TRUE(all.has_value());
  std::set<std::string> ids;
  for (const auto& h : (*all)[0]) ids.insert(h.document.id);
  EXPECT_EQ(ids.size(), 9u);  // nothing overwritten
  EXPECT_FALSE(updated.empty());
  // Wrong JSON types in the files are a clear error, not an exception.
  manifest["dimension"] = "sixteen";
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "new" / "manifest.json", manifest.dump()).ok());
  EXPECT_EQ(VectorStore::Load(dir.path() / "new").error().code(), StatusCode::kInvalidArgument);
}

TEST(VectorStoreTest, BadInputIsAClearError) {
  auto store = VectorStore::Create(kDim, {});
  ASSERT_TRUE(store.has_value());
  EXPECT_EQ((*store)->Add(Docs(2), Random(1, 1)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE((*store)->Add(Docs(2), Random(2, 1)).ok());
  EXPECT_EQ((*store)->Add(Docs(1), Random(1, 1)).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE((*store)->Search(std::vector<float>(kDim + 1), 3).has_value());
  EXPECT_FALSE(VectorStore::Create(0, {}).has_value());
  EXPECT_EQ(IndexSpec::FromJson({{"type", "LSH"}}, "index").error().field(), "index.type");
  EXPECT_EQ(IndexSpec::FromJson({{"metric", "cosine"}}, "index").error().field(), "index.metric");
  EXPECT_EQ(IndexSpec::FromJson({{"type", "IVF"}, {"nlist", 0}}, "index").error().field(), "index.nlist");
}

TEST(VectorStoreTest, SavingReplacesOnlyTheStoresFiles) {
  TempDir dir;
  const auto path = dir.path() / "stores" / "s";
  auto store = VectorStore::Create(kDim, {});
  ASSERT_TRUE(store.has_value());
  ASSERT_TRUE((*store)->Add(Docs(10), Random(10, 31)).ok());
  ASSERT_TRUE((*store)->Save(path).ok());
  // Objects a client put under the store's prefix (one uploaded while the store is edited).
  ASSERT_TRUE(WriteFileAtomic(path / "notes.txt", "keep me").ok());
  ASSERT_TRUE(WriteFileAtomic(path / "extra" / "data.csv", "a,b\n").ok());
  ASSERT_TRUE((*store)->Add(Docs(2, 10), Random(2, 32)).ok());
  ASSERT_TRUE((*store)->Save(path).ok());
  ASSERT_TRUE((*store)->Remove({"doc-0"}).has_value());
  ASSERT_TRUE((*store)->Save(path).ok());
  EXPECT_EQ(*ReadFile(path / "notes.txt"), "keep me");
  EXPECT_EQ(*ReadFile(path / "extra" / "data.csv"), "a,b\n");
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"documents.jsonl", "extra", "index.faiss", "manifest.json", "notes.txt"}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(path.parent_path()), {}), 1);  // no sibling copies
  auto loaded = VectorStore::Load(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ((*loaded)->size(), 11u);
}

TEST(VectorStoreTest, IvfRemovalsKeepEveryVectorWithItsDocument) {
  TempDir dir;
  const auto base = Random(300, 41), queries = Random(6, 42);
  auto store = VectorStore::Create(kDim, *IndexSpec::FromJson({{"type", "IVF"}, {"nlist", 4}, {"nprobe", 4}}, "index"));
  ASSERT_TRUE(store.has_value());
  ASSERT_TRUE((*store)->Add(Docs(300), base).ok());
  std::vector<std::string> gone;
  for (size_t i = 0; i < 300; i += 7) gone.push_back("doc-" + std::to_string(i));
  ASSERT_EQ(*(*store)->Remove(gone), gone.size());
  ASSERT_TRUE((*store)->Save(dir.path() / "ivf").ok());
  auto loaded = VectorStore::Load(dir.path() / "ivf");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  // Every list probed: exact, so equal to brute force over what is left.
  for (const VectorStore* s : {store->get(), loaded->get()}) {
    auto hits = s->Search(queries, 5);
    ASSERT_TRUE(hits.has_value());
    for (size_t q = 0; q < 6; ++q) {
      const auto truth = BruteForceAmong(base, [](size_t i) { return i % 7 != 0; }, queries.data() + q * kDim, 5);
      EXPECT_EQ(Ids((*hits)[q]), truth) << q;
      for (const auto& h : (*hits)[q])  // the vector found is the document's own
        EXPECT_EQ(h.document.page_content, "text " + h.document.id.substr(4));
    }
  }
}

TEST(VectorStoreTest, SelectiveFiltersAreAnsweredExactlyWithoutScanningTheIndexPerResult) {
  // An HNSW graph where a filter keeps one document, or none: the index used to be asked for
  // every vector (an HNSW search as wide as the graph) per query.
  const size_t n = 20000;
  const auto base = Random(n, 51), queries = Random(40, 52);
  auto docs = Docs(n);
  docs[1234].metadata["group"] = "rare";
  auto spec = IndexSpec::FromJson({{"type", "HNSW"}, {"M", 8}, {"efConstruction", 16}}, "index");
  auto store = VectorStore::Create(kDim, *spec);
  ASSERT_TRUE(store.has_value());
  ASSERT_TRUE((*store)->Add(docs, base).ok());
  const auto start = std::chrono::steady_clock::now();
  auto none = (*store)->Search(queries, 10, {{"group", "nobody"}});
  auto rare = (*store)->Search(queries, 10, {{"group", "rare"}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(none.has_value() && rare.has_value());
  for (size_t q = 0; q < 40; ++q) {
    EXPECT_TRUE((*none)[q].empty());
    ASSERT_EQ((*rare)[q].size(), 1u);
    EXPECT_EQ((*rare)[q][0].document.id, "doc-1234");
  }
  EXPECT_LT(seconds, 2.0);
  // A filter keeping a third of a flat store: the over-fetch path, still exact.
  auto flat = VectorStore::Create(kDim, {});
  ASSERT_TRUE(flat.has_value());
  const auto flat_base = Random(3000, 53);
  ASSERT_TRUE((*flat)->Add(Docs(3000), flat_base).ok());
  auto a = (*flat)->Search(queries, 8, {{"group", "a"}});
  ASSERT_TRUE(a.has_value());
  for (size_t q = 0; q < 40; ++q) {
    const auto truth = BruteForceAmong(flat_base, [](size_t i) { return i % 3 == 0; }, queries.data() + q * kDim, 8);
    EXPECT_EQ(Ids((*a)[q]), truth) << q;
  }
}

}  // namespace
}  // namespace mlaas::vector
