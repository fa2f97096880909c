// mlaas::vision — images for the computer-vision half: decoding PNG and JPEG (libpng,
// libjpeg-turbo) with every size checked before anything is allocated, the IDX format of
// MNIST / Fashion-MNIST (gzip or not), and the transforms a classifier's input needs (resize,
// channels, per-channel normalisation). No libtorch: the fuzz targets link it alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mlaas::vision {

// 8-bit pixels, rows of `width` pixels of `channels` (1: gray, 3: RGB) interleaved values.
struct Image {
  int64_t width = 0;
  int64_t height = 0;
  int64_t channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

enum class ImageFormat { kPng, kJpeg };
std::string_view ImageFormatName(ImageFormat f);

struct ImageHeader {
  ImageFormat format = ImageFormat::kPng;
  int64_t width = 0;
  int64_t height = 0;
  int64_t channels = 0;  // as stored: 1 (gray) or 3 (color); alpha is dropped on decoding
};

// Bounds on what a decode may allocate, checked from the header: a 100k x 100k PNG of a few
// hundred bytes (a decompression bomb) is refused before any pixel is decoded.
struct DecodeLimits {
  int64_t max_pixels = 40'000'000;  // width * height
  int64_t max_side = 20'000;
};

// OK when an image of `header`'s size is within `limits` (what DecodeImage checks first);
// InvalidArgument naming the size and the limits otherwise.
Status CheckImageSize(const ImageHeader& header, const DecodeLimits& limits = {});

// The format and size from the first bytes. InvalidArgument "not a PNG or JPEG image" for
// anything else, and for a header that says nothing sensible.
Result<ImageHeader> PeekImage(std::string_view bytes);

// Decodes a PNG or JPEG into `channels` (1: gray, 3: RGB; 0: as stored, gray or RGB).
// InvalidArgument naming the problem for a corrupt, truncated or unsupported file (CMYK JPEG,
// a size beyond `limits`); never a crash.
Result<Image> DecodeImage(std::string_view bytes, int channels = 0, const DecodeLimits& limits = {});

// Encoders, for tests and for clients that send pixels: PNG (lossless) and JPEG (quality 1-100).
Result<std::string> EncodePng(const Image& image);
Result<std::string> EncodeJpeg(const Image& image, int quality = 90);

// Bilinear resize (pixel centres aligned, as PIL and torchvision's antialias=False do).
Image Resize(const Image& image, int64_t width, int64_t height);
// The same pixels in `channels` (1: luma by ITU-R 601 weights, as PIL's "L"; 3: gray repeated).
Image ToChannels(const Image& image, int64_t channels);

// Channel-first floats ([C, H, W]) of pixels / 255, normalised per channel: (x - mean) / std.
// `mean` and `std` have one value per channel (or one for all).
Result<std::vector<float>> ToNormalizedCHW(const Image& image, const std::vector<float>& mean, const std::vector<float>& std);

}  // namespace mlaas::vision
