#pragma once
// Inference kernels on oneDNN (Debian's libdnnl, the one libtorch itself links) for the encoder
// layer's GEMMs, where libtorch's CPU paths lose most at serving's small batches. In float32
// every shape that varies per pass (rows, batch, sequence length) is a runtime dimension: one
// primitive per layer shape serves every batch. Bfloat16 linear layers run their rows in
// chunks of a fixed-shape primitive (oneDNN's runtime-row bf16 matmul is up to 4x slower at
// thousands of rows), with one more primitive per remainder, made once. Measured on the
// 2-core AVX-512 machine (docs/benchmarks.md).
#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace mlaas::nn {

// A linear layer whose weight is reordered once into the blocked layout oneDNN's matmul
// prefers on this CPU, so no pass packs it again as a BLAS call does on each GEMM: ~220
// GFLOP/s at 29 rows where OpenBLAS runs the same GEMMs at 40-100.
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

// Scaled dot-product self-attention read straight from the fused projection's output, as
// batched matmuls over strided views: no copies into per-head layouts, and the context written
// in [batch, tokens, hidden] order. libtorch's CPU bmm runs such batches as one small GEMM per
// (sequence, head): 1.9 ms against oneDNN's 0.29 ms for 16 x 12 heads x 29 tokens.
class PackedAttention {
 public:
  // Null without oneDNN or for a dtype other than float32/bfloat16.
  static std::unique_ptr<PackedAttention> Make(int64_t heads, int64_t head_dim, torch::ScalarType dtype);
  ~PackedAttention();
  PackedAttention(const PackedAttention&) = delete;
  PackedAttention& operator=(const PackedAttention&) = delete;

  // qkv [batch, tokens, 3 * heads * head_dim] (queries, keys, values, heads inside each);
  // additive_mask [batch, 1, 1, tokens] or undefined. softmax(q k^T / sqrt(head_dim) + mask) v
  // for every query position, or the first one only: [batch, tokens or 1, heads * head_dim].
  // Thread-safe.
  torch::Tensor Forward(const torch::Tensor& qkv, const torch::Tensor& additive_mask, bool first_only) const;

 private:
  struct Impl;
  explicit PackedAttention(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether this build has these kernels (it was built with oneDNN).
bool PackedLinearAvailable();

}  // namespace mlaas::nn
