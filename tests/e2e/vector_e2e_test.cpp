// End-to-end: the vector-indexing task through the real server — a dataset's documents
// embedded by a model made with `mlaas model init`, saved as a vector store that loads back
// with its documents, metadata and manifest; searched (dense, lexical, hybrid, filtered),
// updated without a rebuild, and the same over a plain dataset; the CLI drives all of it;
// bad requests refused naming the field.
#include <gtest/gtest.h>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"
#include "vector/vector_store.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;

class VectorE2eTest : public ServerSuite<VectorE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--threads", "1"});
    const std::string objects = (dir_->path() / "data" / "objects").string();
    auto tok = TrainWordPieceTokenizer(*dir_, objects + "/tokenizers/wp");
    ASSERT_EQ(tok.exit_code, 0) << tok.out;
    dir_->Write("small.json", R"({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                                  "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64})");
    for (const char* objective : {"no-objective", "text-classification", "other"}) {
      const bool other = std::string(objective) == "other";  // another no-objective model
      std::vector<std::string> args = {"model", "init", "--config", (dir_->path() / "small.json").string(),
                                       "--objective", other ? "no-objective" : objective, "--tokenizer",
                                       objects + "/tokenizers/wp", "--output", objects + "/models/" + objective,
                                       "--seed", other ? "4" : "3"};
      if (std::string(objective) == "text-classification") args.insert(args.end(), {"--labels", "a,b"});
      auto r = RunMlaas(args);
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    std::string csv = "id,abstract,site\n";
    for (size_t i = 0; i < AffiliationCorpus().size(); ++i)
      csv += "doc" + std::to_string(i) + ",\"" + AffiliationCorpus()[i] + "\"," + (i < 3 ? "lab" : "physics") + "\n";
    dir_->Write("data/objects/docs.csv", csv);
    dir_->Write("data/objects/empty.csv", "id,abstract,site\n");
    dir_->Write("data/objects/dup.csv", "id,abstract\nx,one text\nx,another text\n");
    StartServer();
  }

  static json Request(const std::string& dataset, const std::string& save, json index = "Flat") {
    return {{"model", {{"path", "models/no-objective"}, {"objective", "no-objective"}}},
            {"dataset", {{"path", dataset}, {"loader_kwargs", {{"page_content_column", "abstract"}, {"id_column", "id"}}}}},
            {"vector_store_save", {{"path", save}, {"format", "vector_store"}, {"index", index}}}};
  }

  client::Response Post(const json& body) {
    return CallServer(*client_, "POST", "/api/v1/ml/nlp/vector/index", body.dump());
  }

  // Indexes docs.csv into `save` and waits for it.
  void Index(const std::string& save) {
    auto r = Post(Request("docs.csv", save, "Flat"));
    ASSERT_EQ(r.status, 202) << r.text;
    ASSERT_EQ(WaitForTaskEnd(*client_, r.body["task_id"])["task_status"], "succeeded");
  }

  static json Model() { return {{"path", "models/no-objective"}, {"objective", "no-objective"}}; }

  client::Response SearchStore(const std::string& store, json input) {
    json body = {{"model", Model()}, {"dataset", {{"path", store}, {"format", "vector_store"}}}, {"search_input", input}};
    return CallServer(*client_, "POST", "/api/v1/ml/nlp/vector/search", body.dump());
  }
};

TEST_F(VectorE2eTest, IndexesADatasetIntoAVectorStoreThatLoadsBack) {
  for (const char* type : {"Flat", "HNSW"}) {
    SCOPED_TRACE(type);
    const std::string save = std::string("stores/") + type;
    auto r = Post(Request("docs.csv", save, type));
    ASSERT_EQ(r.status, 202) << r.text;
    json task = WaitForTaskEnd(*client_, r.body["task_id"]);
    ASSERT_EQ(task["task_status"], "succeeded") << task.dump();
    EXPECT_EQ(task["documents"], AffiliationCorpus().size());
    EXPECT_EQ(task["dimension"], 32);
    EXPECT_GT(task["tokens"].get<int64_t>(), 0);
    EXPECT_GT(task["docs_per_second"].get<double>(), 0);
    EXPECT_EQ(task["vector_store"]["path"], save);
    auto store = vector::VectorStore::Load(dir_->path() / "data" / "objects" / save);
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    EXPECT_EQ((*store)->size(), AffiliationCorpus().size());
    const json m = (*store)->manifest();
    EXPECT_EQ(m["model"]["path"], "models/no-objective");
    EXPECT_EQ(m["pooling"], "mean");
    EXPECT_EQ(m["normalize"], true);
    EXPECT_EQ(m["index"]["type"], type);
    // Metadata filters find the documents of one site.
    auto hits = (*store)->Search(std::vector<float>(32, 0.1f), 10, {{"site", "lab"}});
    ASSERT_TRUE(hits.has_value());
    ASSERT_EQ((*hits)[0].size(), 3u);
    for (const auto& h : (*hits)[0]) {
      EXPECT_EQ(h.document.metadata["site"], "lab");
      EXPECT_EQ(h.document.page_content, AffiliationCorpus()[std::stoul(h.document.id.substr(3))]);
    }
  }
}

