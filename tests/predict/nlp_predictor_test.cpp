#include "predict/nlp_predictor.h"

#include <gtest/gtest.h>

#include "nn/embedding_projection.h"
#include "nn/model.h"
#include "nn/static_embedding.h"
#include "predict/model_files.h"
#include "storage/local_object_store.h"
#include "testutil/temp_dir.h"
#include "testutil/tiny_model.h"
#include "tokenizers/tokenizer.h"
#include "tokenizers/trainer.h"

namespace mlaas::predict {
namespace {

using json = nlohmann::json;
using mlaas::testing::TempDir;
namespace fs = std::filesystem;

// A store whose Localize hands out temporary copies, as a remote (S3) store does.
class CopyingStore final : public storage::ObjectStore {
 public:
  explicit CopyingStore(storage::LocalObjectStore* inner, fs::path tmp) : inner_(inner), tmp_(std::move(tmp)) {}
  std::string_view storage_type() const override { return "s3"; }
  Result<storage::ObjectInfo> Stat(const std::string& k) override { return inner_->Stat(k); }
  Result<std::unique_ptr<storage::ObjectReader>> Open(const std::string& k) override { return inner_->Open(k); }
  Result<std::unique_ptr<storage::ObjectWriter>> Create(const std::string& k) override { return inner_->Create(k); }
  Status Delete(const std::string& k) override { return inner_->Delete(k); }
  Result<storage::ListResult> List(const storage::ListOptions& o) override {
    MLAAS_ASSIGN_OR_RETURN(storage::ListResult page, inner_->List(o));
    if (!injected_key.empty()) page.objects.push_back({injected_key, 4, 0, "e"});
    return page;
  }
  std::string injected_key;  // listed beside the real keys (S3 keys may be anything)
  Result<std::string> KeyForPath(std::string_view p) const override { return inner_->KeyForPath(p); }
  Result<storage::LocalizedPath> Localize(const std::string& k) override {
    MLAAS_ASSIGN_OR_RETURN(storage::LocalizedPath src, inner_->Localize(k));
    fs::path copy = tmp_ / NewUuid();
    fs::copy_file(src.path(), copy);
    ++copies;
    return storage::LocalizedPath(copy, true);
  }
  int copies = 0;

 private:
  storage::LocalObjectStore* inner_;
  fs::path tmp_;
};

class NlpPredictorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = storage::LocalObjectStore::Create(dir_ / "objects", dir_ / "tmp");
    ASSERT_TRUE(store.has_value());
    local_ = store->get();
    registry_.Add(std::move(*store));
    fs::create_directories(dir_ / "copies");
    auto remote = std::make_unique<CopyingStore>(local_, dir_ / "copies");
    remote_ = remote.get();
    registry_.Add(std::move(remote));
    PredictorOptions options;
    options.max_batch = 2;  // several batches even for a few texts
    predictor_ = std::make_unique<NlpPredictor>(registry_, options);
  }

  // Writes a tiny seeded model directory (+ vocab.txt) under objects/models/<name>.
  fs::path WriteModel(const std::string& name, nn::Architecture arch, nn::Objective objective,
                      std::vector<std::string> labels = {"neg", "pos", "other"}, std::string problem = {},
                      uint64_t seed = 3) {
    fs::path out = dir_ / "objects" / "models" / name;
    EXPECT_TRUE(mlaas::testing::WriteTinyModel(out, arch, objective, std::move(labels), std::move(problem), seed));
    return out;
  }

  json Request(const std::string& path, const std::string& objective, json texts, json extra = json::object()) {
    json input = {{"input_text", std::move(texts)}};
    input.update(extra);
    return {{"model", {{"path", path}, {"objective", objective}}}, {"predict_input", input}};
  }

  TempDir dir_;
  storage::StorageRegistry registry_;
  storage::LocalObjectStore* local_ = nullptr;
  CopyingStore* remote_ = nullptr;
  std::unique_ptr<NlpPredictor> predictor_;
};

