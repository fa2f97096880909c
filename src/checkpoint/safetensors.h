// mlaas::checkpoint — the safetensors format (Hugging Face model weights): a little-endian
// u64 header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {}}
// and the raw tensor bytes. Files are memory-mapped; every header is validated (offsets in
// bounds, contiguous, not overlapping, sizes matching dtype x shape) so that a truncated or
// forged file is an error naming the tensor, never a crash. Writes are atomic. No libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace mlaas::checkpoint {

enum class DType { kBool, kU8, kI8, kI16, kI32, kI64, kF16, kBF16, kF32, kF64 };

std::string_view DTypeName(DType d);  // "F32", "BF16", ...
size_t DTypeSize(DType d);
std::optional<DType> ParseDType(std::string_view name);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data section
  uint64_t end = 0;
  int64_t numel() const;
};

struct Header {
  std::vector<TensorInfo> tensors;  // in data order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section
};

// Validates a whole safetensors image of `file_size` bytes whose first bytes are `prefix`
// (at least the length field and the header). InvalidArgument naming the problem.
Result<Header> ParseHeader(std::span<const std::byte> prefix, uint64_t file_size);

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::filesystem::path& path);
  // An in-memory image (tests, fuzzing).
  static Result<std::unique_ptr<SafetensorsFile>> FromBytes(std::string bytes);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* Find(std::string_view name) const;
  // The tensor's bytes (little-endian, row-major).
  std::span<const std::byte> Data(const TensorInfo& t) const;

 private:
  SafetensorsFile() = default;
  Header header_;
  const std::byte* base_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // mmap'ed region, when opened from a file
  std::string owned_;    // the image, when built from bytes
  std::map<std::string_view, size_t, std::less<>> index_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // exactly numel * DTypeSize bytes
};

// Writes a safetensors file atomically (temp + fsync + rename), tensors in name order, the
// header padded to 8 bytes as the reference writer does.
Status WriteSafetensors(const std::filesystem::path& path, std::vector<TensorToWrite> tensors,
                        const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
// The same file as bytes.
Result<std::string> SerializeSafetensors(std::vector<TensorToWrite> tensors,
                                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// A sharded checkpoint's index (model.safetensors.index.json): tensor name -> shard file.
Result<std::map<std::string, std::string>> ReadShardIndex(const std::filesystem::path& index_json);

}  // namespace mlaas::checkpoint