TEST_F(VectorE2eTest, SearchFindsTheDocumentAQueryRepeats) {
  auto r = Post(Request("docs.csv", "stores/search", "Flat"));
  ASSERT_EQ(r.status, 202) << r.text;
  ASSERT_EQ(WaitForTaskEnd(*client_, r.body["task_id"])["task_status"], "succeeded");
  auto search = [&](json model, const std::string& store, std::vector<std::string> queries, int top_k) {
    json body = {{"model", model},
                 {"dataset", {{"path", store}, {"format", "vector_store"}}},
                 {"search_input", {{"input_text", queries}, {"top_k", top_k}}}};
    return CallServer(*client_, "POST", "/api/v1/ml/nlp/vector/search", body.dump());
  };
  const json model = {{"path", "models/no-objective"}, {"objective", "no-objective"}};
  const auto& corpus = AffiliationCorpus();
  auto found = search(model, "stores/search", {corpus[1], corpus[4]}, 3);
  ASSERT_EQ(found.status, 200) << found.text;
  ASSERT_EQ(found.body["results"].size(), 2u);
  for (size_t q = 0; q < 2; ++q) {
    const json& hits = found.body["results"][q];
    ASSERT_EQ(hits.size(), 3u);
    EXPECT_EQ(hits[0]["page_content"], corpus[q == 0 ? 1 : 4]);
    EXPECT_NEAR(hits[0]["score"].get<double>(), 0.0, 1e-4);  // the same text: distance 0
    EXPECT_LE(hits[0]["score"].get<double>(), hits[1]["score"].get<double>());
    EXPECT_TRUE(hits[0]["metadata"].contains("site"));
  }
  auto other = search({{"path", "models/other"}, {"objective", "no-objective"}}, "stores/search", {"x"}, 2);
  EXPECT_EQ(other.status, 400) << other.text;
  EXPECT_EQ(other.body["error"]["field"], "model.path");
  auto not_a_store = search(model, "models/no-objective", {"x"}, 2);
  EXPECT_EQ(not_a_store.status, 400) << not_a_store.text;
  EXPECT_EQ(not_a_store.body["error"]["field"], "dataset.path");
  auto bad_k = search(model, "stores/search", {"x"}, 0);
  EXPECT_EQ(bad_k.status, 400) << bad_k.text;
  EXPECT_EQ(bad_k.body["error"]["field"], "search_input.top_k");
  // A truncated index file is a clear error, and the server keeps serving.
  const auto index = dir_->path() / "data" / "objects" / "stores" / "broken";
  std::filesystem::copy(dir_->path() / "data" / "objects" / "stores" / "search", index);
  std::filesystem::resize_file(index / "index.faiss", 100);
  auto broken = search(model, "stores/broken", {"x"}, 2);
  EXPECT_EQ(broken.status, 400) << broken.text;
  EXPECT_EQ(search(model, "stores/search", {"x"}, 1).status, 200);
}

