#include "nn/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mlaas::nn {

namespace {

torch::nn::Linear MakeLinear(torch::nn::Module& owner, const std::string& name, int64_t in, int64_t out) {
  return owner.register_module(name, torch::nn::Linear(torch::nn::LinearOptions(in, out)));
}

torch::nn::LayerNorm MakeLayerNorm(torch::nn::Module& owner, const std::string& name, int64_t dim, double eps) {
  return owner.register_module(
      name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps).elementwise_affine(true)));
}

// LayerNorm for inference. libtorch 1.13's CPU kernel has no vectorised bfloat16 path (7.6 ns
// an element, 29% of a bf16 bert-mini pass at 32 x 128 tokens): bfloat16 activations are
// normalised in float32 and rounded back, as the float32 kernel computes them anyway.
torch::Tensor Normalize(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  if (x.scalar_type() != torch::kBFloat16 || torch::GradMode::is_enabled()) return norm(x);
  const auto& o = norm->options;
  return at::layer_norm(x.to(torch::kFloat32), o.normalized_shape(), norm->weight.to(torch::kFloat32),
                        norm->bias.to(torch::kFloat32), o.eps())
      .to(torch::kBFloat16);
}

}  // namespace

torch::Tensor DropoutImpl::forward(const torch::Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  if (!gen_ || x.device() != gen_->device()) return torch::dropout(x, p_, /*train=*/true);
  // What libtorch's CPU dropout computes, with the mask from our generator.
  auto keep = at::empty_like(x).bernoulli_(1.0 - p_, *gen_);
  return x * keep.div_(1.0 - p_);
}

torch::Tensor Activate(const torch::Tensor& x, Activation a) {
  switch (a) {
    case Activation::kGelu: return at::gelu(x);
    case Activation::kGeluNew: return at::gelu(x, "tanh");
    case Activation::kRelu: return at::relu(x);
    case Activation::kSilu: return at::silu(x);
    case Activation::kTanh: return at::tanh(x);
  }
  return x;
}

namespace {

// The dtype's lowest finite value: what masked attention scores become.
double Lowest(torch::ScalarType dtype) {
  return dtype == torch::kFloat64    ? std::numeric_limits<double>::lowest()
         : dtype == torch::kBFloat16 ? -3.3895313892515355e38
         : dtype == torch::kFloat16  ? -65504.0
                                     : static_cast<double>(std::numeric_limits<float>::lowest());
}

}  // namespace

torch::Tensor AdditiveMask(const torch::Tensor& attention_mask, torch::ScalarType dtype) {
  auto m = attention_mask.to(dtype).unsqueeze(1).unsqueeze(2);  // [B, 1, 1, T]
  return (1.0 - m) * Lowest(dtype);
}

torch::Tensor Pool(const torch::Tensor& h, const torch::Tensor& attention_mask, Pooling p) {
  if (p == Pooling::kCls) return h.select(1, 0);
  if (!attention_mask.defined()) return h.mean(1);
  auto m = attention_mask.to(h.scalar_type()).unsqueeze(-1);  // [B, T, 1]
  return (h * m).sum(1) / m.sum(1).clamp_min(1e-9);
}

// ---------------------------------------------------------------------------------------------
// Embeddings

