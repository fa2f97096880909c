// libFuzzer target: a vector store as a client could upload it — manifest.json, index.faiss
// and documents.jsonl, given as one input split at "\n@@\n" — either loads as a store that
// searches (dense, filtered, lexical) and saves and loads again, or is an error: never a
// crash, an out-of-bounds read or an allocation the file's size does not pay for. Seeds:
// tests/vector/fuzz/seeds (written by IndexFileTest.WritesFuzzSeedsWhenAsked).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/file_util.h"
#include "vector/vector_store.h"

using namespace mlaas::vector;
namespace fs = std::filesystem;

namespace {

// A directory in memory where there is a tmpfs (every input writes and fsyncs a few files),
// removed at exit.
struct Scratch {
  Scratch() {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string pattern = (base / "vector-store-fuzz-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) __builtin_trap();
    dir = pattern;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
};

void Put(const fs::path& path, std::string_view part, bool present) {
  std::error_code ec;
  fs::remove(path, ec);
  if (present && !mlaas::WriteFileAtomic(path, part).ok()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Scratch scratch;
  const fs::path& dir = scratch.dir;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSplit = "\n@@\n";
  const size_t first = input.find(kSplit);
  const size_t second = first == std::string_view::npos ? first : input.find(kSplit, first + kSplit.size());
  const std::string_view manifest = input.substr(0, first);
  const std::string_view index =
      first == std::string_view::npos ? std::string_view() : input.substr(first + kSplit.size(), second - first - kSplit.size());
  const std::string_view documents =
      second == std::string_view::npos ? std::string_view() : input.substr(second + kSplit.size());
  Put(dir / "manifest.json", manifest, true);
  Put(dir / "index.faiss", index, first != std::string_view::npos);
  Put(dir / "documents.jsonl", documents, second != std::string_view::npos);

  auto store = VectorStore::Load(dir);
  if (!store.has_value()) return 0;
  const std::vector<float> query(static_cast<size_t>((*store)->dim()), 0.5f);
  if (!(*store)->Search(query, 3).has_value()) __builtin_trap();
  if (!(*store)->Search(query, 2, {{"i", 1}}).has_value()) __builtin_trap();
  if (!(*store)->LexicalSearch({"text 1"}, 2).has_value()) __builtin_trap();
  // What was loaded saves and loads again.
  const fs::path again = dir / "again";
  if (!(*store)->Save(again).ok()) __builtin_trap();
  auto reloaded = VectorStore::Load(again);
  if (!reloaded.has_value() || (*reloaded)->size() != (*store)->size()) __builtin_trap();
  return 0;
}
