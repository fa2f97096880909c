// Image-classifier training, ours beside the same loop in PyTorch eager
// (bench/vision/train_peer.py: torchvision-style per-image transforms and a DataLoader): the
// same model, random images of 10 classes, random crop (padding 2) and horizontal flip, AdamW,
// gradient clipping, on the same threads. Ours runs through train::RunTraining (what a training
// task runs); its images/s leave out preparing the images and evaluation, as the peer's do.
//
//   vision_train_bench [--threads N] [--images N] [--batch B] [--models cnn-small,resnet18] [--peer yes|no]
//                      [--precision float32|bfloat16]   (bfloat16: both sides under bf16 autocast)
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "common/text.h"
#include "testutil/temp_dir.h"
#include "train/trainer.h"

namespace {

struct Case {
  std::string preset;
  int64_t size, channels;
};

double Ours(const Case& c, int threads, int images, int batch, bool bf16) {
  mlaas::testing::TempDir dir;
  mlaas::train::TrainInputs in;
  in.spec.objective = mlaas::Objective::kImageClassification;
  in.spec.epochs = 1;
  in.spec.batch_size = batch;
  in.spec.threads = threads;
  in.spec.image_augment = {.crop_padding = 2, .horizontal_flip = true};
  in.spec.precision = bf16 ? mlaas::train::Precision::kBFloat16 : mlaas::train::Precision::kFloat32;
  in.model_block = {{"preset", c.preset}, {"image_mean", 0.5}, {"image_std", 0.5}};
  std::mt19937_64 rng(1);
  for (int i = 0; i < images; ++i) {
    mlaas::dataset::ImageExample e;
    e.label = i % 10;
    e.image = {c.size, c.size, c.channels, std::vector<uint8_t>(static_cast<size_t>(c.size * c.size * c.channels))};
    for (auto& p : e.image.pixels) p = static_cast<uint8_t>(rng());
    in.train_images.push_back(std::move(e));
  }
  for (int k = 0; k < 10; ++k) in.image_labels.push_back(std::to_string(k));
  in.output_dir = dir.path() / "model";
  auto r = mlaas::train::RunTraining(in, {});
  if (!r.has_value()) {
    std::cerr << c.preset << ": " << r.error().ToString() << "\n";
    return 0;
  }
  return (*r)["stats"]["images_per_s"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, images = 4096, batch = 64;
  bool peer = true;
  std::string models = "cnn-small,resnet18", precision = "float32";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--threads") threads = std::stoi(v);
    else if (a == "--images") images = std::stoi(v);
    else if (a == "--batch") batch = std::stoi(v);
    else if (a == "--models") models = v;
    else if (a == "--peer") peer = v == "yes";
    else if (a == "--precision") precision = v;
  }
  const bool bf16 = precision == "bfloat16";
  std::printf("threads %d, %d random images, batches of %d, random crop (padding 2) + flip, AdamW, %s\n\n", threads, images,
              batch, precision.c_str());
  std::printf("| model (input) | mlaas images/s | PyTorch eager + torchvision images/s | ratio |\n|---|---:|---:|---:|\n");
  for (const std::string& name : mlaas::Split(models, ',')) {
    const Case c = name == "cnn-small" ? Case{"cnn-small", 28, 1} : Case{name, 32, 3};
    // ResNets are slow on two cores: fewer images keep the run short.
    const int n = name == "cnn-small" ? images : std::max(batch * 8, images / 8);
    const double ours = Ours(c, threads, n, batch, bf16);
    double theirs = 0;
    if (peer) {
      const std::string out = mlaas::bench::Run("/usr/bin/python3 " + std::string(MLAAS_SOURCE_DIR) + "/bench/vision/train_peer.py " +
                                                name + " " + std::to_string(c.size) + " " + std::to_string(c.channels) + " " +
                                                std::to_string(n) + " " + std::to_string(batch) + " " + std::to_string(threads) +
                                                " " + precision);
      if (!out.empty()) theirs = nlohmann::json::parse(out)["images_per_s"].get<double>();
    }
    std::printf("| %s (%lldx%lldx%lld) | %.1f | %.1f | %.2fx |\n", name.c_str(), static_cast<long long>(c.channels),
                static_cast<long long>(c.size), static_cast<long long>(c.size), ours, theirs, theirs > 0 ? ours / theirs : 0.0);
    mlaas::bench::Record("vision.train." + name + (bf16 ? ".bf16" : "") + ".pytorch",
                         name + (bf16 ? " bf16-autocast" : "") + " training images/s vs PyTorch eager + torchvision", ours, theirs,
                         "images/s");
  }
  return 0;
}
