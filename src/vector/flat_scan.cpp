#include "vector/flat_scan.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace mlaas::vector {

using idx_t = faiss::Index::idx_t;

namespace {

float L2Scalar(const float* a, const float* b, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) {
    const float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}

float IpScalar(const float* a, const float* b, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* temporaries.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) float L2Avx512(const float* a, const float* b, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 x0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 x1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    acc0 = _mm512_fmadd_ps(x0, x0, acc0);
    acc1 = _mm512_fmadd_ps(x1, x1, acc1);
  }
  if (i + 16 <= d) {
    const __m512 x = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    acc0 = _mm512_fmadd_ps(x, x, acc0);
    i += 16;
  }
  if (i < d) {
    const auto mask = static_cast<__mmask16>((1u << (d - i)) - 1);
    const __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i));
    acc1 = _mm512_fmadd_ps(x, x, acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx512f"))) float IpAvx512(const float* a, const float* b, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  if (i + 16 <= d) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    i += 16;
  }
  if (i < d) {
    const auto mask = static_cast<__mmask16>((1u << (d - i)) - 1);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

#pragma GCC diagnostic pop

__attribute__((target("avx2,fma"))) float Sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

__attribute__((target("avx2,fma"))) float L2Avx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 x0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 x1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    acc0 = _mm256_fmadd_ps(x0, x0, acc0);
    acc1 = _mm256_fmadd_ps(x1, x1, acc1);
  }
  if (i + 8 <= d) {
    const __m256 x = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc0 = _mm256_fmadd_ps(x, x, acc0);
    i += 8;
  }
  return Sum8(_mm256_add_ps(acc0, acc1)) + L2Scalar(a + i, b + i, d - i);
}

__attribute__((target("avx2,fma"))) float IpAvx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  if (i + 8 <= d) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    i += 8;
  }
  return Sum8(_mm256_add_ps(acc0, acc1)) + IpScalar(a + i, b + i, d - i);
}

using Kernel = float (*)(const float*, const float*, size_t);

struct Kernels {
  Kernel l2, ip;
  const char* name;
};

Kernels Pick() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {L2Avx512, IpAvx512, "avx512"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {L2Avx2, IpAvx2, "avx2"};
  return {L2Scalar, IpScalar, "scalar"};
}

const Kernels& Active() {
  static const Kernels k = Pick();
  return k;
}

// The k best (distance, label) pairs seen so far, the worst of them on top of a heap.
class TopK {
 public:
  TopK(size_t k, bool larger_is_better) : k_(k), larger_(larger_is_better) { heap_.reserve(k); }
  // Whether a candidate with value v would be kept.
  bool Admits(float v) const {
    if (k_ == 0) return false;
    if (heap_.size() < k_) return true;
    return larger_ ? v > heap_.front().first : v < heap_.front().first;
  }
  void Push(float v, idx_t label) {
    const auto cmp = [this](const std::pair<float, idx_t>& a, const std::pair<float, idx_t>& b) {
      return larger_ ? a.first > b.first : a.first < b.first;  // heap top: the worst kept
    };
    if (heap_.size() == k_) {
      std::pop_heap(heap_.begin(), heap_.end(), cmp);
      heap_.pop_back();
    }
    heap_.emplace_back(v, label);
    std::push_heap(heap_.begin(), heap_.end(), cmp);
  }
  void Write(float* distances, idx_t* labels) {
    std::sort(heap_.begin(), heap_.end(), [this](const auto& a, const auto& b) {
      if (a.first != b.first) return larger_ ? a.first > b.first : a.first < b.first;
      return a.second < b.second;
    });
    const float none = larger_ ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < k_; ++i) {
      distances[i] = i < heap_.size() ? heap_[i].first : none;
      labels[i] = i < heap_.size() ? heap_[i].second : -1;
    }
  }

 private:
  size_t k_;
  bool larger_;
  std::vector<std::pair<float, idx_t>> heap_;
};