TEST_F(VectorE2eTest, SemanticSearchOverAPlainDatasetFollowsTheDataset) {
  const auto& corpus = AffiliationCorpus();
  auto search = [&](json input, json loader = {{"page_content_column", "abstract"}, {"id_column", "id"}}) {
    json body = {{"model", Model()}, {"dataset", {{"path", "plain.csv"}, {"loader_kwargs", loader}}}, {"search_input", input}};
    return CallServer(*client_, "POST", "/api/v1/ml/nlp/search", body.dump());
  };
  std::string csv = "id,abstract,site\n";
  for (size_t i = 0; i < corpus.size(); ++i)
    csv += "p" + std::to_string(i) + ",\"" + corpus[i] + "\"," + (i < 3 ? "lab" : "physics") + "\n";
  dir_->Write("data/objects/plain.csv", csv);
  auto first = search({{"input_text", {corpus[2], corpus[5]}}, {"top_k", 2}});
  ASSERT_EQ(first.status, 200) << first.text;
  ASSERT_EQ(first.body["results"].size(), 2u);
  EXPECT_EQ(first.body["results"][0][0]["id"], "p2");
  EXPECT_NEAR(first.body["results"][0][0]["score"].get<double>(), 0.0, 1e-4);
  EXPECT_EQ(first.body["results"][1][0]["id"], "p5");
  EXPECT_EQ(first.body["results"][0][0]["metadata"]["site"], "lab");
  // Filters, lexical and hybrid ranking over the same (now cached) embeddings.
  auto lab = search({{"input_text", {corpus[4]}}, {"top_k", 5}, {"filter", {{"site", "lab"}}}});
  ASSERT_EQ(lab.status, 200) << lab.text;
  ASSERT_EQ(lab.body["results"][0].size(), 3u);
  for (const auto& h : lab.body["results"][0]) EXPECT_EQ(h["metadata"]["site"], "lab");
  auto lexical = search({{"input_text", {"Bari Orabona"}}, {"top_k", 3}, {"mode", "lexical"}});
  ASSERT_EQ(lexical.status, 200) << lexical.text;
  EXPECT_EQ(lexical.body["metric"], "bm25");
  ASSERT_EQ(lexical.body["results"][0].size(), 1u);  // no other document has these words
  EXPECT_EQ(lexical.body["results"][0][0]["id"], "p1");
  auto hybrid = search({{"input_text", {corpus[3]}}, {"top_k", 2}, {"mode", "hybrid"}});
  ASSERT_EQ(hybrid.status, 200) << hybrid.text;
  EXPECT_EQ(hybrid.body["metric"], "rrf");
  EXPECT_EQ(hybrid.body["results"][0][0]["id"], "p3");  // first in both rankings
  EXPECT_TRUE(hybrid.body["results"][0][0].contains("dense_score"));
  EXPECT_TRUE(hybrid.body["results"][0][0].contains("lexical_score"));
  // A new version of the dataset is embedded again: its new document is found.
  dir_->Write("data/objects/plain.csv", csv + "p9,\"a brand new neutrino telescope under the sea\",physics\n");
  auto updated = search({{"input_text", {"a brand new neutrino telescope under the sea"}}, {"top_k", 1}});
  ASSERT_EQ(updated.status, 200) << updated.text;
  EXPECT_EQ(updated.body["results"][0][0]["id"], "p9");
  // Errors name the field.
  auto no_column = search({{"input_text", {"x"}}}, {{"page_content_column", "text"}});
  EXPECT_EQ(no_column.status, 400);
  EXPECT_EQ(no_column.body["error"]["field"], "dataset.loader_kwargs.page_content_column") << no_column.text;
  auto bad_mode = search({{"input_text", {"x"}}, {"mode", "fuzzy"}});
  EXPECT_EQ(bad_mode.status, 400);
  EXPECT_EQ(bad_mode.body["error"]["field"], "search_input.mode") << bad_mode.text;
  auto bad_filter = search({{"input_text", {"x"}}, {"filter", {{"site", {1, 2}}}}});
  EXPECT_EQ(bad_filter.status, 400);
  EXPECT_EQ(bad_filter.body["error"]["field"], "search_input.filter.site") << bad_filter.text;
  dir_->Write("data/objects/header_only.csv", "id,abstract\n");
  json empty = {{"model", Model()},
                {"dataset", {{"path", "header_only.csv"}, {"loader_kwargs", {{"page_content_column", "abstract"}}}}},
                {"search_input", {{"input_text", {"x"}}}}};
  auto none = CallServer(*client_, "POST", "/api/v1/ml/nlp/search", empty.dump());
  EXPECT_EQ(none.status, 400);
  EXPECT_EQ(none.body["error"]["field"], "dataset.path") << none.text;
}

