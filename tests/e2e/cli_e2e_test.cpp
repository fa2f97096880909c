// End-to-end: the `mlaas` client subcommands against a running server.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/text.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;

class CliE2eTest : public ServerSuite<CliE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer();
    StartServer();
  }

  // Runs `mlaas --server URL <args>`; stdin is empty.
  CliResult Run(const std::vector<std::string>& args, bool with_server = true) {
    std::vector<std::string> all;
    if (with_server) all = {"--server", server_->url()};
    all.insert(all.end(), args.begin(), args.end());
    return RunMlaas(all, dir_->path() / "stderr.txt");
  }
};


TEST_F(CliE2eTest, ObjectsPutLsGetRm) {
  auto file = dir_->Write("local/aff.csv", "text,label\nBari INFN,BA\nINAF Milano,[NoSite]\n");
  auto put = Run({"objects", "put", file.string(), "datasets/aff.csv"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_NE(put.out.find("uploaded datasets/aff.csv"), std::string::npos);
  // A key with a space and non-ASCII characters survives the round trip.
  ASSERT_EQ(Run({"objects", "put", file.string(), "datasets/caf\xC3\xA9 list.csv"}).exit_code, 0);

  auto ls = Run({"objects", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("PRE"), std::string::npos);
  EXPECT_NE(ls.out.find("datasets/"), std::string::npos);

  auto ls_json = Run({"--json", "objects", "ls", "datasets/"});
  ASSERT_EQ(ls_json.exit_code, 0);
  json j = json::parse(ls_json.out);
  ASSERT_EQ(j["objects"].size(), 2u);
  EXPECT_EQ(j["objects"][0]["key"], "datasets/aff.csv");
  EXPECT_EQ(j["objects"][1]["key"], "datasets/caf\xC3\xA9 list.csv");

  auto dest = dir_->path() / "downloaded.csv";
  auto get = Run({"objects", "get", "datasets/caf\xC3\xA9 list.csv", dest.string()});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(ReadFile(dest), ReadFile(file));
  auto to_stdout = Run({"objects", "get", "datasets/aff.csv", "-"});
  EXPECT_EQ(to_stdout.out, ReadFile(file));

  auto rm = Run({"objects", "rm", "datasets/caf\xC3\xA9 list.csv"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  auto missing = Run({"objects", "get", "datasets/caf\xC3\xA9 list.csv", dest.string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;
  EXPECT_EQ(Run({"objects", "rm", "nope.csv"}).exit_code, 1);
}

TEST_F(CliE2eTest, DatasetStatsAndTasks) {
  auto file = dir_->Write("local/d.csv", "text,label\nhello world,1\nfoo,2\nbar baz qux,1\n");
  ASSERT_EQ(Run({"objects", "put", file.string(), "datasets/d.csv"}).exit_code, 0);

  auto stats = Run({"dataset", "stats", "datasets/d.csv", "--wait"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("3 rows, 9 tokens"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("COLUMN"), std::string::npos);

  auto submitted = Run({"dataset", "stats", "datasets/d.csv"});
  ASSERT_EQ(submitted.exit_code, 0);
  std::string id(Trim(submitted.out));
  ASSERT_TRUE(IsUuid(id)) << submitted.out;

  auto wait = Run({"--json", "tasks", "wait", id, "--timeout", "60"});
  ASSERT_EQ(wait.exit_code, 0) << wait.err;
  json t = json::parse(wait.out);
  EXPECT_EQ(t["task_status"], "succeeded");
  EXPECT_EQ(t["dataset"]["rows"], 3);

  auto show = Run({"tasks", "show", id});
  ASSERT_EQ(show.exit_code, 0);
  EXPECT_EQ(json::parse(show.out)["task_id"], id);

  auto list = Run({"tasks", "list", "--type", "dataset_stats"});
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_NE(list.out.find("TASK ID"), std::string::npos);
  EXPECT_NE(list.out.find(id), std::string::npos);

  auto list_json = Run({"--json", "tasks", "list", "--status", "succeeded"});
  EXPECT_GE(json::parse(list_json.out)["tasks"].size(), 2u);

  auto logs = Run({"tasks", "logs", id});
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_NE(logs.out.find("succeeded"), std::string::npos);

  auto cancel_done = Run({"tasks", "cancel", id});
  EXPECT_EQ(cancel_done.exit_code, 1);
  EXPECT_NE(cancel_done.err.find("cannot be cancelled"), std::string::npos) << cancel_done.err;
}

TEST_F(CliE2eTest, FailedTaskGivesExitCodeOne) {
  auto file = dir_->Write("local/bad.csv", "a,b\n1\n");
  ASSERT_EQ(Run({"objects", "put", file.string(), "bad.csv"}).exit_code, 0);
  auto stats = Run({"dataset", "stats", "bad.csv", "--wait"});
  EXPECT_EQ(stats.exit_code, 1);
  EXPECT_NE(stats.out.find("failed"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("line 2"), std::string::npos) << stats.out;
}

TEST_F(CliE2eTest, UsageAndConnectionErrors) {
  EXPECT_EQ(Run({"tasks"}).exit_code, 2);
  EXPECT_EQ(Run({"objects", "put", "/definitely/not/here", "k"}).exit_code, 2);
  EXPECT_EQ(Run({"tasks", "list", "--status", "sleeping"}).exit_code, 2);
  auto down = Run({"--server", "http://127.0.0.1:1", "tasks", "list"}, /*with_server=*/false);
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("cannot reach the mlaas server"), std::string::npos);
  auto bad_url = Run({"--server", "ftp://x", "tasks", "list"}, false);
  EXPECT_EQ(bad_url.exit_code, 1);
  EXPECT_NE(bad_url.err.find("http://"), std::string::npos);
  auto unknown = Run({"tasks", "show", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("does not exist"), std::string::npos);
}

TEST_F(CliE2eTest, HelpDocumentsEveryCommandAndEnvironmentVariable) {
  auto help = Run({"--help"}, false);
  EXPECT_EQ(help.exit_code, 0);
  for (const char* cmd : {"serve", "worker", "tasks", "objects", "dataset", "MLAAS_SERVER"}) {
    EXPECT_NE(help.out.find(cmd), std::string::npos) << cmd;
  }
  auto serve = Run({"serve", "--help"}, false);
  EXPECT_EQ(serve.exit_code, 0);
  for (const char* opt : {"--host", "--port", "--data-dir", "--workers", "--database",
                          "--log-level", "MLAAS_HOST", "MLAAS_PORT", "MLAAS_DATA_DIR",
                          "MLAAS_WORKERS", "MLAAS_DATABASE", "MLAAS_LOG_LEVEL"}) {
    EXPECT_NE(serve.out.find(opt), std::string::npos) << opt;
  }
  for (const char* sub : {"list", "show", "wait", "cancel", "logs"}) {
    EXPECT_NE(Run({"tasks", "--help"}, false).out.find(sub), std::string::npos) << sub;
  }
  for (const char* sub : {"ls", "put", "get", "rm"}) {
    EXPECT_NE(Run({"objects", "--help"}, false).out.find(sub), std::string::npos) << sub;
  }
  EXPECT_NE(Run({"--version"}, false).out.find("mlaas "), std::string::npos);
}

TEST_F(CliE2eTest, TokenizerTrainAndEncodeLocally) {
  const std::string corpus = std::string(MLAAS_TOKENIZER_TEST_DATA) + "/corpus.txt";
  auto out_dir = dir_->path() / "tok-wp";
  auto train = Run({"--json", "tokenizer", "train", "--model", "wordpiece", "--vocab-size", "800",
                    "--special-tokens", "[PAD],[UNK],[CLS],[SEP],[MASK]", "--lowercase", "--input",
                    corpus, "--output", out_dir.string()}, false);
  ASSERT_EQ(train.exit_code, 0) << train.err;
  json summary = json::parse(train.out);
  EXPECT_EQ(summary["vocab_size"], 800);
  EXPECT_EQ(summary["lines"], 2300);
  EXPECT_TRUE(std::filesystem::exists(out_dir / "tokenizer.json"));
  EXPECT_TRUE(std::filesystem::exists(out_dir / "vocab.txt"));

  auto texts = dir_->Write("texts.txt", "Hello, world!\nBari INFN, Italy\n");
  auto encoded_path = dir_->path() / "encoded.jsonl";
  auto encode = Run({"tokenizer", "encode", "--tokenizer", out_dir.string(), "--input", texts.string(),
                     "--output", encoded_path.string()}, false);
  ASSERT_EQ(encode.exit_code, 0) << encode.err;
  std::ifstream in(encoded_path);
  std::string first, second;
  ASSERT_TRUE(std::getline(in, first) && std::getline(in, second));
  json e = json::parse(first);
  EXPECT_EQ(e["tokens"].front(), "[CLS]");
  EXPECT_EQ(e["tokens"].back(), "[SEP]");
  EXPECT_EQ(e["offsets"].front(), json({0, 0}));
  for (const char* field : {"ids", "type_ids", "attention_mask", "special_tokens_mask"}) {
    EXPECT_EQ(e[field].size(), e["tokens"].size()) << field;
  }
  auto plain = Run({"tokenizer", "encode", "--tokenizer", (out_dir / "tokenizer.json").string(),
                    "--input", texts.string(), "--output", "-", "--no-special-tokens"}, false);
  ASSERT_EQ(plain.exit_code, 0);
  json p = json::parse(plain.out.substr(0, plain.out.find('\n')));
  EXPECT_NE(p["tokens"].front(), "[CLS]");
  for (const auto& m : p["special_tokens_mask"]) EXPECT_EQ(m, 0);

  auto bpe_dir = dir_->path() / "tok-bpe";
  auto bpe = Run({"tokenizer", "train", "--model", "bpe", "--vocab-size", "600", "--input", corpus,
                  "--output", bpe_dir.string()}, false);
  ASSERT_EQ(bpe.exit_code, 0) << bpe.err;
  for (const char* f : {"tokenizer.json", "vocab.json", "merges.txt"}) {
    EXPECT_TRUE(std::filesystem::exists(bpe_dir / f)) << f;
  }
  auto missing = Run({"tokenizer", "encode", "--tokenizer", "/nonexistent", "--input", texts.string(),
                      "--output", "-"}, false);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no tokenizer"), std::string::npos) << missing.err;
}

TEST_F(CliE2eTest, ServeRefusesBadConfiguration) {
  auto bad_port = Run({"serve", "--port", "70000"}, false);
  EXPECT_EQ(bad_port.exit_code, 2);
  auto bad_db = Run({"serve", "--port", "0", "--data-dir", (dir_->path() / "x").string(),
                     "--database", "mongodb://nowhere"}, false);
  EXPECT_EQ(bad_db.exit_code, 1);
  EXPECT_NE(bad_db.err.find("unsupported database URL"), std::string::npos) << bad_db.err;
  auto in_use = Run({"serve", "--port", std::to_string(server_->port()), "--data-dir",
                     (dir_->path() / "y").string()}, false);
  EXPECT_EQ(in_use.exit_code, 1);
  EXPECT_NE(in_use.err.find("cannot listen"), std::string::npos) << in_use.err;
}

// A token classifier (random weights) through the CLI: a table, and --json lines whose entities
// point into the text by code points (every span is the text's own, multi-byte characters too).
TEST(TokenClassifierCliE2eTest, PredictPrintsEntitiesAsATableAndAsJson) {
  TempDir dir;
  ASSERT_EQ(TrainWordPieceTokenizer(dir, (dir.path() / "tok").string()).exit_code, 0);
  ASSERT_EQ(InitSmallModel(dir, (dir.path() / "tok").string(), (dir.path() / "ner").string(), "token-classification",
                           "O,B-ORG,I-ORG,B-LOC")
                .exit_code,
            0);
  const std::string text = "INFN Sezione di Z\xC3\xBCrich, Via E Orabona 4";
  auto table = RunMlaas({"predict", "--model", (dir.path() / "ner").string(), "--text", text, "--aggregation", "first"},
                        dir.path() / "err.txt");
  ASSERT_EQ(table.exit_code, 0) << table.out << table.err;
  EXPECT_NE(table.out.find("ENTITIES"), std::string::npos) << table.out;
  for (const char* aggregation : {"simple", "first", "average", "max", "none"}) {
    auto r = RunMlaas({"predict", "--model", (dir.path() / "ner").string(), "--text", text, "--text", "dark matter",
                       "--aggregation", aggregation, "--json"},
                      dir.path() / "err.txt");
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    std::istringstream lines(r.out);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      const auto j = nlohmann::json::parse(line);
      ASSERT_TRUE(j["entities"].is_array()) << line;
      const std::string t = j["text"];
      std::vector<size_t> starts;  // byte position of each code point
      for (size_t i = 0; i < t.size(); ++i)
        if ((static_cast<unsigned char>(t[i]) & 0xC0) != 0x80) starts.push_back(i);
      starts.push_back(t.size());
      for (const auto& e : j["entities"]) {
        const size_t s = e["start"], en = e["end"];
        ASSERT_LT(s, en) << line;
        ASSERT_LT(en, starts.size()) << line;
        EXPECT_TRUE(e.contains(std::string(aggregation) == "none" ? "entity" : "entity_group")) << line;
      }
      ++n;
    }
    EXPECT_EQ(n, 2) << r.out;
  }
}

// A model whose weights are PyTorch's pytorch_model.bin (written by python3-torch, zip and legacy
// formats) predicts exactly as the same weights in model.safetensors.
TEST(PytorchCheckpointE2eTest, APytorchModelBinPredictsLikeItsSafetensors) {
  TempDir dir;
  ASSERT_EQ(TrainWordPieceTokenizer(dir, (dir.path() / "tok").string()).exit_code, 0);
  ASSERT_EQ(InitSmallModel(dir, (dir.path() / "tok").string(), (dir.path() / "st").string(), "text-classification", "a,b").exit_code, 0);
  const auto predict = [&](const std::string& model) {
    auto r = RunMlaas({"predict", "--model", model, "--text", "Bari INFN, Via E Orabona 4", "--text", "dark matter", "--json"},
                      dir.path() / "err.txt");
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.out;
  };
  const std::string reference = predict((dir.path() / "st").string());
  ASSERT_NE(reference.find("\"label\""), std::string::npos) << reference;
  for (const char* format : {"--zip", "--legacy"}) {
    const auto copy = dir.path() / (std::string("pt") + format);
    std::filesystem::copy(dir.path() / "st", copy);
    const std::string cmd = "/usr/bin/python3 " MLAAS_SOURCE_DIR "/tests/checkpoint/to_pytorch_bin.py " + copy.string() + " " + format;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    ASSERT_TRUE(std::filesystem::exists(copy / "pytorch_model.bin"));
    ASSERT_FALSE(std::filesystem::exists(copy / "model.safetensors"));
    EXPECT_EQ(predict(copy.string()), reference) << format;
  }
}

}  // namespace
}  // namespace mlaas::testing
