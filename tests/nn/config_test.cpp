#include "nn/config.h"

#include <gtest/gtest.h>

namespace mlaas::nn {
namespace {

using json = nlohmann::json;

TEST(ConfigTest, ParsesBertFieldsAndDefaults) {
  auto c = ParseConfig(json{{"model_type", "bert"}, {"hidden_size", 64}, {"num_hidden_layers", 3},
                            {"num_attention_heads", 4}, {"intermediate_size", 128}, {"vocab_size", 100},
                            {"hidden_act", "gelu_new"}, {"id2label", {{"0", "neg"}, {"1", "pos"}, {"2", "mixed"}}},
                            {"architectures", {"BertForSequenceClassification"}}});
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->architecture, Architecture::kBert);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->head_dim(), 16);
  EXPECT_EQ(c->hidden_act, Activation::kGeluNew);
  EXPECT_EQ(c->id2label, (std::vector<std::string>{"neg", "pos", "mixed"}));
  EXPECT_EQ(c->type_vocab_size, 2);
  EXPECT_DOUBLE_EQ(c->layer_norm_eps, 1e-12);
  EXPECT_EQ(ObjectiveFromArchitectures(*c), Objective::kTextClassification);
}

TEST(ConfigTest, ParsesDistilBertAndRobertaNames) {
  auto d = ParseConfig(json{{"model_type", "distilbert"}, {"dim", 32}, {"n_layers", 2}, {"n_heads", 2},
                            {"hidden_dim", 37}, {"vocab_size", 50}, {"activation", "relu"}, {"dropout", 0.2},
                            {"seq_classif_dropout", 0.3}});
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(d->architecture, Architecture::kDistilBert);
  EXPECT_EQ(d->hidden_size, 32);
  EXPECT_EQ(d->num_hidden_layers, 2);
  EXPECT_EQ(d->intermediate_size, 37);
  EXPECT_EQ(d->hidden_act, Activation::kRelu);
  EXPECT_DOUBLE_EQ(d->hidden_dropout_prob, 0.2);
  EXPECT_DOUBLE_EQ(d->classifier_dropout_prob(), 0.3);
  EXPECT_EQ(d->id2label.size(), 2u);  // transformers' default: LABEL_0, LABEL_1

  auto r = ParseConfig(json{{"model_type", "roberta"}, {"hidden_size", 32}, {"num_attention_heads", 2},
                            {"num_hidden_layers", 1}, {"intermediate_size", 64}, {"vocab_size", 80}});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->pad_token_id, 1);
  EXPECT_EQ(r->max_position_embeddings, 514);
  EXPECT_EQ(r->type_vocab_size, 1);
  EXPECT_DOUBLE_EQ(r->layer_norm_eps, 1e-5);
}

TEST(ConfigTest, RoundTripsThroughConfigJson) {
  auto c = Preset("distilbert-base");
  ASSERT_TRUE(c.has_value());
  c->id2label = {"a", "b", "c"};
  c->problem_type = "multi_label_classification";
  auto j = ConfigToJson(*c, Objective::kTextClassification);
  EXPECT_EQ(j["architectures"][0], "DistilBertForSequenceClassification");
  EXPECT_EQ(j["dim"], 768);
  EXPECT_EQ(j["label2id"]["c"], 2);
  EXPECT_FALSE(j.contains("hidden_size"));
  auto back = LoadConfig(j.dump());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->id2label, c->id2label);
  EXPECT_TRUE(back->multi_label());
  EXPECT_EQ(back->num_hidden_layers, 6);
  EXPECT_EQ(ConfigToJson(*back, Objective::kTextClassification).dump(), j.dump());
}

TEST(ConfigTest, KeepsFieldsItDoesNotInterpret) {
  auto c = ParseConfig(json{{"model_type", "bert"}, {"tokenizer_class", "BertTokenizerFast"}, {"custom", {1, 2}}});
  ASSERT_TRUE(c.has_value());
  auto j = ConfigToJson(*c, Objective::kMaskedLm);
  EXPECT_EQ(j["tokenizer_class"], "BertTokenizerFast");
  EXPECT_EQ(j["custom"], json({1, 2}));
  EXPECT_EQ(j["architectures"][0], "BertForMaskedLM");
}

