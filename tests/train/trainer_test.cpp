#include "train/trainer.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "nn/embedding_projection.h"
#include "nn/generate.h"
#include "nn/model.h"
#include "nn/static_embedding.h"
#include "predict/servable_model.h"
#include "testutil/temp_dir.h"
#include "tokenizers/tokenizer.h"
#include "train/text_fixture.h"

namespace mlaas::train {
namespace {

class TrainerTest : public TextTrainingFixture {};

TEST_F(TrainerTest, ClassificationReachesFullAccuracyOnASeparableSet) {
  TrainInputs in = Inputs(Objective::kTextClassification, "cls");
  in.spec.max_length = 24;  // below the model's 64: the saved tokenizer keeps it
  in.train = Sentiment(160, 1);
  in.eval = Sentiment(40, 2);
  std::vector<TrainProgress> seen;
  TrainCallbacks cb;
  cb.progress = [&](const TrainProgress& p) { seen.push_back(p); };
  auto r = RunTraining(in, cb);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& h = (*r)["history"];
  ASSERT_EQ(h["loss"].size(), 4u);
  EXPECT_LT(h["loss"][3].get<double>(), h["loss"][0].get<double>() * 0.5) << h.dump();
  EXPECT_EQ((*r)["evaluation"]["accuracy"], 1.0) << (*r)["evaluation"].dump();
  EXPECT_EQ((*r)["evaluation"]["macro_f1"], 1.0);
  EXPECT_EQ(h["eval_accuracy"].size(), 4u);
  EXPECT_EQ((*r)["dataset"]["samples_train"], 160);
  EXPECT_EQ((*r)["dataset"]["samples_test"], 40);
  EXPECT_EQ((*r)["dataset"]["labels"], json({"neg", "pos"}));
  EXPECT_GT((*r)["stats"]["tokens_per_s"].get<double>(), 0);
  EXPECT_EQ((*r)["stats"]["steps"], 4 * 20);
  // Progress: steps counted up to the total, the rate warmed up then decayed to ~0.
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().step, 80);
  EXPECT_EQ(seen.back().total_steps, 80);
  double peak = 0;
  for (const auto& p : seen) peak = std::max(peak, p.learning_rate);
  EXPECT_NEAR(peak, 3e-3, 1e-12);
  EXPECT_LT(seen.back().learning_rate, 1e-4);