EmbeddingsImpl::EmbeddingsImpl(const ModelConfig& c)
    : arch_(c.architecture), pad_(c.pad_token_id), relative_(c.relative_positions()) {
  const int64_t h = c.hidden_size;
  word_embeddings = register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, h).padding_idx(pad_)));
  auto pos = torch::nn::EmbeddingOptions(c.max_position_embeddings, h);
  if (RobertaLike(arch_)) pos.padding_idx(pad_);
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(pos));
  if (arch_ != Architecture::kDistilBert) {
    token_type_embeddings = register_module("token_type_embeddings",
                                            torch::nn::Embedding(torch::nn::EmbeddingOptions(c.type_vocab_size, h)));
  }
  layer_norm = MakeLayerNorm(*this, "LayerNorm", h, arch_ == Architecture::kDistilBert ? 1e-12 : c.layer_norm_eps);
  dropout = register_module("dropout", Dropout(c.hidden_dropout_prob));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids) {
  auto x = word_embeddings(input_ids);
  if (token_type_embeddings) {
    x = x + (token_type_ids.defined() ? token_type_embeddings(token_type_ids)
                                      : token_type_embeddings->weight[0].view({1, 1, -1}));
  }
  // Relative positions (position_embedding_type relative_*) live in attention, which checks the
  // length against its distances: the absolute table stays in the checkpoint, unused.
  if (relative_) return dropout(Normalize(layer_norm, x));
  const int64_t seq = input_ids.size(1);
  const int64_t max_pos = position_embeddings->weight.size(0);
  torch::Tensor position_ids;
  if (RobertaLike(arch_)) {
    auto mask = input_ids.ne(pad_).to(torch::kInt64);
    position_ids = mask.cumsum(1) * mask + pad_;  // the padding keeps the padding position
    const int64_t longest = seq + pad_ < max_pos ? 0 : position_ids.max().item<int64_t>();
    TORCH_CHECK(longest < max_pos, "sequence of ", longest - pad_, " tokens is longer than this model's maximum of ",
                max_pos - pad_ - 1);
  } else {
    TORCH_CHECK(seq <= max_pos, "sequence of ", seq, " tokens is longer than this model's maximum of ", max_pos);
    position_ids = torch::arange(seq, input_ids.options()).unsqueeze(0);
  }
  x = x + position_embeddings(position_ids);
  return dropout(Normalize(layer_norm, x));
}

// ---------------------------------------------------------------------------------------------
// Encoder layer

