#include "nn/heads.h"

namespace mlaas::nn {

namespace {

torch::nn::Linear Linear(torch::nn::Module& owner, const std::string& name, int64_t in, int64_t out) {
  return owner.register_module(name, torch::nn::Linear(torch::nn::LinearOptions(in, out)));
}

class BertClassificationHead final : public Head {
 public:
  BertClassificationHead(const ModelConfig& c, torch::nn::Module& owner)
      : dropout_(owner.register_module("classifier_dropout", Dropout(c.classifier_dropout_prob()))),
        classifier_(Linear(owner, "classifier", c.hidden_size, c.num_labels())) {}
  torch::Tensor Forward(const EncoderOutput& out) override {
    TORCH_CHECK(out.pooled.defined(), "the BERT classification head needs the pooler");
    return classifier_(dropout_(out.pooled));
  }

 private:
  Dropout dropout_;
  torch::nn::Linear classifier_;
};

class DistilBertClassificationHead final : public Head {
 public:
  DistilBertClassificationHead(const ModelConfig& c, torch::nn::Module& owner)
      : pre_classifier_(Linear(owner, "pre_classifier", c.hidden_size, c.hidden_size)),
        dropout_(owner.register_module("classifier_dropout", Dropout(c.classifier_dropout_prob()))),
        classifier_(Linear(owner, "classifier", c.hidden_size, c.num_labels())) {}
  torch::Tensor Forward(const EncoderOutput& out) override {
    auto x = torch::relu(pre_classifier_(out.summary));
    return classifier_(dropout_(x));
  }

 private:
  torch::nn::Linear pre_classifier_;
  Dropout dropout_;
  torch::nn::Linear classifier_;
};

class RobertaClassificationHead final : public Head {
 public:
  RobertaClassificationHead(const ModelConfig& c, torch::nn::Module& owner) {
    auto scope = owner.register_module("classifier", Scope());
    dense_ = Linear(*scope, "dense", c.hidden_size, c.hidden_size);
    out_proj_ = Linear(*scope, "out_proj", c.hidden_size, c.num_labels());
    dropout_ = owner.register_module("classifier_dropout", Dropout(c.classifier_dropout_prob()));
  }
  torch::Tensor Forward(const EncoderOutput& out) override {
    auto x = dropout_(out.summary);
    x = dropout_(torch::tanh(dense_(x)));
    return out_proj_(x);
  }

 private:
  torch::nn::Linear dense_{nullptr}, out_proj_{nullptr};
  Dropout dropout_{nullptr};
};

// transform (dense -> activation -> LayerNorm) then logits = h E^T + bias, E the word
// embeddings. The names differ per architecture; the computation does not.
class MaskedLmHead final : public Head {
 public:
  MaskedLmHead(const ModelConfig& c, torch::nn::Module& owner, Embeddings embeddings)
      : embeddings_(std::move(embeddings)) {
    const int64_t h = c.hidden_size;
    auto ln = [&](torch::nn::Module& m, const std::string& name, double eps) {
      return m.register_module(name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({h}).eps(eps)));
    };
    switch (c.architecture) {
      case Architecture::kBert: {
        auto cls = owner.register_module("cls", Scope());
        auto predictions = cls->register_module("predictions", Scope());
        auto transform = predictions->register_module("transform", Scope());
        dense_ = Linear(*transform, "dense", h, h);
        norm_ = ln(*transform, "LayerNorm", c.layer_norm_eps);
        bias_ = predictions->register_parameter("bias", torch::zeros({c.vocab_size}));
        act_ = c.hidden_act;
        aliases_ = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"};
        break;
      }
      case Architecture::kDistilBert: {
        dense_ = Linear(owner, "vocab_transform", h, h);
        norm_ = ln(owner, "vocab_layer_norm", 1e-12);
        auto projector = owner.register_module("vocab_projector", Scope());
        bias_ = projector->register_parameter("bias", torch::zeros({c.vocab_size}));
        act_ = c.hidden_act;
        aliases_ = {"vocab_projector.weight"};
        break;
      }
      case Architecture::kRoberta:
      case Architecture::kLongformer: {  // LongformerLMHead: RoBERTa's, under the same names
        auto lm_head = owner.register_module("lm_head", Scope());
        dense_ = Linear(*lm_head, "dense", h, h);
        norm_ = ln(*lm_head, "layer_norm", c.layer_norm_eps);
        bias_ = lm_head->register_parameter("bias", torch::zeros({c.vocab_size}));
        act_ = Activation::kGelu;  // RobertaLMHead always uses gelu
        aliases_ = {"lm_head.decoder.weight", "lm_head.decoder.bias"};
        break;
      }
      case Architecture::kGpt2: break;  // a decoder: its model builds no encoder heads
    }
  }
  torch::Tensor Forward(const EncoderOutput& out) override {
    auto x = norm_(Activate(dense_(out.last_hidden_state), act_));
    return torch::linear(x, embeddings_->word_embeddings->weight, bias_);
  }
  std::vector<std::string> TiedAliases() const override { return aliases_; }