TEST(ConfigTest, ClassifierPoolingRoundTripsAndDefaultsToCls) {
  auto plain = ParseConfig(json{{"model_type", "bert"}});
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->classifier_pooling, Pooling::kCls);
  EXPECT_FALSE(ConfigToJson(*plain, Objective::kTextClassification).contains("classifier_pooling"));
  for (const char* arch : {"bert", "distilbert", "roberta"}) {
    auto mean = ParseConfig(json{{"model_type", arch}, {"classifier_pooling", "mean"}});
    ASSERT_TRUE(mean.has_value()) << arch;
    EXPECT_EQ(mean->classifier_pooling, Pooling::kMean) << arch;
    auto j = ConfigToJson(*mean, Objective::kTextClassification);
    EXPECT_EQ(j["classifier_pooling"], "mean") << arch;
    auto back = LoadConfig(j.dump());
    ASSERT_TRUE(back.has_value()) << arch;
    EXPECT_EQ(back->classifier_pooling, Pooling::kMean) << arch;
    // Set back to [CLS] (a fine-tuning request can), the saved config says so: the value read
    // is not carried over as an uninterpreted field.
    back->classifier_pooling = Pooling::kCls;
    EXPECT_FALSE(ConfigToJson(*back, Objective::kTextClassification).contains("classifier_pooling")) << arch;
  }
}

TEST(ConfigTest, PresetsHaveTheAdvertisedShapes) {
  struct Want {
    const char* name;
    int64_t layers, hidden;
    Architecture arch;
  };
  for (Want w : {Want{"bert-tiny", 2, 128, Architecture::kBert}, Want{"bert-mini", 4, 256, Architecture::kBert},
                 Want{"bert-small", 4, 512, Architecture::kBert}, Want{"bert-base", 12, 768, Architecture::kBert},
                 Want{"distilbert-base", 6, 768, Architecture::kDistilBert},
                 Want{"roberta-base", 12, 768, Architecture::kRoberta}, Want{"gpt2-tiny", 2, 128, Architecture::kGpt2},
                 Want{"longformer-tiny", 2, 128, Architecture::kLongformer},
                 Want{"longformer-base", 12, 768, Architecture::kLongformer},
                 Want{"gpt2-small", 12, 768, Architecture::kGpt2}}) {
    auto c = Preset(w.name);
    ASSERT_TRUE(c.has_value()) << w.name;
    EXPECT_EQ(c->num_hidden_layers, w.layers) << w.name;
    EXPECT_EQ(c->hidden_size, w.hidden) << w.name;
    EXPECT_EQ(c->intermediate_size, 4 * w.hidden) << w.name;
    EXPECT_EQ(c->architecture, w.arch) << w.name;
  }
  auto bad = Preset("gpt-17");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().field(), "model.preset");
  EXPECT_NE(bad.error().message().find("bert-tiny"), std::string::npos);
}

TEST(ConfigTest, RelativePositionsRoundTripAndCountTheirParameters) {
  for (const char* type : {"relative_key", "relative_key_query"}) {
    auto c = ParseConfig(json{{"model_type", "bert"}, {"hidden_size", 32}, {"num_attention_heads", 4},
                              {"num_hidden_layers", 2}, {"max_position_embeddings", 64}, {"position_embedding_type", type}});
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_TRUE(c->relative_positions());
    EXPECT_EQ(ConfigToJson(*c, Objective::kNoObjective)["position_embedding_type"], type);
    auto absolute = *c;
    absolute.position_embedding_type = PositionEmbedding::kAbsolute;
    // Two layers of 127 distances x 8 (head_dim).
    EXPECT_EQ(ParameterCount(*c, Objective::kNoObjective) - ParameterCount(absolute, Objective::kNoObjective), 2u * 127 * 8);
  }
  auto plain = ParseConfig(json{{"model_type", "bert"}});
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->relative_positions());
  EXPECT_EQ(ConfigToJson(*plain, Objective::kNoObjective)["position_embedding_type"], "absolute");
}

