#include "train/train_spec.h"

#include <gtest/gtest.h>

namespace mlaas::train {
namespace {

using nlohmann::json;

json Request(json model_train = json::object(), json dataset = {{"path", "d.csv"}}) {
  return {{"model", {{"preset", "bert-tiny"}, {"objective", "text-classification"}}},
          {"dataset", dataset},
          {"model_train", model_train}};
}

TEST(TrainSpecTest, DefaultsFollowTheSpec) {
  auto spec = ParseTrainSpec(Request());
  ASSERT_TRUE(spec.has_value()) << spec.error().ToString();
  EXPECT_EQ(spec->objective, Objective::kTextClassification);
  EXPECT_EQ(spec->epochs, 10);
  EXPECT_EQ(spec->batch_size, 32);
  EXPECT_EQ(spec->optimizer.kind, OptimizerKind::kAdamW);
  EXPECT_DOUBLE_EQ(spec->optimizer.init_lr, 2e-5);
  EXPECT_DOUBLE_EQ(spec->optimizer.weight_decay_rate, 0.01);
  EXPECT_DOUBLE_EQ(spec->max_grad_norm, 1.0);
  EXPECT_DOUBLE_EQ(spec->train_test_split, 0.1);
  EXPECT_EQ(spec->text_column, "text");
  EXPECT_EQ(spec->label_column, "label");
  EXPECT_EQ(spec->early_stopping.metric, "eval_loss");
  EXPECT_EQ(Columns(*spec), (std::vector<std::string>{"text", "label"}));
}

TEST(TrainSpecTest, ReadsEveryKnob) {
  json mt = {{"epochs", 3},
             {"batch_size", 8},
             {"optimizer", {{"name", "SGD"}, {"init_lr", 0.1}, {"num_warm_steps", 5}, {"momentum", 0.9}}},
             {"max_grad_norm", 0},
             {"gradient_accumulation_steps", 4},
             {"seed", 7},
             {"max_length", 64},
             {"threads", 1},
             {"early_stopping", {{"patience", 2}, {"metric", "eval_accuracy"}}},
             {"load_best_model_at_end", true},
             {"checkpoint_steps", 10}};
  json ds = {{"path", "d.csv"},
             {"train_test_split", 0.25},
             {"loader_kwargs", {{"text_column", "t"}, {"label_column", "y"}, {"text_pair_column", "t2"}}},
             {"augment", {{"typos", {{"copies", 2}, {"rate", 0.1}}}}}};
  auto spec = ParseTrainSpec(Request(mt, ds));
  ASSERT_TRUE(spec.has_value()) << spec.error().ToString();
  EXPECT_EQ(spec->epochs, 3);
  EXPECT_EQ(spec->optimizer.kind, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(spec->optimizer.momentum, 0.9);
  EXPECT_EQ(spec->gradient_accumulation_steps, 4);
  EXPECT_EQ(spec->seed, 7u);
  EXPECT_EQ(spec->max_length, 64);
  EXPECT_EQ(spec->early_stopping.patience, 2);
  EXPECT_TRUE(spec->load_best_model_at_end);
  EXPECT_EQ(spec->typos.copies, 2);
  EXPECT_EQ(Columns(*spec), (std::vector<std::string>{"t", "y", "t2"}));
  EXPECT_EQ(ColumnField(*spec, 2), "dataset.loader_kwargs.text_pair_column");
}

TEST(TrainSpecTest, MaskedLmAndEmbeddingColumns) {
  json r = Request({}, {{"path", "c.csv"}, {"loader_kwargs", {{"page_content_column", "abstract"}}}});
  r["model"]["objective"] = "masked-lm";
  auto mlm = ParseTrainSpec(r);
  ASSERT_TRUE(mlm.has_value());
  EXPECT_EQ(Columns(*mlm), std::vector<std::string>{"abstract"});
  r["model"]["objective"] = "sentence-embedding";
  r["dataset"]["loader_kwargs"] = {{"anchor_column", "q"}, {"positive_column", "d"}};
  auto emb = ParseTrainSpec(r);
  ASSERT_TRUE(emb.has_value());
  EXPECT_EQ(Columns(*emb), (std::vector<std::string>{"q", "d"}));
  r["dataset"]["loader_kwargs"]["negative_column"] = "hard";
  auto hard = ParseTrainSpec(r);
  ASSERT_TRUE(hard.has_value());
  EXPECT_EQ(Columns(*hard), (std::vector<std::string>{"q", "d", "hard"}));
  EXPECT_EQ(ColumnField(*hard, 2), "dataset.loader_kwargs.negative_column");
}

TEST(TrainSpecTest, WhiteningIsAPowerForSentenceEmbeddingsOnly) {
  json r = Request({{"whitening", 0.4}});
  r["model"]["objective"] = "sentence-embedding";
  auto spec = ParseTrainSpec(r);
  ASSERT_TRUE(spec.has_value()) << spec.error().ToString();
  EXPECT_DOUBLE_EQ(spec->whitening, 0.4);
  r["model_train"].erase("whitening");
  EXPECT_DOUBLE_EQ(ParseTrainSpec(r)->whitening, 0.0);  // default: no projection
  for (json bad : {json(-0.1), json(1.5), json("half")}) {
    r["model_train"]["whitening"] = bad;
    auto e = ParseTrainSpec(r);
    ASSERT_FALSE(e.has_value()) << bad;
    EXPECT_EQ(e.error().field(), "model_train.whitening");
  }
  auto classifier = ParseTrainSpec(Request({{"whitening", 0.5}}));
  ASSERT_FALSE(classifier.has_value());
  EXPECT_EQ(classifier.error().field(), "model_train.whitening");
  EXPECT_NE(classifier.error().message().find("sentence-embedding"), std::string::npos);
}

TEST(TrainSpecTest, SimilarityIsCosineOrDot) {
  json r = Request();
  r["model"]["objective"] = "sentence-embedding";
  EXPECT_FALSE(ParseTrainSpec(r)->similarity.has_value());  // the starting model's, else cosine
  r["model_train"]["similarity"] = "dot";
  EXPECT_EQ(ParseTrainSpec(r)->similarity, "dot");
  r["model_train"]["whitening"] = 0.4;  // fitted and measured for cosine
  EXPECT_EQ(ParseTrainSpec(r).error().field(), "model_train.whitening");
  r["model_train"].erase("whitening");
  for (json bad : {json("euclidean"), json(1)}) {
    r["model_train"]["similarity"] = bad;
    auto e = ParseTrainSpec(r);
    ASSERT_FALSE(e.has_value()) << bad;
    EXPECT_EQ(e.error().field(), "model_train.similarity");
  }
}

TEST(TrainSpecTest, BadValuesNameTheField) {
  struct Case {
    json model_train, dataset;
    std::string field;
  };
  const json ds = {{"path", "d.csv"}};
  const std::vector<Case> cases = {
      {{{"optimizer", {{"name", "Adagrad"}}}}, ds, "model_train.optimizer.name"},
      {{{"batch_size", 0}}, ds, "model_train.batch_size"},
      {{{"precision", "bf16x"}}, ds, "model_train.precision"},
      {{{"precision", "float16"}}, ds, "model_train.precision"},
      {{{"freeze_backbone", true}}, ds, "model_train.freeze_backbone"},
      {{{"epochs", 0}}, ds, "model_train.epochs"},
      {{{"epochs", "ten"}}, ds, "model_train.epochs"},
      {{{"optimizer", {{"init_lr", 0}}}}, ds, "model_train.optimizer.init_lr"},
      {{{"gradient_accumulation_steps", 0}}, ds, "model_train.gradient_accumulation_steps"},
      {{{"mlm_probability", 1.5}}, ds, "model_train.mlm_probability"},
      {{{"early_stopping", {{"metric", "eval_perplexity"}}}}, ds, "model_train.early_stopping.metric"},
      {{{"load_best_model_at_end", "yes"}}, ds, "model_train.load_best_model_at_end"},
      {json::object(), {{"path", "d.csv"}, {"train_test_split", 0}}, "dataset.train_test_split"},
      {json::object(), {{"path", "d.csv"}, {"train_test_split", 0.95}}, "dataset.train_test_split"},
      {json::object(), {{"path", "d.csv"}, {"loader_kwargs", {{"label_column", ""}}}}, "dataset.loader_kwargs.label_column"},
      {json::object(), {{"path", "d.csv"}, {"augment", {{"typos", {{"copies", -1}}}}}}, "dataset.augment.typos.copies"},
  };
  for (const auto& c : cases) {
    auto spec = ParseTrainSpec(Request(c.model_train, c.dataset));
    ASSERT_FALSE(spec.has_value()) << c.field;
    EXPECT_EQ(spec.error().code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(spec.error().field(), c.field) << spec.error().ToString();
  }
  json r = Request();
  r["model"].erase("objective");
  EXPECT_EQ(ParseTrainSpec(r).error().field(), "model.objective");
  r["model"]["objective"] = "no-objective";  // embeddings train as sentence-embedding
  EXPECT_EQ(ParseTrainSpec(r).error().code(), StatusCode::kUnimplemented);
  r["model"]["objective"] = "question-answering";
  EXPECT_EQ(ParseTrainSpec(r)->objective, Objective::kQuestionAnswering);
  r["model"]["objective"] = "causal-lm";
  EXPECT_EQ(ParseTrainSpec(r)->objective, Objective::kCausalLm);
}

TEST(TrainSpecTest, ClassifierPoolingIsClsOrMeanForClassifiersOnly) {
  json r = Request();
  EXPECT_EQ(ParseTrainSpec(r)->classifier_pooling, std::nullopt);  // the model's own
  r["model"]["classifier_pooling"] = "mean";
  auto spec = ParseTrainSpec(r);
  ASSERT_TRUE(spec.has_value()) << spec.error().ToString();
  EXPECT_EQ(spec->classifier_pooling, nn::Pooling::kMean);
  r["model"]["classifier_pooling"] = "max";
  EXPECT_EQ(ParseTrainSpec(r).error().field(), "model.classifier_pooling");
  r["model"]["classifier_pooling"] = "mean";
  r["model"]["objective"] = "masked-lm";
  auto mlm = ParseTrainSpec(r);
  ASSERT_FALSE(mlm.has_value());
  EXPECT_EQ(mlm.error().field(), "model.classifier_pooling");
  EXPECT_NE(mlm.error().message().find("text-classification"), std::string::npos);
}

}  // namespace
}  // namespace mlaas::train

namespace mlaas::train {
namespace {

TEST(TrainSpecTest, ImageClassificationDefaultsAndKnobs) {
  auto spec = ParseTrainSpec({{"model", {{"objective", "image-classification"}}},
                              {"dataset", {{"path", "d"}, {"augment", {{"crop_padding", 4}, {"horizontal_flip", true}, {"rotation", 10}}}}},
                              {"model_train", {{"precision", "bfloat16"}, {"freeze_backbone", true}}}});
  ASSERT_TRUE(spec.has_value()) << spec.error().ToString();
  EXPECT_EQ(spec->batch_size, 64);
  EXPECT_DOUBLE_EQ(spec->optimizer.init_lr, 1e-3);
  EXPECT_EQ(spec->precision, Precision::kBFloat16);
  // Either spelling, for every objective; auto by default (bf16 only on a GPU that has it).
  for (const auto& [name, want] : std::vector<std::pair<std::string, Precision>>{
           {"bf16", Precision::kBFloat16}, {"fp32", Precision::kFloat32}, {"float32", Precision::kFloat32},
           {"auto", Precision::kAuto}}) {
    auto text = ParseTrainSpec({{"model", {{"objective", "text-classification"}}}, {"dataset", {{"path", "d.csv"}}},
                                {"model_train", {{"precision", name}}}});
    ASSERT_TRUE(text.has_value()) << name << ": " << text.error().ToString();
    EXPECT_EQ(text->precision, want) << name;
  }
  EXPECT_EQ(ParseTrainSpec({{"model", {{"objective", "text-classification"}}}, {"dataset", {{"path", "d.csv"}}}})->precision,
            Precision::kAuto);
  EXPECT_TRUE(spec->freeze_backbone);
  EXPECT_EQ(spec->image_augment.crop_padding, 4);
  EXPECT_TRUE(spec->image_augment.horizontal_flip);
  EXPECT_DOUBLE_EQ(spec->image_augment.rotation, 10);
  auto typo = ParseTrainSpec({{"model", {{"objective", "image-classification"}}},
                              {"dataset", {{"path", "d"}, {"augment", {{"typos", {{"copies", 1}}}}}}}});
  ASSERT_FALSE(typo.has_value());
  EXPECT_EQ(typo.error().field(), "dataset.augment.typos");
  auto metric = ParseTrainSpec({{"model", {{"objective", "image-classification"}}},
                                {"model_train", {{"early_stopping", {{"metric", "eval_perplexity"}}}}}});
  ASSERT_FALSE(metric.has_value());
  EXPECT_EQ(metric.error().field(), "model_train.early_stopping.metric");
}

}  // namespace
}  // namespace mlaas::train
