// Transformer engine benchmark: inference throughput and latency of a bert-mini-shaped
// classifier (hidden 256, 4 layers, 4 heads, FFN 1024, vocab 8000, seq 128) — ours beside
// PyTorch eager (../shared/bench/py_bert_bench.py, python3-torch) and ONNX Runtime
// (bench/onnx: onnxruntime-node on the same weights exported with python3-torch), in one run,
// rounds interleaved, medians and ratios printed. Then the whole predict pipeline on real
// texts, with where the time goes (tokenization, forward, post-processing).
//
//   nn_bench [--threads N] [--rounds R] [--shared DIR] [--work DIR] [--peers yes|no] [--pipeline yes|no]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "dataset/record_reader.h"
#include "nn/cpu_allocator.h"
#include "nn/init_model.h"
#include "nn/model.h"
#include "predict/nlp_predictor.h"
#include "tokenizers/trainer.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace mlaas;
using mlaas::bench::Median;
using mlaas::bench::Run;

namespace {

constexpr int64_t kSeq = 128, kVocab = 8000;

json MiniConfig() {
  return {{"model_type", "bert"}, {"vocab_size", kVocab}, {"hidden_size", 256}, {"num_hidden_layers", 4},
          {"num_attention_heads", 4}, {"intermediate_size", 1024}, {"max_position_embeddings", 512},
          {"id2label", {{"0", "a"}, {"1", "b"}}}};
}


// seq/s by batch size from the JSON lines a peer prints.
std::map<int, double> Parse(const std::string& out) {
  std::map<int, double> r;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("kind", "") == "infer") r[j["batch"].get<int>()] = j["seq_per_s"].get<double>();
  }
  return r;
}

// `batch` sequences of kSeq random token ids, no padding.
nn::EncoderInput RandomInput(int64_t batch) {
  return {torch::randint(5, kVocab, {batch, kSeq}, torch::kInt64), torch::ones({batch, kSeq}, torch::kInt64),
          torch::zeros({batch, kSeq}, torch::kInt64)};
}

// first_token_only: the last layer at the [CLS] position only, as the predictor runs a
// classifier (the logits need nothing else); false: every layer at every position.
std::map<int, double> Ours(nn::TransformerModel& model, bool first_token_only = false) {
  std::map<int, double> r;
  torch::InferenceMode guard;
  for (int batch : {1, 32}) {
    nn::EncoderInput in = RandomInput(batch);
    in.first_token_only = first_token_only;
    const int iters = batch == 1 ? 50 : 5;
    for (int i = 0; i < 2; ++i) model->forward(in);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) model->forward(in);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r[batch] = batch * iters / s;
  }
  return r;
}


