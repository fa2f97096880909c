// Hostile vector-store files: index.faiss, manifest.json and documents.jsonl as a client could
// upload them. Each is refused with a clear InvalidArgument naming the file (never a server
// path), before FAISS allocates what the file declares.
#include "vector/index_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <random>

#include "common/file_util.h"
#include "testutil/temp_dir.h"
#include "vector/vector_store.h"

namespace mlaas::vector {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mlaas::testing::TempDir;

constexpr int64_t kDim = 4;

std::string Read(const fs::path& p) { return ReadFile(p).value(); }
void Write(const fs::path& p, const std::string& s) { ASSERT_TRUE(WriteFileAtomic(p, s).ok()); }

// A small saved store of `type` in `dir`.
void SaveStore(const fs::path& dir, const std::string& type, size_t n = 12, Metric metric = Metric::kL2) {
  IndexSpec spec = *IndexSpec::FromJson({{"type", type}, {"nlist", 2}, {"nprobe", 2}, {"M", 4}}, "index");
  spec.metric = metric;
  auto store = VectorStore::Create(kDim, spec, {{"model", {{"path", "models/m"}}}, {"pooling", "mean"}});
  ASSERT_TRUE(store.has_value());
  std::mt19937 rng(7);
  std::normal_distribution<float> d;
  std::vector<float> v(n * kDim);
  for (auto& x : v) x = d(rng);
  std::vector<Document> docs;
  for (size_t i = 0; i < n; ++i) docs.push_back({"d" + std::to_string(i), "text " + std::to_string(i), {{"i", i}}});
  ASSERT_TRUE((*store)->Add(docs, v).ok());
  ASSERT_TRUE((*store)->Save(dir).ok());
}

// Replaces index.faiss with `bytes` and records their checksum, as a crafted upload would.
void ReplaceIndex(const fs::path& dir, const std::string& bytes) {
  Write(dir / "index.faiss", bytes);
  json m = json::parse(Read(dir / "manifest.json"));
  Fnv1a64 h;
  h.Update(bytes.data(), bytes.size());
  m["index_checksum"] = h.Text();
  Write(dir / "manifest.json", m.dump());
}

Status CheckBytes(const std::string& bytes, const std::string& type, bool ip = false) {
  return CheckIndexFile(
      [&](uint64_t at, void* out, size_t n) {
        if (at > bytes.size() || n > bytes.size() - at) return false;
        std::memcpy(out, bytes.data() + at, n);
        return true;
      },
      bytes.size(), {.dim = kDim, .type = type, .inner_product = ip});
}

template <class T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
T Get(const std::string& s, size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof v);
  return v;
}
template <class T>
void Set(std::string* s, size_t at, T v) {
  std::memcpy(s->data() + at, &v, sizeof v);
}

// A FAISS index header: d, ntotal, two unused words, is_trained, metric (1: L2).
void Header(std::string* s, const char* fourcc, int64_t ntotal) {
  s->append(fourcc, 4);
  Put<int32_t>(s, kDim);
  Put<int64_t>(s, ntotal);
  Put<int64_t>(s, 1 << 20);
  Put<int64_t>(s, 1 << 20);
  Put<uint8_t>(s, 1);
  Put<int32_t>(s, 1);
}

long PeakRssKb() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST(IndexFileTest, TheIndexesThisPlatformWritesPassForBothMetrics) {
  for (const char* type : {"Flat", "HNSW", "IVF"}) {
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
      TempDir dir;
      SaveStore(dir.path() / "s", type, 12, metric);
      const std::string bytes = Read(dir.path() / "s" / "index.faiss");
      EXPECT_TRUE(CheckBytes(bytes, type, metric == Metric::kInnerProduct).ok()) << type;
      // The manifest's type and metric must be the file's.
      EXPECT_FALSE(CheckBytes(bytes, type, metric != Metric::kInnerProduct).ok()) << type;
      EXPECT_FALSE(CheckBytes(bytes, std::string(type) == "Flat" ? "HNSW" : "Flat").ok()) << type;
      const json m = json::parse(Read(dir.path() / "s" / "manifest.json"));
      ASSERT_TRUE(m["index_checksum"].is_string());
      EXPECT_EQ(m["index_checksum"].get<std::string>().rfind("fnv1a64:", 0), 0u);
      EXPECT_TRUE(VectorStore::Load(dir.path() / "s").has_value()) << type;
    }
  }
}

