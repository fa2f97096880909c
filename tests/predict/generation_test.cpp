// Causal-LM prediction: a GPT-2 model behind a byte-level BPE tokenizer, through NlpPredictor
// (greedy and seeded sampling, stop strings, streaming, the prompt kept byte for byte with
// multi-byte characters, clear errors).
#include <gtest/gtest.h>

#include <fstream>

#include "nn/generate.h"
#include "nn/model.h"
#include "predict/nlp_predictor.h"
#include "storage/local_object_store.h"
#include "testutil/temp_dir.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/trainer.h"

namespace mlaas::predict {
namespace {

using json = nlohmann::json;
using mlaas::testing::TempDir;
namespace fs = std::filesystem;

class GenerationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::LocalObjectStore::Create(dir_ / "objects", dir_ / "tmp");
    ASSERT_TRUE(store.has_value());
    registry_.Add(std::move(*store));
    PredictorOptions options;
    options.max_batch = 2;  // several passes for three prompts
    predictor_ = std::make_unique<NlpPredictor>(registry_, options);
    model_dir_ = dir_ / "objects" / "models" / "gpt";
    fs::create_directories(model_dir_);

    // A byte-level BPE tokenizer (GPT-2's kind) with an end-of-text token.
    tokenizers::TrainSpec spec;
    spec.kind = tokenizers::TokenizerKind::kBpe;
    spec.lowercase = false;
    spec.trainer.vocab_size = 400;
    spec.trainer.special_tokens = {"<|endoftext|>"};
    auto pipeline = tokenizers::TrainingPipeline(spec);
    tokenizers::WordCounter counter(*pipeline);
    for (const char* l : {"the quick brown fox jumps over the lazy dog\n", "héllo wörld, ünïcødé ✓ text\n",
                          "once upon a time there was a model\n"}) {
      ASSERT_TRUE(counter.Add(l).ok());
    }
    auto tok = tokenizers::BuildTrainedTokenizer(spec, counter);
    ASSERT_TRUE(tok.has_value()) << tok.error().ToString();
    tokenizer_ = std::move(*tok);
    for (const auto& [name, content] : tokenizers::TokenizerFiles(*tokenizer_)) {
      std::ofstream f(model_dir_ / name, std::ios::binary);
      f << content;
    }
    eos_ = static_cast<int64_t>(*tokenizer_->TokenToId("<|endoftext|>"));

    // Random weights large enough that no two tokens tie.
    auto config = nn::ParseConfig(json{{"model_type", "gpt2"}, {"vocab_size", tokenizer_->VocabSize()},
                                       {"n_positions", 48}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4},
                                       {"bos_token_id", eos_}, {"eos_token_id", eos_}});
    ASSERT_TRUE(config.has_value()) << config.error().ToString();
    nn::TransformerModel model(*config, nn::Objective::kCausalLm);
    nn::InitWeights(*model, 5);
    {
      torch::NoGradGuard no_grad;
      torch::manual_seed(9);
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.3);
    }
    ASSERT_TRUE(nn::SaveModelDir(*model, model_dir_).ok());
  }

  json Request(json texts, json extra = json::object()) const {
    json input = {{"input_text", std::move(texts)}};
    input.update(extra);
    return {{"model", {{"path", "models/gpt"}}}, {"predict_input", input}};
  }

  // The model's own greedy tokens after `prompt`, one prompt alone.
  std::vector<int64_t> Greedy(const std::string& prompt, int64_t n) const {
    auto loaded = nn::LoadModelDir(model_dir_, std::nullopt);
    EXPECT_TRUE(loaded.has_value());
    loaded->model->eval();
    auto enc = tokenizer_->Encode(prompt, std::nullopt, /*add_special_tokens=*/false);
    nn::GenerationOptions greedy;
    greedy.max_new_tokens = n;
    const std::vector<std::vector<int64_t>> prompts = {std::vector<int64_t>(enc->ids.begin(), enc->ids.end())};
    return nn::Generate(*loaded->model, prompts, greedy)[0];
  }

  std::string Decode(const std::vector<int64_t>& ids) const {
    return *tokenizer_->Decode(std::vector<uint32_t>(ids.begin(), ids.end()), true);
  }

  TempDir dir_;
  storage::StorageRegistry registry_;
  std::unique_ptr<NlpPredictor> predictor_;
  fs::path model_dir_;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer_;
  int64_t eos_ = 0;
};

