// Tokenizer benchmark: encode throughput (tokens/s, one thread and all threads) and training
// time of a 30k vocabulary, ours beside Hugging Face tokenizers (bench/tokenizers_peer.js)
// on the same corpus, with the ratio.
//
//   tokenizer_bench CORPUS_TXT [WORK_DIR]
// CORPUS_TXT: one text per line (e.g. the text column of ../shared/data/debian_mlm_train.csv).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench_util.h"
#include "tokenizers/trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace mlaas::tokenizers;

namespace {

std::string RunPeer(const std::string& args, const std::string& env = "") {
  const fs::path script = fs::path(MLAAS_SOURCE_DIR) / "bench/tokenizers_peer.js";
  const std::string out = mlaas::bench::Run(env + " node '" + script.string() + "' " + args);
  if (out.find('{') == std::string::npos) std::exit(1);
  return out.substr(out.rfind('{'));
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::unique_ptr<Tokenizer> Train(TokenizerKind kind, const fs::path& corpus, double* seconds) {
  auto t0 = std::chrono::steady_clock::now();
  TrainSpec spec;
  spec.kind = kind;
  spec.lowercase = kind == TokenizerKind::kWordPiece;
  auto pipeline = TrainingPipeline(spec);
  WordCounter counter(*pipeline);
  std::ifstream in(corpus);
  std::string line;
  while (std::getline(in, line)) {
    if (!counter.Add(line + "\n").ok()) std::exit(1);
  }
  auto t = BuildTrainedTokenizer(spec, counter);
  *seconds = Seconds(t0);
  return std::move(t).value();
}

// Best of three: tokens and seconds of encoding every text.
std::pair<size_t, double> Encode(const Tokenizer& t, const std::vector<EncodeInput>& texts,
                                 size_t threads) {
  double best = 1e30;
  size_t tokens = 0;
  for (int round = 0; round < 3; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    auto encoded = t.EncodeBatch(texts, true, threads);
    double s = Seconds(t0);
    if (!encoded.has_value()) {
      std::cerr << encoded.error().ToString() << "\n";
      std::exit(1);
    }
    tokens = 0;
    for (const auto& e : *encoded) tokens += e.size();
    best = std::min(best, s);
  }
  return {tokens, best};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: tokenizer_bench CORPUS_TXT [WORK_DIR]\n";
    return 2;
  }
  const fs::path corpus = argv[1];
  const fs::path work = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "mlaas-tokenizer-bench";
  fs::create_directories(work);
  std::vector<EncodeInput> texts;
  {
    std::ifstream in(corpus);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) texts.push_back({line, std::nullopt});
    }
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("corpus: %s (%zu texts), %u cores\n\n", corpus.c_str(), texts.size(), cores);
  std::printf("%-34s %14s %14s %8s\n", "measure", "mlaas", "huggingface", "ratio");
  for (auto [kind, name] : {std::pair{TokenizerKind::kWordPiece, "wordpiece"},
                            std::pair{TokenizerKind::kBpe, "bpe"}}) {
    double ours_train = 0;
    auto ours = Train(kind, corpus, &ours_train);
    const fs::path ref_json = work / (std::string(name) + "-ref.json");
    json peer_train = json::parse(RunPeer(std::string("train ") + name + " '" + corpus.string() +
                                          "' '" + ref_json.string() + "'", "RAYON_NUM_THREADS=" + std::to_string(cores)));
    std::printf("%-34s %13.2fs %13.2fs %7.2fx\n", (std::string(name) + " train 30k vocab (s)").c_str(),
                ours_train, peer_train["seconds"].get<double>(),
                peer_train["seconds"].get<double>() / ours_train);
    mlaas::bench::Record(std::string("tokenizers.") + name + ".train", std::string(name) + " train 30k vocabulary vs HF tokenizers",
                         ours_train, peer_train["seconds"].get<double>(), "s", false);
    // Encode with the reference's own trained tokenizer on both sides (same vocabulary).
    std::ifstream rj(ref_json);
    json ref = json::parse(rj);
    auto shared = Tokenizer::FromJson(ref).value();
    const fs::path texts_file = work / "texts.txt";
    {
      std::ofstream out(texts_file);
      for (const auto& t : texts) out << t.text << "\n";
    }
    for (unsigned threads : {1u, cores}) {
      auto [tokens, secs] = Encode(*shared, texts, threads);
      json peer = json::parse(RunPeer("encode '" + ref_json.string() + "' '" + texts_file.string() + "'",
                                      "RAYON_NUM_THREADS=" + std::to_string(threads)));
      double ours_tps = static_cast<double>(tokens) / secs;
      double peer_tps = peer["tokens"].get<double>() / peer["seconds"].get<double>();
      char label[64];
      std::snprintf(label, sizeof(label), "%s encode, %u thread(s) (tok/s)", name, threads);
      std::printf("%-34s %14.0f %14.0f %7.2fx\n", label, ours_tps, peer_tps, ours_tps / peer_tps);
      mlaas::bench::Record(std::string("tokenizers.") + name + ".encode." + (threads == 1 ? "1thread" : "all-threads"),
                           std::string(name) + " encode, " + (threads == 1 ? "1 thread" : "all threads") + " vs HF tokenizers",
                           ours_tps, peer_tps, "tokens/s");
      if (peer["tokens"].get<size_t>() != tokens) {
        std::printf("  (token counts differ: %zu vs %zu)\n", tokens, peer["tokens"].get<size_t>());
      }
    }
  }
  return 0;
}
