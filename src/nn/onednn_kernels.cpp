#include "nn/onednn_kernels.h"

#ifdef MLAAS_HAVE_DNNL
#include <dnnl.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace mlaas::nn {

#ifdef MLAAS_HAVE_DNNL

namespace {

const dnnl::engine& CpuEngine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

std::optional<dnnl::memory::data_type> DnnlType(torch::ScalarType t) {
  if (t == torch::kFloat32) return dnnl::memory::data_type::f32;
  if (t == torch::kBFloat16) return dnnl::memory::data_type::bf16;
  return std::nullopt;
}

}  // namespace

// Row counts of a pass vary (batch x tokens). Float32 matmuls take them as a runtime dimension:
// one primitive serves every pass. oneDNN 2.6 runs runtime-row bfloat16 matmuls on its gemm:jit
// path, which at thousands of rows is up to 4x slower than its brgemm kernels for fixed shapes
// (256 -> 1024 at 4096 rows: 48 ms against 5.9; docs/benchmarks.md). Bfloat16 rows therefore go
// through a primitive of kChunkRows rows, chunk after chunk, and one primitive per remainder,
// all on the weight layout the chunk primitive chose.
constexpr int64_t kChunkRows = 256;

struct PackedLinear::Impl {
  int64_t in = 0, out = 0;
  dnnl::memory::data_type type{};
  torch::ScalarType dtype{};
  bool chunked = false;             // fixed-row primitives (bfloat16), see kChunkRows
  dnnl::matmul::primitive_desc pd;  // runtime rows, or kChunkRows rows when chunked
  dnnl::matmul primitive;
  torch::Tensor weight;  // bytes in oneDNN's layout, owned here
  torch::Tensor bias;    // [1, out], contiguous, or undefined
  dnnl::memory weight_memory, bias_memory;
  bool has_bias = false;
  dnnl::primitive_attr attr;
  // Chunked: the primitives of fewer rows than kChunkRows, made on first use (at most
  // kChunkRows - 1 of them); null where oneDNN has none for the packed layout (the rows are
  // then padded to a chunk).
  mutable std::mutex tails_mu;
  mutable std::map<int64_t, std::shared_ptr<std::pair<dnnl::matmul::primitive_desc, dnnl::matmul>>> tails;

  dnnl::matmul::primitive_desc Describe(dnnl::memory::dim rows, const dnnl::memory::desc& weights) const {
    using tag = dnnl::memory::format_tag;
    dnnl::memory::desc src({rows, in}, type, tag::ab), dst({rows, out}, type, tag::ab);
    if (has_bias) {
      dnnl::memory::desc b({1, out}, type, tag::ab);
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, b, dst), attr, CpuEngine());
    }
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, CpuEngine());
  }

  // The primitive for `rows` < kChunkRows (chunked layers), or null.
  const std::pair<dnnl::matmul::primitive_desc, dnnl::matmul>* Tail(int64_t rows) const {
    std::lock_guard<std::mutex> lock(tails_mu);
    auto it = tails.find(rows);
    if (it == tails.end()) {
      std::shared_ptr<std::pair<dnnl::matmul::primitive_desc, dnnl::matmul>> made;
      try {
        auto tail_pd = Describe(rows, pd.weights_desc());
        made = std::make_shared<std::pair<dnnl::matmul::primitive_desc, dnnl::matmul>>(tail_pd, dnnl::matmul(tail_pd));
      } catch (const dnnl::error&) {
      }
      it = tails.emplace(rows, std::move(made)).first;
    }
    return it->second.get();
  }

  // y[rows, out] = x[rows, in] W + b with `p` (made for exactly `rows` rows, or runtime rows).
  void Run(const dnnl::matmul::primitive_desc& p, const dnnl::matmul& prim, int64_t rows, const void* x,
           void* y) const {
    using tag = dnnl::memory::format_tag;
    const dnnl::engine& engine = CpuEngine();
    dnnl::memory src(dnnl::memory::desc({rows, in}, type, tag::ab), engine, const_cast<void*>(x));
    dnnl::memory dst(dnnl::memory::desc({rows, out}, type, tag::ab), engine, y);
    std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weight_memory}, {DNNL_ARG_DST, dst}};
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, bias_memory);
    torch::Tensor scratch;  // most primitives here need none: nothing is allocated then
    if (const size_t bytes = p.scratchpad_desc().get_size(); bytes > 0) {
      scratch = torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
      args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(p.scratchpad_desc(), engine, scratch.data_ptr()));
    }
    thread_local dnnl::stream stream(engine);
    prim.execute(stream, args);
    stream.wait();
  }
};