TEST(IndexFileTest, HugeDeclaredCountsFailFastWithoutAllocating) {
  TempDir dir;
  SaveStore(dir.path() / "s", "Flat");
  // An id map and flat index declaring 2^38 vectors of 4 floats (4 TiB) in 100 bytes.
  const int64_t huge = int64_t{1} << 38;
  std::string bytes;
  Header(&bytes, "IxM2", huge);
  Header(&bytes, "IxF2", huge);
  Put<uint64_t>(&bytes, static_cast<uint64_t>(huge) * kDim);
  bytes.append(16, '\0');
  ReplaceIndex(dir.path() / "s", bytes);
  const long before = PeakRssKb();
  const auto start = std::chrono::steady_clock::now();
  auto r = VectorStore::Load(dir.path() / "s");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("index.faiss"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("only 16 bytes follow"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find(dir.path().string()), std::string::npos) << r.error().message();
  EXPECT_LT(seconds, 1.0);
  EXPECT_LT(PeakRssKb() - before, 64 * 1024) << "peak RSS grew by " << (PeakRssKb() - before) << " KiB";

  // The same in every vector FAISS reads: the id map's, an HNSW graph's, the inverted lists'.
  std::string ids = bytes.substr(0, 37);  // the id map's header, a valid empty flat index, then 2^40 ids
  Set<int64_t>(&ids, 8, 0);
  Header(&ids, "IxF2", 0);
  Put<uint64_t>(&ids, 0);
  Put<uint64_t>(&ids, uint64_t{1} << 40);
  EXPECT_NE(CheckBytes(ids, "Flat").message().find("the id map declares"), std::string::npos)
      << CheckBytes(ids, "Flat").message();
  std::string graph;
  Header(&graph, "IxM2", 0);
  Header(&graph, "IHNf", 0);
  Put<uint64_t>(&graph, uint64_t{1} << 39);  // level probabilities
  EXPECT_NE(CheckBytes(graph, "HNSW").message().find("HNSW level probabilities declares"), std::string::npos)
      << CheckBytes(graph, "HNSW").message();
}

TEST(IndexFileTest, EveryTruncationIsRefusedCleanly) {
  for (const char* type : {"Flat", "HNSW", "IVF"}) {
    TempDir dir;
    SaveStore(dir.path() / "s", type);
    const std::string bytes = Read(dir.path() / "s" / "index.faiss");
    for (size_t len = 0; len < bytes.size(); len += std::string(type) == "HNSW" ? 7 : 1) {
      EXPECT_FALSE(CheckBytes(bytes.substr(0, len), type).ok()) << type << " cut at " << len;
    }
    // Through Load too (with and without a checksum recorded), and trailing bytes.
    ReplaceIndex(dir.path() / "s", bytes.substr(0, bytes.size() / 2));
    auto half = VectorStore::Load(dir.path() / "s");
    ASSERT_FALSE(half.has_value());
    EXPECT_EQ(half.error().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(half.error().message().find("index.faiss"), std::string::npos);
    EXPECT_FALSE(CheckBytes(bytes + "x", type).ok());
  }
}

TEST(IndexFileTest, AChangedIndexFailsItsChecksumAndOldStoresWithoutOneStillLoad) {
  TempDir dir;
  SaveStore(dir.path() / "s", "Flat");
  std::string bytes = Read(dir.path() / "s" / "index.faiss");
  bytes[bytes.size() - 8 - 12 * 8 - 2] ^= 0x40;  // the last vector's last float (the id map follows): still well formed
  ASSERT_TRUE(CheckBytes(bytes, "Flat").ok());
  Write(dir.path() / "s" / "index.faiss", bytes);
  auto changed = VectorStore::Load(dir.path() / "s");
  ASSERT_FALSE(changed.has_value());
  EXPECT_EQ(changed.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(changed.error().message().find("checksum"), std::string::npos) << changed.error().message();
  // A store written before checksums were recorded: no index_checksum, still read.
  json m = json::parse(Read(dir.path() / "s" / "manifest.json"));
  m.erase("index_checksum");
  Write(dir.path() / "s" / "manifest.json", m.dump());
  auto legacy = VectorStore::Load(dir.path() / "s");
  ASSERT_TRUE(legacy.has_value()) << legacy.error().ToString();
  EXPECT_EQ((*legacy)->size(), 12u);
  EXPECT_FALSE((*legacy)->manifest().contains("index_checksum"));  // the manifest shows what it holds, not the file's bookkeeping
}

TEST(IndexFileTest, HnswGraphsThatLeaveTheGraphAreRefused) {
  TempDir dir;
  SaveStore(dir.path() / "s", "HNSW");
  const std::string good = Read(dir.path() / "s" / "index.faiss");
  // Walk to the neighbour array: two headers, then probabilities, counts, levels, offsets.
  size_t at = 37 + 37;
  at += 8 + 8 * Get<uint64_t>(good, at);
  at += 8 + 4 * Get<uint64_t>(good, at);
  at += 8 + 4 * Get<uint64_t>(good, at);
  at += 8 + 8 * Get<uint64_t>(good, at);
  const uint64_t neighbours = Get<uint64_t>(good, at);
  at += 8;
  ASSERT_GT(neighbours, 0u);
  for (int32_t bad : {12, 1 << 30, -2}) {  // ntotal is 12
    std::string bytes = good;
    Set<int32_t>(&bytes, at, bad);
    ReplaceIndex(dir.path() / "s", bytes);
    auto r = VectorStore::Load(dir.path() / "s");
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message().find("neighbour"), std::string::npos) << r.error().message();
  }
  // The entry point too.
  std::string bytes = good;
  const size_t entry = at + 4 * neighbours;
  Set<int32_t>(&bytes, entry, 99);
  EXPECT_NE(CheckBytes(bytes, "HNSW").message().find("entry point"), std::string::npos);
  ReplaceIndex(dir.path() / "s", good);
  EXPECT_TRUE(VectorStore::Load(dir.path() / "s").has_value());
}

TEST(IndexFileTest, OtherIndexTypesAreRefused) {
  std::string lsh;
  Header(&lsh, "IxM2", 0);
  Header(&lsh, "IxHe", 0);
  EXPECT_NE(CheckBytes(lsh, "Flat").message().find("not a flat index"), std::string::npos);
  std::string bare;
  Header(&bare, "IxF2", 0);
  Put<uint64_t>(&bare, 0);
  EXPECT_NE(CheckBytes(bare, "Flat").message().find("IndexIDMap2"), std::string::npos);
  EXPECT_FALSE(CheckBytes("", "Flat").ok());
  EXPECT_FALSE(CheckBytes(lsh, "LSH").ok());
}

TEST(IndexFileTest, ManifestsOfWrongTypesOrDepthAreClearErrors) {
  TempDir dir;
  SaveStore(dir.path() / "s", "Flat");
  const json good = json::parse(Read(dir.path() / "s" / "manifest.json"));
  const auto with = [&](const char* key, json value) {
    json m = good;
    m[key] = std::move(value);
    return m.dump();
  };
  std::string deep(100000, '[');
  const std::vector<std::string> bad = {"[]",
                                        "null",
                                        "{",
                                        deep,
                                        R"({"dimension": 4})",
                                        with("dimension", "four"),
                                        with("dimension", 0),
                                        with("index", 5),
                                        with("index", {{"type", 5}}),
                                        with("next_id", "x"),
                                        with("updated", 3),
                                        with("index_checksum", 7),
                                        with("model", "models/m"),
                                        with("model", {{"path", 3}}),
                                        with("pooling", {"mean"}),
                                        with("normalize", "yes"),
                                        with("tokenizer", "t"),
                                        with("model", json::parse("{\"x\":" + std::string(40, '[') + std::string(40, ']') + "}"))};
  for (const auto& text : bad) {
    Write(dir.path() / "s" / "manifest.json", text);
    auto r = VectorStore::Load(dir.path() / "s");
    ASSERT_FALSE(r.has_value()) << text.substr(0, 80);
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << text.substr(0, 80);
    EXPECT_NE(r.error().message().find("manifest.json"), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().message().find(dir.path().string()), std::string::npos) << r.error().message();
  }
  Write(dir.path() / "s" / "manifest.json", good.dump());
  EXPECT_TRUE(VectorStore::Load(dir.path() / "s").has_value());
}

TEST(IndexFileTest, DocumentLinesOfWrongTypesOrDepthAreClearErrors) {
  TempDir dir;
  SaveStore(dir.path() / "s", "Flat", 2);
  const std::string good = Read(dir.path() / "s" / "documents.jsonl");
  const std::string first = good.substr(0, good.find('\n') + 1);
  const std::vector<std::string> bad = {
      "[]\n",
      std::string(100000, '[') + "\n",
      R"({"_id": 0, "id": 5, "page_content": "x"})" "\n",
      R"({"_id": "0", "id": "a", "page_content": "x"})" "\n",
      R"({"_id": 0, "id": "a", "page_content": "x", "metadata": []})" "\n",
      R"({"_id": 0, "id": "a", "page_content": "x", "metadata": )" + std::string(200, '[') + std::string(200, ']') + "}\n",
      R"({"_id": 77, "id": "a", "page_content": "x"})" "\n",  // no vector 77
      first + first};                                        // a document twice
  for (const auto& text : bad) {
    Write(dir.path() / "s" / "documents.jsonl", text);
    auto r = VectorStore::Load(dir.path() / "s");
    ASSERT_FALSE(r.has_value()) << text.substr(0, 80);
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << text.substr(0, 80);
  }
  Write(dir.path() / "s" / "documents.jsonl", good);
  EXPECT_TRUE(VectorStore::Load(dir.path() / "s").has_value());
}

// Seeds for tests/vector/fuzz (vector_store_fuzz): with MLAAS_WRITE_VECTOR_FUZZ_SEEDS=<dir>,
// small stores of each index type are written there in the fuzz target's input layout, their
// manifests without the checksum (as stores from before it) so that mutated index files reach
// the structural checks, and one with it.
TEST(IndexFileTest, WritesFuzzSeedsWhenAsked) {
  const char* out = std::getenv("MLAAS_WRITE_VECTOR_FUZZ_SEEDS");
  if (out == nullptr) GTEST_SKIP() << "MLAAS_WRITE_VECTOR_FUZZ_SEEDS is not set";
  for (const char* type : {"Flat", "HNSW", "IVF"}) {
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
      TempDir dir;
      SaveStore(dir.path() / "s", type, 5, metric);
      json m = json::parse(Read(dir.path() / "s" / "manifest.json"));
      std::string name = std::string(type) + (metric == Metric::kL2 ? "-l2" : "-ip");
      const std::string files = "\n@@\n" + Read(dir.path() / "s" / "index.faiss") + "\n@@\n" +
                                Read(dir.path() / "s" / "documents.jsonl");
      if (name == "Flat-l2") Write(fs::path(out) / "Flat-l2-checksum", m.dump() + files);
      m.erase("index_checksum");
      ASSERT_LE(m.dump().size() + files.size(), 4096u) << name;
      Write(fs::path(out) / name, m.dump() + files);
    }
  }
}

}  // namespace
}  // namespace mlaas::vector