std::vector<std::string> Texts(const fs::path& csv, size_t max) {
  std::ifstream in(csv, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  dataset::ReaderOptions o;
  o.columns = {"text"};
  auto reader = dataset::OpenRecordReader(storage::MemoryReader(ss.str()), o);
  std::vector<std::string> out;
  if (!reader.has_value()) return out;
  dataset::Row row;
  while (out.size() < max) {
    auto more = (*reader)->Next(row);
    if (!more.has_value() || !*more) break;
    out.push_back(row.values[0]);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, rounds = 3;
  bool peers = true, breakdown = true;
  fs::path shared = fs::path(MLAAS_SOURCE_DIR) / "../shared";
  fs::path work = fs::temp_directory_path() / "mlaas-nn-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--shared") shared = argv[i + 1];
    if (a == "--work") work = argv[i + 1];
    if (a == "--peers") peers = std::string(argv[i + 1]) != "no";
    if (a == "--pipeline") breakdown = std::string(argv[i + 1]) != "no";
  }
  fs::create_directories(work);
  nn::ConfigureThreads(threads);
  nn::UseCachingCpuAllocator();
  std::printf("threads %d (torch %d), rounds %d, seq %lld\n", threads, torch::get_num_threads(), rounds,
              static_cast<long long>(kSeq));

  auto config = nn::ParseConfig(MiniConfig());
  nn::TransformerModel model(*config, nn::Objective::kTextClassification);
  nn::InitWeights(*model, 0);
  if (Status s = nn::SaveModelDir(*model, work / "bert-mini"); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  model->PrepareForInference();
  auto bf16 = nn::LoadModelDir(work / "bert-mini", std::nullopt);
  if (!bf16.has_value()) return 1;
  nn::TransformerModel model_bf16 = bf16->model;
  model_bf16->to(torch::kBFloat16);
  model_bf16->PrepareForInference();

  const fs::path src = MLAAS_SOURCE_DIR;
  const fs::path py_peer = shared / "bench/py_bert_bench.py";
  const bool have_py = peers && fs::exists(py_peer);
  const bool have_ort = peers && fs::exists(src / "bench/onnx/node_modules/onnxruntime-node");
  if (!have_py) std::printf("(no %s: PyTorch peer skipped)\n", py_peer.c_str());
  if (!have_ort) std::printf("(run `npm ci --ignore-scripts` in bench/onnx for the ONNX Runtime peer)\n");
  const std::string env = "OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 ";
  if (have_ort) {
    std::string out = Run(env + "/usr/bin/python3 " + (src / "bench/onnx/export_onnx.py").string() + " " +
                          (work / "bert-mini").string() + " " + (work / "bert-mini.onnx").string() + " 2>&1");
    if (out.find("exported") == std::string::npos) {
      std::printf("ONNX export failed:\n%s\n", out.c_str());
      return 1;
    }
  }

  double cls_diff = 0;  // the classifier's logits both ways
  {
    torch::InferenceMode guard;
    nn::EncoderInput in = RandomInput(4);
    torch::Tensor full = model->forward(in).logits;
    in.first_token_only = true;
    cls_diff = (model->forward(in).logits - full).abs().max().item<double>();
  }

  std::map<std::string, std::map<int, std::vector<double>>> seq_per_s;
  for (int r = 0; r < rounds; ++r) {
    for (auto& [b, v] : Ours(model)) seq_per_s["mlaas"][b].push_back(v);
    for (auto& [b, v] : Ours(model, /*first_token_only=*/true)) seq_per_s["mlaas-cls"][b].push_back(v);
    for (auto& [b, v] : Ours(model_bf16)) seq_per_s["mlaas-bf16"][b].push_back(v);
    if (have_py) {
      auto py = Parse(Run(env + "/usr/bin/python3 " + py_peer.string() + " --mode infer --threads " +
                          std::to_string(threads)));
      for (auto& [b, v] : py) seq_per_s["pytorch"][b].push_back(v);
      auto py16 = Parse(Run(env + "/usr/bin/python3 " + (src / "bench/py_bert_bf16_peer.py").string() + " " +
                            py_peer.parent_path().string() + " " + std::to_string(threads)));
      for (auto& [b, v] : py16) seq_per_s["pytorch-bf16"][b].push_back(v);
    }
    if (have_ort) {
      auto ort = Parse(Run(env + "node " + (src / "bench/onnx/ort_peer.js").string() + " " +
                           (work / "bert-mini.onnx").string() + " " + std::to_string(threads) + " " +
                           std::to_string(kVocab)));
      for (auto& [b, v] : ort) seq_per_s["onnxruntime"][b].push_back(v);
    }
  }
  std::printf("\n| batch | mlaas seq/s | PyTorch eager seq/s | ratio | ONNX Runtime seq/s | ratio | mlaas ms/batch | ORT ms/batch |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int b : {1, 32}) {
    double ours = Median(seq_per_s["mlaas"][b]), py = Median(seq_per_s["pytorch"][b]),
           ort = Median(seq_per_s["onnxruntime"][b]);
    std::printf("| %d | %.1f | %.1f | %.2fx | %.1f | %.2fx | %.2f | %.2f |\n", b, ours, py, py > 0 ? ours / py : 0.0,
                ort, ort > 0 ? ours / ort : 0.0, 1e3 * b / ours, ort > 0 ? 1e3 * b / ort : 0.0);
    const std::string batch = "batch " + std::to_string(b);
    bench::Record("nn.full.b" + std::to_string(b) + ".pytorch", "every position, " + batch + " vs PyTorch eager", ours, py, "seq/s");
    bench::Record("nn.full.b" + std::to_string(b) + ".ort", "every position, " + batch + " vs ONNX Runtime", ours, ort, "seq/s");
  }
  std::printf("\nAs the predictor runs a classifier (last layer at the [CLS] position only; logits within %.1e of the "
              "full pass):\n\n",
              cls_diff);
  std::printf("| batch | mlaas seq/s | PyTorch eager seq/s | ratio | ONNX Runtime seq/s | ratio | mlaas ms/batch |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int b : {1, 32}) {
    double ours = Median(seq_per_s["mlaas-cls"][b]), py = Median(seq_per_s["pytorch"][b]),
           ort = Median(seq_per_s["onnxruntime"][b]);
    std::printf("| %d | %.1f | %.1f | %.2fx | %.1f | %.2fx | %.2f |\n", b, ours, py, py > 0 ? ours / py : 0.0, ort,
                ort > 0 ? ours / ort : 0.0, 1e3 * b / ours);
    const std::string batch = "batch " + std::to_string(b);
    bench::Record("nn.cls.b" + std::to_string(b) + ".pytorch", "classifier, " + batch + " vs PyTorch eager", ours, py, "seq/s");
    bench::Record("nn.cls.b" + std::to_string(b) + ".ort", "classifier, " + batch + " vs ONNX Runtime", ours, ort, "seq/s");
  }
  std::printf("\nbfloat16 (opt-in: --dtype bfloat16), the same model in bf16 on both sides:\n\n");
  std::printf("| batch | mlaas bf16 seq/s | PyTorch eager bf16 seq/s | ratio | vs PyTorch fp32 | vs ORT fp32 |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  for (int b : {1, 32}) {
    double ours = Median(seq_per_s["mlaas-bf16"][b]), py = Median(seq_per_s["pytorch-bf16"][b]),
           py32 = Median(seq_per_s["pytorch"][b]), ort = Median(seq_per_s["onnxruntime"][b]);
    std::printf("| %d | %.1f | %.1f | %.2fx | %.2fx | %.2fx |\n", b, ours, py, py > 0 ? ours / py : 0.0,
                py32 > 0 ? ours / py32 : 0.0, ort > 0 ? ours / ort : 0.0);
    bench::Record("nn.bf16.b" + std::to_string(b) + ".pytorch-bf16", "bfloat16, batch " + std::to_string(b) +
                  " vs PyTorch eager bfloat16", ours, py, "seq/s");
  }

  // The whole pipeline on real texts: tokenizer trained on them, predict with batches of 32.
  const fs::path csv = shared / "data/debian_section_test.csv";
  if (!breakdown) return 0;
  if (!peers || !fs::exists(csv)) {
    std::printf("\n(no %s: pipeline breakdown skipped)\n", csv.c_str());
    return 0;
  }
  auto texts = Texts(csv, 2048);
  tokenizers::TrainSpec spec;
  spec.kind = tokenizers::TokenizerKind::kWordPiece;
  spec.lowercase = true;
  spec.trainer.vocab_size = kVocab;
  spec.trainer.special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  auto pipeline = tokenizers::TrainingPipeline(spec);
  tokenizers::WordCounter counter(*pipeline);
  for (const auto& t : texts) (void)counter.Add(t);
  auto tok = tokenizers::BuildTrainedTokenizer(spec, counter);
  if (!tok.has_value() || !(*tok)->Save(work / "tok/tokenizer.json").ok()) return 1;
  std::ofstream(work / "mini.json") << MiniConfig().dump();
  nn::InitModelSpec init;
  init.config_file = work / "mini.json";
  init.objective = "text-classification";
  init.tokenizer = work / "tok/tokenizer.json";
  init.output = work / "pipeline";
  if (auto r = nn::InitModelDirectory(init); !r.has_value()) {
    std::cerr << r.error().ToString() << "\n";
    return 1;
  }
  storage::StorageRegistry none;
  predict::PredictorOptions po;
  po.threads = threads;
  predict::NlpPredictor predictor(none, po);
  double tokenize = 0, forward = 0, post = 0, total = 0;
  size_t tokens = 0;
  (void)predictor.PredictLocal(init.output, std::nullopt, "text-classification",
                               {{"input_text", std::vector<std::string>(texts.begin(), texts.begin() + 32)}});
  for (size_t start = 0; start < texts.size(); start += 256) {
    std::vector<std::string> part(texts.begin() + start, texts.begin() + std::min(texts.size(), start + 256));
    auto r = predictor.PredictLocal(init.output, std::nullopt, "text-classification", {{"input_text", part}});
    if (!r.has_value()) {
      std::cerr << r.error().ToString() << "\n";
      return 1;
    }
    const json& t = (*r)["timing_ms"];
    tokenize += t["tokenize"].get<double>();
    forward += t["forward"].get<double>();
    post += t["postprocess"].get<double>();
    total += t["total"].get<double>();
    tokens += (*r)["tokens"].get<size_t>();
  }
  std::printf("\npipeline: %zu texts of %s (%zu tokens, truncated to 512), batches of 32: %.1f texts/s\n",
              texts.size(), csv.filename().c_str(), tokens, 1e3 * texts.size() / total);
  std::printf("  tokenize %.1f%%  forward %.1f%%  post-process %.1f%%  (total %.0f ms)\n", 100 * tokenize / total,
              100 * forward / total, 100 * post / total, total);
  return 0;
}