TEST_F(GenerationTest, GreedyReturnsThePromptFollowedByTheModelsOwnContinuation) {
  const std::vector<std::string> prompts = {"the quick brown", "héllo wörld, ünïcødé ✓", "once"};
  auto got = predictor_->Predict(Request(prompts, {{"max_new_tokens", 6}}));
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ((*got)["model"]["objective"], "causal-lm");
  EXPECT_EQ((*got)["model"]["model_type"], "gpt2");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const json& p = (*got)["predictions"][i];
    std::vector<int64_t> want = Greedy(prompts[i], 6);
    size_t n = want.size();
    if (auto eos = std::find(want.begin(), want.end(), eos_); eos != want.end()) n = static_cast<size_t>(eos - want.begin()) + 1;
    want.resize(n);
    // The prompt byte for byte, then the continuation the model chose alone (batched here).
    const std::string text = p["generated_text"];
    ASSERT_EQ(text.substr(0, prompts[i].size()), prompts[i]);
    EXPECT_EQ(p["new_tokens"], want.size()) << p.dump();
    auto enc = tokenizer_->Encode(prompts[i], std::nullopt, false);
    std::vector<int64_t> all(enc->ids.begin(), enc->ids.end());
    const std::string prompt_decoded = Decode(all);
    all.insert(all.end(), want.begin(), want.end());
    EXPECT_EQ(text, prompts[i] + Decode(all).substr(prompt_decoded.size())) << p.dump();
    EXPECT_EQ(p["finish_reason"], want.size() == 6 && want.back() != eos_ ? "length" : "eos") << p.dump();
  }
}

TEST_F(GenerationTest, TheSameSeedGivesTheSameTextAndAnotherSeedAnother) {
  const json sampling = {{"max_new_tokens", 24}, {"do_sample", true}, {"temperature", 1.5}, {"top_k", 100}};
  auto with_seed = [&](int seed) {
    json extra = sampling;
    extra["seed"] = seed;
    auto r = predictor_->Predict(Request({"the quick brown", "once upon"}, extra));
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r.has_value() ? (*r)["predictions"] : json();
  };
  const json a = with_seed(7), b = with_seed(7), c = with_seed(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // A prompt's text depends on the seed only, not on the prompts beside it.
  json alone = sampling;
  alone["seed"] = 7;
  auto single = predictor_->Predict(Request({"once upon"}, alone));
  ASSERT_TRUE(single.has_value());
  EXPECT_EQ((*single)["predictions"][0], a[1]);
  // Greedy by default: no sampling parameter, no randomness.
  auto g1 = predictor_->Predict(Request({"once upon"}, {{"max_new_tokens", 10}}));
  auto g2 = predictor_->Predict(Request({"once upon"}, {{"max_new_tokens", 10}, {"temperature", 0}}));
  ASSERT_TRUE(g1.has_value() && g2.has_value());
  EXPECT_EQ((*g1)["predictions"], (*g2)["predictions"]);
}

TEST_F(GenerationTest, StopStringsEndTheTextAfterTheirFirstOccurrence) {
  auto full = predictor_->Predict(Request({"the quick brown"}, {{"max_new_tokens", 16}}));
  ASSERT_TRUE(full.has_value()) << full.error().ToString();
  const std::string text = (*full)["predictions"][0]["generated_text"];
  const std::string continuation = text.substr(std::string("the quick brown").size());
  ASSERT_GE(continuation.size(), 4u) << text;
  const std::string stop = continuation.substr(2, 2);
  auto stopped = predictor_->Predict(Request({"the quick brown"}, {{"max_new_tokens", 16}, {"stop", {"\x01never", stop}}}));
  ASSERT_TRUE(stopped.has_value()) << stopped.error().ToString();
  const json& p = (*stopped)["predictions"][0];
  EXPECT_EQ(p["generated_text"], "the quick brown" + continuation.substr(0, continuation.find(stop) + stop.size()));
  EXPECT_EQ(p["finish_reason"], "stop");
}

TEST_F(GenerationTest, StreamedPiecesMakeUpEachContinuation) {
  const std::vector<std::string> prompts = {"héllo wörld", "the lazy", "once upon a time"};
  std::vector<std::string> streamed(prompts.size());
  int pieces = 0;
  auto r = predictor_->PredictStream(Request(prompts, {{"max_new_tokens", 12}}), [&](size_t i, const std::string& piece) {
    EXPECT_LT(i, prompts.size());
    streamed[i] += piece;
    ++pieces;
    return true;
  });
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_GE(pieces, 3);
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(prompts[i] + streamed[i], (*r)["predictions"][i]["generated_text"].get<std::string>()) << i;
  // A client that leaves stops the generation.
  int calls = 0;
  auto left = predictor_->PredictStream(Request({"the lazy"}, {{"max_new_tokens", 30}}), [&](size_t, const std::string&) {
    return ++calls < 2;
  });
  ASSERT_TRUE(left.has_value());
  EXPECT_LT((*left)["predictions"][0]["new_tokens"].get<int>(), 30);
  // ... and the passes after it do not start (three prompts: two passes of two here).
  calls = 0;
  auto gone = predictor_->PredictStream(Request({"the lazy", "once", "héllo"}, {{"max_new_tokens", 30}}),
                                        [&](size_t, const std::string&) { return ++calls < 2; });
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code(), StatusCode::kCancelled);
  EXPECT_LE(calls, 2);
}