EncoderLayerImpl::EncoderLayerImpl(const ModelConfig& c, int64_t layer_index)
    : heads_(c.num_attention_heads),
      head_dim_(c.head_dim()),
      act_(c.hidden_act),
      eps_(c.architecture == Architecture::kDistilBert ? 1e-12 : c.layer_norm_eps),
      positions_(c.position_embedding_type),
      max_positions_(c.max_position_embeddings) {
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  if (c.architecture == Architecture::kDistilBert) {
    auto attention = register_module("attention", Scope());
    query = MakeLinear(*attention, "q_lin", h, h);
    key = MakeLinear(*attention, "k_lin", h, h);
    value = MakeLinear(*attention, "v_lin", h, h);
    attn_out = MakeLinear(*attention, "out_lin", h, h);
    attn_norm = MakeLayerNorm(*this, "sa_layer_norm", h, 1e-12);
    auto ffn = register_module("ffn", Scope());
    ffn_in = MakeLinear(*ffn, "lin1", h, inter);
    ffn_out = MakeLinear(*ffn, "lin2", inter, h);
    out_norm = MakeLayerNorm(*this, "output_layer_norm", h, 1e-12);
  } else {
    auto attention = register_module("attention", Scope());
    auto self = attention->register_module("self", Scope());
    query = MakeLinear(*self, "query", h, h);
    key = MakeLinear(*self, "key", h, h);
    value = MakeLinear(*self, "value", h, h);
    if (c.relative_positions()) {
      distance_embedding = self->register_module(
          "distance_embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(2 * max_positions_ - 1, head_dim_)));
    }
    if (c.architecture == Architecture::kLongformer) {
      query_global = MakeLinear(*self, "query_global", h, h);
      key_global = MakeLinear(*self, "key_global", h, h);
      value_global = MakeLinear(*self, "value_global", h, h);
      const size_t i = static_cast<size_t>(layer_index);
      TORCH_CHECK(i < c.attention_window.size(), "no attention window for layer ", layer_index);
      window_ = c.attention_window[i] / 2;
    }
    auto attention_output = attention->register_module("output", Scope());
    attn_out = MakeLinear(*attention_output, "dense", h, h);
    attn_norm = MakeLayerNorm(*attention_output, "LayerNorm", h, c.layer_norm_eps);
    auto intermediate = register_module("intermediate", Scope());
    ffn_in = MakeLinear(*intermediate, "dense", h, inter);
    auto output = register_module("output", Scope());
    ffn_out = MakeLinear(*output, "dense", inter, h);
    out_norm = MakeLayerNorm(*output, "LayerNorm", h, c.layer_norm_eps);
  }
  dropout = register_module("dropout", Dropout(c.hidden_dropout_prob));
  attn_dropout = register_module("attn_dropout", Dropout(c.attention_probs_dropout_prob));
}

torch::Tensor EncoderLayerImpl::Scores(const torch::Tensor& q, const torch::Tensor& k) {
  auto scores = torch::matmul(q, k.transpose(-1, -2));
  if (distance_embedding) {
    // distance_embedding[l - r + max_positions - 1] for query l and key r, scored with the query
    // (and the key): transformers adds these terms before the 1/sqrt(d) scale.
    const int64_t t = q.size(2);
    TORCH_CHECK(t <= max_positions_, "sequence of ", t, " tokens is longer than this model's maximum of ", max_positions_);
    auto at = torch::arange(t, q.options().dtype(torch::kLong));
    auto distance = distance_embedding(at.view({t, 1}) - at.view({1, t}) + (max_positions_ - 1)).to(q.scalar_type());
    scores = scores + torch::einsum("bhld,lrd->bhlr", {q, distance});
    if (positions_ == PositionEmbedding::kRelativeKeyQuery) scores = scores + torch::einsum("bhrd,lrd->bhlr", {k, distance});
  }
  return scores.mul_(1.0 / std::sqrt(static_cast<double>(head_dim_)));
}

void EncoderLayerImpl::FuseQkv() {
  if (window_ > 0) return;  // Longformer's attention runs on libtorch's operators
  if (distance_embedding) return;  // nor do relative positions (no packed kernel scores distances)
  torch::NoGradGuard no_grad;
  Unfuse();
  torch::Tensor w = torch::cat({query->weight, key->weight, value->weight}, 0).contiguous();
  torch::Tensor b = torch::cat({query->bias, key->bias, value->bias}, 0).contiguous();
  auto packed = std::make_shared<Packed>();
  packed->qkv = PackedLinear::Make(w, b);
  if (packed->qkv) packed->attn_out = PackedLinear::Make(attn_out->weight, attn_out->bias);
  if (packed->attn_out) packed->ffn_in = PackedLinear::Make(ffn_in->weight, ffn_in->bias);
  if (packed->ffn_in) packed->ffn_out = PackedLinear::Make(ffn_out->weight, ffn_out->bias);
  if (packed->ffn_out) packed->attention = PackedAttention::Make(heads_, head_dim_, w.scalar_type());
  if (packed->attention) {
    packed_ = std::move(packed);
  } else {
    qkv_weight_ = w;
    qkv_bias_ = b;
  }
}

void EncoderLayerImpl::Unfuse() {
  TORCH_CHECK(!sources_dropped_, "this layer keeps only its packed inference weights");
  qkv_weight_ = torch::Tensor();
  qkv_bias_ = torch::Tensor();
  packed_.reset();
}

int64_t EncoderLayerImpl::PackedBytes() const {
  if (!packed_) return 0;
  return packed_->qkv->bytes() + packed_->attn_out->bytes() + packed_->ffn_in->bytes() + packed_->ffn_out->bytes();
}

void EncoderLayerImpl::DropPackedSources() {
  if (!packed_) return;
  torch::NoGradGuard no_grad;
  for (torch::nn::Linear* l : {&query, &key, &value, &attn_out, &ffn_in, &ffn_out}) {
    (*l)->weight.set_data(torch::empty({0}, (*l)->weight.options()));
    if ((*l)->bias.defined()) (*l)->bias.set_data(torch::empty({0}, (*l)->bias.options()));
  }
  sources_dropped_ = true;
}

std::optional<TokenLayout> TokenLayout::Of(const torch::Tensor& attention_mask) {
  if (attention_mask.dim() != 2 || attention_mask.size(0) == 0) return std::nullopt;
  const int64_t b = attention_mask.size(0), t = attention_mask.size(1);
  auto keep = attention_mask.ne(0);
  auto lengths = keep.sum(1);
  if (lengths.min().item<int64_t>() < 1) return std::nullopt;
  auto prefix = torch::arange(t, lengths.options()).unsqueeze(0).lt(lengths.unsqueeze(1));
  if (!torch::equal(prefix, keep)) return std::nullopt;  // not right-padded
  TokenLayout layout;
  layout.batch = b;
  layout.length = t;
  layout.index = keep.reshape({-1}).nonzero().squeeze(1);
  layout.first = lengths.cumsum(0).sub_(lengths);
  return layout;
}

torch::Tensor TokenLayout::Gather(const torch::Tensor& padded) const {
  return padded.reshape({batch * length, -1}).index_select(0, index);
}

torch::Tensor TokenLayout::Pad(const torch::Tensor& tokens) const {
  const int64_t w = tokens.size(1);
  return torch::zeros({batch * length, w}, tokens.options()).index_copy_(0, index, tokens).view({batch, length, w});
}

torch::Tensor EncoderLayerImpl::ForwardPacked(const torch::Tensor& x, const torch::Tensor& additive_mask,
                                              bool first_only) {
  auto context = packed_->attention->Forward(packed_->qkv->Forward(x), additive_mask, first_only);
  return AfterAttention(context, first_only ? x.narrow(1, 0, 1) : x);
}

torch::Tensor EncoderLayerImpl::ForwardTokens(const torch::Tensor& tokens, const TokenLayout& layout,
                                              const torch::Tensor& additive_mask, bool first_only) {
  TORCH_CHECK(packed_ && !torch::GradMode::is_enabled(), "ForwardTokens needs packed projections and no gradients");
  // Attention reads the padded layout; the padding's rows are zeros (masked keys, and queries
  // whose output is dropped).
  auto context = packed_->attention->Forward(layout.Pad(packed_->qkv->Forward(tokens)), additive_mask, first_only);
  if (first_only) {
    return AfterAttention(context, tokens.index_select(0, layout.first).view({layout.batch, 1, tokens.size(1)}));
  }
  return AfterAttention(layout.Gather(context), tokens);
}

torch::Tensor EncoderLayerImpl::AfterAttention(const torch::Tensor& context, const torch::Tensor& residual) {
  auto a = Normalize(attn_norm, packed_->attn_out->Forward(context).add_(residual));
  auto f = packed_->ffn_in->Forward(a);
  switch (act_) {  // in place where libtorch has the in-place form
    case Activation::kGelu: f = at::gelu_(f); break;
    case Activation::kGeluNew: f = at::gelu_(f, "tanh"); break;
    case Activation::kRelu: f = at::relu_(f); break;
    default: f = Activate(f, act_);
  }
  return Normalize(out_norm, packed_->ffn_out->Forward(f).add_(a));
}

torch::Tensor EncoderLayerImpl::SlidingWindowContext(const torch::Tensor& x, const torch::Tensor& padding,
                                                     const torch::Tensor& global) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), w = window_, d = head_dim_, nh = heads_;
  TORCH_CHECK(t % (2 * w) == 0, "a longformer layer needs a length that is a multiple of its window (", 2 * w, ")");
  const int64_t n = t / w;  // chunks of w queries; chunk i sees the keys of chunks i - 1, i, i + 1
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const double lowest = Lowest(x.scalar_type());
  auto split = [&](torch::nn::Linear& proj, const torch::Tensor& in) {
    return proj(in).view({b, in.size(1), nh, d}).transpose(1, 2);  // [B, heads, T, d]
  };
  auto q = split(query, x).mul(scale);
  auto k = split(key, x);
  auto v = split(value, x);
  // Keys and values padded by w on both sides: chunk i's keys are padded positions [i w, i w + 3 w).
  auto kc = torch::constant_pad_nd(k, {0, 0, w, w}).unfold(2, 3 * w, w);                     // [B, heads, n, d, 3w]
  auto vc = torch::constant_pad_nd(v, {0, 0, w, w}).unfold(2, 3 * w, w).transpose(-1, -2);   // [B, heads, n, 3w, d]
  auto local = torch::matmul(q.reshape({b, nh, n, w, d}), kc);                                // [B, heads, n, w, 3w]
  // Masked: keys beyond w of the query, outside the sequence, padding, and global keys (these
  // come in below, once, for every query).
  auto qi = torch::arange(w, x.options().dtype(torch::kInt64)).view({w, 1});
  auto ki = torch::arange(3 * w, x.options().dtype(torch::kInt64)).view({1, 3 * w});
  auto outside_band = (ki - w - qi).abs().gt(w);                                               // [w, 3w]
  auto removed = padding.logical_or(global).to(torch::kUInt8);
  auto removed_keys = torch::constant_pad_nd(removed, {w, w}, 1).unfold(1, 3 * w, w).to(torch::kBool);  // [B, n, 3w]
  auto masked = outside_band.view({1, 1, w, 3 * w}).logical_or(removed_keys.unsqueeze(2)).unsqueeze(1);  // [B, 1, n, w, 3w]
  local = local.masked_fill(masked, lowest);
  const auto padded_rows = padding.view({b, 1, t, 1});
  const int64_t globals = global.any().item<bool>() ? global.sum(1).max().item<int64_t>() : 0;
  torch::Tensor out;
  torch::Tensor gidx, gvalid;
  if (globals == 0) {
    auto probs = torch::softmax(local, -1).masked_fill(padded_rows.view({b, 1, n, w, 1}), 0.0);
    out = torch::matmul(attn_dropout(probs), vc).reshape({b, nh, t, d});
  } else {
    // Each row's global positions first (in order), padded to the most any row has.
    auto order = std::get<1>(global.to(torch::kInt32).sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
    gidx = order.narrow(1, 0, globals);                                                          // [B, G]
    gvalid = torch::arange(globals, gidx.options()).unsqueeze(0).lt(global.sum(1).unsqueeze(1));  // [B, G]
    auto at = gidx.view({b, 1, globals, 1}).expand({b, nh, globals, d});
    auto kg = k.gather(2, at), vg = v.gather(2, at);                                             // [B, heads, G, d]
    auto gscores = torch::matmul(q, kg.transpose(-1, -2)).masked_fill(gvalid.logical_not().view({b, 1, 1, globals}), lowest);
    auto probs = torch::softmax(torch::cat({gscores, local.reshape({b, nh, t, 3 * w})}, -1), -1).masked_fill(padded_rows, 0.0);
    probs = attn_dropout(probs);
    out = torch::matmul(probs.narrow(-1, globals, 3 * w).reshape({b, nh, n, w, 3 * w}), vc).reshape({b, nh, t, d}) +
          torch::matmul(probs.narrow(-1, 0, globals), vg);
    // The global tokens themselves attend to every token, through their own projections.
    auto xg = x.gather(1, gidx.view({b, globals, 1}).expand({b, globals, h}));
    auto qg = split(query_global, xg).mul(scale);                                               // [B, heads, G, d]
    auto scores = torch::matmul(qg, split(key_global, x).transpose(-1, -2)).masked_fill(padding.view({b, 1, 1, t}), lowest);
    auto og = torch::matmul(attn_dropout(torch::softmax(scores, -1)), split(value_global, x));  // [B, heads, G, d]
    og = torch::where(gvalid.view({b, 1, globals, 1}), og, out.gather(2, at));  // padded slots keep their rows
    out = out.scatter(2, at, og);
  }
  return out.transpose(1, 2).reshape({b, t, h});
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask,
                                        const torch::Tensor& padding, const torch::Tensor& global) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2);
  if (window_ > 0) {
    auto context = SlidingWindowContext(x, padding, global);
    auto a = attn_norm(dropout(attn_out(context)) + x);
    auto f = dropout(ffn_out(Activate(ffn_in(a), act_)));
    return out_norm(f + a);
  }
  if (packed_ && !is_training() && !torch::GradMode::is_enabled()) return ForwardPacked(x, additive_mask, false);
  TORCH_CHECK(!sources_dropped_, "this layer keeps only its packed inference weights (no training, no gradients)");
  if (qkv_weight_.defined() && !is_training() && !torch::GradMode::is_enabled() &&
      (act_ == Activation::kGelu || act_ == Activation::kRelu)) {
    return at::_transformer_encoder_layer_fwd(
        x, h, heads_, qkv_weight_, qkv_bias_, attn_out->weight, attn_out->bias, act_ == Activation::kGelu,
        /*norm_first=*/false, eps_, attn_norm->weight, attn_norm->bias, out_norm->weight, out_norm->bias,
        ffn_in->weight, ffn_in->bias, ffn_out->weight, ffn_out->bias,
        padding.defined() ? c10::optional<at::Tensor>(padding) : c10::nullopt,
        padding.defined() ? c10::optional<int64_t>(1) : c10::nullopt);  // 1: a key padding mask
  }
  torch::Tensor q, k, v;
  if (qkv_weight_.defined() && !is_training()) {
    auto qkv = torch::linear(x, qkv_weight_, qkv_bias_).view({b, t, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});
    q = qkv[0];
    k = qkv[1];
    v = qkv[2];
  } else {
    auto split = [&](torch::nn::Linear& proj) {
      return proj(x).view({b, t, heads_, head_dim_}).transpose(1, 2);  // [B, heads, T, d]
    };
    q = split(query);
    k = split(key);
    v = split(value);
  }
  auto scores = Scores(q, k);  // q k^T / sqrt(d) (+ distances)
  if (additive_mask.defined()) scores.add_(additive_mask);
  auto probs = attn_dropout(torch::softmax(scores, -1));
  auto context = torch::matmul(probs, v).transpose(1, 2).reshape({b, t, h});
  auto a = attn_norm(dropout(attn_out(context)) + x);
  auto f = dropout(ffn_out(Activate(ffn_in(a), act_)));
  return out_norm(f + a);
}

