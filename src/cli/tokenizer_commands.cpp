#include "cli/tokenizer_commands.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/client_commands.h"
#include "cli/output.h"
#include "common/file_util.h"
#include "common/text.h"
#include "tokenizers/trainer.h"

namespace mlaas::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::u32string DecodeUtf8OrEmpty(const std::string& s) {
  auto cps = tokenizers::DecodeUtf8(s, tokenizers::InvalidUtf8::kReplace).value();
  return std::u32string(cps.begin(), cps.end());
}

int Fail(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return kExitFailed;
}

struct TrainArgs {
  std::string model = "wordpiece";
  size_t vocab_size = 30000;
  uint64_t min_frequency = 0;
  std::string special_tokens;
  bool lowercase = false;
  size_t limit_alphabet = 0;
  std::string initial_alphabet;
  std::string continuing_subword_prefix;
  std::vector<std::string> inputs;
  std::string output;
};

int Train(const TrainArgs& a, bool as_json) {
  const auto t0 = std::chrono::steady_clock::now();
  tokenizers::TrainSpec spec;
  spec.kind = a.model == "bpe" ? tokenizers::TokenizerKind::kBpe : tokenizers::TokenizerKind::kWordPiece;
  spec.lowercase = a.lowercase;
  spec.trainer.vocab_size = a.vocab_size;
  spec.trainer.min_frequency = a.min_frequency;
  if (a.limit_alphabet > 0) spec.trainer.limit_alphabet = a.limit_alphabet;
  if (!a.initial_alphabet.empty()) {
    auto cps = DecodeUtf8OrEmpty(a.initial_alphabet);
    spec.trainer.initial_alphabet.assign(cps.begin(), cps.end());
  }
  if (!a.continuing_subword_prefix.empty()) spec.trainer.continuing_subword_prefix = a.continuing_subword_prefix;
  for (const auto& t : Split(a.special_tokens, ',')) {
    std::string tok(Trim(t));
    if (!tok.empty()) spec.trainer.special_tokens.push_back(tok);
  }
  auto pipeline = tokenizers::TrainingPipeline(spec);
  tokenizers::WordCounter counter(*pipeline);
  ProgressLine line;
  uint64_t total = 0, done = 0;
  for (const auto& f : a.inputs) total += fs::file_size(f);
  for (const auto& f : a.inputs) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Fail("cannot read " + f);
    std::string text;
    uint64_t line_no = 0;
    // Lines keep their ending, as Hugging Face reads training files.
    while (std::getline(in, text)) {
      ++line_no;
      done += text.size() + 1;
      if (!in.eof()) text.push_back('\n');
      if (Status st = counter.Add(text); !st.ok()) {
        line.Finish();
        return Fail(f + ":" + std::to_string(line_no) + ": " + st.message());
      }
      if (line_no % 4096 == 0) line.Update(total ? 0.5 * done / total : -1, "counting words");
    }
  }
  auto trained = tokenizers::BuildTrainedTokenizer(spec, counter, [&](double f) {
    line.Update(0.5 + 0.5 * f, "merging pairs");
    return true;
  });
  line.Finish();
  if (!trained.has_value()) return Fail(trained.error().message());
  std::error_code ec;
  fs::create_directories(a.output, ec);
  if (ec) return Fail("cannot create " + a.output + ": " + ec.message());
  json files = json::array();
  for (const auto& [name, content] : tokenizers::TokenizerFiles(**trained)) {
    if (Status st = WriteFileAtomic(fs::path(a.output) / name, content); !st.ok()) return Fail(st.message());
    files.push_back((fs::path(a.output) / name).string());
  }
  auto coverage = tokenizers::MeasureCoverage(**trained, counter);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json summary = {{"model", a.model},
                  {"vocab_size", (*trained)->VocabSize(true)},
                  {"lines", counter.lines()},
                  {"characters", counter.characters()},
                  {"words", coverage.words},
                  {"corpus_tokens", coverage.tokens},
                  {"coverage", coverage.words ? static_cast<double>(coverage.known_words) / coverage.words : 0.0},
                  {"seconds", seconds},
                  {"files", files}};
  if (as_json) {
    PrintJson(summary);
  } else {
    std::printf("trained a %s tokenizer: %zu tokens from %llu lines (%llu words) in %.1f s\n",
                a.model.c_str(), (*trained)->VocabSize(true),
                static_cast<unsigned long long>(counter.lines()),
                static_cast<unsigned long long>(coverage.words), seconds);
    std::printf("coverage %.4f, corpus tokens %llu; wrote %s\n", summary["coverage"].get<double>(),
                static_cast<unsigned long long>(coverage.tokens), a.output.c_str());
  }
  return kExitOk;
}

struct EncodeArgs {
  std::string tokenizer, input, output;
  bool no_special_tokens = false;
  size_t threads = 0;
};

