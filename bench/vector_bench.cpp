// Vector search benchmark: our flat scan and HNSW graph (vector/flat_scan.h) beside Debian's
// FAISS 1.7.3 (scalar distances) on the same vectors, in one run, with the ratios.
//   1. memory bandwidth of this machine (one thread streaming a 1 GiB buffer);
//   2. Flat, one query per call: q/s, p50/p99, GB/s scanned and its share of the bandwidth;
//      and 100 queries per call (both sides take the BLAS path there);
//   3. HNSW (M 32, efConstruction 64): build time, then q/s, p99 and recall@10 against the
//      exact answer for efSearch 16..256; the speed-up over our Flat at the first efSearch
//      whose recall@10 reaches 0.95;
//   4. the Python FAISS peer of ../shared/bench (py_faiss_bench.py) on the same shape.
// Usage: vector_bench [n=100000] [d=256] [queries=200] [data=clustered|uniform]
//        (env SHARED=../shared/bench to find the peer; PEER=0 to skip it)
// Debian's FAISS 1.7.3 headers use uint8_t without including <cstdint> (g++ 13 no longer
// brings it in through other headers).
#include <cstdint>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bench_util.h"
#include "vector/flat_scan.h"

namespace {

using Clock = std::chrono::steady_clock;
using idx_t = faiss::Index::idx_t;
using mlaas::bench::Median;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Vectors shaped like sentence embeddings: 1,000 clusters with spread inside each (unit-ish
// length), or plain uniform noise in [0, 1) (the peer's data; hardest for graphs).
std::vector<float> Make(size_t n, size_t d, bool clustered, uint32_t seed, const std::vector<float>& centres) {
  std::mt19937 rng(seed);
  std::vector<float> v(n * d);
  if (!clustered) {
    std::uniform_real_distribution<float> u(0, 1);
    for (auto& x : v) x = u(rng);
    return v;
  }
  std::uniform_int_distribution<size_t> pick(0, centres.size() / d - 1);
  std::normal_distribution<float> noise(0, 0.35f / std::sqrt(static_cast<float>(d)));
  for (size_t i = 0; i < n; ++i) {
    const float* c = centres.data() + pick(rng) * d;
    for (size_t j = 0; j < d; ++j) v[i * d + j] = c[j] + noise(rng);
  }
  return v;
}

struct Timing {
  double qps = 0, p50_ms = 0, p99_ms = 0;
};

// One query per call, `nq` queries; the labels of each (k per query) into `labels`.
template <class Search>
Timing OneByOne(size_t nq, Search search) {
  std::vector<double> ms;
  const auto t0 = Clock::now();
  for (size_t q = 0; q < nq; ++q) {
    const auto a = Clock::now();
    search(q);
    ms.push_back(Seconds(a, Clock::now()) * 1e3);
  }
  const double total = Seconds(t0, Clock::now());
  std::sort(ms.begin(), ms.end());
  return {static_cast<double>(nq) / total, ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]};
}

double Recall(const std::vector<idx_t>& got, const std::vector<idx_t>& truth, size_t nq, size_t k) {
  size_t hit = 0;
  for (size_t q = 0; q < nq; ++q) {
    std::set<idx_t> t(truth.begin() + static_cast<std::ptrdiff_t>(q * k), truth.begin() + static_cast<std::ptrdiff_t>((q + 1) * k));
    for (size_t j = 0; j < k; ++j) hit += t.count(got[q * k + j]);
  }
  return static_cast<double>(hit) / static_cast<double>(nq * k);
}

double Bandwidth() {
  const size_t n = (size_t{1} << 30) / sizeof(float);
  std::vector<float> buf(n, 1.0f);
  std::vector<double> gbps;
  volatile float sink = 0;
  for (int r = 0; r < 5; ++r) {
    const auto a = Clock::now();
    sink = sink + mlaas::vector::InnerProduct(buf.data(), buf.data(), n);  // reads the buffer once
    gbps.push_back(static_cast<double>(n * sizeof(float)) / Seconds(a, Clock::now()) / 1e9);
  }
  return *std::max_element(gbps.begin(), gbps.end());
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::stoul(argv[1]) : 100000;
  const size_t d = argc > 2 ? std::stoul(argv[2]) : 256;
  const size_t nq = argc > 3 ? std::stoul(argv[3]) : 200;
  const bool clustered = argc > 4 ? std::strcmp(argv[4], "uniform") != 0 : true;
  const size_t k = 10;
  std::printf("vector_bench: %zu x %zu %s vectors, %zu queries, k %zu, kernels %s, %d OpenMP threads\n", n, d,
              clustered ? "clustered" : "uniform", nq, k, mlaas::vector::KernelName().c_str(), omp_get_max_threads());

  std::vector<float> centres(1000 * d);
  {
    std::mt19937 rng(7);
    std::normal_distribution<float> g(0, 1.0f / std::sqrt(static_cast<float>(d)));
    for (auto& x : centres) x = g(rng);
  }
  const auto base = Make(n, d, clustered, 1, centres);
  const auto queries = Make(nq, d, clustered, 2, centres);

  const double bw = Bandwidth();
  std::printf("memory bandwidth (one thread, 1 GiB read): %.1f GB/s\n\n", bw);

  // Flat: FAISS's IndexFlat (peer) and ours, the same vectors.
  const auto metric = faiss::METRIC_L2;
  faiss::IndexFlat faiss_flat(static_cast<idx_t>(d), metric);
  faiss_flat.add(static_cast<idx_t>(n), base.data());
  mlaas::vector::FastFlatIndex our_flat(static_cast<idx_t>(d), metric);
  our_flat.add(static_cast<idx_t>(n), base.data());
  std::vector<idx_t> truth(nq * k), labels(nq * k);
  std::vector<float> dist(nq * k);
  const double scan_gb = static_cast<double>(n * d * sizeof(float)) / 1e9;
  auto flat_one = [&](const faiss::Index& index, std::vector<idx_t>& out) {
    return OneByOne(nq, [&](size_t q) {
      index.search(1, queries.data() + q * d, static_cast<idx_t>(k), dist.data() + q * k, out.data() + q * k);
    });
  };
  omp_set_num_threads(1);
  const Timing peer_flat = flat_one(faiss_flat, truth);
  const Timing ours_flat = flat_one(our_flat, labels);
  std::printf("Flat, one query per call (1 thread)\n");
  std::printf("  %-14s %9s %9s %9s %9s %9s\n", "", "q/s", "p50 ms", "p99 ms", "GB/s", "of bw");
  for (const auto& [name, t] : {std::pair{"faiss (peer)", peer_flat}, std::pair{"mlaas", ours_flat}})
    std::printf("  %-14s %9.1f %9.2f %9.2f %9.1f %8.0f%%\n", name, t.qps, t.p50_ms, t.p99_ms, t.qps * scan_gb,
                100 * t.qps * scan_gb / bw);
  std::printf("  ratio mlaas / faiss: %.2fx q/s; same answers: recall@10 %.4f\n", ours_flat.qps / peer_flat.qps,
              Recall(labels, truth, nq, k));
  const std::string shape = std::to_string(n) + " x " + std::to_string(d) + (clustered ? "" : " uniform");
  const std::string tag = clustered ? "" : ".uniform";
  mlaas::bench::Record("vector.flat.one" + tag, "Flat search, one query per call, 1 thread, " + shape + " vs FAISS",
                       ours_flat.qps, peer_flat.qps, "queries/s");
  omp_set_num_threads(2);
  std::vector<double> peer_b, ours_b;
  for (int r = 0; r < 3; ++r) {
    auto a = Clock::now();
    faiss_flat.search(static_cast<idx_t>(nq), queries.data(), static_cast<idx_t>(k), dist.data(), truth.data());
    peer_b.push_back(static_cast<double>(nq) / Seconds(a, Clock::now()));
    a = Clock::now();
    our_flat.search(static_cast<idx_t>(nq), queries.data(), static_cast<idx_t>(k), dist.data(), labels.data());
    ours_b.push_back(static_cast<double>(nq) / Seconds(a, Clock::now()));
  }
  std::printf("Flat, %zu queries per call (BLAS, 2 threads): faiss %.1f q/s, mlaas %.1f q/s (%.2fx)\n\n", nq,
              Median(peer_b), Median(ours_b), Median(ours_b) / Median(peer_b));
  mlaas::bench::Record("vector.flat.batched" + tag, "Flat search, batched, 2 threads, " + shape + " vs FAISS",
                       Median(ours_b), Median(peer_b), "queries/s");

  // HNSW: FAISS's own graph and ours (same parameters; our storage computes the distances).
  auto build = [&](bool ours) {
    auto index = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(d), 32, metric);
    index->hnsw.efConstruction = 64;
    if (ours) {
      delete index->storage;
      index->storage = new mlaas::vector::FastFlatIndex(static_cast<idx_t>(d), metric);
    }
    const auto a = Clock::now();
    index->add(static_cast<idx_t>(n), base.data());
    return std::pair{std::move(index), Seconds(a, Clock::now())};
  };
  auto [peer_hnsw, peer_build] = build(false);
  auto [our_hnsw, our_build] = build(true);
  std::printf("HNSW M 32, efConstruction 64: build %.1f s faiss, %.1f s mlaas (%.2fx)\n", peer_build, our_build,
              peer_build / our_build);
  mlaas::bench::Record("vector.hnsw.build" + tag, "HNSW build, " + shape + " vs FAISS", our_build, peer_build, "s", false);
  omp_set_num_threads(1);
  std::printf("  %-8s %12s %12s %10s %10s %10s %12s\n", "efSearch", "faiss q/s", "mlaas q/s", "ratio", "p99 ms",
              "recall@10", "x our Flat");
  bool reported = false;
  for (int ef : {16, 32, 64, 128, 256}) {
    peer_hnsw->hnsw.efSearch = ef;
    our_hnsw->hnsw.efSearch = ef;
    std::vector<idx_t> peer_labels(nq * k);
    const Timing p = flat_one(*peer_hnsw, peer_labels);
    const Timing o = flat_one(*our_hnsw, labels);
    const double recall = Recall(labels, truth, nq, k);
    std::printf("  %-8d %12.1f %12.1f %9.2fx %10.3f %10.4f %11.1fx\n", ef, p.qps, o.qps, o.qps / p.qps, o.p99_ms, recall,
                o.qps / ours_flat.qps);
    if (ef == 32)
      mlaas::bench::Record("vector.hnsw.ef32" + tag, "HNSW search, efSearch 32, 1 thread, " + shape + " vs FAISS", o.qps,
                           p.qps, "queries/s");
    if (!reported && recall >= 0.95) {
      std::printf("  -> recall@10 %.4f at efSearch %d: %.1fx our Flat's q/s (goal >= 10x at >= 0.95)\n", recall, ef,
                  o.qps / ours_flat.qps);
      reported = true;
    }
  }
  if (!reported) std::printf("  -> recall@10 stays below 0.95 up to efSearch 256\n");

  // The Python peer (FAISS flat from Python) on the same shape, when it is there.
  const char* peer = std::getenv("PEER");
  if (peer == nullptr || std::string(peer) != "0") {
    const char* shared = std::getenv("SHARED");
    const std::string script = std::string(shared ? shared : MLAAS_SOURCE_DIR "/../shared/bench") + "/py_faiss_bench.py";
    std::printf("\npython FAISS peer (%s, uniform data, OMP_NUM_THREADS=1):\n", script.c_str());
    std::printf("%s", mlaas::bench::Run("OMP_NUM_THREADS=1 /usr/bin/python3 " + script + " " + std::to_string(n) + " " +
                                        std::to_string(d) + " 100 10 2>&1").c_str());
  }
  return 0;
}