TEST_F(VectorE2eTest, DocumentsAddedAndRemovedChangeResultsWithoutARebuild) {
  Index("stores/live");
  const std::string text = "Zeta Institute for quantum optics, Oslo, Norway";
  const std::string docs = "/api/v1/vector-stores/stores/live/documents";
  auto added = CallServer(*client_, "POST", docs,
                          json{{"documents", {{{"id", "new1"}, {"page_content", text}, {"metadata", {{"site", "oslo"}}}},
                                              {{"page_content", "an unnamed extra document"}}}}}.dump());
  ASSERT_EQ(added.status, 200) << added.text;
  EXPECT_EQ(added.body["added"], 2);
  EXPECT_EQ(added.body["count"], AffiliationCorpus().size() + 2);
  ASSERT_EQ(added.body["ids"].size(), 2u);
  EXPECT_EQ(added.body["ids"][0], "new1");
  auto found = SearchStore("stores/live", {{"input_text", {text}}, {"top_k", 2}});
  ASSERT_EQ(found.status, 200) << found.text;
  EXPECT_EQ(found.body["results"][0][0]["id"], "new1");
  EXPECT_NEAR(found.body["results"][0][0]["score"].get<double>(), 0.0, 1e-4);
  EXPECT_EQ(found.body["results"][0][0]["metadata"]["site"], "oslo");
  auto manifest = CallServer(*client_, "GET", "/api/v1/vector-stores/stores/live", "");
  ASSERT_EQ(manifest.status, 200) << manifest.text;
  EXPECT_EQ(manifest.body["count"], AffiliationCorpus().size() + 2);
  EXPECT_EQ(manifest.body["model"]["path"], "models/no-objective");
  // The saved files hold the update too.
  auto reloaded = vector::VectorStore::Load(dir_->path() / "data" / "objects" / "stores" / "live");
  ASSERT_TRUE(reloaded.has_value());
  EXPECT_EQ((*reloaded)->size(), AffiliationCorpus().size() + 2);

  auto again = CallServer(*client_, "POST", docs, json{{"documents", {{{"id", "new1"}, {"page_content", "x"}}}}}.dump());
  EXPECT_EQ(again.status, 409) << again.text;
  auto removed = CallServer(*client_, "DELETE", docs, json{{"ids", {"new1", "never"}}}.dump());
  ASSERT_EQ(removed.status, 200) << removed.text;
  EXPECT_EQ(removed.body["removed"], 1);
  EXPECT_EQ(removed.body["count"], AffiliationCorpus().size() + 1);
  auto gone = SearchStore("stores/live", {{"input_text", {text}}, {"top_k", 3}});
  ASSERT_EQ(gone.status, 200) << gone.text;
  for (const auto& h : gone.body["results"][0]) EXPECT_NE(h["id"], "new1");

  auto not_a_store = CallServer(*client_, "POST", "/api/v1/vector-stores/models/no-objective/documents",
                                json{{"documents", {{{"page_content", "x"}}}}}.dump());
  EXPECT_EQ(not_a_store.status, 400) << not_a_store.text;
  EXPECT_EQ(not_a_store.body["error"]["field"], "store.path");
  auto no_text = CallServer(*client_, "POST", docs, json{{"documents", {{{"id", "z"}}}}}.dump());
  EXPECT_EQ(no_text.status, 400) << no_text.text;
  auto no_ids = CallServer(*client_, "DELETE", docs, json{{"ids", json::array()}}.dump());
  EXPECT_EQ(no_ids.status, 400) << no_ids.text;
}

TEST_F(VectorE2eTest, AWhitenedEmbeddingModelIndexesAndSearchesInItsOwnDimension) {
  // Sentence-embedding training with whitening writes a Dense module (2_Dense/); indexing and
  // search then work in its dimension. Retraining into the same path without whitening
  // removes the stale module.
  std::string pairs = "anchor,positive\n";
  for (int rep = 0; rep < 4; ++rep)
    for (const auto& doc : AffiliationCorpus())
      pairs += "\"" + doc.substr(0, 12 + 4 * rep) + "\",\"" + doc + "\"\n";
  dir_->Write("data/objects/pairs.csv", pairs);
  auto train = [&](double whitening) {
    json body = {{"model", {{"path", "models/no-objective"}, {"objective", "sentence-embedding"}}},
                 {"dataset", {{"path", "pairs.csv"}, {"train_test_split", 0.25}}},
                 {"model_train", {{"epochs", 1}, {"batch_size", 4}, {"threads", 1}, {"whitening", whitening}}},
                 {"model_save", {{"path", "models/whitened"}}}};
    auto r = CallServer(*client_, "POST", "/api/v1/ml/nlp/train/model", body.dump());
    EXPECT_EQ(r.status, 202) << r.text;
    json task = WaitForTaskEnd(*client_, r.body["task_id"]);
    EXPECT_EQ(task["task_status"], "succeeded") << task.dump();
    return task;
  };
  const auto model_dir = dir_->path() / "data" / "objects" / "models" / "whitened";
  json task = train(0.5);
  ASSERT_TRUE(task["evaluation"].contains("whitened_retrieval_accuracy")) << task.dump();
  const int64_t dim = task["evaluation"]["embedding_size"];
  EXPECT_GT(dim, 1);
  EXPECT_LT(dim, 32);  // at most one direction per distinct training document
  ASSERT_TRUE(std::filesystem::exists(model_dir / "modules.json"));
  ASSERT_TRUE(std::filesystem::exists(model_dir / "2_Dense" / "model.safetensors"));

  auto index = [&](const std::string& save) {
    json body = Request("docs.csv", save, "Flat");
    body["model"] = {{"path", "models/whitened"}, {"objective", "sentence-embedding"}};
    auto r = Post(body);
    EXPECT_EQ(r.status, 202) << r.text;
    json t = WaitForTaskEnd(*client_, r.body["task_id"]);
    EXPECT_EQ(t["task_status"], "succeeded") << t.dump();
    return t;
  };
  EXPECT_EQ(index("stores/whitened")["dimension"], dim);
  const std::string query = AffiliationCorpus()[4];
  json body = {{"model", {{"path", "models/whitened"}, {"objective", "sentence-embedding"}}},
               {"dataset", {{"path", "stores/whitened"}, {"format", "vector_store"}}},
               {"search_input", {{"input_text", {query}}, {"top_k", 2}}}};
  auto found = CallServer(*client_, "POST", "/api/v1/ml/nlp/vector/search", body.dump());
  ASSERT_EQ(found.status, 200) << found.text;
  EXPECT_EQ(found.body["results"][0][0]["page_content"], query);
  auto embedded = CallServer(*client_, "POST", "/api/v1/ml/nlp/predict",
                             json{{"model", {{"path", "models/whitened"}, {"objective", "no-objective"}}},
                                  {"predict_input", {{"input_text", {query}}}}}
                                 .dump());
  ASSERT_EQ(embedded.status, 200) << embedded.text;
  EXPECT_EQ(embedded.body["predictions"][0]["embedding"].size(), static_cast<size_t>(dim));

  train(0);
  EXPECT_FALSE(std::filesystem::exists(model_dir / "modules.json"));
  EXPECT_FALSE(std::filesystem::exists(model_dir / "2_Dense" / "model.safetensors"));
  EXPECT_EQ(index("stores/plain-again")["dimension"], 32);
}