TEST(ConfigTest, ParsesLongformerWindowsAndWritesThemBack) {
  auto one = ParseConfig({{"model_type", "longformer"}, {"num_hidden_layers", 3}, {"attention_window", 256}});
  ASSERT_TRUE(one.has_value()) << one.error().ToString();
  EXPECT_EQ(one->architecture, Architecture::kLongformer);
  EXPECT_EQ(one->attention_window, (std::vector<int64_t>{256, 256, 256}));
  EXPECT_EQ(one->pad_token_id, 1);
  EXPECT_EQ(one->max_position_embeddings, 4098);
  EXPECT_EQ(MaxInputTokens(*one), 4096);
  auto per_layer = ParseConfig({{"model_type", "longformer"}, {"num_hidden_layers", 2}, {"attention_window", {64, 32}}});
  ASSERT_TRUE(per_layer.has_value()) << per_layer.error().ToString();
  EXPECT_EQ(per_layer->attention_window, (std::vector<int64_t>{64, 32}));
  const auto j = ConfigToJson(*per_layer, Objective::kMaskedLm);
  EXPECT_EQ(j["model_type"], "longformer");
  EXPECT_EQ(j["architectures"][0], "LongformerForMaskedLM");
  EXPECT_EQ(j["attention_window"], nlohmann::ordered_json({64, 32}));
  auto again = ParseConfig(json::parse(j.dump()));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attention_window, per_layer->attention_window);
  EXPECT_EQ(ObjectiveFromArchitectures(*again), Objective::kMaskedLm);
  // Three more projections a layer than RoBERTa (query, key and value of global attention).
  auto roberta = ParseConfig({{"model_type", "roberta"}, {"num_hidden_layers", 2}, {"max_position_embeddings", 4098}});
  ASSERT_TRUE(roberta.has_value());
  const uint64_t h = 768;
  EXPECT_EQ(ParameterCount(*per_layer, Objective::kNoObjective),
            ParameterCount(*roberta, Objective::kNoObjective) + 2 * 3 * (h * h + h));
  for (auto [window, why] : {std::pair{json(63), "even"}, std::pair{json({64, 48}), "divide"},
                             std::pair{json({64}), "one per layer"}, std::pair{json("wide"), "integer"}}) {
    auto bad = ParseConfig({{"model_type", "longformer"}, {"num_hidden_layers", 2}, {"attention_window", window}});
    ASSERT_FALSE(bad.has_value()) << window.dump();
    EXPECT_EQ(bad.error().field(), "config.attention_window") << window.dump();
    EXPECT_NE(bad.error().message().find(why), std::string::npos) << bad.error().message();
  }
  EXPECT_FALSE(CheckArchitectureObjective(Architecture::kLongformer, Objective::kQuestionAnswering).ok());
  EXPECT_FALSE(CheckArchitectureObjective(Architecture::kLongformer, Objective::kNextSentencePrediction).ok());
  EXPECT_TRUE(CheckArchitectureObjective(Architecture::kLongformer, Objective::kTokenClassification).ok());
}

