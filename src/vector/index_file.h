// The FAISS index files of vector stores, checked before FAISS reads them. Stores are objects a
// client can upload, and FAISS 1.7.3 trusts every count in a file: it zero-fills vectors of up
// to 2^40 elements before reading them, so a few bytes can demand terabytes. CheckIndexFile
// walks the file as this platform writes it (an IndexIDMap2 over an IndexFlat, IndexHNSWFlat or
// IndexIVFFlat), checks every declared count against the bytes that remain and the structure
// FAISS will trust at search time (HNSW levels and neighbour ids, inverted-list sizes), and
// refuses any other index type. The checksum of the file is recorded in the manifest.
// No FAISS or libtorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mlaas::vector {

// FNV-1a, 64 bits: the checksum of index.faiss recorded in manifest.json ("fnv1a64:<16 hex>").
class Fnv1a64 {
 public:
  void Update(const void* data, size_t n);
  uint64_t digest() const { return h_; }
  std::string Text() const;  // "fnv1a64:" + 16 lowercase hex digits

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

// Reads `n` bytes at `offset` into `out`; false when it cannot.
using ReadAt = std::function<bool(uint64_t offset, void* out, size_t n)>;

struct IndexFileExpect {
  int64_t dim = 0;
  std::string type = "Flat";  // Flat, HNSW or IVF (the manifest's index.type)
  bool inner_product = false;  // the manifest's metric
};

// OK when the `size` bytes that `read` gives are an index of the expected type, dimension and
// metric whose every declared size fits in the file exactly. InvalidArgument naming
// index.faiss otherwise. Reads the file once, front to back, in 64 KiB blocks.
Status CheckIndexFile(const ReadAt& read, uint64_t size, const IndexFileExpect& expect);

}  // namespace mlaas::vector
