// Image classification, ours beside PyTorch eager + torchvision (bench/vision/torchvision_peer.py):
// one 320 x 240 JPEG decoded, resized to 224 x 224, normalised and classified by a ResNet-18
// (1,000 classes, seeded weights: the speed does not depend on them), on the same threads.
// Latency: p50 of one image, decode to label. Throughput: batches of --batch images.
//
//   vision_bench [--threads N] [--rounds R] [--batch B] [--peer yes|no]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "nn/cpu_allocator.h"
#include "nn/model.h"
#include "predict/servable_model.h"
#include "vision/image.h"

namespace {

using Clock = std::chrono::steady_clock;
using mlaas::bench::Median;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// A photo-like test card: smooth gradients and a few edges, so that JPEG has work to do.
std::string TestJpeg() {
  mlaas::vision::Image im;
  im.width = 320;
  im.height = 240;
  im.channels = 3;
  im.pixels.resize(320 * 240 * 3);
  for (int64_t y = 0; y < 240; ++y)
    for (int64_t x = 0; x < 320; ++x) {
      uint8_t* p = &im.pixels[static_cast<size_t>((y * 320 + x) * 3)];
      p[0] = static_cast<uint8_t>((x * 255) / 319);
      p[1] = static_cast<uint8_t>((y * 255) / 239);
      p[2] = static_cast<uint8_t>(((x / 40 + y / 40) % 2) * 200 + 20);
    }
  return *mlaas::vision::EncodeJpeg(im, 90);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, rounds = 40, batch = 32;
  bool peer = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--threads") threads = std::stoi(v);
    else if (a == "--rounds") rounds = std::stoi(v);
    else if (a == "--batch") batch = std::stoi(v);
    else if (a == "--peer") peer = v == "yes";
  }
  mlaas::nn::ConfigureThreads(threads);
  mlaas::nn::UseCachingCpuAllocator();
  mlaas::predict::LoadSpec spec;
  spec.objective = "image-classification";
  std::vector<std::string> labels;
  for (int i = 0; i < 1000; ++i) labels.push_back("c" + std::to_string(i));
  spec.model_block = {{"preset", "resnet18"}, {"labels", labels}, {"image_size", 224}, {"num_channels", 3}};
  spec.source = "bench";
  auto model = mlaas::predict::ServableModel::Load(spec);
  if (!model.has_value()) {
    std::cerr << model.error().ToString() << "\n";
    return 1;
  }
  const std::string jpeg = TestJpeg();
  const auto path = std::filesystem::temp_directory_path() / "mlaas-vision-bench.jpg";
  std::ofstream(path, std::ios::binary) << jpeg;

  auto classify = [&](const std::vector<std::string>& files) {
    auto rows = (*model)->EncodeImages(files, "images");
    std::vector<const mlaas::predict::ModelRow*> ptrs;
    for (const auto& r : *rows) ptrs.push_back(&r);
    return (*model)->Run(ptrs, {});
  };
  (void)classify({jpeg});  // warm up
  std::vector<double> times;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = Clock::now();
    auto out = classify({jpeg});
    times.push_back(Ms(t0, Clock::now()));
    if (!out.has_value()) {
      std::cerr << out.error().ToString() << "\n";
      return 1;
    }
  }
  const std::vector<std::string> many(static_cast<size_t>(batch), jpeg);
  (void)classify(many);
  const int passes = std::max(1, rounds / 4);
  const auto t0 = Clock::now();
  for (int r = 0; r < passes; ++r) (void)classify(many);
  const double ours_rate = batch * passes / (Ms(t0, Clock::now()) / 1000.0);
  const double ours_latency = Median(times);

  double peer_latency = 0, peer_rate = 0;
  if (peer) {
    const std::string out = mlaas::bench::Run("/usr/bin/python3 " + std::string(MLAAS_SOURCE_DIR) +
                                              "/bench/vision/torchvision_peer.py " + path.string() + " " +
                                              std::to_string(threads) + " " + std::to_string(rounds) + " " +
                                              std::to_string(batch));
    if (!out.empty()) {
      const auto j = nlohmann::json::parse(out);
      peer_latency = j["latency_ms"].get<double>();
      peer_rate = j["images_per_s"].get<double>();
    }
  }
  std::printf("threads %d, %d rounds, batch %d; one 320x240 JPEG -> 224x224 ResNet-18 (1000 classes)\n\n", threads,
              rounds, batch);
  std::printf("| | mlaas | PyTorch eager + torchvision | ratio |\n|---|---:|---:|---:|\n");
  std::printf("| one image p50, decode to label (ms) | %.2f | %.2f | %.2fx |\n", ours_latency, peer_latency,
              peer_latency > 0 ? peer_latency / ours_latency : 0.0);
  std::printf("| batches of %d (images/s) | %.1f | %.1f | %.2fx |\n", batch, ours_rate, peer_rate,
              peer_rate > 0 ? ours_rate / peer_rate : 0.0);
  mlaas::bench::Record("vision.resnet18.latency.torchvision", "ResNet-18, one 224x224 image p50 vs PyTorch + torchvision", ours_latency,
                       peer_latency, "ms", /*higher_is_better=*/false);
  mlaas::bench::Record("vision.resnet18.batch.torchvision", "ResNet-18, batches of images/s vs PyTorch + torchvision", ours_rate,
                       peer_rate, "images/s");
  return 0;
}