TEST(ConfigTest, RejectsInvalidConfigsNamingTheField) {
  struct Case {
    json config;
    std::string field;
  };
  const Case cases[] = {
      {json::array(), "config"},
      {json{{"hidden_size", 8}}, "config.model_type"},
      {json{{"model_type", "llama"}}, "config.model_type"},
      {json{{"model_type", "gpt2"}, {"n_embd", 30}, {"n_head", 4}}, "config.n_head"},
      {json{{"model_type", "gpt2"}, {"resid_pdrop", 1.5}}, "config.resid_pdrop"},
      {json{{"model_type", "gpt2"}, {"embd_pdrop", -0.1}}, "config.embd_pdrop"},
      {json{{"model_type", "gpt2"}, {"vocab_size", 100}, {"eos_token_id", 100}}, "config.eos_token_id"},
      {json{{"model_type", "gpt2"}, {"scale_attn_by_inverse_layer_idx", true}}, "config.scale_attn_by_inverse_layer_idx"},
      {json{{"model_type", "gpt2"}, {"add_cross_attention", true}}, "config.add_cross_attention"},
      {json{{"model_type", "gpt2"}, {"tie_word_embeddings", false}}, "config.tie_word_embeddings"},
      {json{{"model_type", "bert"}, {"hidden_size", 10}, {"num_attention_heads", 3}}, "config.num_attention_heads"},
      {json{{"model_type", "bert"}, {"hidden_size", "big"}}, "config.hidden_size"},
      {json{{"model_type", "bert"}, {"hidden_act", "mish"}}, "config.hidden_act"},
      {json{{"model_type", "bert"}, {"vocab_size", 0}}, "config.vocab_size"},
      {json{{"model_type", "bert"}, {"hidden_dropout_prob", 1.5}}, "config.hidden_dropout_prob"},
      {json{{"model_type", "bert"}, {"pad_token_id", 40000}}, "config.pad_token_id"},
      {json{{"model_type", "bert"}, {"position_embedding_type", "rotary"}}, "config.position_embedding_type"},
      {json{{"model_type", "bert"}, {"position_embedding_type", 3}}, "config.position_embedding_type"},
      {json{{"model_type", "longformer"}, {"position_embedding_type", "relative_key"}}, "config.position_embedding_type"},
      {json{{"model_type", "bert"}, {"id2label", {{"0", "a"}, {"2", "b"}}}}, "config.id2label"},
      {json{{"model_type", "bert"}, {"is_decoder", true}}, "config.is_decoder"},
      {json{{"model_type", "distilbert"}, {"dim", 30}, {"n_heads", 4}}, "config.n_heads"},
      {json{{"model_type", "roberta"}, {"max_position_embeddings", 2}}, "config.max_position_embeddings"},
      {json{{"model_type", "bert"}, {"classifier_pooling", "max"}}, "config.classifier_pooling"},
      {json{{"model_type", "distilbert"}, {"classifier_pooling", 1}}, "config.classifier_pooling"},
      {json{{"model_type", "bert"}, {"hidden_size", 1e30}}, "config.hidden_size"},
      {json::parse(R"({"model_type": "bert", "num_attention_heads": 222222222222222222222})"), "config.num_attention_heads"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(c.config);
    ASSERT_FALSE(r.has_value()) << c.config.dump();
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.error().field(), c.field) << c.config.dump() << ": " << r.error().ToString();
  }
  EXPECT_FALSE(LoadConfig("{not json").has_value());
}

TEST(ConfigTest, ParsesObjectives) {
  EXPECT_EQ(*ParseObjective("text-classification"), Objective::kTextClassification);
  EXPECT_EQ(*ParseObjective("masked-lm"), Objective::kMaskedLm);
  EXPECT_EQ(*ParseObjective("no-objective"), Objective::kNoObjective);
  EXPECT_EQ(*ParseObjective("causal-lm"), Objective::kCausalLm);
  EXPECT_EQ(*ParseObjective("token-classification"), Objective::kTokenClassification);
  EXPECT_EQ(*ParseObjective("question-answering"), Objective::kQuestionAnswering);
  EXPECT_EQ(*ParseObjective("next-sentence-prediction"), Objective::kNextSentencePrediction);
  auto bad = ParseObjective("image-classification");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().field(), "model.objective");
}

// The estimate is what transformers counts: bert-base-uncased's BertModel (with its pooler)
// has 109,482,240 parameters; a masked-LM head adds the transform and the vocabulary bias.
TEST(ConfigTest, CountsParametersBeforeBuilding) {
  ModelConfig base;  // the defaults are bert-base's
  EXPECT_EQ(ParameterCount(base, Objective::kNoObjective), 109'482'240u);
  EXPECT_EQ(ParameterCount(base, Objective::kMaskedLm), 109'482'240u + 2 * 768 + 30522);
  base.id2label = {"a", "b", "c"};
  EXPECT_EQ(ParameterCount(base, Objective::kTextClassification), 109'482'240u + 3 * 769);
  EXPECT_EQ(ParameterBytes(base, Objective::kNoObjective), 4 * 109'482'240u);
}

