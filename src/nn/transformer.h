// mlaas::nn — BERT, DistilBERT, RoBERTa and Longformer encoders as torch::nn modules, numerically
// faithful to the Hugging Face reference implementations, with their exact parameter names
// (named_parameters() yields "bert.encoder.layer.0.attention.self.query.weight", ...), and the
// task heads on top (heads.h). This header includes libtorch: only ML modules include it.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/onednn_kernels.h"

namespace mlaas::nn {

// A module with no computation of its own: it only gives its children their dotted name
// prefix ("attention" in "attention.self.query").
class ScopeImpl : public torch::nn::Module {};
TORCH_MODULE(Scope);

// Dropout that draws its masks from a generator of its own when it has one (one training run
// then owns its random stream, whatever else this process does with libtorch's global
// generator), from the global generator otherwise or for tensors on another device.
class DropoutImpl : public torch::nn::Module {
 public:
  explicit DropoutImpl(double p) : p_(p) {}
  torch::Tensor forward(const torch::Tensor& x);
  void set_generator(std::optional<at::Generator> gen) { gen_ = std::move(gen); }

 private:
  double p_;
  std::optional<at::Generator> gen_;
};
TORCH_MODULE(Dropout);

// Token ids and masks of a padded batch, all int64 [batch, seq].
struct EncoderInput {
  torch::Tensor input_ids;
  torch::Tensor attention_mask;   // 1 = token, 0 = padding; undefined: all tokens
  torch::Tensor token_type_ids;   // undefined: all 0 (ignored by DistilBERT)
  // Longformer: 1 where a token attends to every token and every token to it (global
  // attention); undefined: none (a sequence classifier gives its first token global attention,
  // as transformers does). Ignored by the other encoders.
  torch::Tensor global_attention_mask{};
  // Inference whose reader looks only at the first token (classification heads, [CLS]
  // pooling): the last layer computes that token's output alone (its keys and values still
  // see every token), and last_hidden_state is [batch, 1, hidden]. Ignored when the config's
  // classifier_pooling is mean (the classifier then reads every token), and by Longformer.
  bool first_token_only = false;
};

struct EncoderOutput {
  torch::Tensor last_hidden_state;  // [batch, seq, hidden]
  // [batch, hidden]: what the classifier reads, the first token or the mean over the tokens
  // (config classifier_pooling).
  torch::Tensor summary;
  torch::Tensor pooled;             // [batch, hidden] the pooler (BERT/RoBERTa) over summary, if it has one
};

// Embeddings: word + position (+ token type) -> LayerNorm -> dropout. RoBERTa numbers
// positions from pad_token_id + 1 and gives padding the padding position, as the reference
// does; DistilBERT has no token types and optionally sinusoidal positions.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EmbeddingsImpl(const ModelConfig& c);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids);
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  Dropout dropout{nullptr};

 private:
  Architecture arch_;
  int64_t pad_;
  bool relative_ = false;  // positions in attention (position_embedding_type relative_*): none added here
};
TORCH_MODULE(Embeddings);

// Where the real tokens of a right-padded batch [batch, length] are: `index` [n] their flat
// positions (row-major), `first` [batch] each row's first token among the n.
struct TokenLayout {
  int64_t batch = 0, length = 0;
  torch::Tensor index, first;
  // The layout of a 0/1 attention mask; none unless every row is ones then zeros, with at
  // least one token.
  static std::optional<TokenLayout> Of(const torch::Tensor& attention_mask);
  // [batch, length, w] -> [n, w]: the real tokens' rows.
  torch::Tensor Gather(const torch::Tensor& padded) const;
  // [n, w] -> [batch, length, w], zeros at the padding.
  torch::Tensor Pad(const torch::Tensor& tokens) const;
};

