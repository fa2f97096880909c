#include "vision/idx.h"

#include <zlib.h>

#include <cstring>
#include <functional>

namespace mlaas::vision {

namespace {

bool IsGzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b;
}

// Inflates a gzip stream chunk by chunk into `sink`, up to `max_bytes` in all.
Status Inflate(std::string_view bytes, uint64_t max_bytes, const std::function<void(std::string_view)>& sink) {
  z_stream z;
  std::memset(&z, 0, sizeof(z));
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return Internal("cannot start inflating");
  std::string buf(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(std::min<size_t>(bytes.size(), UINT32_MAX));
  uint64_t total = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return InvalidArgument(std::string("a corrupt or truncated gzip file") + (z.msg ? std::string(": ") + z.msg : ""));
    }
    const size_t produced = buf.size() - z.avail_out;
    if (total + produced > max_bytes) {
      inflateEnd(&z);
      return InvalidArgument("the gzip file inflates to more than " + std::to_string(max_bytes) + " bytes");
    }
    total += produced;
    sink(std::string_view(buf.data(), produced));
    if (rc == Z_OK && produced == 0 && z.avail_in == 0) {
      inflateEnd(&z);
      return InvalidArgument("a truncated gzip file");
    }
  }
  inflateEnd(&z);
  return Status::Ok();
}

// The dimensions an IDX header (the first bytes of the file) gives, checked against the file's
// `size`; InvalidArgument otherwise.
Result<std::vector<int64_t>> HeaderDims(std::string_view bytes, uint64_t size, const IdxLimits& limits) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) return InvalidArgument("wrong IDX magic (not an IDX file)");
  const uint8_t type = static_cast<uint8_t>(bytes[2]);
  if (type != 0x08)
    return InvalidArgument("IDX value type 0x" + std::string(1, "0123456789abcdef"[type >> 4]) + "0123456789abcdef"[type & 15] +
                           " is not supported (only unsigned bytes, 0x08)");
  const size_t ndims = static_cast<uint8_t>(bytes[3]);
  if (ndims < 1 || ndims > 4) return InvalidArgument("an IDX file of " + std::to_string(ndims) + " dimensions (1 to 4 are read)");
  if (bytes.size() < 4 + 4 * ndims) return InvalidArgument("a truncated IDX header");
  std::vector<int64_t> dims;
  uint64_t count = 1;
  std::string shape;
  for (size_t i = 0; i < ndims; ++i) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + 4 + 4 * i);
    const uint64_t d = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | p[3];
    dims.push_back(static_cast<int64_t>(d));
    shape += (i ? " x " : "") + std::to_string(d);
    count *= d;  // at most (2^32)^4 would overflow: bounded below before it matters
    if (count > limits.max_bytes) return InvalidArgument("the IDX file says " + shape + "... values, more than are read");
  }
  const uint64_t have = size - 4 - 4 * ndims;
  if (have != count) return InvalidArgument("the IDX file says " + shape + " values but holds " + std::to_string(have));
  return dims;
}

}  // namespace

Result<std::string> MaybeGunzip(std::string_view bytes, uint64_t max_bytes) {
  if (!IsGzip(bytes)) return std::string(bytes);
  std::string out;
  MLAAS_RETURN_IF_ERROR(Inflate(bytes, max_bytes, [&](std::string_view chunk) { out.append(chunk); }));
  return out;
}

Result<IdxArray> ParseIdx(std::string_view raw, const IdxLimits& limits) {
  MLAAS_ASSIGN_OR_RETURN(std::string bytes, MaybeGunzip(raw, limits.max_bytes + 64));
  IdxArray a;
  MLAAS_ASSIGN_OR_RETURN(a.dims, HeaderDims(bytes, bytes.size(), limits));
  const size_t header = 4 + 4 * a.dims.size();
  a.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return a;
}

Result<std::vector<int64_t>> IdxShape(std::string_view raw, const IdxLimits& limits) {
  if (!IsGzip(raw)) return HeaderDims(raw, raw.size(), limits);
  std::string head;
  uint64_t size = 0;
  MLAAS_RETURN_IF_ERROR(Inflate(raw, limits.max_bytes + 64, [&](std::string_view chunk) {
    if (head.size() < 20) head.append(chunk.substr(0, 20 - head.size()));
    size += chunk.size();
  }));
  return HeaderDims(head, size, limits);
}

Result<IdxDataset> ReadIdxDataset(std::string_view images_file, std::string_view labels_file, const IdxLimits& limits) {
  MLAAS_ASSIGN_OR_RETURN(IdxArray images, ParseIdx(images_file, limits));
  MLAAS_ASSIGN_OR_RETURN(IdxArray labels, ParseIdx(labels_file, limits));
  if (images.dims.size() != 3) return InvalidArgument("the images file is not N x rows x columns (idx3)");
  if (labels.dims.size() != 1) return InvalidArgument("the labels file is not a list of N labels (idx1)");
  if (images.dims[0] != labels.dims[0])
    return InvalidArgument(std::to_string(images.dims[0]) + " images but " + std::to_string(labels.dims[0]) + " labels");
  if (images.dims[0] == 0) return InvalidArgument("the IDX files hold no images");
  if (images.dims[1] == 0 || images.dims[2] == 0) return InvalidArgument("the IDX images have no pixels");
  IdxDataset out;
  const int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  const size_t per = static_cast<size_t>(rows * cols);
  out.images.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Image img;
    img.width = cols;
    img.height = rows;
    img.channels = 1;
    img.pixels.assign(images.values.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(i) * per),
                      images.values.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(i + 1) * per));
    out.images.push_back(std::move(img));
  }
  out.labels.assign(labels.values.begin(), labels.values.end());
  return out;
}

}  // namespace mlaas::vision
