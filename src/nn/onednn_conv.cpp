#include "nn/onednn_conv.h"

#ifdef MLAAS_HAVE_DNNL
#include <dnnl.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace mlaas::nn::blocked {

torch::Tensor ToBlocked(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) % kBlock == 0, "ToBlocked: NCHW with channels a multiple of 16");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  return x.reshape({n, c / kBlock, kBlock, h, w}).permute({0, 1, 3, 4, 2}).contiguous();
}

torch::Tensor FromBlocked(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 5 && x.size(4) == kBlock, "FromBlocked: a blocked tensor");
  const int64_t n = x.size(0), cb = x.size(1), h = x.size(2), w = x.size(3);
  return x.permute({0, 1, 4, 2, 3}).reshape({n, cb * kBlock, h, w}).contiguous();
}

torch::Tensor MaxPool2d(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  TORCH_CHECK(x.dim() == 5 && x.size(4) == kBlock, "MaxPool2d: a blocked tensor");
  const int64_t n = x.size(0), cb = x.size(1), h = x.size(2), w = x.size(3);
  // [N*C/16, 16, H, W] in channels-last order is the same memory: libtorch pools it in place.
  torch::Tensor as_channels_last = x.contiguous().view({n * cb, h, w, kBlock}).permute({0, 3, 1, 2});
  torch::Tensor pooled = torch::max_pool2d(as_channels_last, kernel, stride, padding);
  return pooled.permute({0, 2, 3, 1}).reshape({n, cb, pooled.size(2), pooled.size(3), kBlock});
}

torch::Tensor GlobalAvgPool(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 5 && x.size(4) == kBlock, "GlobalAvgPool: a blocked tensor");
  return x.mean({2, 3}).reshape({x.size(0), x.size(1) * kBlock});
}

#ifdef MLAAS_HAVE_DNNL

bool Available() { return true; }

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

const dnnl::engine& Engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

// Scratch memory per call, so concurrent trainings share nothing.
dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::memory Memory(const dnnl::memory::desc& md, const torch::Tensor& t) {
  return dnnl::memory(md, Engine(), const_cast<void*>(t.data_ptr()));
}

// Runs p to the end on this thread. Scratch memory is the calling thread's own, grown to the
// largest asked for and kept (up to kKeptScratchBytes), so no call faults fresh pages in for it.
void Run(const dnnl::primitive& p, const dnnl::memory::desc& scratch_md, std::unordered_map<int, dnnl::memory> args) {
  constexpr int64_t kKeptScratchBytes = int64_t{64} << 20;
  thread_local torch::Tensor kept;
  torch::Tensor scratch;
  if (const auto bytes = static_cast<int64_t>(scratch_md.get_size()); bytes > 0) {
    if (kept.defined() && kept.numel() >= bytes) {
      scratch = kept;
    } else {
      scratch = torch::empty({bytes}, torch::kUInt8);
      if (bytes <= kKeptScratchBytes) kept = scratch;
    }
    args.emplace(DNNL_ARG_SCRATCHPAD, Memory(scratch_md, scratch));
  }
  p.execute(Stream(), args);
  Stream().wait();
}

// A float32 tensor large enough for md (any layout, padding included).
torch::Tensor Allocate(const dnnl::memory::desc& md) {
  return torch::empty({static_cast<int64_t>((md.get_size() + 3) / 4)}, torch::kFloat32);
}

// A layout change made once per shape; identity when both sides agree.
struct Reorder {
  dnnl::memory::desc from, to;
  std::optional<dnnl::reorder> primitive;
  dnnl::memory::desc scratch;

