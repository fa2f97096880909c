#include "checkpoint/safetensors.h"

#include "common/json_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/text.h"

namespace mlaas::checkpoint {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference's limit

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::kBool, "BOOL", 1}, {DType::kU8, "U8", 1},     {DType::kI8, "I8", 1},
    {DType::kI16, "I16", 2},   {DType::kI32, "I32", 4},   {DType::kI64, "I64", 8},
    {DType::kF16, "F16", 2},   {DType::kBF16, "BF16", 2}, {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8}};

Status Bad(const std::string& what) { return InvalidArgument("invalid safetensors: " + what); }

}  // namespace

std::string_view DTypeName(DType d) {
  for (const auto& e : kDTypes) {
    if (e.dtype == d) return e.name;
  }
  return "?";
}

size_t DTypeSize(DType d) {
  for (const auto& e : kDTypes) {
    if (e.dtype == d) return e.size;
  }
  return 0;
}

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& e : kDTypes) {
    if (name == e.name) return e.dtype;
  }
  return std::nullopt;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<Header> ParseHeader(std::span<const std::byte> prefix, uint64_t file_size) {
  if (prefix.size() < 8 || file_size < 8) return Bad("the file is shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(prefix[static_cast<size_t>(i)]);
  if (n > kMaxHeaderBytes) return Bad("the header length " + std::to_string(n) + " is over 100 MB");
  if (n > file_size - 8) return Bad("the header runs past the end of the file (truncated?)");
  if (prefix.size() < 8 + n) return Bad("the header is incomplete");
  std::string_view text(reinterpret_cast<const char*>(prefix.data()) + 8, n);
  if (!IsValidUtf8(text)) return Bad("the header is not valid UTF-8");
  auto parsed = ParseJsonText(text, "the header", {}, {.max_bytes = kMaxHeaderBytes});
  if (!parsed.has_value()) return Bad(parsed.error().message());
  const json& j = *parsed;
  if (!j.is_object()) return Bad("the header is not a JSON object");
  Header h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return Bad("__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return Bad("__metadata__ value '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (name.empty()) return Bad("a tensor has an empty name");
    auto fail = [&](const std::string& what) { return Bad("tensor '" + name + "': " + what); };
    if (!v.is_object()) return fail("entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) return fail("missing dtype");
    auto dtype = ParseDType(v["dtype"].get<std::string>());
    if (!dtype) return fail("unsupported dtype " + v["dtype"].get<std::string>());
    if (!v.contains("shape") || !v["shape"].is_array()) return fail("missing shape");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
        !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned()) {
      return fail("data_offsets must be [begin, end]");
    }
    TensorInfo t;
    t.name = name;
    t.dtype = *dtype;
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) return fail("shape must hold non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 40) || (dim != 0 && numel > (uint64_t{1} << 48) / dim)) {
        return fail("shape is too large");
      }
      numel *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    t.begin = v["data_offsets"][0].get<uint64_t>();
    t.end = v["data_offsets"][1].get<uint64_t>();
    if (t.begin > t.end) return fail("data_offsets begin after they end");
    if (t.end > data_size) return fail("data runs past the end of the file (truncated?)");
    if (t.end - t.begin != numel * DTypeSize(t.dtype)) {
      return fail("holds " + std::to_string(t.end - t.begin) + " bytes but dtype " +
                  std::string(DTypeName(t.dtype)) + " x shape needs " +
                  std::to_string(numel * DTypeSize(t.dtype)));
    }
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expected = 0;
  for (const auto& t : h.tensors) {
    if (t.begin != expected) {
      return Bad("tensor '" + t.name + "' " + (t.begin < expected ? "overlaps the tensor before it" : "leaves a gap before it"));
    }
    expected = t.end;
  }
  if (expected != data_size) return Bad("the file has " + std::to_string(data_size - expected) + " bytes after the last tensor");
  return h;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path.string() + " is not a regular file");
  }
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      return Internal("cannot map " + path.string() + ": " + std::strerror(errno));
    }
    f->map_ = m;
    f->base_ = static_cast<const std::byte*>(m);
  }
  ::close(fd);
  auto h = ParseHeader({f->base_, f->size_}, f->size_);
  if (!h.has_value()) return h.error().WithContext(path.filename().string());
  f->header_ = std::move(h).value();
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->index_[f->header_.tensors[i].name] = i;
  return f;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(std::string bytes) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->owned_ = std::move(bytes);
  f->base_ = reinterpret_cast<const std::byte*>(f->owned_.data());
  f->size_ = f->owned_.size();
  MLAAS_ASSIGN_OR_RETURN(f->header_, ParseHeader({f->base_, f->size_}, f->size_));
  for (size_t i = 0; i < f->header_.tensors.size(); ++i) f->index_[f->header_.tensors[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::span<const std::byte> SafetensorsFile::Data(const TensorInfo& t) const {
  return {base_ + header_.data_start + t.begin, static_cast<size_t>(t.end - t.begin)};
}

Result<std::string> SerializeSafetensors(std::vector<TensorToWrite> tensors,
                                         const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  using ojson = nlohmann::ordered_json;
  ojson header = ojson::object();
  if (!metadata.empty()) {
    ojson m = ojson::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") return InvalidArgument("bad tensor name '" + t.name + "'");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return InvalidArgument("tensor '" + t.name + "' has a negative dimension");
      numel *= static_cast<uint64_t>(d);
    }
    if (numel * DTypeSize(t.dtype) != t.data.size()) {
      return InvalidArgument("tensor '" + t.name + "': data size does not match dtype x shape");
    }
    if (header.contains(t.name)) return InvalidArgument("tensor '" + t.name + "' appears twice");
    header[t.name] = {{"dtype", DTypeName(t.dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // data starts 8-byte aligned
  std::string out;
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out += text;
  for (const auto& t : tensors) out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  return out;
}

Status WriteSafetensors(const std::filesystem::path& path, std::vector<TensorToWrite> tensors,
                        const std::map<std::string, std::string>& metadata) {
  MLAAS_ASSIGN_OR_RETURN(std::string bytes, SerializeSafetensors(std::move(tensors), metadata));
  return WriteFileAtomic(path, bytes);
}

Result<std::map<std::string, std::string>> ReadShardIndex(const std::filesystem::path& index_json) {
  MLAAS_ASSIGN_OR_RETURN(const json j, ReadJsonFile(index_json, index_json.filename().string()));
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return InvalidArgument(index_json.filename().string() + ": expected {\"weight_map\": {tensor: file}}");
  }
  std::map<std::string, std::string> out;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) return InvalidArgument(index_json.filename().string() + ": shard of '" + it.key() + "' is not a file name");
    std::string file = it.value().get<std::string>();
    if (file.find('/') != std::string::npos || file == "..") {
      return InvalidArgument(index_json.filename().string() + ": shard file '" + file + "' must be a plain file name");
    }
    out[it.key()] = file;
  }
  return out;
}

}  // namespace mlaas::checkpoint
