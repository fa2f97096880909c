// End-to-end: image classification through the real server (issue 22) — POST
// /api/v1/ml/cv/predict with base64 images and with object keys, image deployments over the
// Open Inference Protocol (a BYTES input of encoded files, a UINT8 tensor) under concurrent load,
// and bad images as clear errors with the server still answering.
#include <gtest/gtest.h>

#include <cmath>
#include <future>
#include <thread>

#include "common/text.h"
#include "e2e/cli_runner.h"
#include "e2e/fixtures.h"
#include "testutil/temp_dir.h"
#include "testutil/wait.h"
#include "vision/image.h"

namespace mlaas::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A gray `size` x `size` image: a bright square of side `square` in the top-left corner.
vision::Image Gray(int64_t size, int64_t square, uint8_t background = 20) {
  vision::Image im;
  im.width = im.height = size;
  im.channels = 1;
  im.pixels.assign(static_cast<size_t>(size * size), background);
  for (int64_t y = 0; y < square; ++y)
    for (int64_t x = 0; x < square; ++x) im.pixels[static_cast<size_t>(y * size + x)] = 240;
  return im;
}

std::string Png(const vision::Image& im) { return *vision::EncodePng(im); }

// Standard base64 with padding, as most clients send it.
std::string Base64(const std::string& bytes) {
  std::string s = Base64UrlEncode(bytes);
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4 != 0) s += '=';
  return s;
}

json Pixels(const vision::Image& im) {
  return {{"inputs", json::array({{{"name", "pixel_values"},
                                   {"datatype", "UINT8"},
                                   {"shape", {1, 1, im.height, im.width}},
                                   {"data", im.pixels}}})}};
}

json Files(const std::vector<std::string>& files) {
  std::vector<std::string> data;
  for (const auto& f : files) data.push_back(Base64(f));
  return {{"inputs", json::array({{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {data.size()}}, {"data", data}}})}};
}

