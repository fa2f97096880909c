#pragma once
// A linear layer for inference whose weight is reordered once into the blocked layout that
// oneDNN's matmul prefers on this CPU (Debian's libdnnl, the one libtorch itself links), so
// every pass skips the packing a BLAS call does again on each GEMM. The row count is a runtime
// dimension: one primitive serves every batch shape, no kernel is generated per shape.
// Measured on the 2-core AVX-512 machine (docs/benchmarks.md): ~220 GFLOP/s at 29 rows where
// OpenBLAS runs the same GEMMs at 40-100.
#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace mlaas::nn {

class PackedLinear {
 public:
  // y = x W^T + b for weight [out, in] and bias [out] (or undefined). Null when this build has
  // no oneDNN, or the tensors are not float32/bfloat16 CPU tensors: callers keep libtorch's
  // path then.
  static std::unique_ptr<PackedLinear> Make(const torch::Tensor& weight, const torch::Tensor& bias);
  ~PackedLinear();
  PackedLinear(const PackedLinear&) = delete;
  PackedLinear& operator=(const PackedLinear&) = delete;

  // x [..., in] of the weight's dtype -> [..., out]. Thread-safe.
  torch::Tensor Forward(const torch::Tensor& x) const;
  // The bytes of the packed weight and bias.
  int64_t bytes() const;

 private:
  struct Impl;
  explicit PackedLinear(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether this build packs linear layers (it was built with oneDNN).
bool PackedLinearAvailable();

}  // namespace mlaas::nn
