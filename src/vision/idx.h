// The IDX format of MNIST and Fashion-MNIST (train-images-idx3-ubyte, train-labels-idx1-ubyte,
// gzip-compressed or not): a magic of two zero bytes, a type byte (0x08: unsigned bytes, the
// only one these datasets use) and a dimension count, then big-endian 32-bit dimensions and the
// values. Every size is checked against the bytes there are before anything is allocated, and
// a gzip stream is inflated only up to a bound (no gzip bomb).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vision/image.h"

namespace mlaas::vision {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;  // the product of dims
};

struct IdxLimits {
  uint64_t max_bytes = 2ull << 30;  // values (after inflating)
};

// Inflates a gzip stream (as `gzip` writes it) up to `max_bytes`; bytes that are not gzip are
// returned as they are.
Result<std::string> MaybeGunzip(std::string_view bytes, uint64_t max_bytes);

// An IDX file's array. InvalidArgument naming the problem ("wrong IDX magic", "says 60000 x 28 x
// 28 values but holds 1000") for anything else.
Result<IdxArray> ParseIdx(std::string_view bytes, const IdxLimits& limits = {});

// An IDX file's dimensions, checked against its length, without keeping its values (a gzip
// stream is inflated and counted, up to the same bound): a dataset's shape at the cost of a
// read, not of its memory.
Result<std::vector<int64_t>> IdxShape(std::string_view bytes, const IdxLimits& limits = {});

// Images (an idx3 array: N x rows x cols, gray) and their labels (idx1: N): the counts must
// agree and be above zero; labels are class indexes.
struct IdxDataset {
  std::vector<Image> images;
  std::vector<int64_t> labels;
};
Result<IdxDataset> ReadIdxDataset(std::string_view images_file, std::string_view labels_file, const IdxLimits& limits = {});

}  // namespace mlaas::vision
