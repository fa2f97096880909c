// libFuzzer target: Tokenizer::Load over a model directory in every layout it reads, whatever
// the files hold: no crash, leak, sanitizer report or escaping exception. The first byte picks
// the layout; the rest is split at 0x00 bytes into the files, in this order:
//   0: tokenizer.json
//   1: vocab.txt, tokenizer_config.json, special_tokens_map.json (BERT)
//   2: vocab.json, merges.txt, tokenizer_config.json (GPT-2 / RoBERTa)
//   3: tokenizer.json or vocab.txt (byte 1: which) loaded by its file path, not the directory
// Files without a part are left out. A tokenizer that loads encodes and decodes a few texts.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizers/tokenizer.h"

namespace fs = std::filesystem;
using mlaas::tokenizers::Tokenizer;

namespace {

const fs::path& Dir() {
  static const fs::path dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "tokenizer_dir_fuzz.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) std::abort();
    std::atexit([] { fs::remove_all(Dir()); });
    return fs::path(tmpl);
  }();
  return dir;
}

void Write(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const fs::path& dir = Dir();
  for (const auto& entry : fs::directory_iterator(dir)) fs::remove(entry.path());
  std::vector<std::string> parts(1);
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == 0) {
      parts.emplace_back();
    } else {
      parts.back() += static_cast<char>(data[i]);
    }
  }
  static const std::vector<std::vector<const char*>> kLayouts = {
      {"tokenizer.json"},
      {"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"},
      {"vocab.json", "merges.txt", "tokenizer_config.json"},
  };
  const int layout = data[0] % 4;
  fs::path target = dir;
  if (layout < 3) {
    for (size_t i = 0; i < parts.size() && i < kLayouts[layout].size(); ++i) Write(dir / kLayouts[layout][i], parts[i]);
  } else {
    target = dir / (data[0] & 4 ? "vocab.txt" : "tokenizer.json");
    Write(target, parts[0]);
  }
  auto tokenizer = Tokenizer::Load(target);
  if (!tokenizer.has_value()) {
    // Errors name files, never the server's directory; Load's last-resort catch never fires. A
    // parse error may quote the file's own bytes, so the directory counts as leaked only when the
    // input does not hold it (the fuzzer learns the path from comparisons and writes it in files).
    const std::string error = tokenizer.error().ToString();
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const bool leaked = error.find(dir.string()) != std::string::npos && input.find(dir.string()) == std::string_view::npos;
    if (leaked || tokenizer.error().code() == mlaas::StatusCode::kInternal) {
      std::fprintf(stderr, "unexpected error: %s\n", error.c_str());
      std::abort();
    }
    return 0;
  }
  for (bool special : {true, false}) {
    auto e = (*tokenizer)->Encode("Hello, world! caf\xC3\xA9 [MASK] <s> \xE4\xB8\xAD", std::string_view("pair"), special);
    if (e.has_value()) (void)(*tokenizer)->Decode(e->ids, !special);
  }
  return 0;
}