std::unique_ptr<PackedLinear> PackedLinear::Make(const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!weight.defined() || weight.dim() != 2 || !weight.device().is_cpu()) return nullptr;
  auto type = DnnlType(weight.scalar_type());
  if (!type || (bias.defined() && (bias.scalar_type() != weight.scalar_type() || !bias.device().is_cpu() ||
                                   bias.numel() != weight.size(0))))
    return nullptr;
  torch::NoGradGuard no_grad;
  auto impl = std::make_unique<Impl>();
  impl->out = weight.size(0);
  impl->in = weight.size(1);
  impl->type = *type;
  impl->dtype = weight.scalar_type();
  impl->chunked = *type == dnnl::memory::data_type::bf16;
  impl->has_bias = bias.defined();
  using tag = dnnl::memory::format_tag;
  try {
    const dnnl::engine& engine = CpuEngine();
    impl->attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per call: concurrent calls share nothing
    // oneDNN picks the weights' layout for the primitive's shape.
    impl->pd = impl->Describe(impl->chunked ? kChunkRows : DNNL_RUNTIME_DIM_VAL,
                              dnnl::memory::desc({impl->in, impl->out}, *type, tag::any));
    impl->primitive = dnnl::matmul(impl->pd);

    // W^T [in, out] is the weight [out, in] read column-major: format "ba" over its own memory.
    torch::Tensor w = weight.contiguous();
    dnnl::memory plain(dnnl::memory::desc({impl->in, impl->out}, *type, tag::ba), engine, w.data_ptr());
    const auto& packed_desc = impl->pd.weights_desc();
    impl->weight = torch::empty({static_cast<int64_t>(packed_desc.get_size())}, torch::kUInt8);
    impl->weight_memory = dnnl::memory(packed_desc, engine, impl->weight.data_ptr());
    dnnl::stream stream(engine);
    dnnl::reorder(plain, impl->weight_memory).execute(stream, plain, impl->weight_memory);
    stream.wait();
    if (bias.defined()) {
      impl->bias = bias.reshape({1, impl->out}).contiguous().clone();
      impl->bias_memory = dnnl::memory(impl->pd.bias_desc(), engine, impl->bias.data_ptr());
    }
  } catch (const dnnl::error&) {
    return nullptr;  // no implementation for this CPU / type: libtorch's path stays
  }
  return std::unique_ptr<PackedLinear>(new PackedLinear(std::move(impl)));
}

