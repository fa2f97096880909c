// Training benchmark: masked-LM training throughput (tokens/s) of our trainer beside the same
// training loop in PyTorch eager (../shared/bench/py_bert_bench.py --mode train): bert-mini
// shape (hidden 256, 4 layers, 4 heads, FFN 1024, vocab 8000), batches of 16 x 128 tokens, 15%
// masked, AdamW (lr 1e-4, weight decay 0.01), no clipping, as the peer does. Both sides skip two
// warm-up steps. Also the machine's fp32 GEMM rate in the same run (the peer's --mode gemm),
// for model-FLOPs utilisation. Rounds interleave; medians and ratios are printed.
//
//   train_bench [--threads N] [--steps S] [--rounds R] [--shared DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "train_timing.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace mlaas;
using mlaas::bench::Median;
using mlaas::bench::Run;

namespace {

constexpr int64_t kSeq = 128, kVocab = 8000, kBatch = 16, kHidden = 256, kLayers = 4, kFfn = 1024;

// FLOPs per trained token: 3x the forward pass (GEMMs of the layers, attention over the
// sequence, the MLM transform and the vocabulary decoder). With `head_fraction` 1 that is the
// model FLOPs the peer's README counts (the head at every position); ours runs the head only at
// the masked 15%.
double FlopsPerToken(double head_fraction = 1.0) {
  const double h = kHidden, f = kFfn, l = kLayers, t = kSeq, v = kVocab;
  const double forward = 2 * l * (4 * h * h + 2 * h * f) + 2 * l * 2 * t * h + head_fraction * 2 * (h * h + h * v);
  return 3 * forward;
}


double Field(const std::string& out, const std::string& kind, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("kind", "") == kind && j.contains(key)) return j[key].get<double>();
  }
  return 0;
}


// Our trainer on `steps + 2` batches of random 128-token texts; tokens/s after two warm-up steps.
double OursTokensPerSecond(const fs::path& work, int threads, int steps, uint64_t seed) {
  train::TrainInputs in;
  in.spec.objective = Objective::kMaskedLm;
  in.spec.epochs = 1;
  in.spec.batch_size = kBatch;
  in.spec.optimizer.init_lr = 1e-4;
  in.spec.optimizer.weight_decay_rate = 0.01;
  in.spec.max_grad_norm = 0;  // the peer does not clip
  in.spec.threads = threads;
  in.spec.seed = seed;
  in.model_block = {{"config",
                     {{"model_type", "bert"},
                      {"hidden_size", kHidden},
                      {"num_hidden_layers", kLayers},
                      {"num_attention_heads", 4},
                      {"intermediate_size", kFfn},
                      {"max_position_embeddings", 512}}}};
  in.tokenizer = work / "vocab.txt";
  in.output_dir = work / "out";
  std::mt19937_64 rng(seed);
  for (int i = 0; i < (steps + 2) * kBatch; ++i) {
    std::string text;
    for (int k = 0; k < kSeq - 2; ++k) text += "w" + std::to_string(5 + rng() % (kVocab - 5)) + " ";
    in.train.push_back({text, "", ""});
  }
  return bench::TrainedUnitsPerSecond(in, 2, steps, static_cast<double>(kBatch * kSeq));
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, steps = 20, rounds = 3;
  fs::path shared = fs::path(MLAAS_SOURCE_DIR) / "../shared";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    if (a == "--steps") steps = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--shared") shared = argv[i + 1];
  }
  const fs::path work = fs::temp_directory_path() / "mlaas-train-bench";
  fs::create_directories(work);
  {
    std::ofstream v(work / "vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << t << "\n";
    for (int i = 5; i < kVocab; ++i) v << "w" << i << "\n";
  }
  const fs::path peer = shared / "bench/py_bert_bench.py";
  const bool has_peer = fs::exists(peer);
  const std::string env = "OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=" + std::to_string(threads) + " ";
  std::vector<double> ours, theirs, gemm;
  for (int r = 0; r < rounds; ++r) {
    ours.push_back(OursTokensPerSecond(work, threads, steps, 7 + static_cast<uint64_t>(r)));
    if (has_peer) {
      const std::string out = Run(env + "/usr/bin/python3 " + peer.string() + " --mode train --threads " +
                                  std::to_string(threads) + " --steps " + std::to_string(steps));
      theirs.push_back(Field(out, "train", "tokens_per_s"));
      const std::string g = Run(env + "/usr/bin/python3 " + peer.string() + " --mode gemm --threads " +
                                std::to_string(threads));
      gemm.push_back(Field(g, "gemm", "gflops"));
    }
    std::fprintf(stderr, "round %d: ours %.0f tokens/s%s\n", r + 1, ours.back(),
                 has_peer ? (", PyTorch " + std::to_string(static_cast<int>(theirs.back()))).c_str() : "");
  }
  const double o = Median(ours), t = Median(theirs), g = Median(gemm);
  const double flops = FlopsPerToken();
  std::printf("threads %d, %d steps of %lld x %lld tokens, %d rounds; %.1f MFLOP per trained token\n\n", threads,
              steps, static_cast<long long>(kBatch), static_cast<long long>(kSeq), rounds, flops / 1e6);
  std::printf("| masked-LM training | tokens/s | MFU (of %.0f GFLOP/s fp32 GEMM) |\n|---|---:|---:|\n", g);
  std::printf("| mlaas | %.0f | %.0f%% (executed: %.0f%% of %.1f MFLOP/token) |\n", o,
              g > 0 ? 100 * o * flops / (g * 1e9) : 0.0, g > 0 ? 100 * o * FlopsPerToken(0.15) / (g * 1e9) : 0.0,
              FlopsPerToken(0.15) / 1e6);
  if (has_peer) {
    std::printf("| PyTorch eager | %.0f | %.0f%% |\n", t, g > 0 ? 100 * t * flops / (g * 1e9) : 0.0);
    std::printf("| ratio | %.2fx | |\n", t > 0 ? o / t : 0.0);
    mlaas::bench::Record("train.mlm.pytorch", "masked-LM training vs PyTorch eager", o, t, "tokens/s");
  } else {
    std::printf("\n(no peer at %s)\n", peer.c_str());
  }
  fs::remove_all(work);
  return 0;
}
