// End-to-end: image classification training as a task on the real server (issue 22) — each
// dataset format (image folder with bad files among the good, IDX gzip-compressed with label
// names, a CSV list), the training output with per-class scores and the confusion matrix, the
// saved model predicting right away, `mlaas train --objective image-classification --wait`,
// hostile datasets as clear errors with the server alive, and resume after kill -9.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <random>

#include "common/text.h"
#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"
#include "vision/image.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A 12x12 gray image of class `label` (0-3): noise, and a bright 4x4 patch in that class's corner.
vision::Image Corner(int label, std::mt19937_64& rng) {
  vision::Image im{12, 12, 1, std::vector<uint8_t>(144)};
  for (auto& p : im.pixels) p = static_cast<uint8_t>(rng() % 60);
  const int x0 = (label % 2) * 8, y0 = (label / 2) * 8;
  for (int y = y0; y < y0 + 4; ++y)
    for (int x = x0; x < x0 + 4; ++x) im.pixels[static_cast<size_t>(y * 12 + x)] = 230;
  return im;
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

class CvTrainE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    objects_ = dir_.path() / "data" / "objects";
    std::mt19937_64 rng(1);
    const char* names[] = {"top-left", "top-right", "bottom-left", "bottom-right"};
    // An image folder: 20 PNGs per class, and files that are not images.
    for (int i = 0; i < 80; ++i)
      Put("shapes/" + std::string(names[i % 4]) + "/" + std::to_string(i) + ".png", *vision::EncodePng(Corner(i % 4, rng)));
    const std::string jpeg = *vision::EncodeJpeg(Corner(0, rng));
    Put("shapes/top-left/truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
    Put("shapes/top-right/notes.png", "this is a text file, not an image\n");
    // A PNG header claiming 100000 x 100000 pixels (a decompression bomb).
    std::string bomb = *vision::EncodePng(Corner(0, rng));
    bomb.replace(16, 8, Be32(100000) + Be32(100000));
    Put("shapes/bottom-left/bomb.png", bomb);
    // IDX, gzip-compressed, with numeric classes named by label_names.
    Idx("fashion", 400, 2, rng, true);
    // A CSV list of keys relative to its folder.
    std::string csv = "file,kind\n";
    for (int i = 0; i < 40; ++i) {
      Put("listed/img/" + std::to_string(i) + ".png", *vision::EncodePng(Corner(i % 2 == 0 ? 0 : 3, rng)));
      csv += "img/" + std::to_string(i) + ".png," + (i % 2 == 0 ? "cat" : "dog") + "\n";
    }
    Put("listed/list.csv", csv);
    // Hostile IDX: a wrong magic, and labels that do not match the images.
    Put("bad_magic/train-images-idx3-ubyte", std::string("\x00\x00\x09\x03", 4) + Be32(1) + Be32(2) + Be32(2) + "abcd");
    Put("bad_magic/train-labels-idx1-ubyte", std::string("\x00\x00\x08\x01", 4) + Be32(1) + "\x01");
    Put("mismatch/train-images-idx3-ubyte", std::string("\x00\x00\x08\x03", 4) + Be32(2) + Be32(2) + Be32(2) + "abcdefgh");
    Put("mismatch/train-labels-idx1-ubyte", std::string("\x00\x00\x08\x01", 4) + Be32(3) + "\x01\x00\x01");
    Put("only_bomb/a/bomb.png", bomb);
    Put("only_bomb/b/notes.png", "text");
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", std::vector<std::string>{"--threads", "1"});
    ASSERT_TRUE(server_->Start().ok());
  }

  void Put(const std::string& key, const std::string& content) {
    fs::create_directories((objects_ / key).parent_path());
    std::ofstream(objects_ / key, std::ios::binary) << content;
  }

  // `n` images of `classes` corner classes as an IDX pair under `folder`.
  void Idx(const std::string& folder, int n, int classes, std::mt19937_64& rng, bool gz) {
    std::string images = std::string("\x00\x00\x08\x03", 4) + Be32(n) + Be32(12) + Be32(12);
    std::string labels = std::string("\x00\x00\x08\x01", 4) + Be32(n);
    for (int i = 0; i < n; ++i) {
      const int label = i % classes;
      const vision::Image im = Corner(label == 1 ? 3 : label, rng);
      images.append(im.pixels.begin(), im.pixels.end());
      labels.push_back(static_cast<char>(label));
    }
    auto write = [&](const std::string& name, const std::string& bytes) {
      const fs::path path = objects_ / folder / (name + (gz ? ".gz" : ""));
      fs::create_directories(path.parent_path());
      if (!gz) {
        std::ofstream(path, std::ios::binary) << bytes;
        return;
      }
      gzFile f = gzopen(path.c_str(), "wb");
      gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
      gzclose(f);
    };
    write("train-images-idx3-ubyte", images);
    write("train-labels-idx1-ubyte", labels);
  }

  static json Request(const json& dataset, const std::string& save, int epochs = 8) {
    return {{"model", {{"preset", "cnn-small"}, {"objective", "image-classification"}}},
            {"dataset", dataset},
            {"model_train", {{"epochs", epochs}, {"batch_size", 16}, {"seed", 3}, {"threads", 1}, {"optimizer", {{"init_lr", 3e-3}}}}},
            {"model_save", {{"path", save}}}};
  }

  json Train(const json& request, int seconds = 300) {
    auto c = server_->Client();
    auto t = c->Post("/api/v1/ml/cv/train/model", request);
    EXPECT_TRUE(t.has_value()) << (t.has_value() ? "" : t.error().ToString());
    if (!t.has_value()) return json();
    return WaitForTaskEnd(*c, (*t)["task_id"], std::chrono::seconds(seconds));
  }

  std::string Base64Png(int label) {
    std::mt19937_64 rng(99 + static_cast<uint64_t>(label));
    std::string s = Base64UrlEncode(*vision::EncodePng(Corner(label, rng)));
    for (char& ch : s) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
    while (s.size() % 4) s += '=';
    return s;
  }

  TempDir dir_;
  fs::path objects_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(CvTrainE2eTest, AnImageFolderTrainsSkippingBadFilesAndTheModelPredicts) {
  json t = Train(Request({{"path", "shapes"}, {"format", "image_folder"}, {"train_test_split", 0.25},
                          {"augment", {{"crop_padding", 1}, {"rotation", 5}}}},
                         "models/shapes"));
  ASSERT_EQ(t["task_status"], "succeeded") << t.dump(2) << server_->Log();
  EXPECT_EQ(t["dataset"]["skipped_images"], 3) << t["dataset"].dump();
  ASSERT_TRUE(t["dataset"].contains("skipped_examples"));
  EXPECT_NE(t["dataset"]["skipped_examples"].dump().find("bomb.png"), std::string::npos);
  EXPECT_EQ(t["dataset"]["samples_train"], 60);
  EXPECT_EQ(t["dataset"]["samples_test"], 20);
  EXPECT_EQ(t["dataset"]["labels"], json({"bottom-left", "bottom-right", "top-left", "top-right"}));
  EXPECT_GT(t["stats"]["images_per_s"].get<double>(), 0);
  EXPECT_EQ(t["history"]["eval_accuracy"].size(), 8u);
  EXPECT_EQ(t["evaluation"]["accuracy"], 1.0) << t["evaluation"].dump();
  EXPECT_EQ(t["evaluation"]["per_class"]["top-left"]["support"], 5);
  EXPECT_EQ(t["evaluation"]["confusion_matrix"]["matrix"].size(), 4u);
  for (const char* f : {"config.json", "model.safetensors", "README.md"})
    EXPECT_TRUE(fs::exists(objects_ / "models" / "shapes" / f)) << f;

  auto c = server_->Client();
  auto p = c->Post("/api/v1/ml/cv/predict", {{"model", {{"path", "models/shapes"}}},
                                             {"predict_input", {{"images", {Base64Png(3), Base64Png(0), Base64Png(1)}}}}});
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ((*p)["predictions"][0]["label"], "bottom-right") << p->dump();
  EXPECT_EQ((*p)["predictions"][1]["label"], "top-left");
  EXPECT_EQ((*p)["predictions"][2]["label"], "top-right");
}

TEST_F(CvTrainE2eTest, IdxWithLabelNamesAndACsvListTrainAndTheCliWaits) {
  json t = Train(Request({{"path", "fashion"}, {"format", "idx"}, {"label_names", {"shirt", "shoe"}}}, "models/fashion", 3));
  ASSERT_EQ(t["task_status"], "succeeded") << t.dump(2) << server_->Log();
  EXPECT_EQ(t["dataset"]["labels"], json({"shirt", "shoe"}));
  EXPECT_EQ(t["dataset"]["samples_train"], 360);
  EXPECT_GE(t["evaluation"]["accuracy"].get<double>(), 0.95);

  json list = Request({{"path", "listed/list.csv"}, {"loader_kwargs", {{"image_column", "file"}, {"label_column", "kind"}}}},
                      "models/pets");
  std::ofstream(dir_.path() / "request.json") << list.dump();
  auto cli = RunMlaas({"train", "--server", server_->url(), "--request", (dir_.path() / "request.json").string(),
                       "--objective", "image-classification", "--epochs", "6", "--wait"});
  EXPECT_EQ(cli.exit_code, 0) << cli.out;
  EXPECT_NE(cli.out.find("accuracy"), std::string::npos) << cli.out;
  EXPECT_NE(cli.out.find("CLASS"), std::string::npos) << cli.out;  // the per-class table
  EXPECT_NE(cli.out.find("dog"), std::string::npos) << cli.out;
  EXPECT_TRUE(fs::exists(objects_ / "models" / "pets" / "config.json"));
}

// An image folder registered in the catalog is one immutable version that trains by its
// reference (the format comes from the version) and is recorded in the trained model's lineage;
// routes of the other modality refuse it, and image training refuses a file of rows, by name.
TEST_F(CvTrainE2eTest, ACatalogImageDatasetTrainsByItsReference) {
  auto c = server_->Client();
  auto v = c->Post("/api/v1/catalog/datasets/shapes/versions", {{"dataset", {{"path", "shapes"}}}});
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  EXPECT_EQ((*v)["facts"]["format"], "image_folder");
  EXPECT_EQ((*v)["facts"]["images"], 83) << v->dump();  // named as images; decoding is the trainer's
  EXPECT_EQ((*v)["facts"]["classes"].size(), 4u);
  auto listed = c->Post("/api/v1/catalog/datasets/pets-list/versions", {{"dataset", {{"path", "listed/list.csv"}}}});
  ASSERT_TRUE(listed.has_value()) << listed.error().ToString();
  auto idx = RunMlaas({"datasets", "register", "fashion", "fashion", "--server", server_->url()});
  ASSERT_EQ(idx.exit_code, 0) << idx.out;
  EXPECT_NE(idx.out.find("\"format\":\"idx\""), std::string::npos) << idx.out;

  json request = Request({{"path", "catalog://datasets/shapes"}, {"train_test_split", 0.25}}, "models/from-catalog", 3);
  request["catalog"] = {{"model", "corners"}};
  json t = Train(request);
  ASSERT_EQ(t["task_status"], "succeeded") << t.dump(2) << server_->Log();
  EXPECT_EQ(t["dataset"]["samples_train"], 60);
  EXPECT_EQ(t["dataset"]["labels"], json({"bottom-left", "bottom-right", "top-left", "top-right"}));
  auto model = c->Get("/api/v1/catalog/models/corners/versions/1");
  ASSERT_TRUE(model.has_value()) << model.error().ToString();
  EXPECT_NE(model->dump().find("catalog://datasets/shapes"), std::string::npos) << model->dump();
  // The held-out split of an IDX version, by reference too.
  json fashion = Train(Request({{"path", "catalog://datasets/fashion"}, {"label_names", {"shirt", "shoe"}}}, "models/f2", 1));
  EXPECT_EQ(fashion["task_status"], "succeeded") << fashion.dump(2);

  struct Case {
    std::string route;
    json request;
    std::string says;
  };
  json text = {{"model", {{"preset", "bert-tiny"}, {"objective", "text-classification"}}},
               {"dataset", {{"path", "catalog://datasets/shapes"}}},
               {"model_save", {{"path", "models/x"}}}};
  for (const auto& [route, body, says] : std::vector<Case>{
           {"/api/v1/ml/nlp/train/model", text, "image dataset"},
           {"/api/v1/ml/utilities/dataset/stats", json{{"dataset", {{"path", "catalog://datasets/shapes"}}}}, "image dataset"},
           {"/api/v1/ml/cv/train/model", Request({{"path", "catalog://datasets/pets-list"}}, "models/x"), "not an image folder"},
           {"/api/v1/ml/cv/train/model", Request({{"path", "catalog://datasets/shapes/9"}}, "models/x"), "version"},
           {"/api/v1/ml/cv/train/model", Request({{"path", "catalog://datasets/shapes"}, {"format", "idx"}}, "models/x"),
            "image_folder"}}) {
    auto r = CallServer(*c, "POST", route, body.dump());
    EXPECT_TRUE(r.status == 400 || r.status == 404) << route << ": " << r.text;
    const std::string field = body["dataset"].contains("format") ? "dataset.format" : "dataset.path";
    EXPECT_EQ(r.body["error"]["field"], field) << route << ": " << r.text;
    EXPECT_NE(r.text.find(says), std::string::npos) << route << ": " << r.text;
  }
}

TEST_F(CvTrainE2eTest, HostileDatasetsAreClearErrorsAndTheServerKeepsAnswering) {
  auto c = server_->Client();
  // At submission: 400 naming the field.
  struct Case {
    json request;
    std::string field;
  };
  json no_format = Request({{"path", "shapes"}}, "models/x");
  json bad_preset = Request({{"path", "shapes"}, {"format", "image_folder"}}, "models/x");
  bad_preset["model"]["preset"] = "resnet-tiny";
  json missing = Request({{"path", "nowhere"}, {"format", "idx"}}, "models/x");
  json text_model = Request({{"path", "shapes"}, {"format", "image_folder"}}, "models/x");
  text_model["model"]["objective"] = "text-classification";
  json bad_aug = Request({{"path", "shapes"}, {"format", "image_folder"}, {"augment", {{"rotation", 90}}}}, "models/x");
  for (const auto& [request, field] : std::vector<Case>{{no_format, "dataset.format"},
                                                        {bad_preset, "model.preset"},
                                                        {missing, "dataset.path"},
                                                        {text_model, "model.objective"},
                                                        {bad_aug, "dataset.augment.rotation"}}) {
    auto r = CallServer(*c, "POST", "/api/v1/ml/cv/train/model", request.dump());
    EXPECT_EQ(r.status, 400) << field << ": " << r.text;
    EXPECT_EQ(r.body["error"]["field"], field) << r.text;
  }
  // While reading: the task fails saying why.
  struct Failing {
    json dataset;
    std::string says;
  };
  for (const auto& [dataset, says] : std::vector<Failing>{
           {{{"path", "bad_magic"}, {"format", "idx"}}, "magic"},
           {{{"path", "mismatch"}, {"format", "idx"}}, "3"},
           {{{"path", "only_bomb"}, {"format", "image_folder"}}, "no readable image"},
           {{{"path", "shapes"}, {"format", "image_folder"}, {"loader_kwargs", {{"on_bad_image", "fail"}}}}, "shapes/"}}) {
    json t = Train(Request(dataset, "models/failed", 1));
    EXPECT_EQ(t["task_status"], "failed") << dataset.dump() << t.dump();
    const std::string error = t.value("error", json::object()).dump();
    EXPECT_NE(error.find(says), std::string::npos) << dataset.dump() << ": " << error;
  }
  EXPECT_FALSE(fs::exists(objects_ / "models" / "failed"));
  EXPECT_EQ(CallServer(*c, "GET", "/healthz", "").status, 200);
}

TEST_F(CvTrainE2eTest, AKilledServerResumesFromTheLastCheckpointToTheSameModel) {
  std::mt19937_64 rng(5);
  Idx("many", 1200, 4, rng, false);
  json r = Request({{"path", "many"}, {"format", "idx"}, {"augment", {{"crop_padding", 2}}}}, "models/resumed", 4);
  r["model_train"]["checkpoint_steps"] = 5;
  auto c = server_->Client();
  auto t = c->Post("/api/v1/ml/cv/train/model", r);
  ASSERT_TRUE(t.has_value());
  const std::string id = (*t)["task_id"];
  ASSERT_TRUE(WaitFor([&] {
    auto v = c->Get("/api/v1/tasks/" + id);
    return v.has_value() && v->value("progress", json::object()).value("step", 0) >= 12;
  }, std::chrono::seconds(120)));
  server_->Kill(SIGKILL);
  ASSERT_TRUE(fs::exists(dir_.path() / "data" / "checkpoints" / id / "current" / "state.json"));

  ServerProcess again(dir_.path() / "data", {"--threads", "1"});
  ASSERT_TRUE(again.Start().ok());
  auto c2 = again.Client();
  json done = WaitForTaskEnd(*c2, id, std::chrono::seconds(300));
  ASSERT_EQ(done["task_status"], "succeeded") << done.dump(2) << again.Log();
  EXPECT_GE(done["stats"]["resumed_from_step"].get<int64_t>(), 10) << done["stats"].dump();
  EXPECT_EQ(done["stats"]["attempts"], 2);

  r["model_save"]["path"] = "models/whole";
  auto t2 = c2->Post("/api/v1/ml/cv/train/model", r);
  ASSERT_TRUE(t2.has_value());
  json whole = WaitForTaskEnd(*c2, (*t2)["task_id"], std::chrono::seconds(300));
  ASSERT_EQ(whole["task_status"], "succeeded") << whole.dump();
  ASSERT_EQ(whole["history"]["loss"].size(), done["history"]["loss"].size());
  for (size_t e = 0; e < whole["history"]["loss"].size(); ++e)
    EXPECT_NEAR(whole["history"]["loss"][e].get<double>(), done["history"]["loss"][e].get<double>(), 1e-4) << e;
  EXPECT_EQ(whole["evaluation"]["confusion_matrix"], done["evaluation"]["confusion_matrix"]);
}

}  // namespace
}  // namespace mlaas::testing