  Reorder(const dnnl::memory::desc& f, const dnnl::memory::desc& t) : from(f), to(t) {
    if (from == to) return;
    dnnl::reorder::primitive_desc pd(Engine(), from, Engine(), to, UserScratchpad());
    primitive.emplace(pd);
    scratch = pd.scratchpad_desc();
  }
  // src in `from`'s layout -> dst (allocated by the caller) in `to`'s.
  void Apply(const torch::Tensor& src, const torch::Tensor& dst) const {
    Run(*primitive, scratch, {{DNNL_ARG_FROM, Memory(from, src)}, {DNNL_ARG_TO, Memory(to, dst)}});
  }
  // src in `from`'s layout, as a tensor in `to`'s (src itself when they agree).
  torch::Tensor Into(const torch::Tensor& src) const {
    if (!primitive) return src;
    torch::Tensor dst = Allocate(to);
    Apply(src, dst);
    return dst;
  }
};

constexpr size_t kMaxEntries = 256;

std::atomic<ConvAlgorithm> forced_algorithm{ConvAlgorithm::kFastest};

// Every primitive of one convolution shape, made once and shared by all calls (primitives are
// immutable; calls bring their own memory and scratch).
struct ConvEntry {
  dnnl::memory::desc src, dst, weights;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_backward_weights bwd_weights;
  std::unique_ptr<Reorder> weights_to_fwd, weights_to_bwd_data, diff_weights_to_plain;
};