torch::Tensor EncoderLayerImpl::ForwardFirstToken(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  if (distance_embedding) return forward(x, additive_mask, torch::Tensor()).narrow(1, 0, 1);
  if (packed_ && !torch::GradMode::is_enabled()) return ForwardPacked(x, additive_mask, true);
  TORCH_CHECK(!sources_dropped_, "this layer keeps only its packed inference weights (no gradients)");
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2);
  auto first = x.narrow(1, 0, 1);
  torch::Tensor q, kv;
  if (qkv_weight_.defined()) {
    q = torch::linear(first, qkv_weight_.narrow(0, 0, h), qkv_bias_.narrow(0, 0, h));
    kv = torch::linear(x, qkv_weight_.narrow(0, h, 2 * h), qkv_bias_.narrow(0, h, 2 * h));
  } else {
    q = query(first);
    kv = torch::cat({key(x), value(x)}, -1);
  }
  q = q.view({b, 1, heads_, head_dim_}).transpose(1, 2);                            // [B, heads, 1, d]
  kv = kv.view({b, t, 2, heads_, head_dim_}).permute({2, 0, 3, 1, 4});              // [2, B, heads, T, d]
  auto scores = torch::matmul(q, kv[0].transpose(-1, -2)).mul_(1.0 / std::sqrt(static_cast<double>(head_dim_)));
  if (additive_mask.defined()) scores.add_(additive_mask);
  auto context = torch::matmul(torch::softmax(scores, -1), kv[1]).transpose(1, 2).reshape({b, 1, h});
  auto a = attn_norm(attn_out(context) + first);
  return out_norm(ffn_out(Activate(ffn_in(a), act_)) + a);
}

