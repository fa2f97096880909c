// GPU benchmarks of issue 23 (docs/gpu.md), ours beside PyTorch eager on the same device in one
// run (bench/gpu/peer.py): masked-LM training tokens/s of bert-base (batch 64 and 256, sequence
// 128, bf16 autocast, AdamW), classification latency at batch 1 and throughput at batch 64, and
// model-FLOPs utilisation against the matrix rate the peer measures on the same device. Runs on
// the CPU too (--device cpu --model bert-mini), which checks the benchmark itself.
//
//   gpu_bench [--device cuda] [--model bert-base|bert-mini] [--precision bf16|fp32] [--steps N]
//             [--python python3] [--threads N]
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "bench_util.h"
#include "train_timing.h"
#include "nn/model.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace mlaas;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kSeq = 128;
struct Shape {
  int64_t hidden, layers, heads, ffn, vocab;
};
const std::map<std::string, Shape> kShapes = {{"bert-base", {768, 12, 12, 3072, 30522}},
                                              {"bert-mini", {256, 4, 4, 1024, 8000}}};

json Config(const Shape& s) {
  return {{"model_type", "bert"},       {"hidden_size", s.hidden},           {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads}, {"intermediate_size", s.ffn},    {"vocab_size", s.vocab},
          {"max_position_embeddings", 512}};
}

// FLOPs per trained token with the vocabulary head at every position (as the peer runs it).
double TrainFlopsPerToken(const Shape& s) {
  const double h = s.hidden, f = s.ffn, l = s.layers, t = kSeq, v = s.vocab;
  return 3 * (2 * l * (4 * h * h + 2 * h * f) + 2 * l * 2 * t * h + 2 * (h * h + h * v));
}

json PeerLine(const std::string& out, const std::string& kind) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("kind", "") == kind) return j;
  }
  return json::object();
}

// Our trainer: masked-LM on random 128-token texts; tokens/s after two warm-up steps.
double OursTraining(const fs::path& work, const std::string& device, const Shape& shape, const std::string& precision,
                    int64_t batch, int steps) {
  train::TrainInputs in;
  in.spec.objective = Objective::kMaskedLm;
  in.spec.epochs = 1;
  in.spec.batch_size = batch;
  in.spec.device = device;
  in.spec.precision = precision == "bf16" ? train::Precision::kBFloat16 : train::Precision::kFloat32;
  in.spec.optimizer.init_lr = 1e-4;
  in.spec.optimizer.weight_decay_rate = 0.01;
  in.spec.max_grad_norm = 0;  // the peer does not clip
  in.model_block = {{"config", Config(shape)}};
  in.tokenizer = work / "vocab.txt";
  in.output_dir = work / "out";
  std::mt19937_64 rng(1);
  for (int64_t i = 0; i < (steps + 2) * batch; ++i) {
    std::string text;
    for (int64_t k = 0; k < kSeq - 2; ++k) text += "w" + std::to_string(5 + rng() % (shape.vocab - 5)) + " ";
    in.train.push_back({text, "", ""});
  }
  return bench::TrainedUnitsPerSecond(in, 2, steps, static_cast<double>(batch * kSeq));
}