TEST_F(VectorE2eTest, AStaticEmbeddingModelTrainsIndexesAndSearches) {
  // A static embedding model trained from scratch over HTTP (query-like prefixes of the
  // documents as anchors), then indexed with and searched.
  const auto& corpus = AffiliationCorpus();
  std::string pairs = "anchor,positive\n";
  for (int rep = 0; rep < 3; ++rep)
    for (const auto& doc : corpus) pairs += "\"" + doc.substr(0, 16 + 6 * rep) + "\",\"" + doc + "\"\n";
  dir_->Write("data/objects/static-pairs.csv", pairs);
  json train = {{"model", {{"config", {{"model_type", "static-embedding"}, {"hidden_size", 48}}}, {"objective", "sentence-embedding"}}},
                {"tokenizer", {{"path", "tokenizers/wp"}}},
                {"dataset", {{"path", "static-pairs.csv"}, {"train_test_split", 0.2}}},
                {"model_train", {{"epochs", 2}, {"batch_size", 4}, {"threads", 1}, {"optimizer", {{"init_lr", 1e-2}}}}},
                {"model_save", {{"path", "models/static"}}}};
  auto t = CallServer(*client_, "POST", "/api/v1/ml/nlp/train/model", train.dump());
  ASSERT_EQ(t.status, 202) << t.text;
  json trained = WaitForTaskEnd(*client_, t.body["task_id"]);
  ASSERT_EQ(trained["task_status"], "succeeded") << trained.dump();
  EXPECT_EQ(trained["model"]["model_type"], "static-embedding") << trained.dump();
  EXPECT_EQ(trained["model"]["hidden_size"], 48);
  EXPECT_EQ(trained["history"]["loss"].size(), 2u);
  EXPECT_TRUE(trained["evaluation"].contains("retrieval_accuracy")) << trained.dump();
  const int64_t dim = 48;
  json body = Request("docs.csv", "stores/static", "Flat");
  body["model"] = {{"path", "models/static"}, {"objective", "sentence-embedding"}};
  auto r = Post(body);
  ASSERT_EQ(r.status, 202) << r.text;
  json task = WaitForTaskEnd(*client_, r.body["task_id"]);
  ASSERT_EQ(task["task_status"], "succeeded") << task.dump();
  EXPECT_EQ(task["dimension"], dim);
  // A document finds itself at distance 0; a query-like prefix finds its document first.
  json search = {{"model", body["model"]},
                 {"dataset", {{"path", "stores/static"}, {"format", "vector_store"}}},
                 {"search_input", {{"input_text", {corpus[2], corpus[5].substr(0, 22)}}, {"top_k", 2}}}};
  auto found = CallServer(*client_, "POST", "/api/v1/ml/nlp/vector/search", search.dump());
  ASSERT_EQ(found.status, 200) << found.text;
  EXPECT_EQ(found.body["results"][0][0]["page_content"], corpus[2]);
  EXPECT_NEAR(found.body["results"][0][0]["score"].get<double>(), 0.0, 1e-4);
  EXPECT_EQ(found.body["results"][1][0]["page_content"], corpus[5]) << found.text;
  // It has no [CLS] to pool: a store asking for it fails with the reason.
  body["vector_store_save"]["path"] = "stores/static-cls";
  body["vector_store_save"]["pooling"] = "cls";
  auto cls = Post(body);
  ASSERT_EQ(cls.status, 202) << cls.text;
  json failed = WaitForTaskEnd(*client_, cls.body["task_id"]);
  EXPECT_EQ(failed["task_status"], "failed");
  EXPECT_NE(failed.dump().find("no [CLS] pooling"), std::string::npos) << failed.dump();

  // Trained for the inner product (similarity dot; here through the CLI), it is indexed and
  // searched so by default: embeddings at their own length, inner-product scores (higher is closer).
  dir_->Write("static.json", train["model"]["config"].dump());
  auto d = RunMlaas({"--server", server_->url(), "train", "--objective", "sentence-embedding", "--config",
                     (dir_->path() / "static.json").string(), "--tokenizer", "tokenizers/wp", "--dataset",
                     "static-pairs.csv", "--split", "0.2", "--save", "models/static-dot", "--epochs", "2",
                     "--batch-size", "4", "--lr", "1e-2", "--similarity", "dot", "--scale", "1", "--wait"});
  ASSERT_EQ(d.exit_code, 0) << d.out;
  EXPECT_EQ(json::parse(ReadFile(dir_->path() / "data" / "objects" / "models" / "static-dot" /
                                 "config_sentence_transformers.json"))["similarity_fn_name"],
            "dot");
  body = Request("docs.csv", "stores/static-dot", "Flat");
  body["model"] = {{"path", "models/static-dot"}, {"objective", "sentence-embedding"}};
  auto di = Post(body);
  ASSERT_EQ(di.status, 202) << di.text;
  json dot_task = WaitForTaskEnd(*client_, di.body["task_id"]);
  ASSERT_EQ(dot_task["task_status"], "succeeded") << dot_task.dump();
  EXPECT_EQ(dot_task["index"]["metric"], "inner_product") << dot_task.dump();
  json manifest = json::parse(ReadFile(dir_->path() / "data" / "objects" / "stores" / "static-dot" / "manifest.json"));
  EXPECT_EQ(manifest["normalize"], false) << manifest.dump();
  search["model"] = body["model"];
  search["dataset"]["path"] = "stores/static-dot";
  auto dot_found = CallServer(*client_, "POST", "/api/v1/ml/nlp/vector/search", search.dump());
  ASSERT_EQ(dot_found.status, 200) << dot_found.text;
  EXPECT_EQ(dot_found.body["metric"], "inner_product");
  EXPECT_GT(dot_found.body["results"][0][0]["score"].get<double>(), dot_found.body["results"][0][1]["score"].get<double>());
  json plain = {{"model", body["model"]},
                {"dataset", {{"path", "docs.csv"}, {"loader_kwargs", {{"page_content_column", "abstract"}, {"id_column", "id"}}}}},
                {"search_input", {{"input_text", {corpus[5].substr(0, 22)}}, {"top_k", 1}}}};
  auto over_plain = CallServer(*client_, "POST", "/api/v1/ml/nlp/search", plain.dump());
  ASSERT_EQ(over_plain.status, 200) << over_plain.text;
  EXPECT_EQ(over_plain.body["metric"], "inner_product");
  // The request still decides when it says.
  body["vector_store_save"]["path"] = "stores/static-dot-l2";
  body["vector_store_save"]["index"] = {{"type", "Flat"}, {"metric", "l2"}};
  body["vector_store_save"]["normalize"] = true;
  auto l2 = Post(body);
  ASSERT_EQ(l2.status, 202) << l2.text;
  json l2_task = WaitForTaskEnd(*client_, l2.body["task_id"]);
  EXPECT_EQ(l2_task["index"]["metric"], "l2") << l2_task.dump();
  EXPECT_EQ(json::parse(ReadFile(dir_->path() / "data" / "objects" / "stores" / "static-dot-l2" / "manifest.json"))["normalize"],
            true);
}