std::shared_ptr<const ConvEntry> ConvFor(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride,
                                         int64_t pad) {
  const bool plain = x.dim() == 4;
  const int64_t n = x.size(0), ic = plain ? x.size(1) : x.size(1) * kBlock, ih = x.size(2),
                iw = x.size(3);
  const int64_t oc = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  const int64_t oh = (ih + 2 * pad - kh) / stride + 1, ow = (iw + 2 * pad - kw) / stride + 1;
  // oneDNN fixes a primitive's thread count when it is made: trainings with other `threads`
  // get primitives of their own.
  const ConvAlgorithm forced = forced_algorithm.load();
  const std::string key = std::to_string(plain) + ":" + std::to_string(n) + "x" + std::to_string(ic) + "x" +
                          std::to_string(ih) + "x" + std::to_string(iw) + ">" + std::to_string(oc) + "k" +
                          std::to_string(kh) + "x" + std::to_string(kw) + "s" + std::to_string(stride) + "p" +
                          std::to_string(pad) + "t" + std::to_string(at::get_num_threads()) + "a" +
                          std::to_string(static_cast<int>(forced));
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const ConvEntry>> cache;
  {
    std::lock_guard lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  // Made (and timed) outside the lock, so other trainings' calls do not wait; two threads
  // meeting a new shape at once both make it and the first one stored is kept.
  auto e = std::make_shared<ConvEntry>();
  e->src = dnnl::memory::desc({n, ic, ih, iw}, dt::f32, plain ? tag::nchw : tag::nChw16c);
  e->dst = dnnl::memory::desc({n, oc, oh, ow}, dt::f32, tag::nChw16c);
  e->weights = dnnl::memory::desc({oc, ic, kh, kw}, dt::f32, tag::oihw);
  const dnnl::memory::desc any_weights({oc, ic, kh, kw}, dt::f32, tag::any);
  const dnnl::memory::dims strides{stride, stride}, padding{pad, pad};
  const dnnl::primitive_attr attr = UserScratchpad();
  using Fwd = dnnl::convolution_forward;
  using BwdData = dnnl::convolution_backward_data;
  using BwdWeights = dnnl::convolution_backward_weights;
  const auto fwd_pd = [&](dnnl::algorithm alg) {
    return Fwd::primitive_desc(
        Fwd::desc(dnnl::prop_kind::forward_training, alg, e->src, any_weights, e->dst, strides, padding, padding),
        attr, Engine());
  };
  // Each direction runs direct convolution or, where oneDNN has it for the shape (3x3, stride
  // 1, blocked layouts), Winograd's F(4x4, 3x3): 2.25x fewer multiplications, results within
  // ~1e-5 of direct, but slower than direct on small feature maps. Which one is faster depends
  // on the shape and the CPU, so both are timed here, once per shape, on scratch data.
  // (libtorch's own calls always run direct.)
  // Timing data from a generator of its own: the process-wide one (training's) is not touched.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto random_for = [&gen](const dnnl::memory::desc& md) {
    return torch::rand({static_cast<int64_t>(md.get_size() / 4)}, gen, torch::kFloat32);
  };
  torch::Tensor src = random_for(e->src), dst = random_for(e->dst), src_out = Allocate(e->src);
  const auto faster = [forced](const auto& make, auto&& time) {
    // The Winograd candidate replaces direct only when clearly faster (timing noise aside).
    auto best = make(dnnl::algorithm::convolution_direct);
    if (forced == ConvAlgorithm::kDirect) return best;
    try {
      auto other = make(dnnl::algorithm::convolution_winograd);
      if (forced == ConvAlgorithm::kWinograd || time(other) < 0.9 * time(best)) best = other;
    } catch (const dnnl::error&) {
      // no Winograd kernel for this shape
    }
    return best;
  };
  const auto time_ms = [](const dnnl::primitive& p, const dnnl::memory::desc& scratch,
                          const std::unordered_map<int, dnnl::memory>& args) {
    double best = 1e300;
    for (int run = 0; run < 3; ++run) {  // the first warms the caches and the JIT code up
      const auto start = std::chrono::steady_clock::now();
      Run(p, scratch, args);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (run > 0) best = std::min(best, ms);
    }
    return best;
  };
  e->fwd_pd = faster(fwd_pd, [&](const Fwd::primitive_desc& pd) {
    torch::Tensor w = random_for(pd.weights_desc());
    return time_ms(Fwd(pd), pd.scratchpad_desc(),
                   {{DNNL_ARG_SRC, Memory(e->src, src)}, {DNNL_ARG_WEIGHTS, Memory(pd.weights_desc(), w)},
                    {DNNL_ARG_DST, Memory(e->dst, dst)}});
  });
  e->fwd = Fwd(e->fwd_pd);
  e->bwd_data_pd = faster(
      [&](dnnl::algorithm alg) {
        return BwdData::primitive_desc(BwdData::desc(alg, e->src, any_weights, e->dst, strides, padding, padding),
                                       attr, Engine(), e->fwd_pd);
      },
      [&](const BwdData::primitive_desc& pd) {
        torch::Tensor w = random_for(pd.weights_desc());
        return time_ms(BwdData(pd), pd.scratchpad_desc(),
                       {{DNNL_ARG_DIFF_DST, Memory(e->dst, dst)}, {DNNL_ARG_WEIGHTS, Memory(pd.weights_desc(), w)},
                        {DNNL_ARG_DIFF_SRC, Memory(e->src, src_out)}});
      });
  e->bwd_data = BwdData(e->bwd_data_pd);
  e->bwd_weights_pd = faster(
      [&](dnnl::algorithm alg) {
        return BwdWeights::primitive_desc(
            BwdWeights::desc(alg, e->src, any_weights, e->dst, strides, padding, padding), attr, Engine(), e->fwd_pd);
      },
      [&](const BwdWeights::primitive_desc& pd) {
        torch::Tensor dw = random_for(pd.diff_weights_desc());
        return time_ms(BwdWeights(pd), pd.scratchpad_desc(),
                       {{DNNL_ARG_SRC, Memory(e->src, src)}, {DNNL_ARG_DIFF_DST, Memory(e->dst, dst)},
                        {DNNL_ARG_DIFF_WEIGHTS, Memory(pd.diff_weights_desc(), dw)}});
      });
  e->bwd_weights = BwdWeights(e->bwd_weights_pd);
  e->weights_to_fwd = std::make_unique<Reorder>(e->weights, e->fwd_pd.weights_desc());
  e->weights_to_bwd_data = std::make_unique<Reorder>(e->weights, e->bwd_data_pd.weights_desc());
  e->diff_weights_to_plain = std::make_unique<Reorder>(e->bwd_weights_pd.diff_weights_desc(), e->weights);
  std::lock_guard lock(mu);
  // Entries are per shape (batch size included: an epoch's last batch is another); a server
  // that trains on many sizes starts over past kMaxEntries (calls in flight keep theirs).
  if (cache.size() >= kMaxEntries) cache.clear();
  return cache.emplace(key, e).first->second;
}