 private:
  Embeddings embeddings_;
  torch::nn::Linear dense_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::Tensor bias_;
  Activation act_ = Activation::kGelu;
  std::vector<std::string> aliases_;
};

// Per-token logits: dropout then a linear layer over every hidden state (token classification's
// "classifier", question answering's "qa_outputs").
class TokenHead final : public Head {
 public:
  TokenHead(torch::nn::Module& owner, const std::string& name, double dropout, int64_t in, int64_t out)
      : dropout_(owner.register_module(name + "_dropout", Dropout(dropout))), linear_(Linear(owner, name, in, out)) {}
  torch::Tensor Forward(const EncoderOutput& out) override { return linear_(dropout_(out.last_hidden_state)); }

 private:
  Dropout dropout_;
  torch::nn::Linear linear_;
};

class NextSentenceHead final : public Head {
 public:
  NextSentenceHead(const ModelConfig& c, torch::nn::Module& owner) {
    auto cls = owner.register_module("cls", Scope());
    seq_relationship_ = Linear(*cls, "seq_relationship", c.hidden_size, 2);
  }
  torch::Tensor Forward(const EncoderOutput& out) override {
    TORCH_CHECK(out.pooled.defined(), "the next-sentence head needs the pooler");
    return seq_relationship_(out.pooled);
  }

 private:
  torch::nn::Linear seq_relationship_{nullptr};
};

}  // namespace

std::unique_ptr<Head> MakeTokenClassificationHead(const ModelConfig& c, torch::nn::Module& owner) {
  // DistilBERT's token classifier drops out with its `dropout` (seq_classif_dropout is the
  // sequence classifier's); BERT and RoBERTa with classifier_dropout, else hidden_dropout_prob.
  const double p = c.architecture == Architecture::kDistilBert ? c.hidden_dropout_prob : c.classifier_dropout_prob();
  return std::make_unique<TokenHead>(owner, "classifier", p, c.hidden_size, c.num_labels());
}

std::unique_ptr<Head> MakeQuestionAnsweringHead(const ModelConfig& c, torch::nn::Module& owner) {
  double p = 0;  // BERT and RoBERTa: no dropout before qa_outputs
  if (c.architecture == Architecture::kDistilBert) {
    const auto it = c.extra.find("qa_dropout");
    p = it != c.extra.end() && it->is_number() ? it->get<double>() : 0.1;
  }
  return std::make_unique<TokenHead>(owner, "qa_outputs", p, c.hidden_size, 2);
}

std::unique_ptr<Head> MakeNextSentenceHead(const ModelConfig& c, torch::nn::Module& owner) {
  return std::make_unique<NextSentenceHead>(c, owner);
}

std::unique_ptr<Head> MakeClassificationHead(const ModelConfig& c, torch::nn::Module& owner) {
  switch (c.architecture) {
    case Architecture::kBert: return std::make_unique<BertClassificationHead>(c, owner);
    case Architecture::kDistilBert: return std::make_unique<DistilBertClassificationHead>(c, owner);
    case Architecture::kRoberta:
    case Architecture::kLongformer: return std::make_unique<RobertaClassificationHead>(c, owner);
    case Architecture::kGpt2: break;
  }
  return nullptr;
}

std::unique_ptr<Head> MakeMaskedLmHead(const ModelConfig& c, torch::nn::Module& owner, Embeddings embeddings) {
  return std::make_unique<MaskedLmHead>(c, owner, std::move(embeddings));
}

bool HeadUsesPooler(Architecture a, Objective o) {
  return a == Architecture::kBert && (o == Objective::kTextClassification || o == Objective::kNextSentencePrediction);
}

}  // namespace mlaas::nn