// GPT-2's own config.json (the Hub's gpt2), its names kept on a save, and its size as
// transformers counts GPT2LMHeadModel: 124,439,808 parameters (the lm_head tied).
TEST(ConfigTest, ParsesGpt2ConfigsAndKeepsTheirNames) {
  const json gpt2 = json::parse(R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12,
    "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": null, "summary_first_dropout": 0.1,
    "summary_proj_to_labels": true, "summary_type": "cls_index", "summary_use_proj": true,
    "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}}, "vocab_size": 50257})");
  auto c = ParseConfig(gpt2);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->architecture, Architecture::kGpt2);
  EXPECT_EQ(c->hidden_size, 768);
  EXPECT_EQ(c->intermediate_size, 3072);
  EXPECT_EQ(c->max_position_embeddings, 1024);
  EXPECT_EQ(c->hidden_act, Activation::kGeluNew);
  EXPECT_EQ(c->eos_token_id, 50256);
  EXPECT_EQ(ObjectiveFromArchitectures(*c), Objective::kCausalLm);
  EXPECT_EQ(MaxInputTokens(*c), 1024);
  EXPECT_EQ(ParameterCount(*c, Objective::kCausalLm), 124'439'808u);
  auto saved = ConfigToJson(*c, Objective::kCausalLm);
  EXPECT_EQ(saved["architectures"][0], "GPT2LMHeadModel");
  EXPECT_EQ(saved["n_embd"], 768);
  EXPECT_EQ(saved["n_inner"], 3072);
  EXPECT_EQ(saved["layer_norm_epsilon"], 1e-5);
  EXPECT_FALSE(saved.contains("hidden_size"));
  EXPECT_FALSE(saved.contains("id2label"));
  EXPECT_EQ(saved["task_specific_params"]["text-generation"]["max_length"], 50);  // kept as read
  auto again = ParseConfig(json::parse(saved.dump()));
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ(again->num_hidden_layers, 12);
  // A decoder serves causal-lm only; an encoder never does.
  EXPECT_FALSE(CheckArchitectureObjective(Architecture::kGpt2, Objective::kTextClassification).ok());
  EXPECT_FALSE(CheckArchitectureObjective(Architecture::kBert, Objective::kCausalLm).ok());
  EXPECT_TRUE(CheckArchitectureObjective(Architecture::kGpt2, Objective::kCausalLm).ok());
  // From scratch on a small tokenizer: GPT-2's own end-of-text id is not in its vocabulary.
  auto scratch = ScratchConfig(json{{"preset", "gpt2-tiny"}}, 300, std::nullopt, {});
  ASSERT_TRUE(scratch.has_value()) << scratch.error().ToString();
  EXPECT_EQ(scratch->vocab_size, 300);
  EXPECT_FALSE(scratch->eos_token_id.has_value());
  EXPECT_LT(scratch->pad_token_id, 300);
  // ... the tokenizer's end-of-text token takes its place; an encoder ignores it.
  auto with_eos = ScratchConfig(json{{"preset", "gpt2-tiny"}}, 300, std::nullopt, {}, 299);
  ASSERT_TRUE(with_eos.has_value());
  EXPECT_EQ(with_eos->eos_token_id, 299);
  EXPECT_EQ(with_eos->bos_token_id, 299);
  EXPECT_FALSE(ScratchConfig(json{{"preset", "bert-tiny"}}, 300, 0, {}, 299)->eos_token_id.has_value());
}

TEST(ConfigTest, ParameterCountsOfHostileConfigsSaturateInsteadOfWrapping) {
  ModelConfig huge;
  huge.hidden_size = 65536;
  huge.num_hidden_layers = 512;
  huge.intermediate_size = 262144;
  huge.vocab_size = 10'000'000;
  EXPECT_GT(ParameterBytes(huge, Objective::kMaskedLm), 100'000'000'000'000ull);
  huge.hidden_size = int64_t{1} << 40;  // beyond what validation accepts: still no wrap
  huge.intermediate_size = int64_t{1} << 40;
  EXPECT_EQ(ParameterCount(huge, Objective::kTextClassification), UINT64_MAX);
  EXPECT_EQ(ParameterBytes(huge, Objective::kTextClassification), UINT64_MAX);
}

TEST(ConfigTest, DeeplyNestedConfigJsonIsAnErrorNotACrash) {
  const std::string deep = "{\"model_type\": \"bert\", \"x\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  auto r = LoadConfig(deep);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("nests deeper"), std::string::npos) << r.error().ToString();
}

}  // namespace
}  // namespace mlaas::nn