class CvE2eTest : public ServerSuite<CvE2eTest> {
 protected:
  static void SetUpTestSuite() {
    CreateServer({"--threads", "2"});
    const std::string objects = (dir_->path() / "data" / "objects").string();
    auto r = RunMlaas({"model", "init", "--preset", "cnn-small", "--objective", "image-classification", "--labels",
                       "square,plain,other", "--output", objects + "/models/cnn", "--seed", "3"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    StartServer();
  }

  client::Response Call(const std::string& method, const std::string& path, const json& body = json()) {
    auto r = CallServer(*client_, method, path, body.is_null() ? "" : body.dump());
    EXPECT_EQ(r.text.find(dir_->path().string()), std::string::npos) << r.text;  // no server path, ever
    return r;
  }
  client::Response Predict(const json& input, const json& model = {{"path", "models/cnn"}}) {
    return Call("POST", "/api/v1/ml/cv/predict", json{{"model", model}, {"predict_input", input}});
  }
  void ExpectHealthy() { EXPECT_EQ(Call("GET", "/healthz").status, 200) << server_->Log().substr(0, 4000); }
};

TEST_F(CvE2eTest, PredictsImagesInOrderFromBase64AndFromObjectKeys) {
  const std::string png = Png(Gray(28, 10));
  vision::Image rgb;
  rgb.width = 40;
  rgb.height = 30;
  rgb.channels = 3;
  rgb.pixels.assign(40 * 30 * 3, 128);
  const std::string jpeg = *vision::EncodeJpeg(rgb);
  auto r = Predict({{"images", {Base64(png), Base64(jpeg), "data:image/png;base64," + Base64(png)}}, {"top_k", 2}});
  ASSERT_EQ(r.status, 200) << r.text;
  ASSERT_EQ(r.body["predictions"].size(), 3u);
  for (const auto& p : r.body["predictions"]) {
    EXPECT_TRUE(p["label"] == "square" || p["label"] == "plain" || p["label"] == "other") << p;
    EXPECT_GT(p["score"].get<double>(), 0.0);
    EXPECT_LE(p["score"].get<double>(), 1.0);
    ASSERT_EQ(p["top_k"].size(), 2u);
    EXPECT_EQ(p["top_k"][0]["label"], p["label"]);
  }
  EXPECT_EQ(r.body["predictions"][0], r.body["predictions"][2]);  // the data: URL is the same file
  EXPECT_EQ(r.body["model"]["objective"], "image-classification");
  EXPECT_EQ(r.body["model"]["model_type"], "cnn-small");
  EXPECT_EQ(r.body["images"], 3);

  // The same file uploaded and named by its key (objective read from config.json).
  dir_->Write("data/objects/images/a.png", png);
  auto by_key = Predict({{"paths", {"images/a.png"}}});
  ASSERT_EQ(by_key.status, 200) << by_key.text;
  EXPECT_EQ(by_key.body["predictions"][0]["label"], r.body["predictions"][0]["label"]);
  EXPECT_NEAR(by_key.body["predictions"][0]["score"].get<double>(), r.body["predictions"][0]["score"].get<double>(), 1e-6);

  // A preset from scratch needs no files (nor a tokenizer).
  auto scratch = Predict({{"images", {Base64(png)}}},
                         {{"preset", "resnet18"}, {"objective", "image-classification"}, {"labels", {"x", "y"}},
                          {"image_size", 32}, {"num_channels", 1}});
  ASSERT_EQ(scratch.status, 200) << scratch.text;
  EXPECT_EQ(scratch.body["model"]["from_scratch"], true);
}

TEST_F(CvE2eTest, BadImagesAreClearErrorsAndTheServerKeepsAnswering) {
  // A PNG header claiming 100,000 x 100,000 pixels (a decompression bomb): refused from its header.
  std::string bomb = Png(Gray(8, 2));
  const uint32_t side = 100000;
  for (int i = 0; i < 4; ++i) {
    bomb[16 + i] = static_cast<char>((side >> (24 - 8 * i)) & 0xFF);
    bomb[20 + i] = static_cast<char>((side >> (24 - 8 * i)) & 0xFF);
  }
  const std::string png = Png(Gray(28, 10));
  const struct {
    json input;
    std::string field, says;
  } cases[] = {
      {{{"images", {Base64("just some text, uploaded as an image")}}}, "predict_input.images", "images[0]"},
      {{{"images", {Base64(png), Base64(png.substr(0, png.size() / 2))}}}, "predict_input.images", "images[1]"},
      {{{"images", {Base64(bomb)}}}, "predict_input.images", "images[0]"},
      {{{"images", {"not base64!"}}}, "predict_input.images", "base64"},
      {{{"paths", {"images/missing.png"}}}, "predict_input.paths", "missing.png"},
      {{{"paths", {"../../etc/passwd"}}}, "predict_input.paths", ""},
      {{{"input_text", {"a text"}}}, "predict_input.input_text", ""},
  };
  for (const auto& c : cases) {
    auto r = Predict(c.input);
    EXPECT_EQ(r.status, 400) << c.input.dump().substr(0, 200) << ": " << r.text;
    EXPECT_EQ(r.body["error"].value("field", ""), c.field) << r.text;
    EXPECT_NE(r.body["error"].value("message", "").find(c.says), std::string::npos) << r.text;
  }
  // Requests that would expand far beyond their size are refused before anything is prepared:
  // a from-scratch model too large to serve, many images at a large input, many keys.
  auto huge = Predict({{"images", {Base64(png)}}}, {{"preset", "resnet18"}, {"objective", "image-classification"},
                                                    {"labels", {"a"}}, {"image_size", 2048}});
  EXPECT_EQ(huge.status, 400) << huge.text;
  std::vector<std::string> many(256, Base64(png));
  auto big_input = Predict({{"images", many}}, {{"preset", "resnet18"}, {"objective", "image-classification"},
                                                {"labels", {"a"}}, {"image_size", 1024}});
  EXPECT_EQ(big_input.status, 400) << big_input.text.substr(0, 300);
  EXPECT_NE(big_input.body["error"].value("message", "").find("per request"), std::string::npos) << big_input.text.substr(0, 300);
  dir_->Write("data/objects/images/big.bin", std::string(20u << 20, 'x'));
  auto many_keys = Predict({{"paths", std::vector<std::string>(8, "images/big.bin")}});
  EXPECT_EQ(many_keys.status, 400) << many_keys.text;
  EXPECT_EQ(many_keys.body["error"].value("field", ""), "predict_input.paths");
  // No model there.
  auto wrong = Predict({{"images", {Base64(png)}}}, {{"path", "models/nothing-here"}});
  EXPECT_EQ(wrong.status, 400) << wrong.text;
  ExpectHealthy();
}

TEST_F(CvE2eTest, ImageDeploymentsServeFilesAndTensorsUnderConcurrentLoadWithoutCrossTalk) {
  auto d = Call("POST", "/api/v1/deployments", json{{"name", "img"}, {"model", {{"path", "models/cnn"}}}});
  ASSERT_EQ(d.status, 202) << d.text;
  json view;
  ASSERT_TRUE(WaitFor(
      [&] {
        view = Call("GET", "/api/v1/deployments/img").body;
        return view.value("status", "") == "ready" || view.value("status", "") == "failed";
      },
      60s));
  ASSERT_EQ(view["status"], "ready") << view.dump();
  auto meta = Call("GET", "/v2/models/img");
  EXPECT_EQ(meta.body["parameters"]["objective"], "image-classification");
  EXPECT_EQ(meta.body["parameters"]["image_size"], json({28, 28}));

  // Sixteen images, each answered alone first.
  std::vector<vision::Image> images;
  std::vector<json> alone;
  for (int i = 0; i < 16; ++i) {
    images.push_back(Gray(28, 2 + i, static_cast<uint8_t>(10 * i)));
    auto r = Call("POST", "/v2/models/img/infer", Files({Png(images.back())}));
    ASSERT_EQ(r.status, 200) << r.text;
    alone.push_back(r.body["outputs"]);
  }
  // The same pixels as a UINT8 tensor give the same answer as the PNG file.
  auto tensor = Call("POST", "/v2/models/img/infer", Pixels(images[3]));
  ASSERT_EQ(tensor.status, 200) << tensor.text;
  EXPECT_EQ(tensor.body["outputs"][0]["data"], alone[3][0]["data"]);
  EXPECT_NEAR(tensor.body["outputs"][1]["data"][0].get<double>(), alone[3][1]["data"][0].get<double>(), 1e-5);

  // Concurrent clients, each sending its own images: every answer is its own image's.
  std::vector<std::future<int>> clients;
  for (int c = 0; c < 8; ++c) {
    clients.push_back(std::async(std::launch::async, [&, c] {
      auto http = server_->Client(30);
      int wrong = 0;
      for (int k = 0; k < 12; ++k) {
        const int i = (c * 5 + k) % 16;
        auto r = http->Call("POST", "/v2/models/img/infer", (k % 2 ? Pixels(images[i]) : Files({Png(images[i])})).dump());
        if (!r.has_value() || r->status != 200) {
          ++wrong;
          continue;
        }
        const json& out = r->body["outputs"];
        if (out[0]["data"] != alone[i][0]["data"] ||
            std::abs(out[1]["data"][0].get<double>() - alone[i][1]["data"][0].get<double>()) > 1e-4)
          ++wrong;
      }
      return wrong;
    }));
  }
  for (auto& c : clients) EXPECT_EQ(c.get(), 0);

  // Texts to an image deployment, and a tensor of the wrong kind: clear errors.
  auto text = Call("POST", "/v2/models/img/infer",
                   json{{"inputs", json::array({{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", {1, 2}}, {"data", {1, 2}}}})}});
  EXPECT_EQ(text.status, 400) << text.text;
  auto bad = Call("POST", "/v2/models/img/infer", Files({"not an image"}));
  EXPECT_EQ(bad.status, 400) << bad.text;
  ExpectHealthy();
}

}  // namespace
}  // namespace mlaas::testing