class ConvFunction : public torch::autograd::Function<ConvFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight_in,
                               int64_t stride, int64_t pad) {
    torch::Tensor x = input.contiguous(), weight = weight_in.contiguous();
    auto e = ConvFor(x, weight, stride, pad);
    const auto dims = e->dst.dims();
    torch::Tensor y = torch::empty({dims[0], dims[1] / kBlock, dims[2], dims[3], kBlock}, x.options());
    torch::Tensor w = e->weights_to_fwd->Into(weight);
    Run(e->fwd, e->fwd_pd.scratchpad_desc(),
        {{DNNL_ARG_SRC, Memory(e->src, x)},
         {DNNL_ARG_WEIGHTS, Memory(e->fwd_pd.weights_desc(), w)},
         {DNNL_ARG_DST, Memory(e->dst, y)}});
    ctx->save_for_backward({x, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["pad"] = pad;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    auto e = ConvFor(x, weight, ctx->saved_data["stride"].toInt(), ctx->saved_data["pad"].toInt());
    const torch::Tensor dy = grads[0].contiguous();
    torch::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty_like(x, torch::MemoryFormat::Contiguous);
      torch::Tensor w = e->weights_to_bwd_data->Into(weight);
      Run(e->bwd_data, e->bwd_data_pd.scratchpad_desc(),
          {{DNNL_ARG_DIFF_DST, Memory(e->dst, dy)},
           {DNNL_ARG_WEIGHTS, Memory(e->bwd_data_pd.weights_desc(), w)},
           {DNNL_ARG_DIFF_SRC, Memory(e->src, dx)}});
    }
    if (ctx->needs_input_grad(1)) {
      const dnnl::memory::desc dw_md = e->bwd_weights_pd.diff_weights_desc();
      dw = torch::empty_like(weight, torch::MemoryFormat::Contiguous);
      torch::Tensor dw_blocked = e->diff_weights_to_plain->primitive ? Allocate(dw_md) : dw;
      Run(e->bwd_weights, e->bwd_weights_pd.scratchpad_desc(),
          {{DNNL_ARG_SRC, Memory(e->src, x)},
           {DNNL_ARG_DIFF_DST, Memory(e->dst, dy)},
           {DNNL_ARG_DIFF_WEIGHTS, Memory(dw_md, dw_blocked)}});
      if (e->diff_weights_to_plain->primitive) e->diff_weights_to_plain->Apply(dw_blocked, dw);
    }
    return {dx, dw, torch::Tensor(), torch::Tensor()};
  }
};

struct NormEntry {
  dnnl::memory::desc data, channels;
  dnnl::batch_normalization_forward::primitive_desc fwd_pd;
  dnnl::batch_normalization_forward fwd;
  dnnl::batch_normalization_backward::primitive_desc bwd_pd;
  dnnl::batch_normalization_backward bwd;
};

