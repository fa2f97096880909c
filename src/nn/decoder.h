// mlaas::nn — the GPT-2 decoder (GPT2Model), numerically faithful to transformers' eager
// implementation, with its exact parameter names ("transformer.h.0.attn.c_attn.weight": its
// projections are Conv1D, weights stored [in, out]) and a key/value cache for generation
// (generate.h). The language-model head is tied to the word embeddings (model.h).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "nn/transformer.h"

namespace mlaas::nn {

// transformers' Conv1D: y = x W + b with W [in, out].
class Conv1DImpl : public torch::nn::Module {
 public:
  Conv1DImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
};
TORCH_MODULE(Conv1D);

// The keys and values of the positions seen so far, per layer, [batch, heads, length, head_dim].
struct KvCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
  // Keeps rows `rows` (a 1-D int64 index) of every tensor: finished sequences leave the batch.
  void Select(const torch::Tensor& rows);
};

// One pre-LayerNorm GPT-2 block: x + attn(ln_1(x)), then + mlp(ln_2(x)).
class DecoderBlockImpl : public torch::nn::Module {
 public:
  explicit DecoderBlockImpl(const ModelConfig& c);
  // x [batch, seq, hidden]; mask: additive [batch, 1, seq, past + seq] (causal and padding).
  // With a cache, the layer's keys and values of x are appended to *keys / *values.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, torch::Tensor* keys, torch::Tensor* values);

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Conv1D c_attn{nullptr}, attn_proj{nullptr}, c_fc{nullptr}, mlp_proj{nullptr};
  Dropout attn_dropout{nullptr}, resid_dropout{nullptr};

 private:
  int64_t heads_, head_dim_;
  Activation act_;
};
TORCH_MODULE(DecoderBlock);

// GPT2Model: word + position embeddings, the blocks, the final LayerNorm.
class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const ModelConfig& c);
  // input_ids [batch, seq]; attention_mask [batch, past + seq] (1 = token, 0 = padding;
  // undefined: all tokens); position_ids [batch, seq] (undefined: past .. past + seq - 1).
  // With a cache, attends to its positions too and appends this step's keys and values.
  // Returns the last hidden state [batch, seq, hidden].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& position_ids, KvCache* cache = nullptr);
  // The vocabulary logits of hidden states (the tied lm_head).
  torch::Tensor Logits(const torch::Tensor& hidden) { return torch::matmul(hidden, wte->weight.t()); }

  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  Dropout drop{nullptr};
  std::vector<DecoderBlock> blocks;
  torch::nn::LayerNorm ln_f{nullptr};

 private:
  ModelConfig config_;
};
TORCH_MODULE(Decoder);

}  // namespace mlaas::nn