TEST_F(VectorE2eTest, TheCliIndexesSearchesAndUpdatesStores) {
  const std::string url = server_->url();
  auto index = RunMlaas({"--server", url, "index", "--model", "models/no-objective", "--dataset", "docs.csv",
                         "--text-column", "abstract", "--id-column", "id", "--save", "stores/cli", "--index", "HNSW",
                         "--wait"});
  ASSERT_EQ(index.exit_code, 0) << index.out;
  EXPECT_NE(index.out.find("vector store saved to stores/cli"), std::string::npos) << index.out;
  const auto& corpus = AffiliationCorpus();
  auto search = RunMlaas({"--server", url, "--json", "search", "--store", "stores/cli", "--model", "models/no-objective",
                          "-k", "2", corpus[0]});
  ASSERT_EQ(search.exit_code, 0) << search.out;
  json out = json::parse(search.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << search.out;
  EXPECT_EQ(out["results"][0][0]["id"], "doc0");
  auto table = RunMlaas({"--server", url, "search", "--store", "stores/cli", "--model", "models/no-objective",
                         "--mode", "hybrid", "--filter", "site=physics", corpus[0]});
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("RANK"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("doc0"), std::string::npos) << table.out;  // a lab document, filtered out
  auto plain = RunMlaas({"--server", url, "--json", "search", "--dataset", "docs.csv", "--text-column", "abstract",
                         "--id-column", "id", "--model", "models/no-objective", corpus[4]});
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_EQ(json::parse(plain.out)["results"][0][0]["id"], "doc4");

  auto add = RunMlaas({"--server", url, "vector-store", "add", "stores/cli", "--text", "a cli added document"});
  ASSERT_EQ(add.exit_code, 0) << add.out;
  EXPECT_NE(add.out.find("added 1 documents"), std::string::npos) << add.out;
  auto show = RunMlaas({"--server", url, "--json", "vector-store", "show", "stores/cli"});
  ASSERT_EQ(show.exit_code, 0) << show.out;
  EXPECT_EQ(json::parse(show.out)["count"], corpus.size() + 1);
  auto rm = RunMlaas({"--server", url, "vector-store", "rm", "stores/cli", "doc0"});
  ASSERT_EQ(rm.exit_code, 0) << rm.out;
  EXPECT_NE(rm.out.find("removed 1 of 1"), std::string::npos) << rm.out;
  auto bad = RunMlaas({"--server", url, "search", "--store", "stores/cli", "--dataset", "docs.csv", "--model", "m", "q"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  auto missing = RunMlaas({"--server", url, "search", "--store", "stores/none", "--model", "models/no-objective", "q"});
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_NE(missing.out.find("dataset.path"), std::string::npos) << missing.out;
}

TEST_F(VectorE2eTest, BadRequestsNameTheField) {
  struct Case {
    json body;
    std::string field;
  };
  json missing_column = Request("docs.csv", "stores/x");
  missing_column["dataset"]["loader_kwargs"]["page_content_column"] = "text";
  json classifier = Request("docs.csv", "stores/x");
  classifier["model"] = {{"path", "models/text-classification"}, {"objective", "text-classification"}};
  json no_model = Request("docs.csv", "stores/x");
  no_model["model"]["path"] = "models/none";
  const std::vector<Case> cases = {{missing_column, "dataset.loader_kwargs.page_content_column"},
                                   {classifier, "model.objective"},
                                   {no_model, "model.path"},
                                   {Request("nothing.csv", "stores/x"), "dataset.path"},
                                   {Request("docs.csv", "stores/x", "LSH"), "vector_store_save.index.type"},
                                   {Request("docs.csv", "stores/x", {{"type", "IVF"}, {"nlist", 0}}), "vector_store_save.index.nlist"},
                                   // Saved into a model's folder (its own, or another's), a store would change the
                                   // model that every store built with it fingerprints.
                                   {Request("docs.csv", "models/no-objective"), "vector_store_save.path"},
                                   {Request("docs.csv", "models/no-objective/store"), "vector_store_save.path"},
                                   {Request("docs.csv", "models/text-classification"), "vector_store_save.path"}};
  for (const auto& c : cases) {
    auto r = Post(c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump() << ": " << r.text;
    EXPECT_EQ(r.body["error"]["field"], c.field) << r.text;
  }
  // A malformed record in a searched dataset names it.
  dir_->Write("data/objects/broken.jsonl", "{\"abstract\": \"fine\", \"id\": \"a\"}\n{broken\n");
  auto broken = CallServer(*client_, "POST", "/api/v1/ml/nlp/search",
                           json{{"model", Model()},
                                {"dataset", {{"path", "broken.jsonl"}, {"loader_kwargs", {{"page_content_column", "abstract"}}}}},
                                {"search_input", {{"input_text", {"x"}}}}}
                               .dump());
  EXPECT_EQ(broken.status, 400) << broken.text;
  EXPECT_EQ(broken.body["error"].value("field", ""), "dataset.path") << broken.text;
  // Problems only the data shows fail the task, naming the field.
  for (const auto& [dataset, field] : {std::pair{"empty.csv", "dataset.path"}, {"dup.csv", "dataset.loader_kwargs.id_column"}}) {
    json body = Request(dataset, "stores/y");
    if (std::string(dataset) == "dup.csv") body["dataset"]["loader_kwargs"] = {{"page_content_column", "abstract"}, {"id_column", "id"}};
    auto r = Post(body);
    ASSERT_EQ(r.status, 202) << r.text;
    json task = WaitForTaskEnd(*client_, r.body["task_id"]);
    EXPECT_EQ(task["task_status"], "failed") << task.dump();
    EXPECT_EQ(task["error"]["field"], field) << task.dump();
  }
}

// Hostile stores and oversized plain datasets (issue 17): a store uploaded with an index file
// declaring 2^38 vectors is a 400 naming the store, not an allocation; edits leave the rest of
// the store's prefix alone; a plain dataset over the inline limit is refused before embedding.
TEST_F(VectorE2eTest, HostileStoresAndLargeDatasetsAreRefusedAndEditsKeepOtherObjects) {
  Index("stores/hostile");
  const auto root = dir_->path() / "data" / "objects" / "stores" / "hostile";
  std::string index;
  const auto put = [&](auto v) { index.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (const char* fourcc : {"IxM2", "IxF2"}) {  // an id map over a flat index, each "holding" 2^38 vectors
    index.append(fourcc, 4);
    put(int32_t{32});
    put(int64_t{1} << 38);
    put(int64_t{0});
    put(int64_t{0});
    put(uint8_t{1});
    put(int32_t{1});
  }
  put(uint64_t{32} << 38);
  dir_->Write("data/objects/stores/hostile/index.faiss", index);
  json manifest = json::parse(ReadFile(root / "manifest.json"));
  manifest.erase("index_checksum");  // as a store from before checksums
  dir_->Write("data/objects/stores/hostile/manifest.json", manifest.dump());
  auto r = SearchStore("stores/hostile", {{"input_text", {"x"}}, {"top_k", 1}});
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_EQ(r.body["error"]["field"], "dataset.path") << r.text;
  const std::string message = r.body["error"]["message"];
  EXPECT_NE(message.find("stores/hostile"), std::string::npos) << message;
  EXPECT_NE(message.find("index.faiss"), std::string::npos) << message;
  EXPECT_EQ(message.find(dir_->path().string()), std::string::npos) << message;
  EXPECT_EQ(CallServer(*client_, "GET", "/healthz", "").status, 200);

  // Adding and removing documents replaces the store's files, nothing else under its prefix.
  Index("stores/shared");
  dir_->Write("data/objects/stores/shared/notes.txt", "mine");
  dir_->Write("data/objects/stores/shared/sub/data.csv", "a\n1\n");
  const std::string docs = "/api/v1/vector-stores/stores/shared/documents";
  auto added = CallServer(*client_, "POST", docs, json{{"documents", {{{"id", "n1"}, {"page_content", "new text"}}}}}.dump());
  ASSERT_EQ(added.status, 200) << added.text;
  auto removed = CallServer(*client_, "DELETE", docs, json{{"ids", {"n1"}}}.dump());
  ASSERT_EQ(removed.status, 200) << removed.text;
  const auto shared = dir_->path() / "data" / "objects" / "stores" / "shared";
  EXPECT_EQ(ReadFile(shared / "notes.txt"), "mine");
  EXPECT_EQ(ReadFile(shared / "sub" / "data.csv"), "a\n1\n");
  EXPECT_TRUE(json::parse(ReadFile(shared / "manifest.json"))["index_checksum"].is_string());

  // A plain dataset over the inline-search limit (10000 documents by default).
  std::string csv = "id,abstract\n";
  for (int i = 0; i <= 10000; ++i) csv += "r" + std::to_string(i) + ",row " + std::to_string(i) + "\n";
  dir_->Write("data/objects/big.csv", csv);
  json body = {{"model", Model()},
               {"dataset", {{"path", "big.csv"}, {"loader_kwargs", {{"page_content_column", "abstract"}}}}},
               {"search_input", {{"input_text", {"row 5"}}}}};
  auto big = CallServer(*client_, "POST", "/api/v1/ml/nlp/search", body.dump());
  EXPECT_EQ(big.status, 400) << big.text;
  EXPECT_EQ(big.body["error"]["field"], "dataset.path") << big.text;
  EXPECT_NE(big.text.find("/api/v1/ml/nlp/vector/index"), std::string::npos) << big.text;
}

}  // namespace
}  // namespace mlaas::testing