TEST_F(GenerationTest, RefusesWhatItCannotGenerateNamingTheField) {
  // 48 positions: a long prompt leaves no room for 40 new tokens.
  const std::string long_prompt = "the quick brown fox jumps over the lazy dog the quick brown fox";
  auto check = predictor_->CheckStream(Request({long_prompt}, {{"max_new_tokens", 40}}));
  EXPECT_EQ(check.field(), "predict_input.max_new_tokens") << check.ToString();
  auto run = predictor_->Predict(Request({long_prompt}, {{"max_new_tokens", 40}}));
  ASSERT_FALSE(run.has_value());
  EXPECT_EQ(run.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(run.error().field(), "predict_input.max_new_tokens");
  EXPECT_TRUE(predictor_->CheckStream(Request({"once"}, {{"max_new_tokens", 10}})).ok());
  const std::pair<json, std::string> bad[] = {
      {{{"max_new_tokens", 0}}, "predict_input.max_new_tokens"},
      {{{"temperature", -1}}, "predict_input.temperature"},
      {{{"temperature", 1e-30}}, "predict_input.temperature"},
      {{{"top_p", 0}}, "predict_input.top_p"},
      {{{"seed", "x"}}, "predict_input.seed"},
      {{{"stop", {1}}}, "predict_input.stop"},
      {{{"stop", ""}}, "predict_input.stop"},
      {{{"do_sample", "yes"}}, "predict_input.do_sample"},
      {{{"stream", 1}}, "predict_input.stream"},
  };
  for (const auto& [extra, field] : bad) {
    auto r = predictor_->Predict(Request({"once"}, extra));
    ASSERT_FALSE(r.has_value()) << extra.dump();
    EXPECT_EQ(r.error().field(), field) << extra.dump() << ": " << r.error().ToString();
  }
  // A request generates at most kMaxGeneratedTokens: prompts x max_new_tokens.
  const std::vector<std::string> many(1024, "once");
  auto budget = predictor_->CheckStream(Request(many, {{"max_new_tokens", 40}}));
  EXPECT_EQ(budget.field(), "predict_input.max_new_tokens") << budget.ToString();
  EXPECT_NE(budget.message().find("40960 tokens; a request generates at most 32768"), std::string::npos)
      << budget.message();
  auto over = predictor_->Predict(Request(many, {{"max_new_tokens", 40}}));
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().field(), "predict_input.max_new_tokens");
  EXPECT_TRUE(predictor_->CheckStream(Request(many, {{"max_new_tokens", 32}})).ok());
  // An empty prompt starts from the beginning-of-text token.
  auto empty = predictor_->Predict(Request({""}, {{"max_new_tokens", 3}}));
  ASSERT_TRUE(empty.has_value()) << empty.error().ToString();
  // A classifier does not stream; a GPT-2 directory is not a classifier.
  auto as_classifier = predictor_->Predict(json{{"model", {{"path", "models/gpt"}, {"objective", "text-classification"}}},
                                                {"predict_input", {{"input_text", {"x"}}}}});
  ASSERT_FALSE(as_classifier.has_value());
  EXPECT_EQ(as_classifier.error().field(), "model.objective");
}

}  // namespace
}  // namespace mlaas::predict