// One post-LayerNorm transformer layer: self-attention + residual + LN, FFN + residual + LN.
// The names of its pieces follow the architecture (BERT/RoBERTa "attention.self.query",
// DistilBERT "attention.q_lin"). A Longformer layer (`layer_index` picks its window) attends
// within a sliding window of attention_window / 2 tokens on each side, computed chunk by chunk
// (memory linear in the length), plus global attention: every token attends to the global
// tokens, and they to every token through their own projections ("attention.self.query_global",
// "key_global", "value_global"), as transformers' LongformerSelfAttention computes it.
class EncoderLayerImpl : public torch::nn::Module {
 public:
  explicit EncoderLayerImpl(const ModelConfig& c, int64_t layer_index = 0);
  // x: [batch, seq, hidden]; additive_mask: [batch, 1, 1, seq] (0 or a large negative) and
  // padding: [batch, seq] bool, true at padding — both undefined when nothing is padded.
  // Longformer: additive_mask is not used; padding [batch, seq] and global [batch, seq] (bool,
  // never true at padding) are both defined, and seq is a multiple of the window.
  // In inference after FuseQkv(), the projections run on packed weights (oneDNN, see
  // onednn_kernels.h); where this build or dtype cannot pack them, a gelu/relu layer runs as
  // libtorch's fused encoder-layer kernel (same results, fewer passes over memory). A relative
  // layer (distance_embedding) always takes the plain libtorch path: neither kernel scores distances.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask, const torch::Tensor& padding,
                        const torch::Tensor& global = torch::Tensor());
  // The output of the first token alone, [batch, 1, hidden] (inference).
  torch::Tensor ForwardFirstToken(const torch::Tensor& x, const torch::Tensor& additive_mask);
  // Inference on packed projections over the real tokens of a padded batch only, `tokens`
  // [n, hidden] in `layout`'s order: the projections and the feed-forward network skip the
  // padding; attention runs on the padded layout. Returns [n, hidden], or [batch, 1, hidden]
  // (the first tokens') when first_only. Needs packed() and no gradients.
  torch::Tensor ForwardTokens(const torch::Tensor& tokens, const TokenLayout& layout, const torch::Tensor& additive_mask,
                              bool first_only);
  // Prepares the layer for inference: the query/key/value projections fused into one matrix
  // and every projection packed for oneDNN (both faster). Any later change of the weights,
  // dtype or device (training) must call it again or Unfuse(). A relative layer is left as it is.
  void FuseQkv();
  void Unfuse();
  bool packed() const { return packed_ != nullptr; }
  int64_t PackedBytes() const;
  // Frees the weights and biases of the projections that were packed (inference only from then
  // on: the other paths, FuseQkv() and Unfuse() refuse).
  void DropPackedSources();
  bool sources_dropped() const { return sources_dropped_; }

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_out{nullptr};
  torch::nn::Linear query_global{nullptr}, key_global{nullptr}, value_global{nullptr};  // Longformer
  // position_embedding_type relative_key(_query): one vector per query-key distance
  // (2 x max_position_embeddings - 1 of them, head_dim wide), "attention.self.distance_embedding".
  torch::nn::Embedding distance_embedding{nullptr};
  torch::nn::LayerNorm attn_norm{nullptr}, out_norm{nullptr};
  torch::nn::Linear ffn_in{nullptr}, ffn_out{nullptr};
  Dropout dropout{nullptr}, attn_dropout{nullptr};

 private:
  int64_t heads_, head_dim_;
  int64_t window_ = 0;  // Longformer: attention_window / 2, the tokens seen on each side; 0 otherwise
  // Attention scores q k^T / sqrt(d) of [batch, heads, seq, d] queries and keys, plus the
  // distance terms of a relative layer (transformers' BertSelfAttention).
  torch::Tensor Scores(const torch::Tensor& q, const torch::Tensor& k);
  Activation act_;
  double eps_;
  PositionEmbedding positions_ = PositionEmbedding::kAbsolute;
  int64_t max_positions_ = 0;
  torch::Tensor qkv_weight_, qkv_bias_;  // fused copies, when FuseQkv() was called and packing was not possible
  struct Packed {
    std::unique_ptr<PackedLinear> qkv, attn_out, ffn_in, ffn_out;
    std::unique_ptr<PackedAttention> attention;
  };
  std::shared_ptr<const Packed> packed_;  // when FuseQkv() could pack every projection
  bool sources_dropped_ = false;
  // The layer on packed projections; queries (and the output) at the first position only
  // when first_only.
  torch::Tensor ForwardPacked(const torch::Tensor& x, const torch::Tensor& additive_mask, bool first_only);
  // Output projection, residual, norms and feed-forward network of a packed layer.
  torch::Tensor AfterAttention(const torch::Tensor& context, const torch::Tensor& residual);
  // Longformer's attention: the context [batch, seq, hidden] before the output projection.
  torch::Tensor SlidingWindowContext(const torch::Tensor& x, const torch::Tensor& padding, const torch::Tensor& global);
};
TORCH_MODULE(EncoderLayer);

// The bare encoder (BertModel / DistilBertModel / RobertaModel / LongformerModel).
class EncoderImpl : public torch::nn::Module {
 public:
  EncoderImpl(const ModelConfig& c, bool with_pooler);
  EncoderOutput forward(const EncoderInput& in);
  void FuseQkv(bool fuse);

  Embeddings embeddings{nullptr};
  std::vector<EncoderLayer> layers;
  torch::nn::Linear pooler{nullptr};  // "pooler.dense", BERT/RoBERTa only, when asked for

 private:
  // Longformer: inputs padded to a multiple of the largest window, the layers with their
  // padding and global masks, the output cut back to the input's length.
  torch::Tensor ForwardLongformer(const EncoderInput& in);
  ModelConfig config_;
};
TORCH_MODULE(Encoder);

torch::Tensor Activate(const torch::Tensor& x, Activation a);

// The additive attention mask [batch, 1, 1, seq] of a 0/1 mask: 0 for tokens, the dtype's
// lowest value for padding (as the reference implementations build it).
torch::Tensor AdditiveMask(const torch::Tensor& attention_mask, torch::ScalarType dtype);

// Sentence embeddings from the last hidden state: mean over the tokens the mask keeps, or the
// first ([CLS]/<s>) token.
torch::Tensor Pool(const torch::Tensor& last_hidden_state, const torch::Tensor& attention_mask, Pooling p);

}  // namespace mlaas::nn