torch::Tensor PackedLinear::Forward(const torch::Tensor& x) const {
  const Impl& m = *impl_;
  TORCH_CHECK(x.size(-1) == m.in, "packed linear: input has ", x.size(-1), " features, the layer takes ", m.in);
  TORCH_CHECK(x.scalar_type() == m.dtype, "packed linear: input is ", x.scalar_type(), ", the layer ", m.dtype);
  TORCH_CHECK(x.device().is_cpu(), "packed linear: input must be on the CPU");
  torch::Tensor x2 = x.reshape({-1, m.in});
  if (!x2.is_contiguous()) x2 = x2.contiguous();
  const int64_t rows = x2.size(0);
  auto shape = x.sizes().vec();
  shape.back() = m.out;
  torch::Tensor y = torch::empty({rows, m.out}, x2.options());
  const auto* x_bytes = static_cast<const char*>(x2.data_ptr());
  auto* y_bytes = static_cast<char*>(y.data_ptr());
  const size_t elem = x2.element_size();
  try {
    if (!m.chunked) {
      if (rows > 0) m.Run(m.pd, m.primitive, rows, x_bytes, y_bytes);
    } else {
      for (int64_t r = 0; r < rows; r += kChunkRows) {
        const int64_t n = std::min(kChunkRows, rows - r);
        const char* xr = x_bytes + static_cast<size_t>(r * m.in) * elem;
        char* yr = y_bytes + static_cast<size_t>(r * m.out) * elem;
        if (n == kChunkRows) {
          m.Run(m.pd, m.primitive, n, xr, yr);
        } else if (const auto* tail = m.Tail(n)) {
          m.Run(tail->first, tail->second, n, xr, yr);
        } else {  // no primitive for these rows on this layout: a chunk padded with zeros
          torch::Tensor xp = torch::zeros({kChunkRows, m.in}, x2.options()), yp = torch::empty({kChunkRows, m.out}, x2.options());
          std::memcpy(xp.data_ptr(), xr, static_cast<size_t>(n * m.in) * elem);
          m.Run(m.pd, m.primitive, kChunkRows, xp.data_ptr(), yp.data_ptr());
          std::memcpy(yr, yp.data_ptr(), static_cast<size_t>(n * m.out) * elem);
        }
      }
    }
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "packed linear: oneDNN matmul failed: ", e.what());
  }
  return y.view(shape);
}

int64_t PackedLinear::bytes() const {
  return impl_->weight.numel() + (impl_->bias.defined() ? impl_->bias.numel() * impl_->bias.element_size() : 0);
}

struct PackedAttention::Impl {
  int64_t heads = 0, head_dim = 0;
  dnnl::memory::data_type type{};
  torch::ScalarType dtype{};
  dnnl::matmul::primitive_desc scores_pd, context_pd;
  dnnl::matmul scores, context;
};

std::unique_ptr<PackedAttention> PackedAttention::Make(int64_t heads, int64_t head_dim, torch::ScalarType dtype) {
  auto type = DnnlType(dtype);
  if (!type || heads <= 0 || head_dim <= 0) return nullptr;
  auto impl = std::make_unique<Impl>();
  impl->heads = heads;
  impl->head_dim = head_dim;
  impl->type = *type;
  impl->dtype = dtype;
  using dims = dnnl::memory::dims;
  const int64_t R = DNNL_RUNTIME_DIM_VAL, d = head_dim;
  try {
    const dnnl::engine& engine = CpuEngine();
    // Dimensions [batch, heads, query rows, keys]; strides into qkv depend on the tokens.
    dnnl::memory::desc q({R, heads, R, d}, *type, dims{R, d, R, 1});
    dnnl::memory::desc k_t({R, heads, d, R}, *type, dims{R, d, 1, R});
    dnnl::memory::desc scores({R, heads, R, R}, *type, dims{R, R, R, 1});
    dnnl::primitive_attr scaled, plain;
    scaled.set_output_scales(0, {static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)))});
    scaled.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    plain.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    impl->scores_pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(q, k_t, scores), scaled, engine);
    dnnl::memory::desc v({R, heads, R, d}, *type, dims{R, d, R, 1});
    dnnl::memory::desc ctx({R, heads, R, d}, *type, dims{R, d, R, 1});  // [batch, rows, heads, d] in memory
    impl->context_pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(scores, v, ctx), plain, engine);
    if (impl->scores_pd.scratchpad_desc().get_size() > 0 || impl->context_pd.scratchpad_desc().get_size() > 0)
      return nullptr;  // not expected with runtime shapes; libtorch's path then
    impl->scores = dnnl::matmul(impl->scores_pd);
    impl->context = dnnl::matmul(impl->context_pd);
  } catch (const dnnl::error&) {
    return nullptr;
  }
  return std::unique_ptr<PackedAttention>(new PackedAttention(std::move(impl)));
}