// ---------------------------------------------------------------------------------------------
// Encoder

EncoderImpl::EncoderImpl(const ModelConfig& c, bool with_pooler) : config_(c) {
  embeddings = register_module("embeddings", Embeddings(c));
  auto stack = register_module(c.architecture == Architecture::kDistilBert ? "transformer" : "encoder", Scope());
  auto layer = stack->register_module("layer", Scope());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(layer->register_module(std::to_string(i), EncoderLayer(c, i)));
  }
  if (with_pooler && c.architecture != Architecture::kDistilBert) {
    auto pool = register_module("pooler", Scope());
    pooler = MakeLinear(*pool, "dense", c.hidden_size, c.hidden_size);
  }
}

torch::Tensor EncoderImpl::ForwardLongformer(const EncoderInput& in) {
  const int64_t t = in.input_ids.size(1);
  const int64_t window = *std::max_element(config_.attention_window.begin(), config_.attention_window.end());
  const int64_t extra = (window - t % window) % window;
  auto pad_to_window = [&](const torch::Tensor& v, int64_t value) {
    return extra == 0 ? v : torch::constant_pad_nd(v, {0, extra}, static_cast<double>(value));
  };
  auto ids = pad_to_window(in.input_ids, config_.pad_token_id);
  auto mask = pad_to_window(in.attention_mask.defined() ? in.attention_mask : torch::ones_like(in.input_ids), 0);
  auto types = in.token_type_ids.defined() ? pad_to_window(in.token_type_ids, 0) : torch::Tensor();
  TORCH_CHECK(!in.global_attention_mask.defined() || in.global_attention_mask.sizes() == in.input_ids.sizes(),
              "global_attention_mask must have input_ids' shape [batch, seq]");
  auto padding = mask.eq(0);
  auto global = in.global_attention_mask.defined()
                    ? pad_to_window(in.global_attention_mask, 0).ne(0).logical_and(padding.logical_not())
                    : torch::zeros_like(padding);
  auto x = embeddings(ids, types);
  for (auto& layer : layers) x = layer(x, torch::Tensor(), padding, global);
  return extra == 0 ? x : x.narrow(1, 0, t);
}

