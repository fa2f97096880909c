#include "nn/packed_linear.h"

#ifdef MLAAS_HAVE_DNNL
#include <dnnl.hpp>
#endif

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

struct PackedLinear::Impl {
  int64_t in = 0, out = 0;
  dnnl::memory::data_type type{};
  torch::ScalarType dtype{};
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul primitive;
  torch::Tensor weight;  // bytes in oneDNN's layout, owned here
  torch::Tensor bias;    // [1, out], contiguous, or undefined
  dnnl::memory weight_memory, bias_memory;
  int64_t scratchpad_bytes = 0;
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
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::dim rows = DNNL_RUNTIME_DIM_VAL;
  try {
    const dnnl::engine& engine = CpuEngine();
    dnnl::memory::desc src({rows, impl->in}, *type, tag::ab);
    dnnl::memory::desc packed({impl->in, impl->out}, *type, tag::any);  // oneDNN picks the layout
    dnnl::memory::desc dst({rows, impl->out}, *type, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per call: concurrent calls share nothing
    if (bias.defined()) {
      dnnl::memory::desc b({1, impl->out}, *type, tag::ab);
      impl->pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, packed, b, dst), attr, engine);
    } else {
      impl->pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, packed, dst), attr, engine);
    }
    impl->primitive = dnnl::matmul(impl->pd);
    impl->scratchpad_bytes = static_cast<int64_t>(impl->pd.scratchpad_desc().get_size());

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
  if (rows > 0) {
    using tag = dnnl::memory::format_tag;
    const dnnl::engine& engine = CpuEngine();
    dnnl::memory src(dnnl::memory::desc({rows, m.in}, m.type, tag::ab), engine, x2.data_ptr());
    dnnl::memory dst(dnnl::memory::desc({rows, m.out}, m.type, tag::ab), engine, y.data_ptr());
    torch::Tensor scratch = torch::empty({m.scratchpad_bytes}, torch::kUInt8);
    dnnl::memory scratchpad(m.pd.scratchpad_desc(), engine, scratch.data_ptr());
    std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, src},
                                                  {DNNL_ARG_WEIGHTS, m.weight_memory},
                                                  {DNNL_ARG_DST, dst},
                                                  {DNNL_ARG_SCRATCHPAD, scratchpad}};
    if (m.bias.defined()) args.emplace(DNNL_ARG_BIAS, m.bias_memory);
    try {
      thread_local dnnl::stream stream(engine);
      m.primitive.execute(stream, args);
      stream.wait();
    } catch (const dnnl::error& e) {
      TORCH_CHECK(false, "packed linear: oneDNN matmul failed: ", e.what());
    }
  }
  return y.view(shape);
}

int64_t PackedLinear::bytes() const {
  return impl_->weight.numel() + (impl_->bias.defined() ? impl_->bias.numel() * impl_->bias.element_size() : 0);
}

bool PackedLinearAvailable() { return true; }

#else  // no oneDNN in this build

struct PackedLinear::Impl {};
std::unique_ptr<PackedLinear> PackedLinear::Make(const torch::Tensor&, const torch::Tensor&) { return nullptr; }
torch::Tensor PackedLinear::Forward(const torch::Tensor&) const { TORCH_CHECK(false, "built without oneDNN"); }
int64_t PackedLinear::bytes() const { return 0; }
bool PackedLinearAvailable() { return false; }

#endif

PackedLinear::PackedLinear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackedLinear::~PackedLinear() = default;

}  // namespace mlaas::nn
