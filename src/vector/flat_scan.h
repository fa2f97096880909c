// Exhaustive (flat) search with distance kernels vectorised for the CPU that runs them
// (AVX-512, AVX2+FMA, else plain C++; picked once at start). Debian's FAISS is built without
// SIMD: its one-query flat scan reaches about a quarter of the memory bandwidth. FastFlatIndex
// is a faiss::IndexFlat that scans with these kernels below FAISS's BLAS threshold and gives
// HNSW graphs the same kernels; it is saved and read as an ordinary IndexFlat. Internal to the
// vector module (includes FAISS).
#pragma once

// Debian's FAISS 1.7.3 headers use uint8_t without including <cstdint> (g++ 13 no longer
// brings it in through other headers).
#include <cstdint>
#include <faiss/IndexFlat.h>

#include <cstddef>
#include <memory>
#include <string>

namespace mlaas::vector {

float L2Sqr(const float* a, const float* b, size_t d);
float InnerProduct(const float* a, const float* b, size_t d);
// Which kernels L2Sqr / InnerProduct use here: "avx512", "avx2" or "scalar".
std::string KernelName();

// The k best of n row-major vectors `xb` for each of `nq` queries: FAISS's result layout
// (nq x k distances and labels, best first: ascending L2, descending inner product; -1 labels
// when n < k).
void FlatSearch(const float* xb, size_t n, size_t d, faiss::MetricType metric, const float* queries, size_t nq,
                size_t k, float* distances, faiss::Index::idx_t* labels);

struct FastFlatIndex : faiss::IndexFlat {
  FastFlatIndex(faiss::Index::idx_t d, faiss::MetricType metric);
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override;
};

// A FastFlatIndex holding `flat`'s vectors (which it takes, leaving `flat` empty).
std::unique_ptr<FastFlatIndex> ToFastFlat(faiss::IndexFlat& flat);

}  // namespace mlaas::vector