EncoderOutput EncoderImpl::forward(const EncoderInput& in) {
  TORCH_CHECK(in.input_ids.dim() == 2, "input_ids must be [batch, seq]");
  TORCH_CHECK(!in.attention_mask.defined() || in.attention_mask.sizes() == in.input_ids.sizes(),
              "attention_mask must have input_ids' shape [batch, seq]");
  if (config_.architecture == Architecture::kLongformer) {
    EncoderOutput out;
    out.last_hidden_state = ForwardLongformer(in);
    out.summary = Pool(out.last_hidden_state, in.attention_mask, config_.classifier_pooling);
    if (pooler) out.pooled = torch::tanh(pooler(out.summary));
    return out;
  }
  auto x = embeddings(in.input_ids, in.token_type_ids);
  torch::Tensor mask, padding;
  if (in.attention_mask.defined() && !in.attention_mask.all().item<bool>()) {  // skip all-ones masks
    mask = AdditiveMask(in.attention_mask, x.scalar_type());
    padding = in.attention_mask.eq(0);
  }
  const bool first_only = in.first_token_only && config_.classifier_pooling == Pooling::kCls && !is_training() &&
                          !layers.empty();
  // Inference on packed layers over a padded batch: the projections and feed-forward networks
  // run on the real tokens only (the padding's share of a batch of mixed lengths is saved).
  std::optional<TokenLayout> layout;
  if (mask.defined() && !is_training() && !torch::GradMode::is_enabled() &&
      std::all_of(layers.begin(), layers.end(), [](const EncoderLayer& l) { return l->packed(); })) {
    layout = TokenLayout::Of(in.attention_mask);
  }
  if (layout) {
    auto tokens = layout->Gather(x);
    for (size_t i = 0; i < layers.size(); ++i) {
      if (first_only && i + 1 == layers.size()) {
        x = layers[i]->ForwardTokens(tokens, *layout, mask, /*first_only=*/true);  // [batch, 1, hidden]
        tokens = torch::Tensor();
      } else {
        tokens = layers[i]->ForwardTokens(tokens, *layout, mask, /*first_only=*/false);
      }
    }
    if (tokens.defined()) x = layout->Pad(tokens);  // padded again, zeros at the padding
  } else {
    for (size_t i = 0; i < layers.size(); ++i) {
      x = first_only && i + 1 == layers.size() ? layers[i]->ForwardFirstToken(x, mask) : layers[i](x, mask, padding);
    }
  }
  EncoderOutput out;
  out.last_hidden_state = x;
  out.summary = Pool(x, mask.defined() ? in.attention_mask : torch::Tensor(), config_.classifier_pooling);
  if (pooler) out.pooled = torch::tanh(pooler(out.summary));
  return out;
}

void EncoderImpl::FuseQkv(bool fuse) {
  for (auto& layer : layers) fuse ? layer->FuseQkv() : layer->Unfuse();
}

}  // namespace mlaas::nn
