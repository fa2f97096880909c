#include "nn/decoder.h"

#include <cmath>
#include <limits>
#include <string>

namespace mlaas::nn {

namespace {

torch::nn::LayerNorm MakeNorm(torch::nn::Module& owner, const std::string& name, int64_t dim, double eps) {
  return owner.register_module(name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps)));
}

double Lowest(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 ? -3.3895313892515355e38 : static_cast<double>(std::numeric_limits<float>::lowest());
}

}  // namespace

Conv1DImpl::Conv1DImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::empty({in, out}));
  bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor Conv1DImpl::forward(const torch::Tensor& x) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  return torch::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(sizes);
}

void KvCache::Select(const torch::Tensor& rows) {
  for (auto& k : keys) k = k.index_select(0, rows);
  for (auto& v : values) v = v.index_select(0, rows);
}

DecoderBlockImpl::DecoderBlockImpl(const ModelConfig& c)
    : heads_(c.num_attention_heads), head_dim_(c.head_dim()), act_(c.hidden_act) {
  const int64_t h = c.hidden_size;
  ln_1 = MakeNorm(*this, "ln_1", h, c.layer_norm_eps);
  auto attn = register_module("attn", Scope());
  c_attn = attn->register_module("c_attn", Conv1D(h, 3 * h));
  attn_proj = attn->register_module("c_proj", Conv1D(h, h));
  attn_dropout = attn->register_module("attn_dropout", Dropout(c.attention_probs_dropout_prob));
  resid_dropout = attn->register_module("resid_dropout", Dropout(c.hidden_dropout_prob));
  ln_2 = MakeNorm(*this, "ln_2", h, c.layer_norm_eps);
  auto mlp = register_module("mlp", Scope());
  c_fc = mlp->register_module("c_fc", Conv1D(h, c.intermediate_size));
  mlp_proj = mlp->register_module("c_proj", Conv1D(c.intermediate_size, h));
}

torch::Tensor DecoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, torch::Tensor* keys,
                                        torch::Tensor* values) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2);
  auto qkv = c_attn(ln_1(x)).view({b, t, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});  // [3, B, H, T, D]
  torch::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  if (keys) {
    if (keys->defined()) {
      k = torch::cat({*keys, k}, 2);
      v = torch::cat({*values, v}, 2);
    }
    *keys = k;
    *values = v;
  }
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim_));
  scores = scores + mask;
  auto probs = attn_dropout(torch::softmax(scores, -1));
  auto context = torch::matmul(probs, v).transpose(1, 2).reshape({b, t, h});
  auto y = x + resid_dropout(attn_proj(context));
  return y + resid_dropout(mlp_proj(Activate(c_fc(ln_2(y)), act_)));
}

DecoderImpl::DecoderImpl(const ModelConfig& c) : config_(c) {
  const int64_t h = c.hidden_size;
  wte = register_module("wte", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, h)));
  wpe = register_module("wpe", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.max_position_embeddings, h)));
  drop = register_module("drop", Dropout(c.embedding_dropout_prob));
  auto stack = register_module("h", Scope());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    blocks.push_back(stack->register_module(std::to_string(i), DecoderBlock(c)));
  ln_f = MakeNorm(*this, "ln_f", h, c.layer_norm_eps);
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& position_ids, KvCache* cache) {
  const int64_t b = input_ids.size(0), t = input_ids.size(1);
  const int64_t past = cache ? cache->length() : 0, total = past + t;
  TORCH_CHECK(total <= config_.max_position_embeddings, "sequence of ", total,
              " tokens is longer than this model's maximum of ", config_.max_position_embeddings);
  const auto long_opts = input_ids.options().dtype(torch::kInt64);
  torch::Tensor positions = position_ids.defined() ? position_ids : torch::arange(past, total, long_opts).unsqueeze(0);
  auto x = drop(wte(input_ids) + wpe(positions));
  // Query i (at past + i) sees keys j <= past + i that are not padding.
  auto allowed = torch::arange(total, long_opts).unsqueeze(0).le(torch::arange(past, total, long_opts).unsqueeze(1));
  allowed = allowed.view({1, 1, t, total});
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.size(0) == b && attention_mask.size(1) == total, "attention_mask must be [batch, ", total,
                "]");
    allowed = allowed.logical_and(attention_mask.to(torch::kBool).view({b, 1, 1, total}));
  }
  auto mask = torch::zeros(allowed.sizes(), x.options()).masked_fill(allowed.logical_not(), Lowest(x.scalar_type()));
  if (cache && cache->keys.size() != blocks.size()) {
    cache->keys.assign(blocks.size(), torch::Tensor());
    cache->values.assign(blocks.size(), torch::Tensor());
  }
  for (size_t i = 0; i < blocks.size(); ++i)
    x = blocks[i]->forward(x, mask, cache ? &cache->keys[i] : nullptr, cache ? &cache->values[i] : nullptr);
  return ln_f(x);
}

}  // namespace mlaas::nn