int Encode(const EncodeArgs& a) {
  auto t = tokenizers::Tokenizer::Load(a.tokenizer);
  if (!t.has_value()) return Fail(t.error().message());
  std::ifstream in(a.input, std::ios::binary);
  if (!in) return Fail("cannot read " + a.input);
  const bool to_stdout = a.output == "-";
  fs::path tmp = a.output + ".tmp-" + NewUuid().substr(0, 8);
  std::ofstream file;
  if (!to_stdout) {
    file.open(tmp, std::ios::binary | std::ios::trunc);
    if (!file) return Fail("cannot write " + a.output);
  }
  std::ostream& out = to_stdout ? std::cout : file;
  std::vector<tokenizers::EncodeInput> batch;
  std::string text;
  uint64_t line_no = 0;
  auto flush = [&]() -> int {
    auto encoded = (*t)->EncodeBatch(batch, !a.no_special_tokens, a.threads);
    if (!encoded.has_value()) {
      return Fail("line " + std::to_string(line_no - batch.size() + 1) + "..: " + encoded.error().message());
    }
    for (const auto& e : *encoded) {
      json offsets = json::array();
      for (const auto& [s, f] : e.offsets) offsets.push_back({s, f});
      out << json{{"ids", e.ids}, {"tokens", e.tokens}, {"offsets", offsets},
                  {"type_ids", e.type_ids}, {"attention_mask", e.attention_mask},
                  {"special_tokens_mask", e.special_tokens_mask}}
                 .dump(-1, ' ', false, json::error_handler_t::replace)
          << "\n";
    }
    batch.clear();
    return kExitOk;
  };
  while (std::getline(in, text)) {
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    batch.push_back({std::move(text), std::nullopt});
    if (batch.size() == 8192) {
      if (int rc = flush(); rc != kExitOk) return rc;
    }
  }
  if (int rc = flush(); rc != kExitOk) return rc;
  if (!to_stdout) {
    file.close();
    std::error_code ec;
    fs::rename(tmp, a.output, ec);
    if (ec) return Fail("cannot write " + a.output + ": " + ec.message());
  }
  return kExitOk;
}

}  // namespace

void AddTokenizerCommands(CLI::App& app, bool* json_output, int* exit_code) {
  auto* tok = app.add_subcommand("tokenizer", "Train and use tokenizers locally (no server needed)");
  tok->require_subcommand(1);

  auto train_args = std::make_shared<TrainArgs>();
  auto* train = tok->add_subcommand(
      "train", "Train a WordPiece (BERT) or byte-level BPE (RoBERTa/GPT-2) tokenizer on text files; "
               "defaults equal Hugging Face's default trainers");
  train->add_option("--model", train_args->model, "wordpiece or bpe")
      ->check(CLI::IsMember({"wordpiece", "bpe"}))
      ->capture_default_str();
  train->add_option("--vocab-size", train_args->vocab_size, "Target vocabulary size")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  train->add_option("--min-frequency", train_args->min_frequency, "Minimum count of a pair to merge")
      ->capture_default_str();
  train->add_option("--special-tokens", train_args->special_tokens,
                    "Comma-separated special tokens, first in the vocabulary (e.g. \"[PAD],[UNK],[CLS],[SEP],[MASK]\")");
  train->add_flag("--lowercase", train_args->lowercase, "Lower-case (and strip accents, for wordpiece) first");
  train->add_option("--limit-alphabet", train_args->limit_alphabet, "Keep only the N most frequent characters");
  train->add_option("--initial-alphabet", train_args->initial_alphabet,
                    "Characters always in the vocabulary, even if unseen (e.g. \"abc\")");
  train->add_option("--continuing-subword-prefix", train_args->continuing_subword_prefix,
                    "Prefix of word-continuing pieces (wordpiece default \"##\"; bpe: none)");
  train->add_option("--input", train_args->inputs, "Text files, one text per line")
      ->required()
      ->check(CLI::ExistingFile);
  train->add_option("--output", train_args->output, "Output directory (tokenizer.json, vocab files)")->required();
  train->callback([train_args, json_output, exit_code] { *exit_code = Train(*train_args, *json_output); });

  auto encode_args = std::make_shared<EncodeArgs>();
  auto* encode = tok->add_subcommand(
      "encode", "Encode a file of texts (one per line) to JSON Lines: ids, tokens, offsets (characters), "
                "type_ids, attention_mask, special_tokens_mask");
  encode->add_option("--tokenizer", encode_args->tokenizer,
                     "tokenizer.json, or a directory with tokenizer.json / vocab.txt / vocab.json+merges.txt")
      ->required();
  encode->add_option("--input", encode_args->input, "Text file, one text per line")
      ->required()
      ->check(CLI::ExistingFile);
  encode->add_option("--output", encode_args->output, "Output JSON Lines file (- for stdout)")->required();
  encode->add_flag("--no-special-tokens", encode_args->no_special_tokens, "Do not add [CLS]/[SEP] or <s>/</s>");
  encode->add_option("--threads", encode_args->threads, "Encoding threads (0: all cores)")->capture_default_str();
  encode->callback([encode_args, exit_code] { *exit_code = Encode(*encode_args); });
}

}  // namespace mlaas::cli