torch::Tensor PackedAttention::Forward(const torch::Tensor& qkv_in, const torch::Tensor& additive_mask,
                                       bool first_only) const {
  const Impl& m = *impl_;
  const int64_t hd = m.heads * m.head_dim, d = m.head_dim, H = m.heads;
  TORCH_CHECK(qkv_in.dim() == 3 && qkv_in.size(2) == 3 * hd, "packed attention: qkv must be [batch, tokens, ",
              3 * hd, "]");
  TORCH_CHECK(qkv_in.scalar_type() == m.dtype && qkv_in.device().is_cpu(), "packed attention: qkv must be ", m.dtype,
              " on the CPU");
  torch::Tensor qkv = qkv_in.contiguous();
  const int64_t B = qkv.size(0), T = qkv.size(1), Tq = first_only ? std::min<int64_t>(T, 1) : T;
  torch::Tensor out = torch::empty({B, Tq, hd}, qkv.options());
  if (B == 0 || T == 0) return out;
  using dims = dnnl::memory::dims;
  const dnnl::engine& engine = CpuEngine();
  auto* base = static_cast<char*>(qkv.data_ptr());
  const size_t elem = qkv.element_size();
  torch::Tensor scores = torch::empty({B, H, Tq, T}, qkv.options());
  try {
    thread_local dnnl::stream stream(engine);
    dnnl::memory q(dnnl::memory::desc({B, H, Tq, d}, m.type, dims{T * 3 * hd, d, 3 * hd, 1}), engine, base);
    dnnl::memory k_t(dnnl::memory::desc({B, H, d, T}, m.type, dims{T * 3 * hd, d, 1, 3 * hd}), engine,
                     base + hd * elem);
    const dnnl::memory::desc scores_desc({B, H, Tq, T}, m.type, dims{H * Tq * T, Tq * T, T, 1});
    dnnl::memory s(scores_desc, engine, scores.data_ptr());
    m.scores.execute(stream, {{DNNL_ARG_SRC, q}, {DNNL_ARG_WEIGHTS, k_t}, {DNNL_ARG_DST, s}});
    stream.wait();
    if (additive_mask.defined()) scores.add_(additive_mask);
    torch::Tensor probs = torch::softmax(scores, -1);
    dnnl::memory p(scores_desc, engine, probs.data_ptr());
    dnnl::memory v(dnnl::memory::desc({B, H, T, d}, m.type, dims{T * 3 * hd, d, 3 * hd, 1}), engine,
                   base + 2 * hd * elem);
    dnnl::memory c(dnnl::memory::desc({B, H, Tq, d}, m.type, dims{Tq * hd, d, hd, 1}), engine, out.data_ptr());
    m.context.execute(stream, {{DNNL_ARG_SRC, p}, {DNNL_ARG_WEIGHTS, v}, {DNNL_ARG_DST, c}});
    stream.wait();
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "packed attention: oneDNN matmul failed: ", e.what());
  }
  return out;
}

bool PackedLinearAvailable() { return true; }

#else  // no oneDNN in this build

struct PackedLinear::Impl {};
std::unique_ptr<PackedLinear> PackedLinear::Make(const torch::Tensor&, const torch::Tensor&) { return nullptr; }
torch::Tensor PackedLinear::Forward(const torch::Tensor&) const { TORCH_CHECK(false, "built without oneDNN"); }
int64_t PackedLinear::bytes() const { return 0; }
struct PackedAttention::Impl {};
std::unique_ptr<PackedAttention> PackedAttention::Make(int64_t, int64_t, torch::ScalarType) { return nullptr; }
torch::Tensor PackedAttention::Forward(const torch::Tensor&, const torch::Tensor&, bool) const {
  TORCH_CHECK(false, "built without oneDNN");
}
bool PackedLinearAvailable() { return false; }

#endif

PackedLinear::PackedLinear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackedLinear::~PackedLinear() = default;
PackedAttention::PackedAttention(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackedAttention::~PackedAttention() = default;

}  // namespace mlaas::nn