// The classifier's probabilities computed directly: tokenizer + model, one text at a time.
std::vector<float> Direct(const fs::path& dir, const std::string& text) {
  auto loaded = nn::LoadModelDir(dir, std::nullopt);
  auto tok = tokenizers::Tokenizer::Load(dir);
  auto enc = (*tok)->Encode(text);
  std::vector<int64_t> ids(enc->ids.begin(), enc->ids.end());
  torch::InferenceMode guard;
  nn::EncoderInput in{torch::tensor(ids).unsqueeze(0), torch::ones({1, static_cast<int64_t>(ids.size())}, torch::kInt64),
                      torch::zeros({1, static_cast<int64_t>(ids.size())}, torch::kInt64)};
  loaded->model->eval();
  auto probs = torch::softmax(loaded->model->forward(in).logits, -1)[0].contiguous();
  return std::vector<float>(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
}

TEST_F(NlpPredictorTest, ClassifiesLikeTheModelItselfWhateverTheBatching) {
  for (auto arch : {nn::Architecture::kBert, nn::Architecture::kDistilBert, nn::Architecture::kRoberta}) {
    const std::string name = "cls-" + std::string(nn::ArchitectureName(arch));
    fs::path dir = WriteModel(name, arch, nn::Objective::kTextClassification);
    const std::vector<std::string> texts = {"the cat sat on the mat", "dog", "a big red dog ran fast , and the cat sat",
                                            "cats"};
    auto r = predictor_->Predict(Request("models/" + name, "text-classification", texts, {{"top_k", 3}}));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ((*r)["predictions"].size(), texts.size());
    EXPECT_EQ((*r)["model"]["model_type"], nn::ArchitectureName(arch));
    for (size_t i = 0; i < texts.size(); ++i) {
      const json& p = (*r)["predictions"][i];
      auto want = Direct(dir, texts[i]);
      const size_t best = std::max_element(want.begin(), want.end()) - want.begin();
      EXPECT_EQ(p["label"], std::vector<std::string>({"neg", "pos", "other"})[best]) << texts[i];
      EXPECT_NEAR(p["score"].get<double>(), want[best], 1e-5) << texts[i];
      ASSERT_EQ(p["top_k"].size(), 3u);
      double sum = 0, prev = 2;
      for (const auto& e : p["top_k"]) {
        EXPECT_LE(e["score"].get<double>(), prev);
        prev = e["score"].get<double>();
        sum += prev;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST_F(NlpPredictorTest, MultiLabelUsesSigmoid) {
  WriteModel("multi", nn::Architecture::kBert, nn::Objective::kTextClassification, {"a", "b", "c"},
             "multi_label_classification");
  auto r = predictor_->Predict(Request("models/multi", "text-classification", {"the cat"}, {{"top_k", 3}}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  double sum = 0;
  for (const auto& e : (*r)["predictions"][0]["top_k"]) sum += e["score"].get<double>();
  EXPECT_GT(std::abs(sum - 1.0), 1e-3);  // independent probabilities, not a distribution
}

TEST_F(NlpPredictorTest, FillsMasks) {
  for (auto arch : {nn::Architecture::kBert, nn::Architecture::kDistilBert, nn::Architecture::kRoberta}) {
    const std::string name = "mlm-" + std::string(nn::ArchitectureName(arch));
    WriteModel(name, arch, nn::Objective::kMaskedLm);
    auto r = predictor_->Predict(
        Request("models/" + name, "masked-lm", {"the [MASK] sat on the [MASK] .", "a big [MASK]", "[MASK]"}));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    const json& first = (*r)["predictions"][0];
    ASSERT_EQ(first["masks"].size(), 2u);
    EXPECT_EQ(first["masks"][0]["position"], 2);  // [CLS] the [MASK]
    EXPECT_EQ(first["masks"][1]["position"], 6);
    for (const auto& mask : first["masks"]) {
      ASSERT_EQ(mask["candidates"].size(), 5u);  // default top_k
      double prev = 2;
      for (const auto& c : mask["candidates"]) {
        EXPECT_LE(c["score"].get<double>(), prev);
        prev = c["score"].get<double>();
        EXPECT_EQ(c["token"], mlaas::testing::TinyVocab()[c["token_id"].get<size_t>()]);
      }
    }
    const std::string seq = first["sequence"];
    EXPECT_EQ(seq.find("[MASK]"), std::string::npos) << seq;
    EXPECT_EQ(seq.rfind("the", 0), 0u) << seq;  // the unmasked words stay ("the." when "." fills it)
    EXPECT_NE(seq.find(" sat on the"), std::string::npos) << seq;
    EXPECT_EQ((*r)["predictions"][2]["masks"].size(), 1u);

    auto k2 = predictor_->Predict(Request("models/" + name, "masked-lm", {"the [MASK]"}, {{"top_k", 2}}));
    ASSERT_TRUE(k2.has_value());
    EXPECT_EQ((*k2)["predictions"][0]["masks"][0]["candidates"].size(), 2u);
  }
  // Hundreds of masks in one pass go through the vocabulary a chunk at a time: each text's
  // candidates are those it gets alone.
  std::string many_masks = "the";
  for (int i = 0; i < 12; ++i) many_masks += " [MASK]";  // within the tiny model's positions
  const std::vector<std::string> texts(30, many_masks);
  auto batch = predictor_->Predict(Request("models/mlm-bert", "masked-lm", texts, {{"top_k", 1}}));
  ASSERT_TRUE(batch.has_value()) << batch.error().ToString();
  auto alone = predictor_->Predict(Request("models/mlm-bert", "masked-lm", {many_masks}, {{"top_k", 1}}));
  ASSERT_TRUE(alone.has_value()) << alone.error().ToString();
  for (size_t t = 0; t < texts.size(); ++t) {
    const json& masks = (*batch)["predictions"][t]["masks"];
    ASSERT_EQ(masks.size(), 12u);
    for (size_t m = 0; m < masks.size(); ++m)
      EXPECT_EQ(masks[m]["candidates"][0]["token_id"], (*alone)["predictions"][0]["masks"][m]["candidates"][0]["token_id"]);
  }
  // Masks times top_k are bounded a request (what the answer holds).
  auto too_many = predictor_->Predict(Request("models/mlm-bert", "masked-lm", texts, {{"top_k", 1000}}));
  ASSERT_FALSE(too_many.has_value());
  EXPECT_EQ(too_many.error().field(), "predict_input.top_k");
  EXPECT_NE(too_many.error().message().find("360 masks with top_k 1000"), std::string::npos) << too_many.error().ToString();

  auto none = predictor_->Predict(Request("models/mlm-bert", "masked-lm", {"the cat", "no mask here"}));
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().field(), "predict_input.input_text");
  EXPECT_NE(none.error().message().find("input_text[0]"), std::string::npos);
}

TEST_F(NlpPredictorTest, EmbedsWithMeanOrClsPooling) {
  WriteModel("emb", nn::Architecture::kBert, nn::Objective::kNoObjective);
  auto mean = predictor_->Predict(Request("models/emb", "no-objective", {"the cat sat", "dog"}));
  ASSERT_TRUE(mean.has_value()) << mean.error().ToString();
  const auto& e0 = (*mean)["predictions"][0]["embedding"];
  EXPECT_EQ(e0.size(), 32u);
  EXPECT_EQ((*mean)["model"]["pooling"], "mean");
  // Alone, the short text gives the same embedding as next to a longer one (padding ignored).
  auto alone = predictor_->Predict(Request("models/emb", "no-objective", {"dog"}));
  for (size_t i = 0; i < 32; ++i)
    EXPECT_NEAR((*alone)["predictions"][0]["embedding"][i].get<double>(),
                (*mean)["predictions"][1]["embedding"][i].get<double>(), 1e-5);
  auto cls = predictor_->Predict(Request("models/emb", "no-objective", {"the cat sat"}, {{"pooling", "cls"}}));
  ASSERT_TRUE(cls.has_value());
  EXPECT_NE((*cls)["predictions"][0]["embedding"], e0);
  auto norm = predictor_->Predict(Request("models/emb", "no-objective", {"the cat sat"}, {{"normalize", true}}));
  double sq = 0;
  for (const auto& v : (*norm)["predictions"][0]["embedding"]) sq += v.get<double>() * v.get<double>();
  EXPECT_NEAR(sq, 1.0, 1e-5);
  // An MLM checkpoint serves embeddings too (its head is simply not used).
  WriteModel("mlm-for-emb", nn::Architecture::kDistilBert, nn::Objective::kMaskedLm);
  auto from_mlm = predictor_->Predict(Request("models/mlm-for-emb", "no-objective", {"the cat"}));
  ASSERT_TRUE(from_mlm.has_value()) << from_mlm.error().ToString();
}

TEST_F(NlpPredictorTest, AppliesTheModelsDenseProjectionToEmbeddings) {
  // Two copies of one model, the second with a sentence-transformers Dense module.
  WriteModel("plain", nn::Architecture::kBert, nn::Objective::kNoObjective);
  const fs::path dir = WriteModel("projected", nn::Architecture::kBert, nn::Objective::kNoObjective);
  torch::manual_seed(5);
  nn::EmbeddingProjection projection{torch::randn({5, 32}), torch::randn({5})};
  ASSERT_TRUE(nn::SaveEmbeddingProjection(dir, projection).ok());
  const json texts = {"the cat sat", "dog"};
  auto plain = predictor_->Predict(Request("models/plain", "no-objective", texts));
  ASSERT_TRUE(plain.has_value()) << plain.error().ToString();
  for (const char* storage : {"local", "s3"}) {  // s3: a store that copies files (2_Dense/ included)
    SCOPED_TRACE(storage);
    json req = Request("models/projected", "no-objective", texts);
    req["model"]["storage_type"] = storage;
    auto projected = predictor_->Predict(req);
    ASSERT_TRUE(projected.has_value()) << projected.error().ToString();
    for (size_t r = 0; r < 2; ++r) {
      auto e = (*plain)["predictions"][r]["embedding"].get<std::vector<float>>();
      torch::Tensor want = projection.Apply(torch::tensor(e).unsqueeze(0))[0];
      auto got = (*projected)["predictions"][r]["embedding"].get<std::vector<float>>();
      ASSERT_EQ(got.size(), 5u);
      EXPECT_TRUE(torch::allclose(torch::tensor(got), want, 1e-4, 1e-4)) << torch::tensor(got) << want;
    }
  }
  // The projection was made for mean pooling: CLS pooling is refused, naming the field.
  auto cls = predictor_->Predict(Request("models/projected", "no-objective", {"dog"}, {{"pooling", "cls"}}));
  ASSERT_FALSE(cls.has_value());
  EXPECT_EQ(cls.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cls.error().field().find("pooling"), std::string::npos) << cls.error().ToString();
  auto norm = predictor_->Predict(Request("models/projected", "no-objective", {"dog"}, {{"normalize", true}}));
  ASSERT_TRUE(norm.has_value());
  double sq = 0;
  for (const auto& v : (*norm)["predictions"][0]["embedding"]) sq += v.get<double>() * v.get<double>();
  EXPECT_NEAR(sq, 1.0, 1e-5);
  // A projection that does not fit the model is a clear error.
  const fs::path bad = WriteModel("bad-projection", nn::Architecture::kBert, nn::Objective::kNoObjective);
  ASSERT_TRUE(nn::SaveEmbeddingProjection(bad, {torch::randn({5, 16}), torch::randn({5})}).ok());
  auto e = predictor_->Predict(Request("models/bad-projection", "no-objective", {"dog"}));
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.error().field(), "model.path");
  EXPECT_NE(e.error().message().find("hidden size 32"), std::string::npos) << e.error().message();
}

TEST_F(NlpPredictorTest, EmbedsWithAStaticEmbeddingModel) {
  // A static model over the tiny model's vocabulary: its embedding of a text is the BM25-weighted
  // sum of the rows of the text's tokens, special tokens left out.
  const fs::path dir = dir_ / "objects" / "models" / "static";
  fs::create_directories(dir);
  fs::copy_file(WriteModel("emb", nn::Architecture::kBert, nn::Objective::kNoObjective) / "vocab.txt", dir / "vocab.txt");
  auto tok = tokenizers::Tokenizer::Load(dir);
  ASSERT_TRUE(tok.has_value());
  nn::StaticEmbeddingConfig config;
  config.vocab_size = static_cast<int64_t>((*tok)->VocabSize());
  config.hidden_size = 8;
  config.average_length = 2;
  nn::StaticEmbedding model(config);
  ASSERT_TRUE(nn::SaveStaticEmbedding(*model, dir).ok());
  const std::vector<std::string> texts = {"the cat sat", "dog"};
  auto got = predictor_->Predict(Request("models/static", "sentence-embedding", texts));
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ((*got)["model"]["model_type"], "static-embedding");
  for (size_t r = 0; r < texts.size(); ++r) {
    auto enc = (*tok)->Encode(texts[r], std::nullopt, /*add_special_tokens=*/false);
    ASSERT_TRUE(enc.has_value());
    torch::NoGradGuard no_grad;
    torch::Tensor want = model->forward({std::vector<int64_t>(enc->ids.begin(), enc->ids.end())})[0];
    auto e = (*got)["predictions"][r]["embedding"].get<std::vector<float>>();
    ASSERT_EQ(e.size(), 8u);
    EXPECT_TRUE(torch::allclose(torch::tensor(e), want, 1e-5, 1e-5)) << torch::tensor(e) << want;
  }
  auto norm = predictor_->Predict(Request("models/static", "no-objective", {"dog"}, {{"normalize", true}}));
  ASSERT_TRUE(norm.has_value()) << norm.error().ToString();
  double sq = 0;
  for (const auto& v : (*norm)["predictions"][0]["embedding"]) sq += v.get<double>() * v.get<double>();
  EXPECT_NEAR(sq, 1.0, 1e-5);
  // It has no [CLS] to pool and no head to classify with.
  auto cls = predictor_->Predict(Request("models/static", "no-objective", {"dog"}, {{"pooling", "cls"}}));
  ASSERT_FALSE(cls.has_value());
  EXPECT_EQ(cls.error().field(), "pooling");
  auto classify = predictor_->Predict(Request("models/static", "text-classification", {"dog"}));
  ASSERT_FALSE(classify.has_value());
  EXPECT_EQ(classify.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(classify.error().field(), "model.objective");
  // A tokenizer saved with a shorter truncation (the length the model was trained at) keeps it:
  // the text's first 4 tokens (special tokens are not added, so not counted).
  const fs::path cut = dir_ / "objects" / "models" / "static-cut";
  fs::create_directories(cut);
  tokenizers::TruncationParams four;
  four.max_length = 4;
  (*tok)->set_truncation(four);
  for (const auto& [name, content] : tokenizers::TokenizerFiles(**tok)) {
    std::ofstream f(cut / name, std::ios::binary);
    f << content;
  }
  (*tok)->set_truncation(std::nullopt);
  ASSERT_TRUE(nn::SaveStaticEmbedding(*model, cut).ok());
  auto truncated = predictor_->Predict(Request("models/static-cut", "no-objective", {"the cat sat on the mat"}));
  ASSERT_TRUE(truncated.has_value()) << truncated.error().ToString();
  {
    auto enc = (*tok)->Encode("the cat sat on", std::nullopt, /*add_special_tokens=*/false);
    torch::NoGradGuard no_grad;
    torch::Tensor want = model->forward({std::vector<int64_t>(enc->ids.begin(), enc->ids.end())})[0];
    auto e = (*truncated)["predictions"][0]["embedding"].get<std::vector<float>>();
    EXPECT_TRUE(torch::allclose(torch::tensor(e), want, 1e-5, 1e-5)) << torch::tensor(e) << want;
  }
  // A model smaller than its tokenizer's vocabulary is a clear error.
  const fs::path small = dir_ / "objects" / "models" / "static-small";
  fs::create_directories(small);
  fs::copy_file(dir / "vocab.txt", small / "vocab.txt");
  config.vocab_size = 3;
  nn::StaticEmbedding tiny(config);
  ASSERT_TRUE(nn::SaveStaticEmbedding(*tiny, small).ok());
  auto e = predictor_->Predict(Request("models/static-small", "no-objective", {"dog"}));
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code(), StatusCode::kInvalidArgument);
}

TEST_F(NlpPredictorTest, TruncatesLongInputsToTheModelsMaximum) {
  WriteModel("short", nn::Architecture::kRoberta, nn::Objective::kTextClassification);
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "the cat sat on the mat . ";
  auto r = predictor_->Predict(Request("models/short", "text-classification", {long_text, "dog"}));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  // RoBERTa positions start after the padding id: 18 - (0 + 1) = 17 tokens; "dog" is 3.
  EXPECT_EQ((*r)["tokens"], 17 + 3);
}

TEST_F(NlpPredictorTest, CachesModelsUntilTheirFilesChange) {
  fs::path dir = WriteModel("cached", nn::Architecture::kBert, nn::Objective::kTextClassification);
  auto req = Request("models/cached", "text-classification", {"the cat"});
  auto a = predictor_->Predict(req);
  ASSERT_TRUE(a.has_value());
  auto b = predictor_->Predict(req);
  EXPECT_EQ(predictor_->cache_stats().misses, 1u);
  EXPECT_EQ(predictor_->cache_stats().hits, 1u);
  EXPECT_EQ((*a)["predictions"], (*b)["predictions"]);
  // New weights under the same path: reloaded.
  WriteModel("cached", nn::Architecture::kBert, nn::Objective::kTextClassification, {"neg", "pos", "other"}, {}, 99);
  auto c = predictor_->Predict(req);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(predictor_->cache_stats().misses, 2u);
  EXPECT_NE((*a)["predictions"][0]["score"], (*c)["predictions"][0]["score"]);
}

TEST_F(NlpPredictorTest, CacheEvictsTheLeastRecentlyUsedModelsBeyondItsMemoryBudget) {
  WriteModel("m1", nn::Architecture::kBert, nn::Objective::kTextClassification);
  WriteModel("m2", nn::Architecture::kBert, nn::Objective::kTextClassification);
  WriteModel("m3", nn::Architecture::kBert, nn::Objective::kTextClassification);
  auto one = [&](const std::string& name) {
    auto r = predictor_->Predict(Request("models/" + name, "text-classification", {"the cat"}));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
  };
  one("m1");
  const uint64_t model_bytes = predictor_->cache_stats().bytes;
  ASSERT_GT(model_bytes, 0u);
  PredictorOptions options;
  options.cache_capacity = 10;
  options.cache_max_bytes = 2 * model_bytes;  // room for two
  predictor_ = std::make_unique<NlpPredictor>(registry_, options);
  one("m1");
  one("m2");
  one("m1");  // m1 is now more recent than m2
  one("m3");  // evicts m2
  auto s = predictor_->cache_stats();
  EXPECT_EQ(s.models, 2u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.bytes, 2 * model_bytes);
  one("m1");  // still cached
  EXPECT_EQ(predictor_->cache_stats().hits, s.hits + 1);
  one("m2");  // loaded again
  EXPECT_EQ(predictor_->cache_stats().misses, s.misses + 1);
}

TEST_F(NlpPredictorTest, LoadsFromStoresThatCopyFiles) {
  WriteModel("remote", nn::Architecture::kDistilBert, nn::Objective::kTextClassification);
  json req = Request("models/remote", "text-classification", {"the cat"});
  auto local = predictor_->Predict(req);
  req["model"]["storage_type"] = "s3";
  auto remote = predictor_->Predict(req);
  ASSERT_TRUE(remote.has_value()) << remote.error().ToString();
  EXPECT_GE(remote_->copies, 3);  // config, weights, vocab
  EXPECT_EQ((*local)["predictions"], (*remote)["predictions"]);
  EXPECT_TRUE(fs::is_empty(dir_ / "copies"));  // scratch copies are gone after loading
}

// An S3 key under a model directory that is not a path ("..") is refused before any file is
// written: nothing escapes the scratch directory.
TEST_F(NlpPredictorTest, AListedKeyThatIsNotAPathIsRefused) {
  WriteModel("trap", nn::Architecture::kDistilBert, nn::Objective::kTextClassification);
  for (const char* bad : {"models/trap/../../../escaped.txt", "models/trap/a//b", "models/trap//abs"}) {
    remote_->injected_key = bad;
    json req = Request("models/trap", "text-classification", {"the cat"});
    req["model"]["storage_type"] = "s3";
    auto r = predictor_->Predict(req);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << r.error().ToString();
    EXPECT_NE(r.error().message().find("not a path"), std::string::npos) << r.error().ToString();
  }
  remote_->injected_key.clear();
  EXPECT_FALSE(fs::exists(dir_ / "escaped.txt"));
  EXPECT_FALSE(fs::exists(fs::temp_directory_path() / "escaped.txt"));
}

TEST_F(NlpPredictorTest, StartsFromAPresetWithATokenizer) {
  WriteModel("tok-holder", nn::Architecture::kBert, nn::Objective::kNoObjective);
  json req = {{"tokenizer", {{"path", "models/tok-holder/vocab.txt"}}},
              {"model", {{"preset", "bert-tiny"}, {"objective", "text-classification"}, {"labels", {"x", "y"}}}},
              {"predict_input", {{"input_text", {"the cat"}}}}};
  auto r = predictor_->Predict(req);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_TRUE((*r)["model"]["from_scratch"].get<bool>());
  EXPECT_TRUE((*r)["predictions"][0]["label"] == "x" || (*r)["predictions"][0]["label"] == "y");
  req.erase("tokenizer");
  auto no_tok = predictor_->Predict(req);
  ASSERT_FALSE(no_tok.has_value());
  EXPECT_EQ(no_tok.error().field(), "tokenizer");
}

TEST_F(NlpPredictorTest, BadRequestsAreClearErrors) {
  WriteModel("ok", nn::Architecture::kBert, nn::Objective::kTextClassification);
  struct Case {
    json request;
    StatusCode code;
    std::string field;
  };
  const Case cases[] = {
      {Request("models/missing", "text-classification", {"x"}), StatusCode::kInvalidArgument, "model.path"},
      {Request("models/ok", "question-answering", {"x"}), StatusCode::kInvalidArgument, "model.path"},  // no qa_outputs
      {Request("models/ok", "causal-lm", {"x"}), StatusCode::kInvalidArgument, "model.objective"},  // an encoder
      {Request("models/ok", "text-classification", json::array()), StatusCode::kInvalidArgument,
       "predict_input.input_text"},
      {Request("models/ok", "text-classification", {1, 2}), StatusCode::kInvalidArgument, "predict_input.input_text"},
      {Request("models/ok", "text-classification", {"x"}, {{"top_k", 0}}), StatusCode::kInvalidArgument,
       "predict_input.top_k"},
      {Request("models/ok", "no-objective", {"x"}, {{"pooling", "max"}}), StatusCode::kInvalidArgument,
       "predict_input.pooling"},
      {Request("models/ok", "text-classification", {"x"}, {{"device", "tpu"}}), StatusCode::kInvalidArgument,
       "predict_input.device"},
      {Request("../etc", "text-classification", {"x"}), StatusCode::kInvalidArgument, "model.path"},
      // One kind of input a request.
      {Request("models/ok", "text-classification", {"x"}, {{"question", {"q"}}, {"context", {"c"}}}),
       StatusCode::kInvalidArgument, "predict_input.question"},
      {Request("models/ok", "text-classification", {"x"}, {{"context", {"c"}}}), StatusCode::kInvalidArgument,
       "predict_input.context"},
      {Request("models/ok", "text-classification", {"x"}, {{"images", {"aGk="}}}), StatusCode::kInvalidArgument,
       "predict_input.images"},
      {json{{"model", {{"path", "models/ok"}, {"objective", "question-answering"}}},
            {"predict_input", {{"question", {"q"}}, {"context", {"c"}}, {"pair_text", {"p"}}}}},
       StatusCode::kInvalidArgument, "predict_input.pair_text"},
      {json{{"model", {{"path", "models/ok"}, {"objective", "question-answering"}}},
            {"predict_input", {{"context", {"c"}}}}},
       StatusCode::kInvalidArgument, "predict_input.question"},
      // A classification request for a masked-LM checkpoint: the classifier is missing.
      {Request("models/ok", "masked-lm", {"[MASK]"}), StatusCode::kInvalidArgument, "model.path"},
  };
  for (const auto& c : cases) {
    auto r = predictor_->Predict(c.request);
    ASSERT_FALSE(r.has_value()) << c.request.dump();
    EXPECT_EQ(r.error().code(), c.code) << c.request.dump() << " " << r.error().ToString();
    EXPECT_EQ(r.error().field(), c.field) << c.request.dump() << " " << r.error().ToString();
  }
  // Invalid UTF-8 is replaced, not fatal.
  auto bad_utf8 = predictor_->Predict(Request("models/ok", "text-classification", {std::string("the \xff cat")}));
  EXPECT_TRUE(bad_utf8.has_value());
}

TEST_F(NlpPredictorTest, Bfloat16StaysCloseToFloat32) {
  WriteModel("bf16-cls", nn::Architecture::kBert, nn::Objective::kTextClassification);
  WriteModel("bf16-emb", nn::Architecture::kRoberta, nn::Objective::kNoObjective);
  PredictorOptions options;
  options.dtype = "bfloat16";
  NlpPredictor bf16(registry_, options);
  // Of different lengths: the batch is padded, which the packed layers skip.
  const std::vector<std::string> texts = {"the cat sat on the mat", "a big red dog ran fast", "the dog"};
  auto a = predictor_->Predict(Request("models/bf16-cls", "text-classification", texts, {{"top_k", 3}}));
  auto b = bf16.Predict(Request("models/bf16-cls", "text-classification", texts, {{"top_k", 3}}));
  ASSERT_TRUE(b.has_value()) << b.error().ToString();
  EXPECT_EQ((*b)["model"]["dtype"], "bfloat16");
  for (size_t i = 0; i < texts.size(); ++i)
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR((*a)["predictions"][i]["top_k"][k]["score"].get<double>(),
                  (*b)["predictions"][i]["top_k"][k]["score"].get<double>(), 0.03);
  auto ea = predictor_->Predict(Request("models/bf16-emb", "no-objective", texts));
  auto eb = bf16.Predict(Request("models/bf16-emb", "no-objective", texts));
  ASSERT_TRUE(eb.has_value()) << eb.error().ToString();
  for (size_t i = 0; i < texts.size(); ++i) {
    double dot = 0, na = 0, nb = 0;
    const auto& x = (*ea)["predictions"][i]["embedding"];
    const auto& y = (*eb)["predictions"][i]["embedding"];
    for (size_t j = 0; j < x.size(); ++j) {
      dot += x[j].get<double>() * y[j].get<double>();
      na += x[j].get<double>() * x[j].get<double>();
      nb += y[j].get<double>() * y[j].get<double>();
    }
    EXPECT_GT(dot / std::sqrt(na * nb), 0.999);
  }
  PredictorOptions bad;
  bad.dtype = "int4";
  NlpPredictor invalid(registry_, bad);
  auto r = invalid.Predict(Request("models/bf16-cls", "text-classification", texts));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field(), "dtype");
}

TEST_F(NlpPredictorTest, PredictsFromALocalDirectory) {
  fs::path dir = WriteModel("local", nn::Architecture::kBert, nn::Objective::kTextClassification);
  auto r = predictor_->PredictLocal(dir, std::nullopt, "text-classification", {{"input_text", {"the cat"}}});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  auto want = Direct(dir, "the cat");
  EXPECT_NEAR((*r)["predictions"][0]["score"].get<double>(), *std::max_element(want.begin(), want.end()), 1e-5);
  auto missing = predictor_->PredictLocal(dir_ / "nope", std::nullopt, "text-classification", {{"input_text", {"x"}}});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().field(), "model.path");

  // A projection written into a local model directory after it was loaded is picked up (the
  // directory's fingerprint covers its subdirectories).
  fs::path emb = WriteModel("local-emb", nn::Architecture::kBert, nn::Objective::kNoObjective);
  auto before = predictor_->PredictLocal(emb, std::nullopt, "no-objective", {{"input_text", {"the cat"}}});
  ASSERT_TRUE(before.has_value()) << before.error().ToString();
  EXPECT_EQ((*before)["predictions"][0]["embedding"].size(), 32u);
  ASSERT_TRUE(nn::SaveEmbeddingProjection(emb, {torch::randn({3, 32}), torch::randn({3})}).ok());
  auto after = predictor_->PredictLocal(emb, std::nullopt, "no-objective", {{"input_text", {"the cat"}}});
  ASSERT_TRUE(after.has_value()) << after.error().ToString();
  EXPECT_EQ((*after)["predictions"][0]["embedding"].size(), 3u);
  // ... and so is a change of the projection alone.
  ASSERT_TRUE(nn::SaveEmbeddingProjection(emb, {torch::randn({4, 32}), torch::randn({4})}).ok());
  auto changed = predictor_->PredictLocal(emb, std::nullopt, "no-objective", {{"input_text", {"the cat"}}});
  ASSERT_TRUE(changed.has_value()) << changed.error().ToString();
  EXPECT_EQ((*changed)["predictions"][0]["embedding"].size(), 4u);
}

}  // namespace
}  // namespace mlaas::predict
