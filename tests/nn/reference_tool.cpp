// The C++ half of the reference check (tests/nn/reference/hf_reference.py; BERT, DistilBERT,
// RoBERTa, Longformer, GPT-2):
//   nn_reference_tool export DIR   writes DIR/ours-<Class>/ model directories (seeded weights,
//                                  perturbed so biases and LayerNorms are not trivial) with the
//                                  inputs and our outputs in io.safetensors;
//   nn_reference_tool verify DIR   loads every DIR/py-<Class>/ written by the reference, runs its
//                                  inputs and compares with its outputs (max |diff| <= 1e-4).
#include <cstdio>
#include <filesystem>
#include <string>

#include "checkpoint/safetensors.h"
#include "nn/model.h"
#include "nn/reference_io.h"

namespace fs = std::filesystem;
using namespace mlaas;
using namespace mlaas::nn;

namespace {

constexpr double kTolerance = 1e-4;

nlohmann::json TinyConfig(Architecture arch, const std::string& act) {
  if (arch == Architecture::kGpt2)
    return {{"model_type", "gpt2"}, {"vocab_size", 97}, {"n_positions", 40}, {"n_embd", 32}, {"n_layer", 2},
            {"n_head", 4}, {"activation_function", act}, {"bos_token_id", 96}, {"eos_token_id", 96}};
  nlohmann::json labels = {{"0", "neg"}, {"1", "neutral"}, {"2", "pos"}};
  if (arch == Architecture::kDistilBert)
    return {{"model_type", "distilbert"}, {"vocab_size", 97}, {"dim", 32}, {"n_layers", 2}, {"n_heads", 4},
            {"hidden_dim", 48}, {"activation", act}, {"max_position_embeddings", 40}, {"id2label", labels}};
  nlohmann::json c = {{"model_type", std::string(ArchitectureName(arch))}, {"vocab_size", 97}, {"hidden_size", 32},
                      {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"intermediate_size", 48},
                      {"hidden_act", act}, {"max_position_embeddings", 40}, {"id2label", labels}};
  if (RobertaLike(arch)) c.update({{"pad_token_id", 1}, {"max_position_embeddings", 42}});
  // Windows of 6 and 2: the 8 tokens are padded to 12, in chunks of 3 and of 1.
  if (arch == Architecture::kLongformer) c["attention_window"] = {6, 2};
  return c;
}

int Export(const fs::path& root) {
  struct Case {
    Architecture arch;
    Objective objective;
    const char* act;
    bool mean_pooled = false;  // config classifier_pooling "mean"
    const char* positions = nullptr;  // config position_embedding_type, when not absolute
  };
  const Case cases[] = {
      {Architecture::kBert, Objective::kTextClassification, "gelu"},
      {Architecture::kBert, Objective::kMaskedLm, "gelu_new"},
      {Architecture::kBert, Objective::kNoObjective, "relu"},
      {Architecture::kDistilBert, Objective::kTextClassification, "gelu"},
      {Architecture::kDistilBert, Objective::kMaskedLm, "relu"},
      {Architecture::kDistilBert, Objective::kNoObjective, "gelu"},
      {Architecture::kRoberta, Objective::kTextClassification, "gelu_new"},
      {Architecture::kRoberta, Objective::kMaskedLm, "gelu"},
      {Architecture::kRoberta, Objective::kNoObjective, "gelu"},
      {Architecture::kBert, Objective::kTextClassification, "gelu", true},
      {Architecture::kDistilBert, Objective::kTextClassification, "relu", true},
      {Architecture::kRoberta, Objective::kTextClassification, "gelu", true},
      {Architecture::kGpt2, Objective::kCausalLm, "gelu_new"},
      {Architecture::kBert, Objective::kTokenClassification, "gelu"},
      {Architecture::kDistilBert, Objective::kTokenClassification, "gelu"},
      {Architecture::kRoberta, Objective::kTokenClassification, "gelu"},
      {Architecture::kBert, Objective::kQuestionAnswering, "gelu"},
      {Architecture::kDistilBert, Objective::kQuestionAnswering, "relu"},
      {Architecture::kRoberta, Objective::kQuestionAnswering, "gelu"},
      {Architecture::kBert, Objective::kNextSentencePrediction, "gelu"},
      {Architecture::kBert, Objective::kQuestionAnswering, "gelu_new", false, "relative_key_query"},
      {Architecture::kRoberta, Objective::kTextClassification, "gelu", false, "relative_key"},
      {Architecture::kLongformer, Objective::kTextClassification, "gelu"},
      {Architecture::kLongformer, Objective::kMaskedLm, "gelu_new"},
      {Architecture::kLongformer, Objective::kNoObjective, "gelu"},
      {Architecture::kLongformer, Objective::kTokenClassification, "relu"},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    nlohmann::json config_json = TinyConfig(c.arch, c.act);
    if (c.mean_pooled) config_json["classifier_pooling"] = "mean";
    if (c.positions != nullptr) config_json["position_embedding_type"] = c.positions;
    auto config = ParseConfig(config_json);
    if (!config) {
      std::fprintf(stderr, "%s\n", config.error().ToString().c_str());
      return 1;
    }
    TransformerModel model(*config, c.objective, /*with_pooler=*/true);
    InitWeights(*model, seed++);
    {
      torch::NoGradGuard no_grad;
      torch::manual_seed(seed);
      for (auto& p : model->named_parameters()) p.value().add_(torch::randn_like(p.value()) * 0.1);
    }
    model->eval();
    const fs::path dir = root / ("ours-" + ArchitectureClassName(c.arch, c.objective) + (c.mean_pooled ? "-mean" : "") +
                                 (c.positions != nullptr ? std::string("-") + c.positions : std::string()));
    if (Status s = SaveModelDir(*model, dir); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    if (Status st = WriteIo(*model, c.arch, dir); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    std::printf("wrote %s\n", dir.c_str());
  }
  return 0;
}

torch::Tensor Read(const checkpoint::SafetensorsFile& f, const std::string& name) {
  const auto* info = f.Find(name);
  if (!info) return {};
  auto data = f.Data(*info);
  auto dtype = info->dtype == checkpoint::DType::kI64 ? torch::kInt64 : torch::kFloat32;
  return torch::from_blob(const_cast<std::byte*>(data.data()), info->shape, dtype).clone();
}

int Verify(const fs::path& root) {
  int checked = 0, failed = 0;
  double worst = 0;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.path().filename().string().starts_with("py-")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    ++checked;
    auto loaded = LoadModelDir(dir, std::nullopt);
    if (!loaded) {
      std::fprintf(stderr, "%s: %s\n", dir.c_str(), loaded.error().ToString().c_str());
      ++failed;
      continue;
    }
    auto io = checkpoint::SafetensorsFile::Open(dir / "io.safetensors");
    if (!io) {
      std::fprintf(stderr, "%s: %s\n", dir.c_str(), io.error().ToString().c_str());
      return 1;
    }
    EncoderInput in{Read(**io, "input_ids"), Read(**io, "attention_mask"), Read(**io, "token_type_ids"),
                    Read(**io, "global_attention_mask")};
    torch::InferenceMode guard;
    loaded->model->PrepareForInference();
    auto out = loaded->model->forward(in);
    // Compared at the real tokens: what a padding position holds means nothing (inference
    // skips the padding and writes zeros there; transformers computes it).
    auto keep = in.attention_mask.defined() ? in.attention_mask.ne(0) : torch::ones_like(in.input_ids).ne(0);
    double dh = (out.encoder.last_hidden_state - Read(**io, "last_hidden_state")).index({keep}).abs().max().item<double>();
    auto want_logits = Read(**io, "logits");
    double dl = 0.0;
    if (want_logits.defined()) {
      auto d = out.logits - want_logits;
      dl = (d.dim() == 3 ? d.index({keep}) : d).abs().max().item<double>();  // per token for masked-LM
    }
    worst = std::max({worst, dh, dl});
    // A decoder's greedy continuations of the reference's prompts, batched here (left-padded,
    // through the cache), one by one without a cache there.
    bool generation = true;
    if (auto want = Read(**io, "generated"); want.defined()) {
      auto prompts = Read(**io, "prompt_ids");
      auto lengths = Read(**io, "prompt_lengths");
      std::vector<std::vector<int64_t>> rows;
      for (int64_t r = 0; r < prompts.size(0); ++r) {
        auto row = prompts[r].slice(0, 0, lengths[r].item<int64_t>()).contiguous();
        rows.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
      }
      GenerationOptions greedy;
      greedy.max_new_tokens = want.size(1);
      auto got = Generate(*loaded->model, rows, greedy);
      generation = Ids(got).equal(want);
    }
    const bool ok = dh <= kTolerance && dl <= kTolerance && loaded->report.unused.empty() && generation;
    std::printf("%-40s %-4s hidden max|diff| %.2e  logits max|diff| %.2e%s%s\n", dir.filename().c_str(),
                loaded->report.source_dtype.c_str(), dh, dl, generation ? "" : "  generation differs",
                ok ? "" : "  FAILED");
    if (!ok) ++failed;
  }
  std::printf("checked %d models written by the reference; worst max|diff| %.2e (tolerance %.0e)\n", checked, worst,
              kTolerance);
  return checked == 0 || failed > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: nn_reference_tool export|verify DIR\n");
    return 2;
  }
  torch::set_num_threads(1);
  const std::string cmd = argv[1];
  if (cmd == "export") return Export(argv[2]);
  if (cmd == "verify") return Verify(argv[2]);
  std::fprintf(stderr, "unknown command %s\n", argv[1]);
  return 2;
}
