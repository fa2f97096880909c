// End-to-end: the vector-indexing task through the real server — a dataset's documents
// embedded by a model made with `mlaas model init`, saved as a vector store that loads back
// with its documents, metadata and manifest; bad requests refused naming the field.
#include <gtest/gtest.h>

#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"
#include "vector/vector_store.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;

class VectorE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    server_ = new ServerProcess(dir_->path() / "data", {"--threads", "1"});
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
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override { client_ = server_->Client(); }
  void TearDown() override { ASSERT_TRUE(server_->Running()) << server_->Log(); }

  static json Request(const std::string& dataset, const std::string& save, json index = "Flat") {
    return {{"model", {{"path", "models/no-objective"}, {"objective", "no-objective"}}},
            {"dataset", {{"path", dataset}, {"loader_kwargs", {{"page_content_column", "abstract"}, {"id_column", "id"}}}}},
            {"vector_store_save", {{"path", save}, {"format", "vector_store"}, {"index", index}}}};
  }

  client::Response Post(const json& body) {
    return CallServer(*client_, "POST", "/api/v1/ml/nlp/vector/index", body.dump());
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  std::unique_ptr<client::ApiClient> client_;
};
TempDir* VectorE2eTest::dir_ = nullptr;
ServerProcess* VectorE2eTest::server_ = nullptr;

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
                                   {Request("docs.csv", "stores/x", {{"type", "IVF"}, {"nlist", 0}}), "vector_store_save.index.nlist"}};
  for (const auto& c : cases) {
    auto r = Post(c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump() << ": " << r.text;
    EXPECT_EQ(r.body["error"]["field"], c.field) << r.text;
  }
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

}  // namespace
}  // namespace mlaas::testing
