// mlaas::checkpoint — PyTorch state dicts (pytorch_model.bin: torch.save's zip format, or its
// legacy format) read without running any code: a restricted unpickler that knows the handful
// of globals a state dict needs (OrderedDict, the tensor and parameter rebuild functions, the
// typed storages) and refuses every other one with an error naming it, so a malicious pickle
// never executes anything. Every size, offset and stride is checked against the bytes there are.
// No libtorch (fuzzed: tests/checkpoint/fuzz/pytorch_pickle_fuzz.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/safetensors.h"
#include "common/result.h"

namespace mlaas::checkpoint {

struct LoadedTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string data;  // contiguous, row-major, little-endian
};

struct PickleLimits {
  uint64_t max_tensor_bytes = 64ull << 30;  // all tensors together
  size_t max_objects = 10'000'000;          // pickle values built
};

// The tensors of a state dict saved by torch.save (a file's bytes). InvalidArgument naming the
// problem for anything else (a global the loader does not allow is named: "global
// 'os.system' is not allowed in a checkpoint").
Result<std::vector<LoadedTensor>> ParsePytorchStateDict(std::string_view bytes, const PickleLimits& limits = {});

// The same from a file (pytorch_model.bin, or one shard of a sharded checkpoint).
Result<std::vector<LoadedTensor>> ReadPytorchStateDict(const std::filesystem::path& file, const PickleLimits& limits = {});

// (A sharded checkpoint's index, pytorch_model.bin.index.json, has safetensors' layout:
// ReadShardIndex reads it.)

// The tensors as an in-memory safetensors image (so that one loader reads both formats).
Result<std::string> ToSafetensors(std::vector<LoadedTensor> tensors);

}  // namespace mlaas::checkpoint