  // The saved directory is a Hugging Face model with its labels and tokenizer.
  auto loaded = nn::LoadModelDir(in.output_dir, std::nullopt);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ(loaded->model->objective(), nn::Objective::kTextClassification);
  EXPECT_EQ(loaded->model->config().id2label, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_TRUE(fs::exists(in.output_dir / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(in.output_dir / "vocab.txt"));
  auto tok = tokenizers::Tokenizer::Load(in.output_dir / "tokenizer.json");
  ASSERT_TRUE(tok.has_value());
  ASSERT_TRUE((*tok)->truncation().has_value());
  EXPECT_EQ((*tok)->truncation()->max_length, 24u);
  EXPECT_EQ((*r)["dataset"]["max_length"], 24);
}

// model_train.precision bf16 on the CPU: the transformer's forward passes under autocast learn
// the separable set too; the weights stay (and are saved) float32, and autocast is off after.
TEST_F(TrainerTest, ABfloat16RunOfATransformerLearnsAndSavesFloat32Weights) {
  TrainInputs in = Inputs(Objective::kTextClassification, "bf16");
  in.spec.precision = Precision::kBFloat16;
  in.train = Sentiment(160, 1);
  in.eval = Sentiment(40, 2);
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["stats"]["precision"], "bfloat16");
  EXPECT_GE((*r)["evaluation"]["accuracy"].get<double>(), 0.95) << (*r)["evaluation"].dump();
  for (const auto& [name, w] : Weights(in.output_dir)) EXPECT_EQ(w.scalar_type(), torch::kFloat32) << name;
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  // auto on the CPU is float32.
  TrainInputs fp = Inputs(Objective::kTextClassification, "auto");
  fp.spec.epochs = 1;
  fp.train = Sentiment(16, 1);
  auto f = RunTraining(fp, {});
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ((*f)["stats"]["precision"], "float32");
}

TEST_F(TrainerTest, SameSeedSameHistory) {
  auto run = [&](const std::string& name, uint64_t seed) {
    TrainInputs in = Inputs(Objective::kTextClassification, name);
    in.spec.epochs = 2;
    in.spec.seed = seed;
    in.train = Sentiment(64, 1);
    in.eval = Sentiment(16, 2);
    auto r = RunTraining(in, {});
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r.has_value() ? (*r)["history"] : json();
  };
  const json a = run("a", 5), b = run("b", 5), c = run("c", 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a["loss"], c["loss"]);
}

TEST_F(TrainerTest, ConcurrentRunsKeepTheirOwnRandomStreams) {
  auto inputs = [&](const std::string& name, uint64_t seed) {
    TrainInputs in = Inputs(Objective::kTextClassification, name);
    in.spec.epochs = 2;
    in.spec.seed = seed;
    in.train = Sentiment(64, 1);
    in.eval = Sentiment(16, 2);
    return in;
  };
  auto alone = RunTraining(inputs("alone", 5), {});
  ASSERT_TRUE(alone.has_value());
  TrainInputs a = inputs("a", 5), b = inputs("b", 9);
  Result<json> ra = Internal("not run"), rb = Internal("not run");
  // Meanwhile something else in the process draws from libtorch's global generator.
  std::atomic<bool> done{false};
  std::atomic<int64_t> draws{0};
  std::thread noise([&] {
    while (!done) {
      (void)torch::rand({16});
      ++draws;
    }
  });
  std::thread ta([&] { ra = RunTraining(a, {}); });
  std::thread tb([&] { rb = RunTraining(b, {}); });
  ta.join();
  tb.join();
  done = true;
  noise.join();
  EXPECT_GT(draws.load(), 0);
  ASSERT_TRUE(ra.has_value()) << ra.error().ToString();
  ASSERT_TRUE(rb.has_value()) << rb.error().ToString();
  EXPECT_EQ((*ra)["history"], (*alone)["history"]);
}

TEST_F(TrainerTest, MaskedLmLossFallsAndAccuracyRises) {
  TrainInputs in = Inputs(Objective::kMaskedLm, "mlm");
  in.spec.epochs = 6;
  in.spec.mlm_probability = 0.2;
  // A tiny language: fixed phrases, so masked words are predictable from their context.
  const std::vector<std::string> phrases = {"the movie was very good", "the plot was really bad",
                                            "the actors and the plot", "it was a happy movie"};
  for (int i = 0; i < 120; ++i) in.train.push_back({phrases[static_cast<size_t>(i) % phrases.size()], "", ""});
  for (int i = 0; i < 24; ++i) in.eval.push_back({phrases[static_cast<size_t>(i) % phrases.size()], "", ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& h = (*r)["history"];
  EXPECT_LT(h["eval_loss"].back().get<double>(), h["eval_loss"][0].get<double>()) << h.dump();
  EXPECT_GT(h["eval_masked_accuracy"].back().get<double>(), h["eval_masked_accuracy"][0].get<double>()) << h.dump();
  EXPECT_GT((*r)["evaluation"]["masked_accuracy"].get<double>(), 0.3);
  EXPECT_NEAR((*r)["evaluation"]["perplexity"].get<double>(), std::exp((*r)["evaluation"]["loss"].get<double>()), 1e-6);
  auto loaded = nn::LoadModelDir(in.output_dir, std::nullopt);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->model->objective(), nn::Objective::kMaskedLm);
}

// Held-out texts with no token to mask measure nothing: no loss of 0 and perplexity of 1, which
// a sweep minimising eval_loss would rank best.
TEST_F(TrainerTest, MaskedLmWithNothingToMaskHeldOutReportsNoLoss) {
  TrainInputs in = Inputs(Objective::kMaskedLm, "mlm-empty");
  in.spec.epochs = 1;
  for (int i = 0; i < 16; ++i) in.train.push_back({"the movie was very good", "", ""});
  for (int i = 0; i < 4; ++i) in.eval.push_back({"", "", ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_FALSE((*r)["evaluation"].contains("loss")) << (*r)["evaluation"].dump();
  EXPECT_FALSE((*r)["evaluation"].contains("perplexity")) << (*r)["evaluation"].dump();
  EXPECT_FALSE((*r)["history"].contains("eval_loss")) << (*r)["history"].dump();
}

// Causal-LM on the GPT-2 decoder: a fixed little language is learnt (perplexity falls towards
// 1) and the saved model continues a prompt with the phrase it learnt, greedily.
TEST_F(TrainerTest, CausalLmLearnsItsLanguageAndContinuesPrompts) {
  TrainInputs in = Inputs(Objective::kCausalLm, "clm");
  in.model_block = {{"config", {{"model_type", "gpt2"}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4}, {"n_positions", 32}}}};
  in.spec.epochs = 12;
  in.spec.max_length = 12;  // blocks of 12 tokens, texts run across them
  const std::vector<std::string> phrases = {"the movie was very good", "the plot was really bad",
                                            "it was a happy movie"};
  for (int i = 0; i < 90; ++i) in.train.push_back({phrases[static_cast<size_t>(i) % phrases.size()], "", ""});
  for (int i = 0; i < 18; ++i) in.eval.push_back({phrases[static_cast<size_t>(i) % phrases.size()], "", ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& h = (*r)["history"];
  EXPECT_LT(h["eval_perplexity"].back().get<double>(), h["eval_perplexity"][0].get<double>() / 2) << h.dump();
  EXPECT_LT((*r)["evaluation"]["perplexity"].get<double>(), 3.0) << (*r)["evaluation"].dump();
  EXPECT_NEAR((*r)["evaluation"]["perplexity"].get<double>(), std::exp((*r)["evaluation"]["loss"].get<double>()), 1e-6);
  EXPECT_EQ((*r)["model"]["architecture"], "GPT2LMHeadModel");

  const json config = ReadJson(in.output_dir / "config.json");
  EXPECT_EQ(config["architectures"][0], "GPT2LMHeadModel");
  auto tok = tokenizers::Tokenizer::Load(in.output_dir);
  ASSERT_TRUE(tok.has_value());
  const auto sep = (*tok)->TokenToId("[SEP]");  // this vocabulary's end of text
  EXPECT_EQ(config["eos_token_id"], *sep);
  EXPECT_EQ(ReadJson(in.output_dir / "generation_config.json")["eos_token_id"], *sep);
  EXPECT_FALSE((*tok)->truncation().has_value());  // prompts are never cut

  auto loaded = nn::LoadModelDir(in.output_dir, std::nullopt);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ(loaded->model->objective(), nn::Objective::kCausalLm);
  auto prompt = (*tok)->Encode("the plot", std::nullopt, /*add_special_tokens=*/false);
  nn::GenerationOptions greedy;
  greedy.max_new_tokens = 3;
  loaded->model->eval();
  const std::vector<std::vector<int64_t>> prompts = {std::vector<int64_t>(prompt->ids.begin(), prompt->ids.end())};
  auto out = nn::Generate(*loaded->model, prompts, greedy);
  auto text = (*tok)->Decode(std::vector<uint32_t>(out[0].begin(), out[0].end()), true);
  EXPECT_EQ(*text, "was really bad");
}

// Token classification: sentiment words are entities (POS / NEG), "movie" (only ever right
// after a good word) continues its entity (I-POS), plurals ("goods") are two word pieces of which the first
// is labelled. The tagger learns it (entity F1 on the held-out split), saves a
// *ForTokenClassification directory with the tags as labels, and the saved model, served,
// finds the entities with their character offsets.
TEST_F(TrainerTest, TokenClassificationLearnsEntitiesAndServesThemWithOffsets) {
  TrainInputs in = Inputs(Objective::kTokenClassification, "ner");
  in.spec.epochs = 10;
  std::mt19937_64 rng(5);
  auto sentence = [&](bool plural) {
    TextExample e;
    const size_t len = 3 + rng() % 4;
    for (size_t k = 0; k < len; ++k) {
      const auto& w = kFiller[rng() % kFiller.size()];
      if (w == "movie") continue;  // "movie" only after a sentiment word
      e.words.push_back(w);
      e.tags.push_back("O");
    }
    // One sentiment word, or one of each: "movie" after a good one is part of its entity.
    const int first = static_cast<int>(rng() % 2), count = 1 + static_cast<int>(rng() % 2);
    for (int k = 0; k < count; ++k) {
      const bool good = (first + k) % 2 == 0;
      const size_t at = rng() % (e.words.size() + 1);
      std::string word = (good ? kGood : kBad)[rng() % 5] + (plural ? "s" : "");
      std::vector<std::string> words = {word}, tags = {good ? "B-POS" : "B-NEG"};
      if (good && rng() % 2 == 0) words.push_back("movie"), tags.push_back("I-POS");
      e.words.insert(e.words.begin() + static_cast<std::ptrdiff_t>(at), words.begin(), words.end());
      e.tags.insert(e.tags.begin() + static_cast<std::ptrdiff_t>(at), tags.begin(), tags.end());
    }
    e.text = Join(e.words, " ");
    return e;
  };
  for (int i = 0; i < 160; ++i) in.train.push_back(sentence(i % 3 == 0));
  for (int i = 0; i < 30; ++i) in.eval.push_back(sentence(i % 3 == 0));
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& ev = (*r)["evaluation"];
  EXPECT_GT(ev["f1"].get<double>(), 0.9) << ev.dump();
  EXPECT_GT(ev["precision"].get<double>(), 0.9) << ev.dump();
  EXPECT_GT(ev["recall"].get<double>(), 0.9) << ev.dump();
  EXPECT_TRUE(ev["per_type"].contains("POS") && ev["per_type"].contains("NEG")) << ev.dump();
  EXPECT_LT((*r)["history"]["eval_loss"].back().get<double>(), (*r)["history"]["eval_loss"][0].get<double>());
  EXPECT_EQ((*r)["history"]["eval_f1"].size(), 10u);
  EXPECT_EQ((*r)["model"]["architecture"], "BertForTokenClassification");
  EXPECT_EQ((*r)["dataset"]["labels"], json({"B-NEG", "B-POS", "I-POS", "O"}));
  const json config = ReadJson(in.output_dir / "config.json");
  EXPECT_EQ(config["architectures"][0], "BertForTokenClassification");
  EXPECT_EQ(config["id2label"]["2"], "I-POS");

  predict::LoadSpec spec;
  spec.model_dir = in.output_dir;
  spec.objective = "token-classification";
  auto model = predict::ServableModel::Load(spec);
  ASSERT_TRUE(model.has_value()) << model.error().ToString();
  EXPECT_EQ((*model)->info().labels, std::vector<std::string>({"B-NEG", "B-POS", "I-POS", "O"}));
  // A plural's "##s" piece is never labelled in training: simple, average and max read it as it
  // comes (alone, or as part of its word), first by its word's first piece.
  struct Case {
    predict::Aggregation aggregation;
    std::string text, entity;
    int start, end;
  };
  const std::vector<Case> cases = {
      {predict::Aggregation::kSimple, "the plot was good movie and it was awful", "good movie", 13, 23},
      {predict::Aggregation::kAverage, "the plot was good movie and it was awful", "good movie", 13, 23},
      {predict::Aggregation::kFirst, "the plot was goods movie and it was awful", "goods movie", 13, 24},
      {predict::Aggregation::kMax, "the plot was good movie and it was awful", "good movie", 13, 23},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(predict::AggregationName(c.aggregation)));
    auto rows = (*model)->EncodeTexts({c.text}, "predict_input.input_text");
    ASSERT_TRUE(rows.has_value()) << rows.error().ToString();
    predict::OutputOptions options;
    options.aggregation = c.aggregation;
    auto out = (*model)->Run({&(*rows)[0]}, options);
    ASSERT_TRUE(out.has_value()) << out.error().ToString();
    const json& entities = (*out)[0];
    ASSERT_EQ(entities.size(), 2u) << entities.dump();
    EXPECT_EQ(entities[0]["entity_group"], "POS") << entities.dump();
    EXPECT_EQ(entities[0]["word"], c.entity);
    EXPECT_EQ(entities[0]["start"], c.start);
    EXPECT_EQ(entities[0]["end"], c.end);
    EXPECT_GT(entities[0]["score"].get<double>(), 0.5);
    EXPECT_EQ(entities[1]["entity_group"], "NEG");
    EXPECT_EQ(entities[1]["word"], "awful");
    EXPECT_EQ(entities[1]["start"], c.text.find("awful"));
    EXPECT_EQ(entities[1]["end"], c.text.find("awful") + 5);
  }
  auto rows = (*model)->EncodeTexts({"the plot was good movie"}, "predict_input.input_text");
  ASSERT_TRUE(rows.has_value());
  predict::OutputOptions none;
  none.aggregation = predict::Aggregation::kNone;
  auto tokens = (*model)->Run({&(*rows)[0]}, none);
  ASSERT_TRUE(tokens.has_value());
  ASSERT_EQ((*tokens)[0].size(), 2u) << (*tokens)[0].dump();  // every token but the O ones
  EXPECT_EQ((*tokens)[0][0]["entity"], "B-POS");
  EXPECT_EQ((*tokens)[0][0]["word"], "good");
  EXPECT_EQ((*tokens)[0][0]["index"], 4);  // [CLS] the plot was good
  EXPECT_EQ((*tokens)[0][1]["entity"], "I-POS");
  EXPECT_EQ((*tokens)[0][1]["start"], 18);
}

TEST_F(TrainerTest, TokenClassificationLabelsAreTheTagsOfBothSplits) {
  TrainInputs in = Inputs(Objective::kTokenClassification, "ner-bad");
  TextExample e;
  e.words = {"the", "movie"};
  e.tags = {"O", "O"};
  e.text = "the movie";
  in.train = {e, e};
  in.eval = {e};
  in.eval[0].tags = {"O", "B-NEW"};  // a tag only in the held-out split is still a label
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["dataset"]["labels"], json({"B-NEW", "O"}));
}

// Next-sentence prediction: documents whose sentences always follow one another in the same
// cycle, each sentence ending with the word the next one starts with; pairs are drawn from them
// (half with a random second sentence). The NSP head learns which sentence follows which, and
// the saved model, served, tells a next sentence from a random one.
TEST_F(TrainerTest, NextSentencePredictionLearnsWhatFollowsAndServesPairs) {
  const std::vector<std::string> words = {"good", "nice", "sad", "bad", "happy", "angry", "great", "poor"};
  std::vector<std::string> cycle;
  for (size_t k = 0; k < words.size(); ++k) cycle.push_back(words[k] + " movie was " + words[(k + 1) % words.size()] + ".");
  std::mt19937_64 rng(9);
  auto documents = [&](int n) {
    std::vector<TextExample> out;
    for (int i = 0; i < n; ++i) {
      const size_t start = rng() % cycle.size();
      std::string doc;
      for (size_t k = 0; k < 5; ++k) doc += (k ? " " : "") + cycle[(start + k) % cycle.size()];
      out.push_back({doc, "", ""});
    }
    return out;
  };
  TrainInputs in = Inputs(Objective::kNextSentencePrediction, "nsp");
  in.spec.epochs = 40;
  in.train = SampleNextSentencePairs(documents(80), 1);
  in.eval = SampleNextSentencePairs(documents(16), 2);
  size_t next = 0;
  for (const auto& e : in.train) next += e.label == "is_next";
  EXPECT_GT(next, in.train.size() / 3);
  EXPECT_LT(next, in.train.size() * 2 / 3);
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_GT((*r)["evaluation"]["accuracy"].get<double>(), 0.85) << (*r)["evaluation"].dump()  << (*r)["history"].dump();
  EXPECT_EQ((*r)["model"]["architecture"], "BertForNextSentencePrediction");
  EXPECT_EQ((*r)["dataset"]["labels"], json({"is_next", "not_next"}));

  predict::LoadSpec spec;
  spec.model_dir = in.output_dir;
  spec.objective = "next-sentence-prediction";
  auto model = predict::ServableModel::Load(spec);
  ASSERT_TRUE(model.has_value()) << model.error().ToString();
  // Every sentence with the one that follows it, and with the one two further on.
  std::vector<std::string> firsts, seconds;
  for (size_t k = 0; k < cycle.size(); ++k) {
    firsts.push_back(cycle[k]);
    seconds.push_back(cycle[(k + 1) % cycle.size()]);
  }
  for (size_t k = 0; k < cycle.size(); ++k) {
    firsts.push_back(cycle[k]);
    seconds.push_back(cycle[(k + 3) % cycle.size()]);
  }
  auto rows = (*model)->EncodePairs(firsts, seconds, "predict_input.pair_text");
  ASSERT_TRUE(rows.has_value()) << rows.error().ToString();
  std::vector<const predict::ModelRow*> pointers;
  for (const auto& row : *rows) pointers.push_back(&row);
  auto out = (*model)->Run(pointers, {});
  ASSERT_TRUE(out.has_value()) << out.error().ToString();
  double follows_sum = 0, random_sum = 0;
  int right = 0;
  for (size_t i = 0; i < out->size(); ++i) {
    const bool follows = i < cycle.size();
    (follows ? follows_sum : random_sum) += (*out)[i]["score"].get<double>();
    right += (*out)[i]["is_next"].get<bool>() == follows;
    EXPECT_NEAR((*out)[i]["is_next"].get<bool>() ? 1.0 : 0.0, (*out)[i]["score"].get<double>() >= 0.5 ? 1.0 : 0.0, 1e-9);
  }
  EXPECT_GE(right, 12) << json(*out).dump();
  EXPECT_GT(follows_sum / 8, random_sum / 8 + 0.2) << json(*out).dump();
  auto single = (*model)->EncodeTexts({cycle[0]}, "predict_input.input_text");
  ASSERT_FALSE(single.has_value());
  EXPECT_EQ(single.error().field(), "predict_input.pair_text");
}

TEST_F(TrainerTest, NextSentencePredictionIsBertsHead) {
  TrainInputs in = Inputs(Objective::kNextSentencePrediction, "nsp-distil");
  in.model_block = {{"config", {{"model_type", "distilbert"}, {"dim", 32}, {"n_layers", 1}, {"n_heads", 4}, {"hidden_dim", 64}}}};
  in.train = {{"a.", "b.", "is_next"}, {"b.", "a.", "not_next"}};
  auto r = RunTraining(in, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "model.objective");
}

// Extractive question answering: a context holds a good and a bad word among fillers (and a
// word of multi-byte characters); the question "good" asks for the first, "bad" for the second.
// Contexts are longer than max_length, so each is cut into overlapping windows. The model learns
// to point at the answer (exact match on held-out questions), and, served, answers with the span's
// code point offsets.
TEST_F(TrainerTest, QuestionAnsweringFindsSpansAcrossWindows) {
  const std::vector<std::string> good = {"great", "fine", "nice", "happy"}, bad = {"awful", "poor", "sad", "angry"};
  std::mt19937_64 rng(13);
  auto question = [&]() {
    TextExample e;
    std::vector<std::string> words;
    const size_t len = 14 + rng() % 10;
    for (size_t k = 0; k < len; ++k) words.push_back(kFiller[rng() % kFiller.size()]);
    words.insert(words.begin() + static_cast<std::ptrdiff_t>(rng() % 5), "\xC3\xBCn\xC3\xAF" "code");
    const std::string g = good[rng() % good.size()], b = bad[rng() % bad.size()];
    words.insert(words.begin() + static_cast<std::ptrdiff_t>(rng() % words.size()), g);
    words.insert(words.begin() + static_cast<std::ptrdiff_t>(rng() % words.size()), b);
    e.pair = Join(words, " ");
    const bool ask_good = rng() % 2 == 0;
    e.text = ask_good ? "good" : "bad";
    const std::string& answer = ask_good ? g : b;
    const size_t at = (" " + e.pair + " ").find(" " + answer + " ");
    int64_t cp = 0;
    for (size_t i = 0; i < at; ++i) cp += (static_cast<unsigned char>(e.pair[i]) & 0xC0) != 0x80;
    e.answers = {answer};
    e.answer_start = cp;
    return e;
  };
  TrainInputs in = Inputs(Objective::kQuestionAnswering, "qa");
  in.spec.epochs = 15;
  in.spec.max_length = 20;  // contexts of 17-26 words: two to four windows each
  in.spec.doc_stride = 4;
  for (int i = 0; i < 200; ++i) in.train.push_back(question());
  for (int i = 0; i < 30; ++i) in.eval.push_back(question());
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& ev = (*r)["evaluation"];
  EXPECT_GT(ev["exact_match"].get<double>(), 0.8) << ev.dump();
  EXPECT_GT(ev["f1"].get<double>(), 0.8);
  EXPECT_GE(ev["windows"].get<int64_t>(), 2 * ev["questions"].get<int64_t>()) << ev.dump();  // long contexts
  EXPECT_EQ((*r)["model"]["architecture"], "BertForQuestionAnswering");

  predict::LoadSpec spec;
  spec.model_dir = in.output_dir;
  spec.objective = "question-answering";
  auto model = predict::ServableModel::Load(spec);
  ASSERT_TRUE(model.has_value()) << model.error().ToString();
  // "nice" starts at code point 49 ("ünïcode" is 7 code points, 9 bytes).
  const std::string context = "the movie \xC3\xBCn\xC3\xAF" "code was and it the plot was really nice and a very movie was awful";
  auto rows = (*model)->EncodeQuestions({"good", "bad"}, {context, context}, "predict_input.question");
  ASSERT_TRUE(rows.has_value()) << rows.error().ToString();
  ASSERT_GT(std::get<predict::QuestionRow>((*rows)[0]).windows.size(), 1u);
  auto out = (*model)->Run({&(*rows)[0], &(*rows)[1]}, {});
  ASSERT_TRUE(out.has_value()) << out.error().ToString();
  EXPECT_EQ((*out)[0]["answer"], "nice") << (*out)[0].dump();
  EXPECT_EQ((*out)[0]["start"], 49);
  EXPECT_EQ((*out)[0]["end"], 53);
  EXPECT_EQ((*out)[1]["answer"], "awful") << (*out)[1].dump();
  EXPECT_EQ((*out)[1]["end"], 80);
  EXPECT_GT((*out)[0]["score"].get<double>(), 0.3);
  std::string long_question;
  for (int i = 0; i < 12; ++i) long_question += "the movie ";
  auto too_long = (*model)->EncodeQuestions({long_question}, {context}, "predict_input.question");
  ASSERT_FALSE(too_long.has_value());  // no room left for context windows
  EXPECT_EQ(too_long.error().field(), "predict_input.question");
  auto as_texts = (*model)->EncodeTexts({"good"}, "predict_input.input_text");
  ASSERT_FALSE(as_texts.has_value());
  EXPECT_EQ(as_texts.error().field(), "predict_input.question");
}

// Longformer (sliding windows of 4 tokens, 2 a side): its classifier reads the sentence through
// the first token's global attention and learns the separable set; masked-LM learns from the
// windows; the saved directories are transformers' Longformer classes.
TEST_F(TrainerTest, LongformerLearnsClassificationAndMaskedLm) {
  const json config = {{"model_type", "longformer"}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                       {"num_attention_heads", 4}, {"intermediate_size", 64}, {"max_position_embeddings", 64},
                       {"attention_window", 4}};
  TrainInputs cls = Inputs(Objective::kTextClassification, "longformer-cls");
  cls.model_block = {{"config", config}};
  cls.train = Sentiment(160, 1);
  cls.eval = Sentiment(40, 2);
  auto r = RunTraining(cls, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_GE((*r)["evaluation"]["accuracy"].get<double>(), 0.9) << (*r)["history"].dump();
  auto loaded = nn::LoadModelDir(cls.output_dir, std::nullopt);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ(loaded->model->config().architecture, nn::Architecture::kLongformer);
  EXPECT_EQ(loaded->model->config().architectures, (std::vector<std::string>{"LongformerForSequenceClassification"}));
  EXPECT_EQ(loaded->model->config().attention_window, (std::vector<int64_t>{4, 4}));
  // Served, it scores as the model does (its first token's global attention included).
  predict::LoadSpec spec;
  spec.model_dir = cls.output_dir;
  spec.objective = "text-classification";
  auto served = predict::ServableModel::Load(spec);
  ASSERT_TRUE(served.has_value()) << served.error().ToString();
  auto tok = tokenizers::Tokenizer::Load(cls.output_dir / "tokenizer.json");
  ASSERT_TRUE(tok.has_value());
  for (const char* text : {"the movie was really good and the actors were fine", "it was a very sad plot"}) {
    auto rows = (*served)->EncodeTexts({text}, "predict_input.input_text");
    ASSERT_TRUE(rows.has_value()) << rows.error().ToString();
    auto out = (*served)->Run({&(*rows)[0]}, {});
    ASSERT_TRUE(out.has_value()) << out.error().ToString();
    auto enc = (*tok)->Encode(text);
    ASSERT_TRUE(enc.has_value());
    std::vector<int64_t> ids(enc->ids.begin(), enc->ids.end());
    nn::EncoderInput in;
    in.input_ids = torch::tensor(ids, torch::kInt64).unsqueeze(0);
    torch::Tensor probs;
    {
      torch::InferenceMode guard;
      loaded->model->eval();
      probs = torch::softmax(loaded->model->forward(in).logits[0], -1);
    }
    const int64_t best = probs.argmax().item<int64_t>();
    EXPECT_EQ((*out)[0]["label"], loaded->model->config().id2label[static_cast<size_t>(best)]) << text;
    EXPECT_NEAR((*out)[0]["score"].get<double>(), probs[best].item<double>(), 1e-5) << text;
  }

  TrainInputs mlm = Inputs(Objective::kMaskedLm, "longformer-mlm");
  mlm.model_block = {{"config", config}};
  mlm.spec.epochs = 6;
  mlm.spec.mlm_probability = 0.2;
  const std::vector<std::string> phrases = {"the movie was very good", "the plot was really bad",
                                            "the actors and the plot", "it was a happy movie"};
  for (int i = 0; i < 120; ++i) mlm.train.push_back({phrases[static_cast<size_t>(i) % phrases.size()], "", ""});
  for (int i = 0; i < 24; ++i) mlm.eval.push_back({phrases[static_cast<size_t>(i) % phrases.size()], "", ""});
  auto m = RunTraining(mlm, {});
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  const json& h = (*m)["history"];
  EXPECT_LT(h["eval_loss"].back().get<double>(), h["eval_loss"][0].get<double>()) << h.dump();
  EXPECT_GT((*m)["evaluation"]["masked_accuracy"].get<double>(), 0.3) << h.dump();
}

TEST_F(TrainerTest, CausalLmNeedsADecoder) {
  TrainInputs in = Inputs(Objective::kCausalLm, "clm-bert");  // the fixture's model is a BERT encoder
  for (int i = 0; i < 8; ++i) in.train.push_back({"the movie was good", "", ""});
  auto r = RunTraining(in, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "model.objective");
  EXPECT_NE(r.error().message().find("gpt2"), std::string::npos) << r.error().message();
}

TEST_F(TrainerTest, WholeWordMaskingMasksEveryPieceOfAWord) {
  TrainInputs in = Inputs(Objective::kMaskedLm, "wwm");
  in.spec.epochs = 1;
  in.spec.whole_word_masking = true;
  for (int i = 0; i < 16; ++i) in.train.push_back({"goods movies actors plots", "", ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["history"]["loss"].size(), 1u);
}

TEST_F(TrainerTest, SentenceEmbeddingsLearnToRetrieveTheirPair) {
  TrainInputs in = Inputs(Objective::kSentenceEmbedding, "emb");
  in.spec.epochs = 5;
  // Anchor: a sentiment word; positive: a sentence around a word of the same pair index.
  for (int rep = 0; rep < 6; ++rep) {
    for (size_t i = 0; i < kGood.size(); ++i) {
      in.train.push_back({kGood[i], "the movie was " + kBad[i], ""});
      in.train.push_back({kBad[i], "the plot was " + kGood[i], ""});
    }
  }
  for (size_t i = 0; i < kGood.size(); ++i) in.eval.push_back({kGood[i], "it was " + kBad[i], ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& h = (*r)["history"];
  EXPECT_LT(h["loss"].back().get<double>(), h["loss"][0].get<double>()) << h.dump();
  EXPECT_GE((*r)["evaluation"]["retrieval_accuracy"].get<double>(), 0.8) << (*r)["evaluation"].dump();
  auto loaded = nn::LoadModelDir(in.output_dir, std::nullopt);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->model->objective(), nn::Objective::kNoObjective);
}

// A static embedding model from scratch: anchors share no token with their positives, so the
// BM25-weighted random start cannot match them; training has to.
TrainInputs StaticInputs(TrainInputs in) {
  in.model_block = {{"config", {{"model_type", "static-embedding"}, {"hidden_size", 64}}}};
  in.spec.epochs = 5;
  in.spec.optimizer.init_lr = 2e-2;
  in.train.clear();
  for (int rep = 0; rep < 6; ++rep) {
    for (size_t i = 0; i < kGood.size(); ++i) {
      in.train.push_back({kGood[i], "the movie was " + kBad[i], ""});
      in.train.push_back({kBad[i], "the plot was " + kGood[i], ""});
    }
  }
  in.eval.clear();
  for (size_t i = 0; i < kGood.size(); ++i) in.eval.push_back({kGood[i], "it was " + kBad[i], ""});
  return in;
}

TEST_F(TrainerTest, AStaticEmbeddingModelLearnsToRetrieveTheirPair) {
  TrainInputs in = StaticInputs(Inputs(Objective::kSentenceEmbedding, "static"));
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& h = (*r)["history"];
  EXPECT_LT(h["loss"].back().get<double>(), h["loss"][0].get<double>()) << h.dump();
  EXPECT_GE((*r)["evaluation"]["retrieval_accuracy"].get<double>(), 0.8) << (*r)["evaluation"].dump();
  EXPECT_EQ((*r)["model"]["model_type"], "static-embedding");
  EXPECT_EQ((*r)["model"]["layers"], 0);
  EXPECT_EQ((*r)["model"]["from_scratch"], true);
  EXPECT_EQ((*r)["model"]["parameters"], 27 * 64);  // the tokenizer's 27 tokens x 64
  EXPECT_EQ(ReadJson(in.output_dir / "config_sentence_transformers.json"), json({{"similarity_fn_name", "cosine"}}));

  // The saved directory is a static embedding model (weighted by the positives' own four tokens:
  // no [CLS]/[SEP]) with the tokenizer, and embeds each eval anchor nearest its own positive.
  ASSERT_TRUE(nn::IsStaticEmbeddingDir(in.output_dir));
  EXPECT_TRUE(fs::exists(in.output_dir / "tokenizer.json"));
  auto model = nn::LoadStaticEmbedding(in.output_dir, "model");
  ASSERT_TRUE(model.has_value()) << model.error().ToString();
  EXPECT_DOUBLE_EQ((*model)->config().average_length, 4.0);
  auto tok = tokenizers::Tokenizer::Load(in.output_dir);
  ASSERT_TRUE(tok.has_value());
  auto ids = [&](const std::string& text) {
    auto e = (*tok)->Encode(text, std::nullopt, /*add_special_tokens=*/false);
    return std::vector<int64_t>(e->ids.begin(), e->ids.end());
  };
  std::vector<std::vector<int64_t>> anchors, positives;
  for (const auto& e : in.eval) anchors.push_back(ids(e.text)), positives.push_back(ids(e.pair));
  {
    torch::NoGradGuard no_grad;
    torch::Tensor scores = torch::matmul(torch::nn::functional::normalize((*model)->forward(anchors)),
                                         torch::nn::functional::normalize((*model)->forward(positives)).t());
    EXPECT_GE(scores.argmax(1).eq(torch::arange(5)).sum().item<int64_t>(), 4) << scores;
  }

  // Training goes on from the saved model, keeping its document statistics (these positives
  // are 3 tokens long: refitted, average_length would be 3).
  TrainInputs more = StaticInputs(Inputs(Objective::kSentenceEmbedding, "static-more"));
  more.model_dir = in.output_dir;
  more.spec.epochs = 1;
  for (auto& e : more.train) e.pair = "it was " + e.pair.substr(e.pair.rfind(' ') + 1);
  auto again = RunTraining(more, {});
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ((*again)["model"]["from_scratch"], false);
  EXPECT_GE((*again)["evaluation"]["retrieval_accuracy"].get<double>(), 0.8);
  auto continued = nn::LoadStaticEmbedding(more.output_dir, "model");
  ASSERT_TRUE(continued.has_value());
  EXPECT_DOUBLE_EQ((*continued)->config().average_length, 4.0);
}

TEST_F(TrainerTest, DotSimilarityTrainsInnerProductsAndIsRecorded) {
  // With similarity dot the loss compares unnormalised embeddings: retrieval by inner product
  // is learnt, and the model says so for the vector stores built with it.
  TrainInputs in = StaticInputs(Inputs(Objective::kSentenceEmbedding, "static-dot"));
  in.spec.similarity = "dot";
  in.spec.scale = 1;
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_GE((*r)["evaluation"]["retrieval_accuracy"].get<double>(), 0.8) << (*r)["evaluation"].dump();
  EXPECT_EQ(ReadJson(in.output_dir / "config_sentence_transformers.json"), json({{"similarity_fn_name", "dot"}}));
  // Training on from it keeps dot unless the request says otherwise; whitening is refused with it.
  TrainInputs on = StaticInputs(Inputs(Objective::kSentenceEmbedding, "static-dot-on"));
  on.model_dir = in.output_dir;
  on.spec.epochs = 1;
  ASSERT_TRUE(RunTraining(on, {}).has_value());
  EXPECT_EQ(ReadJson(on.output_dir / "config_sentence_transformers.json")["similarity_fn_name"], "dot");
  on.spec.similarity = "cosine";
  on.output_dir = dir_.path() / "static-dot-cos" / "model";
  on.checkpoint_dir = dir_.path() / "static-dot-cos" / "checkpoints";
  ASSERT_TRUE(RunTraining(on, {}).has_value());
  EXPECT_EQ(ReadJson(on.output_dir / "config_sentence_transformers.json")["similarity_fn_name"], "cosine");
  // The same run with cosine reaches a different loss: the similarity is what the loss used.
  TrainInputs cosine = StaticInputs(Inputs(Objective::kSentenceEmbedding, "static-cos1"));
  cosine.spec.scale = 1;
  auto c = RunTraining(cosine, {});
  ASSERT_TRUE(c.has_value());
  EXPECT_GT(std::abs((*c)["history"]["loss"][0].get<double>() - (*r)["history"]["loss"][0].get<double>()), 1e-3);
}

TEST_F(TrainerTest, AStaticEmbeddingModelRefusesWhatItCannotTrain) {
  auto field = [&](TrainInputs in) {  // the field of the error ("" when training succeeds)
    auto r = RunTraining(in, {});
    return r.has_value() ? std::string() : r.error().field();
  };
  TrainInputs in = StaticInputs(Inputs(Objective::kSentenceEmbedding, "static-bad"));
  TrainInputs mlm = in;
  mlm.spec.objective = Objective::kMaskedLm;
  EXPECT_EQ(field(mlm), "model.objective");
  TrainInputs white = in;
  white.spec.whitening = 0.5;
  EXPECT_EQ(field(white), "model_train.whitening");
  TrainInputs no_size = in;
  no_size.model_block["config"].erase("hidden_size");
  EXPECT_EQ(field(no_size), "model.config.hidden_size");
  TrainInputs small = in;
  small.model_block["config"]["vocab_size"] = 5;  // raised to the tokenizer's: trains
  EXPECT_EQ(field(small), "");
}

TEST_F(TrainerTest, AnInterruptedStaticEmbeddingRunResumesToTheSameWeights) {
  auto inputs = [&](const std::string& name) {
    TrainInputs in = StaticInputs(Inputs(Objective::kSentenceEmbedding, name));
    in.spec.epochs = 2;
    in.spec.checkpoint_steps = 3;
    return in;
  };
  TrainInputs full = inputs("static-full");
  ASSERT_TRUE(RunTraining(full, {}).has_value());
  TrainInputs part = inputs("static-part");
  int64_t steps = 0;
  TrainCallbacks stop;
  stop.progress = [&](const TrainProgress& p) { steps = std::max(steps, p.step); };
  stop.cancelled = [&] { return steps >= 4; };
  auto first = RunTraining(part, stop);
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().code(), StatusCode::kCancelled);
  auto second = RunTraining(part, {});
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ((*second)["stats"]["resumed_from_step"], 4);
  auto a = nn::LoadStaticEmbedding(full.output_dir, "full");
  auto b = nn::LoadStaticEmbedding(part.output_dir, "part");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(torch::allclose((*a)->embedding->weight, (*b)->embedding->weight, 1e-4, 1e-6));
  EXPECT_DOUBLE_EQ((*a)->config().average_length, (*b)->config().average_length);
}

TEST_F(TrainerTest, WhiteningSavesAProjectionFittedOnTheTrainingPositives) {
  TrainInputs in = Inputs(Objective::kSentenceEmbedding, "white");
  in.spec.epochs = 3;
  in.spec.whitening = 0.5;
  for (int rep = 0; rep < 4; ++rep) {
    for (size_t i = 0; i < kGood.size(); ++i) {
      in.train.push_back({kGood[i], "the movie was " + kBad[i] + " and " + kFiller[(i + rep) % kFiller.size()], ""});
      in.train.push_back({kBad[i], "the plot was " + kGood[i] + " and " + kFiller[(i + 2 * rep) % kFiller.size()], ""});
    }
  }
  for (size_t i = 0; i < kGood.size(); ++i) in.eval.push_back({kGood[i], "it was " + kBad[i], ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& e = (*r)["evaluation"];
  ASSERT_TRUE(e.contains("whitened_retrieval_accuracy")) << e.dump();
  auto projection = nn::LoadEmbeddingProjection(in.output_dir, 32, "model.path");
  ASSERT_TRUE(projection.has_value()) << projection.error().ToString();
  ASSERT_TRUE(projection->has_value());
  EXPECT_EQ(e["embedding_size"], (*projection)->out_features());
  EXPECT_LE((*projection)->out_features(), 32);
  EXPECT_GE((*projection)->out_features(), 2);

  // The projection whitens the pooled training positives: centred, identity covariance.
  auto loaded = nn::LoadModelDir(in.output_dir, std::nullopt);
  ASSERT_TRUE(loaded.has_value());
  auto tok = tokenizers::Tokenizer::Load(in.output_dir);
  ASSERT_TRUE(tok.has_value());
  torch::NoGradGuard no_grad;
  loaded->model->eval();
  auto pool = [&](const std::string& text) {
    auto enc = (*tok)->Encode(text);
    std::vector<int64_t> ids(enc->ids.begin(), enc->ids.end());
    const auto n = static_cast<int64_t>(ids.size());
    nn::EncoderInput x{torch::tensor(ids).unsqueeze(0), torch::ones({1, n}, torch::kInt64),
                       torch::zeros({1, n}, torch::kInt64)};
    return loaded->model->encoder->forward(x).last_hidden_state[0].mean(0);
  };
  std::vector<torch::Tensor> pooled;
  for (const auto& ex : in.train) pooled.push_back(pool(ex.pair));
  // The reported held-out accuracy is the projected embeddings' own.
  std::vector<torch::Tensor> anchors, positives;
  for (const auto& ex : in.eval) {
    anchors.push_back(pool(ex.text));
    positives.push_back(pool(ex.pair));
  }
  auto unit = [&](const std::vector<torch::Tensor>& v) {
    return torch::nn::functional::normalize((*projection)->Apply(torch::stack(v)),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  };
  torch::Tensor best = torch::matmul(unit(anchors), unit(positives).t()).argmax(1);
  const double accuracy = best.eq(torch::arange(best.size(0))).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(e["whitened_retrieval_accuracy"].get<double>(), accuracy, 1e-9) << e.dump();
  torch::Tensor y = (*projection)->Apply(torch::stack(pooled)).to(torch::kFloat64);
  y = y - y.mean(0);
  torch::Tensor cov = torch::matmul(y.t(), y) / static_cast<double>(y.size(0) - 1);
  EXPECT_TRUE(torch::allclose(cov, torch::eye(cov.size(0), torch::kFloat64), 1e-2, 1e-2)) << cov;
}

TEST_F(TrainerTest, AProjectionThatCannotBeFittedDoesNotCostTheTrainedModel) {
  // Every positive is the same text: no variance to whiten. The encoder is saved without a
  // projection and the evaluation says why.
  TrainInputs in = Inputs(Objective::kSentenceEmbedding, "flat");
  in.spec.epochs = 1;
  in.spec.whitening = 0.5;
  for (size_t i = 0; i < kGood.size(); ++i) in.train.push_back({kGood[i], "the movie", ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_NE((*r)["evaluation"].value("whitening_error", std::string()).find("variance"), std::string::npos)
      << (*r)["evaluation"].dump();
  EXPECT_TRUE(fs::exists(in.output_dir / "config.json"));
  EXPECT_FALSE(fs::exists(in.output_dir / "modules.json"));
}

TEST_F(TrainerTest, HardNegativesJoinTheInBatchNegatives) {
  // The same pairs with a hard negative on some rows (the other word of the pair): training
  // still learns the retrieval, and a batch scores its anchors against more candidates.
  TrainInputs in = Inputs(Objective::kSentenceEmbedding, "hard");
  in.spec.epochs = 5;
  in.spec.negative_column = "negative";
  for (int rep = 0; rep < 6; ++rep) {
    for (size_t i = 0; i < kGood.size(); ++i) {
      in.train.push_back({kGood[i], "the movie was " + kBad[i], "", i % 2 ? "the movie was " + kGood[i] : ""});
      in.train.push_back({kBad[i], "the plot was " + kGood[i], "", ""});
    }
  }
  for (size_t i = 0; i < kGood.size(); ++i) in.eval.push_back({kGood[i], "it was " + kBad[i], ""});
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  const json& h = (*r)["history"];
  EXPECT_LT(h["loss"].back().get<double>(), h["loss"][0].get<double>()) << h.dump();
  EXPECT_GE((*r)["evaluation"]["retrieval_accuracy"].get<double>(), 0.8) << (*r)["evaluation"].dump();
}

TEST_F(TrainerTest, AnInterruptedRunResumesToTheSameWeights) {
  auto inputs = [&](const std::string& name) {
    TrainInputs in = Inputs(Objective::kTextClassification, name);
    in.spec.epochs = 3;
    in.spec.checkpoint_steps = 4;
    in.train = Sentiment(80, 3);
    in.eval = Sentiment(16, 4);
    return in;
  };
  TrainInputs full = inputs("full");
  auto whole = RunTraining(full, {});
  ASSERT_TRUE(whole.has_value()) << whole.error().ToString();

  // Stopped mid-epoch (step 13 of 30, after the step-12 checkpoint): keeps a checkpoint.
  TrainInputs part = inputs("part");
  int64_t steps = 0;
  TrainCallbacks stop;
  stop.progress = [&](const TrainProgress& p) { steps = std::max(steps, p.step); };
  stop.cancelled = [&] { return steps >= 13; };
  auto first = RunTraining(part, stop);
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().code(), StatusCode::kCancelled);
  EXPECT_TRUE(fs::exists(part.checkpoint_dir / "current" / "state.json"));
  EXPECT_FALSE(fs::exists(part.output_dir / "config.json"));

  std::vector<std::string> logs;
  TrainCallbacks go;
  go.log = [&](std::string_view, const std::string& m) { logs.push_back(m); };
  auto second = RunTraining(part, go);
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ((*second)["stats"]["resumed_from_step"], 13);
  EXPECT_EQ((*second)["stats"]["steps"], 30);
  bool said = false;
  for (const auto& l : logs) said |= l.find("resuming from the checkpoint") != std::string::npos;
  EXPECT_TRUE(said);

  const json& a = (*whole)["history"];
  const json& b = (*second)["history"];
  ASSERT_EQ(a["loss"].size(), b["loss"].size());
  for (size_t e = 0; e < a["loss"].size(); ++e) {
    EXPECT_NEAR(a["loss"][e].get<double>(), b["loss"][e].get<double>(), 1e-5) << e;
    EXPECT_NEAR(a["eval_loss"][e].get<double>(), b["eval_loss"][e].get<double>(), 1e-5) << e;
  }
  auto wa = Weights(full.output_dir), wb = Weights(part.output_dir);
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) {
    ASSERT_TRUE(wb.count(name)) << name;
    EXPECT_TRUE(torch::allclose(t, wb[name], 1e-4, 1e-5)) << name;
  }
}

TEST_F(TrainerTest, FineTunesASavedEncoderWithANewHead) {
  TrainInputs mlm = Inputs(Objective::kMaskedLm, "pre");
  mlm.spec.epochs = 1;
  for (const auto& e : Sentiment(32, 7)) mlm.train.push_back({e.text, "", ""});
  ASSERT_TRUE(RunTraining(mlm, {}).has_value());

  TrainInputs cls = Inputs(Objective::kTextClassification, "fine");
  cls.model_dir = mlm.output_dir;
  cls.tokenizer = mlm.output_dir;
  cls.spec.epochs = 2;
  cls.train = Sentiment(64, 1);
  cls.eval = Sentiment(16, 2);
  auto r = RunTraining(cls, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_FALSE((*r)["model"]["from_scratch"].get<bool>());
  auto loaded = nn::LoadModelDir(cls.output_dir, std::nullopt);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->model->objective(), nn::Objective::kTextClassification);
}

TEST_F(TrainerTest, EarlyStoppingEndsARunThatStopsImproving) {
  TrainInputs in = Inputs(Objective::kTextClassification, "early");
  in.spec.epochs = 6;
  in.spec.early_stopping.patience = 2;
  in.spec.early_stopping.metric = "eval_accuracy";
  in.spec.early_stopping.min_delta = 2.0;  // no epoch can beat the first by this much
  in.train = Sentiment(32, 1);
  in.eval = Sentiment(8, 2);
  std::vector<std::string> logs;
  TrainCallbacks cb;
  cb.log = [&](std::string_view, const std::string& m) { logs.push_back(m); };
  auto r = RunTraining(in, cb);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["history"]["loss"].size(), 3u) << "the first epoch sets the best, two more without improvement";
  EXPECT_TRUE((*r)["stats"]["stopped_early"].get<bool>());
  EXPECT_NE(logs.back().find("early stopping"), std::string::npos) << logs.back();
}

TEST_F(TrainerTest, LoadBestModelAtEndSavesTheBestEpochAcrossAResume) {
  auto inputs = [&](const std::string& name, bool best) {
    TrainInputs in = Inputs(Objective::kTextClassification, name);
    in.spec.epochs = 3;
    in.spec.load_best_model_at_end = best;
    in.spec.early_stopping.metric = "eval_accuracy";
    in.spec.early_stopping.min_delta = 2.0;  // only the first epoch counts as an improvement
    in.train = Sentiment(32, 1);
    in.eval = Sentiment(8, 2);
    return in;
  };
  TrainInputs full = inputs("full", true);
  auto r = RunTraining(full, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["history"]["loss"].size(), 3u) << "no early stopping: patience is 0";
  EXPECT_EQ((*r)["stats"]["best_epoch"], 1);
  EXPECT_EQ((*r)["stats"]["best_metric"]["name"], "eval_accuracy");
  EXPECT_EQ((*r)["evaluation"]["loss"], (*r)["history"]["eval_loss"][0]) << "the evaluation is the kept epoch's";

  // The saved weights are the first epoch's: those of a run stopped right after it (its
  // epoch-end checkpoint), not those of the last epoch.
  TrainInputs cut = inputs("cut", false);
  bool evaluated = false;
  TrainCallbacks after_epoch1;
  after_epoch1.log = [&](std::string_view, const std::string& m) { evaluated |= m.rfind("epoch 1:", 0) == 0; };
  after_epoch1.cancelled = [&] { return evaluated; };
  ASSERT_FALSE(RunTraining(cut, after_epoch1).has_value());
  auto epoch1 = nn::LoadModelDir(full.output_dir, std::nullopt);
  ASSERT_TRUE(epoch1.has_value());
  Status loaded = nn::LoadWeights(*epoch1->model, cut.checkpoint_dir / "current");
  ASSERT_TRUE(loaded.ok()) << loaded.ToString();
  TrainInputs last = inputs("last", false);
  ASSERT_TRUE(RunTraining(last, {}).has_value());
  auto saved = Weights(full.output_dir), final_weights = Weights(last.output_dir);
  bool differs_from_last = false;
  for (const auto& p : epoch1->model->named_parameters()) {
    ASSERT_TRUE(saved.count(p.key())) << p.key();
    EXPECT_TRUE(torch::equal(saved[p.key()], p.value())) << p.key();
    differs_from_last |= !torch::equal(saved[p.key()], final_weights[p.key()]);
  }
  EXPECT_TRUE(differs_from_last);

  // Interrupted in epoch 2 and resumed: the best weights come back from the checkpoint.
  TrainInputs part = inputs("part", true);
  int64_t steps = 0;
  TrainCallbacks stop;
  stop.progress = [&](const TrainProgress& p) { steps = std::max(steps, p.step); };
  stop.cancelled = [&] { return steps >= 6; };
  ASSERT_FALSE(RunTraining(part, stop).has_value());
  auto resumed = RunTraining(part, {});
  ASSERT_TRUE(resumed.has_value()) << resumed.error().ToString();
  EXPECT_EQ((*resumed)["stats"]["best_epoch"], 1);
  auto again = Weights(part.output_dir);
  for (const auto& [name, t] : saved) EXPECT_TRUE(torch::allclose(t, again[name], 1e-5, 1e-6)) << name;
}

TEST_F(TrainerTest, GradientAccumulationTakesFewerSteps) {
  TrainInputs in = Inputs(Objective::kTextClassification, "accum");
  in.spec.epochs = 1;
  in.spec.batch_size = 4;
  in.spec.gradient_accumulation_steps = 3;
  in.train = Sentiment(40, 1);  // 10 batches -> 4 optimizer steps (the last one of a single batch)
  auto r = RunTraining(in, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)["stats"]["steps"], 4);
}

TEST_F(TrainerTest, BadDataNamesTheField) {
  TrainInputs one = Inputs(Objective::kTextClassification, "one");
  one.train = {{"good movie", "", "pos"}, {"great movie", "", "pos"}};
  auto r = RunTraining(one, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "dataset.loader_kwargs.label_column");

  TrainInputs empty = Inputs(Objective::kMaskedLm, "empty");
  r = RunTraining(empty, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "dataset.path");

  TrainInputs no_tok = Inputs(Objective::kMaskedLm, "notok");
  no_tok.train = {{"good movie", "", ""}};
  no_tok.tokenizer = dir_.path() / "missing.txt";
  r = RunTraining(no_tok, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "tokenizer.path");
}

}  // namespace
}  // namespace mlaas::train