std::shared_ptr<const NormEntry> NormFor(const torch::Tensor& x, double eps, bool relu) {
  const int64_t n = x.size(0), c = x.size(1) * kBlock, h = x.size(2), w = x.size(3);
  uint64_t eps_bits = 0;
  static_assert(sizeof(eps_bits) == sizeof(eps));
  std::memcpy(&eps_bits, &eps, sizeof(eps));
  const std::string key = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
                          std::to_string(w) + "e" + std::to_string(eps_bits) + (relu ? "r" : "") + "t" +
                          std::to_string(at::get_num_threads());
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const NormEntry>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= kMaxEntries) cache.clear();
  auto e = std::make_shared<NormEntry>();
  e->data = dnnl::memory::desc({n, c, h, w}, dt::f32, tag::nChw16c);
  e->channels = dnnl::memory::desc({c}, dt::f32, tag::a);
  auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  if (relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
  const dnnl::primitive_attr attr = UserScratchpad();
  const auto epsilon = static_cast<float>(eps);
  e->fwd_pd = dnnl::batch_normalization_forward::primitive_desc(
      dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, e->data, epsilon, flags), attr,
      Engine());
  e->fwd = dnnl::batch_normalization_forward(e->fwd_pd);
  e->bwd_pd = dnnl::batch_normalization_backward::primitive_desc(
      dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, e->data, e->data, epsilon, flags), attr,
      Engine(), e->fwd_pd);
  e->bwd = dnnl::batch_normalization_backward(e->bwd_pd);
  cache.emplace(key, e);
  return e;
}

class NormFunction : public torch::autograd::Function<NormFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight_in,
                               const torch::Tensor& bias_in, torch::Tensor running_mean, torch::Tensor running_var,
                               double momentum, double eps, bool relu) {
    torch::Tensor x = input.contiguous();
    torch::Tensor weight = weight_in.contiguous(), bias = bias_in.contiguous();
    auto e = NormFor(x, eps, relu);
    const int64_t c = x.size(1) * kBlock;
    torch::Tensor y = torch::empty_like(x, torch::MemoryFormat::Contiguous);
    torch::Tensor mean = torch::empty({c}, x.options()), var = torch::empty({c}, x.options());
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, Memory(e->data, x)},          {DNNL_ARG_DST, Memory(e->data, y)},
        {DNNL_ARG_SCALE, Memory(e->channels, weight)}, {DNNL_ARG_SHIFT, Memory(e->channels, bias)},
        {DNNL_ARG_MEAN, Memory(e->channels, mean)},  {DNNL_ARG_VARIANCE, Memory(e->channels, var)}};
    torch::Tensor workspace;
    if (relu) {
      workspace = torch::empty({static_cast<int64_t>(e->fwd_pd.workspace_desc().get_size())}, torch::kUInt8);
      args.emplace(DNNL_ARG_WORKSPACE, Memory(e->fwd_pd.workspace_desc(), workspace));
    }
    Run(e->fwd, e->fwd_pd.scratchpad_desc(), std::move(args));
    {
      // torch.nn.BatchNorm2d: running = (1 - momentum) running + momentum batch, with the
      // batch's unbiased variance.
      torch::NoGradGuard no_grad;
      const double count = static_cast<double>(x.numel() / c);
      running_mean.mul_(1.0 - momentum).add_(mean, momentum);
      running_var.mul_(1.0 - momentum).add_(var, momentum * count / std::max(count - 1.0, 1.0));
    }
    ctx->save_for_backward({x, weight, mean, var, workspace, bias});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["relu"] = relu;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &mean = saved[2], &var = saved[3], &workspace = saved[4], &bias = saved[5];
    const bool relu = ctx->saved_data["relu"].toBool();
    auto e = NormFor(x, ctx->saved_data["eps"].toDouble(), relu);
    const torch::Tensor dy = grads[0].contiguous();
    torch::Tensor dx = torch::empty_like(x, torch::MemoryFormat::Contiguous);
    torch::Tensor dweight = torch::empty_like(weight), dbias = torch::empty_like(weight);
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, Memory(e->data, x)},           {DNNL_ARG_DIFF_DST, Memory(e->data, dy)},
        {DNNL_ARG_MEAN, Memory(e->channels, mean)},   {DNNL_ARG_VARIANCE, Memory(e->channels, var)},
        {DNNL_ARG_SCALE, Memory(e->channels, weight)}, {DNNL_ARG_DIFF_SRC, Memory(e->data, dx)},
        {DNNL_ARG_DIFF_SCALE, Memory(e->channels, dweight)}, {DNNL_ARG_DIFF_SHIFT, Memory(e->channels, dbias)}};
    if (relu) args.emplace(DNNL_ARG_WORKSPACE, Memory(e->bwd_pd.workspace_desc(), workspace));
    args.emplace(DNNL_ARG_SHIFT, Memory(e->channels, bias));
    Run(e->bwd, e->bwd_pd.scratchpad_desc(), std::move(args));
    return {ctx->needs_input_grad(0) ? dx : torch::Tensor(), ctx->needs_input_grad(1) ? dweight : torch::Tensor(),
            ctx->needs_input_grad(2) ? dbias : torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

void CheckFloatCpu(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32, what,
              ": a float32 CPU tensor");
}

}  // namespace