// Our classifier's forward pass (weights in bf16 when asked): ms per batch.
double OursInference(const fs::path& work, const std::string& device_name, const Shape& shape,
                     const std::string& precision, int64_t batch, int iters) {
  const fs::path dir = work / "cls";
  fs::create_directories(dir);
  json config = Config(shape);
  config["architectures"] = {"BertForSequenceClassification"};
  config["id2label"] = {{"0", "a"}, {"1", "b"}};
  std::ofstream(dir / "config.json") << config.dump();
  auto loaded = nn::LoadModelDir(dir, Objective::kTextClassification);
  if (!loaded.has_value()) {
    std::cerr << "ours: " << loaded.error().ToString() << "\n";
    return 0;
  }
  const torch::Device device(device_name);
  auto& model = loaded->model;
  model->eval();
  model->to(device, precision == "bf16" ? torch::kBFloat16 : torch::kFloat32);
  nn::EncoderInput in;
  in.input_ids = torch::randint(5, shape.vocab, {batch, kSeq}, torch::TensorOptions().dtype(torch::kLong).device(device));
  in.first_token_only = true;
  torch::InferenceMode guard;
  for (int i = 0; i < 3; ++i) (void)model->forward(in);
  if (device.is_cuda()) torch::cuda::synchronize();
  const auto start = Clock::now();
  for (int i = 0; i < iters; ++i) (void)model->forward(in);
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / iters;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "cuda", model = "bert-base", precision = "bf16", python = "python3";
  int steps = 20, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--device") device = v;
    if (a == "--model") model = v;
    if (a == "--precision") precision = v;
    if (a == "--steps") steps = std::atoi(v.c_str());
    if (a == "--python") python = v;
    if (a == "--threads") threads = std::atoi(v.c_str());
  }
  if (!kShapes.count(model) || (precision != "bf16" && precision != "fp32")) {
    std::cerr << "usage: gpu_bench [--device cuda] [--model bert-base|bert-mini] [--precision bf16|fp32] [--steps N]\n";
    return 2;
  }
  if (device != "cpu" && !torch::cuda::is_available()) {
    std::cerr << "gpu_bench: no CUDA device in this build or machine\n";
    return 1;
  }
  if (threads > 0) torch::set_num_threads(threads);
  const Shape shape = kShapes.at(model);
  const fs::path work = fs::temp_directory_path() / "mlaas-gpu-bench";
  fs::remove_all(work);
  fs::create_directories(work);
  {
    std::ofstream v(work / "vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << t << "\n";
    for (int64_t i = 5; i < shape.vocab; ++i) v << "w" << i << "\n";
  }
  const std::string peer = python + " " + (fs::path(MLAAS_SOURCE_DIR) / "bench/gpu/peer.py").string() + " --device " +
                           device + " --model " + model + " --precision " + precision +
                           (threads > 0 ? " --threads " + std::to_string(threads) : "");
  const json gemm = PeerLine(bench::Run(peer + " --mode gemm"), "gemm");
  const double peak = gemm.value("tflops", 0.0);
  const int64_t n = gemm.value("n", int64_t{0});
  std::printf("%s, %s, %s; the device's %s matrix rate (torch, %lld^3): %.1f TFLOP/s\n\n", device.c_str(), model.c_str(),
              precision.c_str(), precision.c_str(), static_cast<long long>(n), peak);

  std::printf("| masked-LM training, batch x %lld tokens | mlaas tokens/s | PyTorch eager tokens/s | ratio | MFU mlaas | MFU eager |\n",
              static_cast<long long>(kSeq));
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  const double flops = TrainFlopsPerToken(shape);
  for (int64_t batch : device == "cpu" ? std::vector<int64_t>{4} : std::vector<int64_t>{64, 256}) {
    const double ours = OursTraining(work, device, shape, precision, batch, steps);
    const json p = PeerLine(bench::Run(peer + " --mode train --batch " + std::to_string(batch) + " --steps " +
                                       std::to_string(steps)),
                            "train");
    const double theirs = p.value("tokens_per_s", 0.0);
    auto mfu = [&](double rate) { return peak > 0 ? 100 * rate * flops / (peak * 1e12) : 0.0; };
    std::printf("| %lld | %.0f | %.0f | **%.2fx** | %.0f%% | %.0f%% |\n", static_cast<long long>(batch), ours, theirs,
                theirs > 0 ? ours / theirs : 0.0, mfu(ours), mfu(theirs));
    bench::Record("gpu.train.mlm." + model + "." + precision + ".b" + std::to_string(batch),
                  "masked-LM training vs PyTorch eager on " + device, ours, theirs, "tokens/s");
  }

  std::printf("\n| classification inference | mlaas | PyTorch eager | ratio |\n|---|---:|---:|---:|\n");
  for (const auto& [batch, iters] : {std::pair<int64_t, int>{1, 50}, {64, 20}}) {
    const double ours = OursInference(work, device, shape, precision, batch, iters);
    const json p = PeerLine(bench::Run(peer + " --mode infer --batch " + std::to_string(batch) + " --iters " +
                                       std::to_string(iters)),
                            "infer");
    const double theirs = p.value("ms", 0.0);
    if (batch == 1) {
      std::printf("| batch 1 latency (ms) | %.2f | %.2f | **%.2fx** of eager's |\n", ours, theirs,
                  theirs > 0 ? ours / theirs : 0.0);
      bench::Record("gpu.infer.b1." + model + "." + precision, "classification latency at batch 1 on " + device, ours,
                    theirs, "ms", /*higher_is_better=*/false);
    } else {
      const double o = ours > 0 ? 1000.0 * static_cast<double>(batch) / ours : 0, t = p.value("sequences_per_s", 0.0);
      std::printf("| batch 64 throughput (sequences/s) | %.0f | %.0f | **%.2fx** |\n", o, t, t > 0 ? o / t : 0.0);
      bench::Record("gpu.infer.b64." + model + "." + precision, "classification throughput at batch 64 on " + device,
                    o, t, "sequences/s");
    }
  }
  fs::remove_all(work);
  return 0;
}