struct FastComputer : faiss::FlatCodesDistanceComputer {
  FastComputer(const faiss::IndexFlat& index)
      : faiss::FlatCodesDistanceComputer(index.codes.data(), index.code_size),
        xb(index.get_xb()),
        d(static_cast<size_t>(index.d)),
        kernel(index.metric_type == faiss::METRIC_INNER_PRODUCT ? Active().ip : Active().l2) {}
  void set_query(const float* x) override { q = x; }
  float distance_to_code(const uint8_t* code) override { return kernel(q, reinterpret_cast<const float*>(code), d); }
  float symmetric_dis(idx_t i, idx_t j) override {
    return kernel(xb + static_cast<size_t>(i) * d, xb + static_cast<size_t>(j) * d, d);
  }
  const float* xb;
  size_t d;
  Kernel kernel;
  const float* q = nullptr;
};

// FAISS's own flat search switches to BLAS from this many queries (distance_compute_blas_threshold).
constexpr idx_t kBlasQueries = 20;

}  // namespace

float L2Sqr(const float* a, const float* b, size_t d) { return Active().l2(a, b, d); }
float InnerProduct(const float* a, const float* b, size_t d) { return Active().ip(a, b, d); }
std::string KernelName() { return Active().name; }

void FlatSearch(const float* xb, size_t n, size_t d, faiss::MetricType metric, const float* queries, size_t nq,
                size_t k, float* distances, idx_t* labels) {
  const bool ip = metric == faiss::METRIC_INNER_PRODUCT;
  const Kernel kernel = ip ? Active().ip : Active().l2;
  std::vector<TopK> best(nq, TopK(k, ip));
  // Blocks of the database small enough to stay in cache while every query visits them: the
  // vectors stream from memory once however many queries there are.
  const size_t block = std::max<size_t>(1, (64 * 1024) / (d * sizeof(float)));
  std::vector<float> dist(block);
  for (size_t start = 0; start < n; start += block) {
    const size_t end = std::min(n, start + block);
    for (size_t q = 0; q < nq; ++q) {
      const float* query = queries + q * d;
      for (size_t i = start; i < end; ++i) dist[i - start] = kernel(query, xb + i * d, d);
      TopK& top = best[q];
      for (size_t i = start; i < end; ++i)
        if (top.Admits(dist[i - start])) top.Push(dist[i - start], static_cast<idx_t>(i));
    }
  }
  for (size_t q = 0; q < nq; ++q) best[q].Write(distances + q * k, labels + q * k);
}

FastFlatIndex::FastFlatIndex(idx_t d, faiss::MetricType metric) : faiss::IndexFlat(d, metric) {}

void FastFlatIndex::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                           const faiss::SearchParameters* params) const {
  if (n >= kBlasQueries || (params != nullptr && params->sel != nullptr) ||
      (metric_type != faiss::METRIC_L2 && metric_type != faiss::METRIC_INNER_PRODUCT)) {
    faiss::IndexFlat::search(n, x, k, distances, labels, params);
    return;
  }
  FlatSearch(get_xb(), static_cast<size_t>(ntotal), static_cast<size_t>(d), metric_type, x, static_cast<size_t>(n),
             static_cast<size_t>(k), distances, labels);
}

faiss::FlatCodesDistanceComputer* FastFlatIndex::get_FlatCodesDistanceComputer() const {
  if (metric_type != faiss::METRIC_L2 && metric_type != faiss::METRIC_INNER_PRODUCT)
    return faiss::IndexFlat::get_FlatCodesDistanceComputer();
  return new FastComputer(*this);
}

std::unique_ptr<FastFlatIndex> ToFastFlat(faiss::IndexFlat& flat) {
  auto fast = std::make_unique<FastFlatIndex>(flat.d, flat.metric_type);
  fast->codes.swap(flat.codes);
  fast->ntotal = flat.ntotal;
  fast->metric_arg = flat.metric_arg;
  flat.ntotal = 0;
  return fast;
}

}  // namespace mlaas::vector
