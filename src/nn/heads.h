// mlaas::nn — task heads: small pieces on top of an encoder, each registering its own
// parameters on the owning model under the Hugging Face names of its architecture
// ("classifier.*", "pre_classifier.*", "cls.predictions.*", "vocab_transform.*", "lm_head.*",
// "qa_outputs.*", "cls.seq_relationship.*").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/transformer.h"

namespace mlaas::nn {

class Head {
 public:
  virtual ~Head() = default;
  // The head's output for a batch: classification logits [batch, labels] or per-token logits
  // [batch, seq, vocab | labels | 2].
  virtual torch::Tensor Forward(const EncoderOutput& out) = 0;
  // Checkpoint names that are aliases of parameters already present (tied decoder weights):
  // accepted and ignored on load, never written.
  virtual std::vector<std::string> TiedAliases() const { return {}; }
};

// Sequence classification: BERT pooler -> dropout -> classifier; DistilBERT [CLS] ->
// pre_classifier -> ReLU -> dropout -> classifier; RoBERTa [CLS] -> dropout -> dense -> tanh ->
// dropout -> out_proj ("classifier.dense", "classifier.out_proj"). With classifier_pooling
// "mean", the mean over the tokens takes [CLS]'s place (EncoderOutput::summary).
std::unique_ptr<Head> MakeClassificationHead(const ModelConfig& c, torch::nn::Module& owner);

// Masked LM: transform (dense, activation, LayerNorm) then a decoder tied to the word
// embeddings plus its own bias.
std::unique_ptr<Head> MakeMaskedLmHead(const ModelConfig& c, torch::nn::Module& owner, Embeddings embeddings);

// Token classification (BertForTokenClassification and its DistilBERT/RoBERTa kin): dropout
// then "classifier" over every token's hidden state: logits [batch, seq, labels].
std::unique_ptr<Head> MakeTokenClassificationHead(const ModelConfig& c, torch::nn::Module& owner);

// Extractive question answering (*ForQuestionAnswering): "qa_outputs" (hidden -> 2) over every
// token, DistilBERT after its qa_dropout: logits [batch, seq, 2], start then end.
std::unique_ptr<Head> MakeQuestionAnsweringHead(const ModelConfig& c, torch::nn::Module& owner);

// Next sentence prediction (BERT only; BertForNextSentencePrediction, the NSP half of
// BertForPreTraining): "cls.seq_relationship" over the pooled [CLS]: logits [batch, 2], class 0
// "the second text follows the first", class 1 "it is a random one".
std::unique_ptr<Head> MakeNextSentenceHead(const ModelConfig& c, torch::nn::Module& owner);

// Whether the encoder of an architecture + objective carries the pooler.
bool HeadUsesPooler(Architecture a, Objective o);

}  // namespace mlaas::nn