torch::Tensor Conv2d(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding) {
  CheckFloatCpu(x, "Conv2d input");
  CheckFloatCpu(weight, "Conv2d weight");
  TORCH_CHECK(x.dim() == 4 || (x.dim() == 5 && x.size(4) == kBlock), "Conv2d: NCHW or blocked input");
  TORCH_CHECK(weight.dim() == 4 && weight.size(0) % kBlock == 0, "Conv2d: output channels a multiple of 16");
  TORCH_CHECK(weight.size(1) == (x.dim() == 4 ? x.size(1) : x.size(1) * kBlock), "Conv2d: input channels");
  TORCH_CHECK(x.size(2) + 2 * padding >= weight.size(2) && x.size(3) + 2 * padding >= weight.size(3),
              "Conv2d: the input (", x.size(2), "x", x.size(3), " after padding ", padding,
              ") is smaller than the kernel (", weight.size(2), "x", weight.size(3), ")");
  try {
    return ConvFunction::apply(x, weight, stride, padding);
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "oneDNN convolution failed (", e.what(), ") for input ", x.sizes(), " and weight ", weight.sizes());
  }
}

void ForceConvAlgorithm(ConvAlgorithm algorithm) { forced_algorithm = algorithm; }

std::string ConvForwardKernel(const torch::Tensor& x, const torch::Tensor& weight, int64_t stride, int64_t padding) {
  return ConvFor(x.contiguous(), weight.contiguous(), stride, padding)->fwd_pd.impl_info_str();
}

torch::Tensor BatchNormTrain(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             torch::Tensor running_mean, torch::Tensor running_var, double momentum, double eps,
                             bool relu) {
  CheckFloatCpu(x, "BatchNorm input");
  TORCH_CHECK(x.dim() == 5 && x.size(4) == kBlock, "BatchNorm: a blocked tensor");
  for (const torch::Tensor* t : std::initializer_list<const torch::Tensor*>{&weight, &bias, &running_mean, &running_var}) {
    CheckFloatCpu(*t, "BatchNorm parameter");
    TORCH_CHECK(t->numel() == x.size(1) * kBlock, "BatchNorm: one value per channel");
  }
  // As libtorch: batch statistics of a single value are refused.
  TORCH_CHECK(x.size(0) * x.size(2) * x.size(3) > 1, "Expected more than 1 value per channel when training, got input size ",
              x.sizes());
  try {
    return NormFunction::apply(x, weight, bias, std::move(running_mean), std::move(running_var), momentum, eps, relu);
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "oneDNN batch normalisation failed (", e.what(), ") for input ", x.sizes());
  }
}

#else

bool Available() { return false; }

void ForceConvAlgorithm(ConvAlgorithm) {}

std::string ConvForwardKernel(const torch::Tensor&, const torch::Tensor&, int64_t, int64_t) { return ""; }

torch::Tensor Conv2d(const torch::Tensor&, const torch::Tensor&, int64_t, int64_t) {
  throw std::logic_error("blocked convolution: built without oneDNN");
}

torch::Tensor BatchNormTrain(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, torch::Tensor,
                             torch::Tensor, double, double, bool) {
  throw std::logic_error("blocked batch norm: built without oneDNN");
}

#endif

}  // namespace mlaas::nn::blocked
