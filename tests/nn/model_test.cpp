#include "nn/model.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "checkpoint/safetensors.h"
#include "common/file_util.h"
#include "testutil/temp_dir.h"

namespace mlaas::nn {
namespace {

using mlaas::testing::TempDir;
using json = nlohmann::json;

ModelConfig Tiny(Architecture arch, int64_t labels = 3) {
  json j = {{"model_type", std::string(ArchitectureName(arch))}, {"vocab_size", 50}, {"max_position_embeddings", 40}};
  if (arch == Architecture::kDistilBert) {
    j.update({{"dim", 16}, {"n_layers", 2}, {"n_heads", 2}, {"hidden_dim", 24}});
  } else {
    j.update({{"hidden_size", 16}, {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 24}});
  }
  if (arch == Architecture::kLongformer) j["attention_window"] = 4;  // 2 tokens on each side
  json labels_json = json::object();
  for (int64_t i = 0; i < labels; ++i) labels_json[std::to_string(i)] = "L" + std::to_string(i);
  j["id2label"] = labels_json;
  auto c = ParseConfig(j);
  EXPECT_TRUE(c.has_value()) << c.error().ToString();
  return *c;
}

TransformerModel Fresh(Architecture arch, Objective o, uint64_t seed = 7, bool pooler = false) {
  TransformerModel m(Tiny(arch), o, pooler);
  InitWeights(*m, seed);
  m->eval();
  return m;
}

std::set<std::string> Names(TransformerModel& m) {
  std::set<std::string> out;
  for (auto& p : m->named_parameters()) out.insert(p.key());
  return out;
}

EncoderInput Batch() {
  // Two sequences, the second padded (pad id 0 for BERT/DistilBERT; RoBERTa pads with 1).
  EncoderInput in;
  in.input_ids = torch::tensor({{2, 11, 12, 13, 14, 3}, {2, 21, 22, 3, 0, 0}}, torch::kInt64);
  in.attention_mask = torch::tensor({{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0}}, torch::kInt64);
  return in;
}

TEST(ModelTest, UsesHuggingFaceParameterNames) {
  auto bert = Fresh(Architecture::kBert, Objective::kTextClassification);
  auto names = Names(bert);
  for (const char* n : {"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
                        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                        "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.attention.self.value.bias",
                        "bert.encoder.layer.0.attention.output.dense.weight",
                        "bert.encoder.layer.0.attention.output.LayerNorm.bias",
                        "bert.encoder.layer.1.intermediate.dense.weight", "bert.encoder.layer.1.output.dense.bias",
                        "bert.encoder.layer.1.output.LayerNorm.weight", "bert.pooler.dense.weight",
                        "classifier.weight", "classifier.bias"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_EQ(names.size(), 5u + 2 * 16 + 2 + 2);

  auto distil = Fresh(Architecture::kDistilBert, Objective::kMaskedLm);
  names = Names(distil);
  for (const char* n : {"distilbert.embeddings.word_embeddings.weight", "distilbert.embeddings.LayerNorm.bias",
                        "distilbert.transformer.layer.0.attention.q_lin.weight",
                        "distilbert.transformer.layer.1.attention.out_lin.bias",
                        "distilbert.transformer.layer.0.sa_layer_norm.weight", "distilbert.transformer.layer.0.ffn.lin1.weight",
                        "distilbert.transformer.layer.0.ffn.lin2.bias",
                        "distilbert.transformer.layer.1.output_layer_norm.weight", "vocab_transform.weight",
                        "vocab_layer_norm.bias", "vocab_projector.bias"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_FALSE(names.count("vocab_projector.weight"));  // tied to the word embeddings
  EXPECT_FALSE(names.count("distilbert.embeddings.token_type_embeddings.weight"));

  auto roberta = Fresh(Architecture::kRoberta, Objective::kTextClassification);
  names = Names(roberta);
  for (const char* n : {"roberta.encoder.layer.0.attention.self.key.weight", "classifier.dense.weight",
                        "classifier.out_proj.bias"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_FALSE(names.count("roberta.pooler.dense.weight"));

  auto bert_mlm = Fresh(Architecture::kBert, Objective::kMaskedLm);
  names = Names(bert_mlm);
  for (const char* n : {"cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight",
                        "cls.predictions.bias"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  auto roberta_mlm = Fresh(Architecture::kRoberta, Objective::kMaskedLm);
  names = Names(roberta_mlm);
  for (const char* n : {"lm_head.dense.weight", "lm_head.layer_norm.weight", "lm_head.bias"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
}

TEST(ModelTest, InitialisesLikeTransformers) {
  ModelConfig c = Tiny(Architecture::kBert);
  c.hidden_size = 64;
  c.num_attention_heads = 4;
  c.intermediate_size = 256;
  c.vocab_size = 2000;
  TransformerModel m(c, Objective::kMaskedLm);
  InitWeights(*m, 1);
  torch::NoGradGuard no_grad;
  auto params = m->named_parameters();
  auto emb = *params.find("bert.embeddings.word_embeddings.weight");
  EXPECT_NEAR(emb.std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(emb.mean().item<double>(), 0.0, 0.001);
  EXPECT_EQ(emb[0].abs().sum().item<double>(), 0.0);  // padding row
  auto w = *params.find("bert.encoder.layer.0.intermediate.dense.weight");
  EXPECT_NEAR(w.std().item<double>(), 0.02, 0.002);
  EXPECT_EQ(params.find("bert.encoder.layer.0.intermediate.dense.bias")->abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(params.find("bert.encoder.layer.1.output.LayerNorm.weight")->eq(1).all().item<bool>());
  EXPECT_EQ(params.find("cls.predictions.bias")->abs().sum().item<double>(), 0.0);

  // Same seed, same weights; another seed, others.
  TransformerModel again(c, Objective::kMaskedLm), other(c, Objective::kMaskedLm);
  InitWeights(*again, 1);
  InitWeights(*other, 2);
  EXPECT_TRUE(torch::equal(*again->named_parameters().find("bert.embeddings.word_embeddings.weight"), emb));
  EXPECT_FALSE(torch::equal(*other->named_parameters().find("bert.embeddings.word_embeddings.weight"), emb));
}

TEST(ModelTest, SinusoidalPositionsForDistilBert) {
  ModelConfig c = Tiny(Architecture::kDistilBert);
  c.sinusoidal_pos_embds = true;
  TransformerModel m(c, Objective::kNoObjective);
  InitWeights(*m, 1);
  auto w = m->encoder->embeddings->position_embeddings->weight;
  EXPECT_NEAR(w[0][0].item<double>(), 0.0, 1e-7);  // sin(0)
  EXPECT_NEAR(w[0][1].item<double>(), 1.0, 1e-7);  // cos(0)
  EXPECT_NEAR(w[3][0].item<double>(), std::sin(3.0), 1e-6);
  EXPECT_NEAR(w[3][2].item<double>(), std::sin(3.0 / std::pow(10000.0, 2.0 / 16)), 1e-6);
}

TEST(ModelTest, PaddingDoesNotChangeTheTokensOutputs) {
  for (Architecture arch :
       {Architecture::kBert, Architecture::kDistilBert, Architecture::kRoberta, Architecture::kLongformer}) {
    auto m = Fresh(arch, Objective::kNoObjective);
    torch::InferenceMode guard;
    EncoderInput batch = Batch();
    const int64_t pad = m->config().pad_token_id;
    batch.input_ids.masked_fill_(batch.attention_mask.eq(0), pad);
    auto padded = m->forward(batch).encoder.last_hidden_state;
    EncoderInput single;
    single.input_ids = batch.input_ids.slice(0, 1, 2).slice(1, 0, 4);
    single.attention_mask = torch::ones_like(single.input_ids);
    auto alone = m->forward(single).encoder.last_hidden_state;
    EXPECT_TRUE(torch::allclose(padded[1].slice(0, 0, 4), alone[0], 1e-5, 1e-5)) << ArchitectureName(arch);
    // Mean pooling ignores the padding.
    auto pooled = Pool(padded, batch.attention_mask, Pooling::kMean);
    EXPECT_TRUE(torch::allclose(pooled[1], alone[0].mean(0), 1e-5, 1e-5)) << ArchitectureName(arch);
  }
}

// position_embedding_type relative_key(_query): each layer holds distance embeddings under
// transformers' names and its parameter count says so; the absolute positions are not added
// (a permutation-free input gives the same vector at every position but for the distances);
// padding, the inference path (no packing) and the first-token shortcut give what the plain
// pass gives; gradients reach the distances. (Against transformers' definition: tests/nn/reference.)
TEST(ModelTest, RelativePositionsScoreDistancesInAttention) {
  for (const char* type : {"relative_key", "relative_key_query"}) {
    for (Architecture arch : {Architecture::kBert, Architecture::kRoberta}) {
      json j = ConfigToJson(Tiny(arch), Objective::kTextClassification);
      j["position_embedding_type"] = type;
      auto c = ParseConfig(j);
      ASSERT_TRUE(c.has_value()) << c.error().ToString();
      TransformerModel m(*c, Objective::kTextClassification, /*with_pooler=*/true);
      InitWeights(*m, 5);
      const auto names = Names(m);
      const std::string prefix = arch == Architecture::kBert ? "bert" : "roberta";
      EXPECT_TRUE(names.count(prefix + ".encoder.layer.1.attention.self.distance_embedding.weight")) << type;
      // Two layers of 2 x 40 - 1 distances, 8 wide (16 / 2 heads), beyond the absolute model's.
      TransformerModel absolute_model(Tiny(arch), Objective::kTextClassification, /*with_pooler=*/true);
      int64_t extra = 0;
      for (const auto& p : m->parameters()) extra += p.numel();
      for (const auto& p : absolute_model->parameters()) extra -= p.numel();
      EXPECT_EQ(extra, 2 * 79 * 8) << type;

      // Training mode: a loss reaches the distance embeddings.
      m->train();
      m->zero_grad();
      m->forward(Batch()).logits.sum().backward();
      auto grad = m->named_parameters()[prefix + ".encoder.layer.0.attention.self.distance_embedding.weight"].grad();
      ASSERT_TRUE(grad.defined());
      EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << type;

      // Under bf16 autocast (model_train.precision bf16) the queries are bf16 and the distance
      // table float32: the same logits within bf16's precision.
      m->eval();
      torch::Tensor full, half;
      {
        torch::NoGradGuard no_grad;
        full = m->forward(Batch()).logits;
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::set_cpu_enabled(true);
        half = m->forward(Batch()).logits.to(torch::kFloat32);
        at::autocast::set_cpu_enabled(false);
        at::autocast::clear_cache();
      }
      EXPECT_TRUE(torch::allclose(half, full, 5e-2, 5e-2)) << type << " " << (half - full).abs().max().item<double>();
      // No position ids: RoBERTa's offset past the padding id does not shorten the input.
      EXPECT_EQ(MaxInputTokens(*c), 40) << type;

      torch::InferenceMode guard;
      EncoderInput longest;
      longest.input_ids = torch::full({1, 40}, 11, torch::kInt64);
      EXPECT_EQ(m->forward(longest).encoder.last_hidden_state.size(1), 40);
      longest.input_ids = torch::full({1, 41}, 11, torch::kInt64);
      EXPECT_THROW(m->forward(longest), c10::Error);
      // The distances take part: others (larger than the 0.02 initialisation), other outputs.
      EncoderInput same;
      same.input_ids = torch::tensor({{2, 11, 12, 13, 14, 3}}, torch::kInt64);
      auto h = m->forward(same).encoder.last_hidden_state;
      auto distances = m->named_parameters()[prefix + ".encoder.layer.0.attention.self.distance_embedding.weight"];
      auto kept = distances.clone();
      distances.normal_(0.0, 1.0);
      EXPECT_FALSE(torch::allclose(m->forward(same).encoder.last_hidden_state, h, 1e-4, 1e-4)) << type;
      distances.copy_(kept);
      // The absolute position embeddings stay in the checkpoint, unused: changing them changes nothing.
      m->named_parameters()[prefix + ".embeddings.position_embeddings.weight"].mul_(3.0).add_(0.5);
      EXPECT_TRUE(torch::equal(m->forward(same).encoder.last_hidden_state, h)) << type;
      // Padding changes nothing for the real tokens.
      EncoderInput batch = Batch();
      batch.input_ids.masked_fill_(batch.attention_mask.eq(0), m->config().pad_token_id);
      auto padded = m->forward(batch);
      EncoderInput single;
      single.input_ids = batch.input_ids.slice(0, 1, 2).slice(1, 0, 4);
      single.attention_mask = torch::ones_like(single.input_ids);
      auto alone = m->forward(single);
      EXPECT_TRUE(torch::allclose(padded.encoder.last_hidden_state[1].slice(0, 0, 4), alone.encoder.last_hidden_state[0],
                                  1e-5, 1e-5)) << type;
      // Inference preparation (no packed kernel scores distances) and the first-token path.
      m->PrepareForInference();
      auto prepared = m->forward(batch).logits;
      EXPECT_TRUE(torch::allclose(prepared, padded.logits, 1e-5, 1e-6)) << type;
      EncoderInput first = batch;
      first.first_token_only = true;
      EXPECT_TRUE(torch::allclose(m->forward(first).logits, padded.logits, 1e-5, 1e-6)) << type;
    }
  }
}

TEST(ModelTest, FusedProjectionsGiveTheSameResult) {
  for (Architecture arch :
       {Architecture::kBert, Architecture::kDistilBert, Architecture::kRoberta, Architecture::kLongformer}) {
    auto m = Fresh(arch, Objective::kTextClassification);
    torch::InferenceMode guard;
    auto plain = m->forward(Batch()).logits;
    m->PrepareForInference();
    auto fused = m->forward(Batch()).logits;
    EXPECT_EQ(plain.sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_TRUE(torch::allclose(plain, fused, 1e-5, 1e-6)) << ArchitectureName(arch);
  }
}

// A window that covers the whole input makes Longformer's attention RoBERTa's full attention:
// with the same weights (the global projections unused without global tokens), the same
// outputs — the chunked computation checked against the plain one.
TEST(ModelTest, LongformerWithAWindowCoveringTheInputIsFullAttention) {
  auto roberta = Fresh(Architecture::kRoberta, Objective::kNoObjective, 11);
  json j = {{"model_type", "longformer"}, {"vocab_size", 50}, {"max_position_embeddings", 40}, {"hidden_size", 16},
            {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 24}, {"attention_window", 16},
            {"id2label", {{"0", "L0"}, {"1", "L1"}, {"2", "L2"}}}};
  auto config = ParseConfig(j);
  ASSERT_TRUE(config.has_value()) << config.error().ToString();
  TransformerModel longformer(*config, Objective::kNoObjective, false);
  InitWeights(*longformer, 3);
  {
    torch::NoGradGuard no_grad;
    auto from = roberta->named_parameters();
    for (auto& p : longformer->named_parameters()) {
      const std::string name = p.key().substr(p.key().find('.'));  // without "longformer"
      if (name.find("_global.") != std::string::npos) continue;
      ASSERT_TRUE(from.contains("roberta" + name)) << p.key();
      p.value().copy_(from["roberta" + name]);
    }
  }
  longformer->eval();
  torch::InferenceMode guard;
  EncoderInput batch = Batch();
  batch.input_ids.masked_fill_(batch.attention_mask.eq(0), 1);  // RoBERTa's padding id
  auto want = roberta->forward(batch).encoder.last_hidden_state;
  auto got = longformer->forward(batch).encoder.last_hidden_state;
  ASSERT_EQ(got.sizes(), want.sizes());
  auto keep = batch.attention_mask.ne(0);
  EXPECT_TRUE(torch::allclose(got.index({keep}), want.index({keep}), 1e-5, 1e-5));
}

// 4,096 tokens through windows of 32: the chunks' attention reaches 16 tokens a side a layer,
// so the first token's output ignores a token 4,000 positions away — unless it has global
// attention, which reads every token.
TEST(ModelTest, LongformerReadsLongInputsThroughItsWindowAndGlobalTokens) {
  json j = {{"model_type", "longformer"}, {"vocab_size", 50}, {"max_position_embeddings", 4098}, {"hidden_size", 16},
            {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 24}, {"attention_window", 32},
            {"id2label", {{"0", "L0"}}}};
  auto config = ParseConfig(j);
  ASSERT_TRUE(config.has_value()) << config.error().ToString();
  EXPECT_EQ(MaxInputTokens(*config), 4096);
  TransformerModel m(*config, Objective::kNoObjective, false);
  InitWeights(*m, 5);
  m->eval();
  torch::InferenceMode guard;
  torch::manual_seed(2024);
  EncoderInput in;
  in.input_ids = torch::randint(3, 50, {1, 4096}, torch::kInt64);
  auto base = m->forward(in).encoder.last_hidden_state;
  ASSERT_EQ(base.sizes(), (std::vector<int64_t>{1, 4096, 16}));
  EXPECT_TRUE(torch::isfinite(base).all().item<bool>());
  EncoderInput changed = in;
  changed.input_ids = in.input_ids.clone();
  changed.input_ids[0][4000] = in.input_ids[0][4000].item<int64_t>() == 7 ? 8 : 7;
  auto after = m->forward(changed).encoder.last_hidden_state;
  EXPECT_TRUE(torch::equal(after[0][0], base[0][0]));                     // out of reach
  EXPECT_FALSE(torch::equal(after[0][4000], base[0][4000]));  // itself
  for (EncoderInput* x : {&in, &changed}) {
    x->global_attention_mask = torch::zeros_like(x->input_ids);
    x->global_attention_mask[0][0] = 1;
  }
  auto global_before = m->forward(in).encoder.last_hidden_state;
  auto global_after = m->forward(changed).encoder.last_hidden_state;
  EXPECT_FALSE(torch::equal(global_after[0][0], global_before[0][0]));  // the global token reads it
  // A token too many for the position embeddings is an error, not a crash.
  EncoderInput too_long;
  too_long.input_ids = torch::randint(3, 50, {1, 4097}, torch::kInt64);
  EXPECT_THROW(m->forward(too_long), c10::Error);
}

// Longformer classifies from its first token with global attention, as transformers does.
TEST(ModelTest, LongformerClassifierGivesItsFirstTokenGlobalAttention) {
  auto m = Fresh(Architecture::kLongformer, Objective::kTextClassification);
  torch::InferenceMode guard;
  EncoderInput batch = Batch();
  batch.input_ids.masked_fill_(batch.attention_mask.eq(0), 1);
  auto automatic = m->forward(batch).logits;
  EncoderInput explicit_first = batch;
  explicit_first.global_attention_mask = torch::zeros_like(batch.input_ids);
  explicit_first.global_attention_mask.select(1, 0).fill_(1);
  EXPECT_TRUE(torch::allclose(automatic, m->forward(explicit_first).logits, 1e-6, 1e-6));
  EncoderInput none = batch;
  none.global_attention_mask = torch::zeros_like(batch.input_ids);
  EXPECT_FALSE(torch::allclose(automatic, m->forward(none).logits, 1e-6, 1e-6));
}

TEST(ModelTest, FirstTokenOnlyGivesTheSameClassificationAndClsEmbedding) {
  for (Architecture arch : {Architecture::kBert, Architecture::kDistilBert, Architecture::kRoberta}) {
    for (bool fused : {false, true}) {
      auto m = Fresh(arch, Objective::kTextClassification);
      if (fused) m->PrepareForInference();
      torch::InferenceMode guard;
      EncoderInput full = Batch(), first = Batch();
      first.first_token_only = true;
      auto all = m->forward(full);
      auto one = m->forward(first);
      EXPECT_EQ(one.encoder.last_hidden_state.size(1), 1) << ArchitectureName(arch);
      EXPECT_TRUE(torch::allclose(all.logits, one.logits, 1e-5, 1e-6)) << ArchitectureName(arch) << " fused " << fused;
      EXPECT_TRUE(torch::allclose(Pool(all.encoder.last_hidden_state, full.attention_mask, Pooling::kCls),
                                  Pool(one.encoder.last_hidden_state, first.attention_mask, Pooling::kCls), 1e-5, 1e-6))
          << ArchitectureName(arch);
    }
  }
}

TEST(ModelTest, MeanClassifierPoolingReadsEveryTokenButNotThePadding) {
  for (Architecture arch : {Architecture::kBert, Architecture::kDistilBert, Architecture::kRoberta}) {
    ModelConfig mean_config = Tiny(arch);
    mean_config.classifier_pooling = Pooling::kMean;
    TransformerModel mean(mean_config, Objective::kTextClassification, false);
    InitWeights(*mean, 7);
    mean->eval();
    auto cls = Fresh(arch, Objective::kTextClassification);  // the same weights, [CLS] pooling
    torch::InferenceMode guard;
    EncoderInput batch = Batch();
    batch.input_ids.masked_fill_(batch.attention_mask.eq(0), mean_config.pad_token_id);
    auto out = mean->forward(batch);
    EXPECT_TRUE(torch::allclose(out.encoder.summary, Pool(out.encoder.last_hidden_state, batch.attention_mask,
                                                          Pooling::kMean)))
        << ArchitectureName(arch);
    EXPECT_FALSE(torch::allclose(out.logits, cls->forward(batch).logits, 1e-3, 1e-3)) << ArchitectureName(arch);
    // The padded row classifies as the same text alone.
    EncoderInput single;
    single.input_ids = batch.input_ids.slice(0, 1, 2).slice(1, 0, 4);
    single.attention_mask = torch::ones_like(single.input_ids);
    EXPECT_TRUE(torch::allclose(out.logits[1], mean->forward(single).logits[0], 1e-5, 1e-5)) << ArchitectureName(arch);
    // The last layer cannot be cut to the first token: asking for it changes nothing.
    EncoderInput first = batch;
    first.first_token_only = true;
    auto one = mean->forward(first);
    EXPECT_EQ(one.encoder.last_hidden_state.size(1), 6) << ArchitectureName(arch);
    EXPECT_TRUE(torch::allclose(one.logits, out.logits, 1e-6, 1e-6)) << ArchitectureName(arch);
  }
}

TEST(ModelTest, MaskedLmDecoderIsTiedToTheEmbeddings) {
  auto m = Fresh(Architecture::kBert, Objective::kMaskedLm);
  torch::NoGradGuard no_grad;
  auto before = m->forward(Batch()).logits;
  EXPECT_EQ(before.sizes(), (std::vector<int64_t>{2, 6, 50}));
  // Not an input token. (Not a constant shift: the hidden states come out of a LayerNorm, so
  // their sum is ~0 and a constant added to the row would hardly change its logit.)
  auto& row40 = m->encoder->embeddings->word_embeddings->weight;
  row40[40].add_(torch::linspace(-1.0, 1.0, row40.size(1)));
  auto after = m->forward(Batch()).logits;
  EXPECT_FALSE(torch::allclose(before.select(2, 40), after.select(2, 40)));
  EXPECT_TRUE(torch::allclose(before.select(2, 41), after.select(2, 41)));
}

void ExpectSameParameters(TransformerModel& a, TransformerModel& b) {
  auto pb = b->named_parameters();
  ASSERT_EQ(a->named_parameters().size(), pb.size());
  for (auto& p : a->named_parameters()) {
    ASSERT_NE(pb.find(p.key()), nullptr) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), *pb.find(p.key()))) << p.key();
  }
}

TEST(ModelTest, SaveLoadRoundTripIsBitIdentical) {
  for (Architecture arch : {Architecture::kBert, Architecture::kDistilBert, Architecture::kRoberta}) {
    for (Objective o : {Objective::kTextClassification, Objective::kMaskedLm, Objective::kNoObjective}) {
      TempDir dir;
      auto m = Fresh(arch, o, 3, /*pooler=*/true);
      ASSERT_TRUE(SaveModelDir(*m, dir.path()).ok());
      auto loaded = LoadModelDir(dir.path(), std::nullopt);
      ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
      EXPECT_FALSE(loaded->from_scratch);
      EXPECT_EQ(loaded->model->objective(), o);  // from config.json's architectures
      EXPECT_TRUE(loaded->report.unused.empty());
      EXPECT_EQ(loaded->report.source_dtype, "F32");
      ExpectSameParameters(m, loaded->model);
      // Saved again: the same bytes.
      TempDir again;
      ASSERT_TRUE(SaveModelDir(*loaded->model, again.path()).ok());
      EXPECT_EQ(*ReadFile(dir / "model.safetensors", 1u << 30), *ReadFile(again / "model.safetensors", 1u << 30));
      EXPECT_EQ(*ReadFile(dir / "config.json"), *ReadFile(again / "config.json"));
    }
  }
}

TEST(ModelTest, BareModelsAreSavedWithoutThePrefixAndFeedHeads) {
  TempDir dir;
  auto bare = Fresh(Architecture::kBert, Objective::kNoObjective);
  ASSERT_TRUE(SaveWeights(*bare, dir.path()).ok());
  auto file = checkpoint::SafetensorsFile::Open(dir / "model.safetensors");
  ASSERT_TRUE(file.has_value());
  EXPECT_NE((*file)->Find("embeddings.word_embeddings.weight"), nullptr);
  EXPECT_EQ((*file)->Find("bert.embeddings.word_embeddings.weight"), nullptr);

  // A classifier on top of the pre-trained encoder: the head is new, the encoder is loaded.
  TransformerModel clf(Tiny(Architecture::kBert), Objective::kTextClassification);
  auto strict = LoadWeights(*clf, dir.path());
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.message().find("bert.pooler.dense.weight"), std::string::npos) << strict.message();
  LoadReport report;
  ASSERT_TRUE(LoadWeights(*clf, dir.path(), {.allow_missing_head = true, .seed = 5}, &report).ok());
  EXPECT_EQ(std::set<std::string>(report.initialized.begin(), report.initialized.end()),
            (std::set<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                                   "classifier.bias"}));
  EXPECT_TRUE(torch::equal(clf->encoder->embeddings->word_embeddings->weight,
                           bare->encoder->embeddings->word_embeddings->weight));
  EXPECT_EQ(clf->named_parameters().find("classifier.bias")->abs().sum().item<double>(), 0.0);
}

TEST(ModelTest, ShardedCheckpointsRoundTrip) {
  TempDir dir;
  auto m = Fresh(Architecture::kDistilBert, Objective::kMaskedLm);
  ASSERT_TRUE(SaveModelDir(*m, dir.path(), {.max_shard_bytes = 6000}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  auto index = checkpoint::ReadShardIndex(dir / "model.safetensors.index.json");
  ASSERT_TRUE(index.has_value());
  std::set<std::string> shards;
  for (const auto& [t, s] : *index) shards.insert(s);
  EXPECT_GT(shards.size(), 2u);
  EXPECT_TRUE(shards.count("model-00001-of-0000" + std::to_string(shards.size()) + ".safetensors"));
  auto loaded = LoadModelDir(dir.path(), std::nullopt);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  ExpectSameParameters(m, loaded->model);
  // Saving unsharded replaces the shards.
  ASSERT_TRUE(SaveModelDir(*m, dir.path()).ok());
  EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  for (const auto& s : shards) EXPECT_FALSE(std::filesystem::exists(dir / s)) << s;
}

// Rewrites dir/model.safetensors with every tensor converted to `dtype`.
void ConvertCheckpoint(const std::filesystem::path& dir, torch::ScalarType dtype, checkpoint::DType tag) {
  auto file = checkpoint::SafetensorsFile::Open(dir / "model.safetensors");
  ASSERT_TRUE(file.has_value());
  std::vector<torch::Tensor> keep;
  std::vector<checkpoint::TensorToWrite> out;
  for (const auto& t : (*file)->tensors()) {
    auto data = (*file)->Data(t);
    auto f32 = torch::from_blob(const_cast<std::byte*>(data.data()), t.shape, torch::kFloat32);
    keep.push_back(f32.to(dtype).contiguous());
    out.push_back({t.name, tag, t.shape, {static_cast<const std::byte*>(keep.back().data_ptr()), keep.back().nbytes()}});
  }
  file->reset();
  ASSERT_TRUE(checkpoint::WriteSafetensors(dir / "model.safetensors", out).ok());
}

TEST(ModelTest, ConvertsHalfPrecisionCheckpointsOnLoad) {
  for (auto [dtype, tag, name] : {std::tuple{torch::kFloat16, checkpoint::DType::kF16, "F16"},
                                  std::tuple{torch::kBFloat16, checkpoint::DType::kBF16, "BF16"}}) {
    TempDir dir;
    auto m = Fresh(Architecture::kRoberta, Objective::kMaskedLm);
    ASSERT_TRUE(SaveModelDir(*m, dir.path()).ok());
    ConvertCheckpoint(dir.path(), dtype, tag);
    auto loaded = LoadModelDir(dir.path(), std::nullopt);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
    EXPECT_EQ(loaded->report.source_dtype, name);
    auto params = loaded->model->named_parameters();
    for (auto& p : m->named_parameters()) {
      auto got = *params.find(p.key());
      EXPECT_EQ(got.scalar_type(), torch::kFloat32);
      EXPECT_TRUE(torch::equal(got, p.value().to(dtype).to(torch::kFloat32))) << p.key();
    }
  }
}

TEST(ModelTest, DirectoryWithOnlyAConfigStartsFromScratch) {
  TempDir dir;
  dir.Write("config.json", ConfigToJson(Tiny(Architecture::kBert), Objective::kMaskedLm).dump());
  auto a = LoadModelDir(dir.path(), std::nullopt, {.seed = 9});
  auto b = LoadModelDir(dir.path(), std::nullopt, {.seed = 9});
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  EXPECT_TRUE(a->from_scratch);
  EXPECT_EQ(a->model->objective(), Objective::kMaskedLm);
  ExpectSameParameters(a->model, b->model);
}

// ---------------------------------------------------------------------------------------------
// Malformed checkpoints: each is a clear error naming the problem, never a crash.

struct Broken {
  std::string what;
  std::function<void(const std::filesystem::path&)> damage;
  std::string expect;  // a substring of the error
};

std::string Raw(const std::string& header, size_t data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + std::string(data, '\0');
}

void Rewrite(const std::filesystem::path& dir, const std::function<void(std::vector<checkpoint::TensorToWrite>&,
                                                                          std::vector<std::vector<std::byte>>&)>& edit) {
  auto file = checkpoint::SafetensorsFile::Open(dir / "model.safetensors");
  ASSERT_TRUE(file.has_value());
  std::vector<std::vector<std::byte>> storage;
  std::vector<checkpoint::TensorToWrite> tensors;
  storage.reserve(1000);
  for (const auto& t : (*file)->tensors()) {
    auto d = (*file)->Data(t);
    storage.emplace_back(d.begin(), d.end());
  }
  size_t i = 0;
  for (const auto& t : (*file)->tensors()) {
    tensors.push_back({t.name, t.dtype, t.shape, {storage[i].data(), storage[i].size()}});
    ++i;
  }
  edit(tensors, storage);
  file->reset();
  ASSERT_TRUE(checkpoint::WriteSafetensors(dir / "model.safetensors", tensors).ok());
}

TEST(ModelTest, MalformedCheckpointsAreClearErrors) {
  const std::string q = "bert.encoder.layer.0.attention.self.query.weight";
  std::vector<Broken> cases = {
      {"missing tensor",
       [&](auto& d) { Rewrite(d, [&](auto& t, auto&) { std::erase_if(t, [&](auto& x) { return x.name == q; }); }); },
       "no tensor '" + q + "'"},
      {"wrong shape",
       [&](auto& d) {
         Rewrite(d, [&](auto& t, auto&) {
           for (auto& x : t)
             if (x.name == q) x.shape = {8, 32};
         });
       },
       "'" + q + "' has shape [8, 32]"},
      {"integer dtype",
       [&](auto& d) {
         Rewrite(d, [&](auto& t, auto&) {
           for (auto& x : t)
             if (x.name == q) x.dtype = checkpoint::DType::kI32;
         });
       },
       "'" + q + "' has dtype I32"},
      {"truncated file",
       [](auto& d) {
         auto bytes = *ReadFile(d / "model.safetensors", 1u << 30);
         ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors", bytes.substr(0, bytes.size() - 100)).ok());
       },
       "model.safetensors"},
      {"header cut short",
       [](auto& d) { ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors", "\x40\x00\x00\x00\x00\x00\x00\x00{\"a\"").ok()); },
       "model.safetensors"},
      {"overlapping offsets",
       [](auto& d) {
         ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors",
                                     Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                         12))
                         .ok());
       },
       "model.safetensors"},
      {"size not matching the shape",
       [](auto& d) {
         ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors",
                                     Raw(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
                         .ok());
       },
       "'a'"},
      {"not safetensors at all",
       [](auto& d) { ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors", std::string(4096, 'x')).ok()); },
       "model.safetensors"},
      {"index naming a missing shard",
       [](auto& d) {
         std::filesystem::remove(d / "model.safetensors");
         ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors.index.json",
                                     R"({"weight_map":{"bert.embeddings.word_embeddings.weight":"model-00001-of-00002.safetensors"}})")
                         .ok());
       },
       "model-00001-of-00002.safetensors"},
      {"index escaping the directory",
       [](auto& d) {
         std::filesystem::remove(d / "model.safetensors");
         ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors.index.json",
                                     R"({"weight_map":{"x":"../../etc/passwd"}})")
                         .ok());
       },
       "must be a plain file name"},
      {"index that is not JSON",
       [](auto& d) {
         std::filesystem::remove(d / "model.safetensors");
         ASSERT_TRUE(WriteFileAtomic(d / "model.safetensors.index.json", "{weight_map").ok());
       },
       "index"},
      {"pickle checkpoint only",
       [](auto& d) {
         std::filesystem::remove(d / "model.safetensors");
         ASSERT_TRUE(WriteFileAtomic(d / "pytorch_model.bin", "PK\x03\x04").ok());
       },
       "pytorch_model.bin"},
      {"config and weights disagree",
       [](auto& d) {
         auto c = Tiny(Architecture::kBert);
         c.hidden_size = 32;
         ASSERT_TRUE(WriteFileAtomic(d / "config.json", ConfigToJson(c, Objective::kTextClassification).dump()).ok());
       },
       "has shape [50, 16] in the checkpoint but the model config needs [50, 32]"},
      {"config.json invalid",
       [](auto& d) { ASSERT_TRUE(WriteFileAtomic(d / "config.json", R"({"model_type":"t5"})").ok()); },
       "model_type 't5' is not supported"},
      {"no config.json", [](auto& d) { std::filesystem::remove(d / "config.json"); }, "has no config.json"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    auto m = Fresh(Architecture::kBert, Objective::kTextClassification);
    ASSERT_TRUE(SaveModelDir(*m, dir.path()).ok());
    c.damage(dir.path());
    auto r = LoadModelDir(dir.path(), std::nullopt);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_NE(r.error().message().find(c.expect), std::string::npos)
        << c.what << ": " << r.error().ToString();
  }
}

TEST(ModelTest, ParsesDevices) {
  EXPECT_TRUE(ParseDevice("cpu").has_value());
  EXPECT_EQ(ParseDevice("tpu").error().field(), "device");
  if (!torch::cuda::is_available()) {
    EXPECT_FALSE(ParseDevice("cuda").has_value());
  }
}

}  // namespace
}  // namespace mlaas::nn

namespace mlaas::nn {
namespace {

// model_train.threads once set the process's pool to 1,024 threads for good (every prediction
// after it contended): a scope asks at most one per core and puts the count back.
TEST(ThreadsTest, AScopeAsksAtMostOnePerCoreAndPutsTheCountBack) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ConfigureThreads(1);
  {
    ScopedThreads many(1024);
    EXPECT_EQ(many.count(), cores);
    EXPECT_EQ(torch::get_num_threads(), cores);
  }
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_EQ(ConfigureThreads(0), 1);  // 0 asks nothing
}

}  // namespace
}  // namespace mlaas::nn
