#include "vision/image.h"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

namespace mlaas::vision {

namespace {

bool IsPng(std::string_view b) { return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0; }
bool IsJpeg(std::string_view b) { return b.size() >= 3 && static_cast<uint8_t>(b[0]) == 0xFF && static_cast<uint8_t>(b[1]) == 0xD8 &&
                                         static_cast<uint8_t>(b[2]) == 0xFF; }

Status CheckSize(int64_t w, int64_t h, const DecodeLimits& limits) {
  if (w <= 0 || h <= 0) return InvalidArgument("the image has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  if (w > limits.max_side || h > limits.max_side || w * h > limits.max_pixels)
    return InvalidArgument("the image is " + std::to_string(w) + "x" + std::to_string(h) + " pixels, more than the " +
                           std::to_string(limits.max_pixels) + " (and " + std::to_string(limits.max_side) +
                           " a side) that are decoded");
  return Status::Ok();
}

struct TjHandle {
  tjhandle h;
  explicit TjHandle(tjhandle handle) : h(handle) {}
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
};

// png_image's simplified API reports errors in its message and never longjmps into our frames.
struct PngImage {
  png_image img;
  PngImage() {
    std::memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
  }
  ~PngImage() { png_image_free(&img); }
  PngImage(const PngImage&) = delete;
  PngImage& operator=(const PngImage&) = delete;
};

}  // namespace

std::string_view ImageFormatName(ImageFormat f) { return f == ImageFormat::kPng ? "png" : "jpeg"; }

Result<ImageHeader> PeekImage(std::string_view bytes) {
  ImageHeader h;
  if (IsPng(bytes)) {
    PngImage p;
    if (!png_image_begin_read_from_memory(&p.img, bytes.data(), bytes.size()))
      return InvalidArgument(std::string("not a readable PNG image: ") + p.img.message);
    h.format = ImageFormat::kPng;
    h.width = p.img.width;
    h.height = p.img.height;
    h.channels = (p.img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    return h;
  }
  if (IsJpeg(bytes)) {
    TjHandle tj(tjInitDecompress());
    if (!tj.h) return Internal("cannot start a JPEG decoder");
    int w = 0, hh = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj.h, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()),
                            &w, &hh, &subsamp, &colorspace) != 0)
      return InvalidArgument(std::string("not a readable JPEG image: ") + tjGetErrorStr2(tj.h));
    if (w <= 0 || hh <= 0) return InvalidArgument("not a readable JPEG image: its header gives no size");
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
      return InvalidArgument("CMYK JPEG images are not supported (convert it to RGB)");
    h.format = ImageFormat::kJpeg;
    h.width = w;
    h.height = hh;
    h.channels = colorspace == TJCS_GRAY ? 1 : 3;
    return h;
  }
  return InvalidArgument("not a PNG or JPEG image");
}

Status CheckImageSize(const ImageHeader& header, const DecodeLimits& limits) {
  return CheckSize(header.width, header.height, limits);
}

Result<Image> DecodeImage(std::string_view bytes, int channels, const DecodeLimits& limits) {
  if (channels != 0 && channels != 1 && channels != 3) return InvalidArgument("channels must be 1 or 3");
  MLAAS_ASSIGN_OR_RETURN(ImageHeader h, PeekImage(bytes));
  MLAAS_RETURN_IF_ERROR(CheckImageSize(h, limits));
  Image out;
  out.width = h.width;
  out.height = h.height;
  out.channels = channels == 0 ? h.channels : channels;
  out.pixels.resize(static_cast<size_t>(out.width * out.height * out.channels));
  if (h.format == ImageFormat::kPng) {
    PngImage p;
    if (!png_image_begin_read_from_memory(&p.img, bytes.data(), bytes.size()))
      return InvalidArgument(std::string("not a readable PNG image: ") + p.img.message);
    p.img.format = out.channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;  // alpha composited on black
    if (!png_image_finish_read(&p.img, nullptr, out.pixels.data(), static_cast<png_int_32>(out.width * out.channels), nullptr))
      return InvalidArgument(std::string("a corrupt or truncated PNG image: ") + p.img.message);
    return out;
  }
  TjHandle tj(tjInitDecompress());
  if (!tj.h) return Internal("cannot start a JPEG decoder");
  // Warnings (a truncated file: "Premature end of JPEG file") are errors: no half-grey images.
  if (tjDecompress2(tj.h, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()),
                    out.pixels.data(), static_cast<int>(out.width), 0, static_cast<int>(out.height),
                    out.channels == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING | TJFLAG_ACCURATEDCT) != 0)
    return InvalidArgument(std::string("a corrupt or truncated JPEG image: ") + tjGetErrorStr2(tj.h));
  return out;
}

Result<std::string> EncodePng(const Image& image) {
  if ((image.channels != 1 && image.channels != 3) || image.pixels.size() != static_cast<size_t>(image.width * image.height * image.channels))
    return InvalidArgument("not an image of 1 or 3 channels");
  PngImage p;
  p.img.width = static_cast<png_uint_32>(image.width);
  p.img.height = static_cast<png_uint_32>(image.height);
  p.img.format = image.channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&p.img, nullptr, &size, 0, image.pixels.data(), 0, nullptr))
    return Internal(std::string("cannot encode a PNG: ") + p.img.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&p.img, out.data(), &size, 0, image.pixels.data(), 0, nullptr))
    return Internal(std::string("cannot encode a PNG: ") + p.img.message);
  out.resize(size);
  return out;
}

Result<std::string> EncodeJpeg(const Image& image, int quality) {
  if ((image.channels != 1 && image.channels != 3) || image.pixels.size() != static_cast<size_t>(image.width * image.height * image.channels))
    return InvalidArgument("not an image of 1 or 3 channels");
  TjHandle tj(tjInitCompress());
  if (!tj.h) return Internal("cannot start a JPEG encoder");
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj.h, image.pixels.data(), static_cast<int>(image.width), 0, static_cast<int>(image.height),
                             image.channels == 1 ? TJPF_GRAY : TJPF_RGB, &buf, &size, image.channels == 1 ? TJSAMP_GRAY : TJSAMP_420,
                             std::clamp(quality, 1, 100), TJFLAG_ACCURATEDCT);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buf, [](unsigned char* b) { tjFree(b); });
  if (rc != 0) return Internal(std::string("cannot encode a JPEG: ") + tjGetErrorStr2(tj.h));
  return std::string(reinterpret_cast<const char*>(buf), size);
}

Image Resize(const Image& in, int64_t width, int64_t height) {
  Image out;
  out.width = width;
  out.height = height;
  out.channels = in.channels;
  out.pixels.resize(static_cast<size_t>(width * height * in.channels));
  if (in.width == width && in.height == height) {
    out.pixels = in.pixels;
    return out;
  }
  const double sx = static_cast<double>(in.width) / static_cast<double>(width);
  const double sy = static_cast<double>(in.height) / static_cast<double>(height);
  for (int64_t y = 0; y < height; ++y) {
    const double fy = std::clamp((static_cast<double>(y) + 0.5) * sy - 0.5, 0.0, static_cast<double>(in.height - 1));
    const int64_t y0 = static_cast<int64_t>(fy), y1 = std::min(y0 + 1, in.height - 1);
    const double wy = fy - static_cast<double>(y0);
    for (int64_t x = 0; x < width; ++x) {
      const double fx = std::clamp((static_cast<double>(x) + 0.5) * sx - 0.5, 0.0, static_cast<double>(in.width - 1));
      const int64_t x0 = static_cast<int64_t>(fx), x1 = std::min(x0 + 1, in.width - 1);
      const double wx = fx - static_cast<double>(x0);
      for (int64_t c = 0; c < in.channels; ++c) {
        auto at = [&](int64_t yy, int64_t xx) { return static_cast<double>(in.pixels[static_cast<size_t>((yy * in.width + xx) * in.channels + c)]); };
        const double v = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1)) + wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1));
        out.pixels[static_cast<size_t>((y * width + x) * in.channels + c)] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
      }
    }
  }
  return out;
}

Image ToChannels(const Image& in, int64_t channels) {
  if (in.channels == channels) return in;
  Image out;
  out.width = in.width;
  out.height = in.height;
  out.channels = channels;
  const size_t n = static_cast<size_t>(in.width * in.height);
  out.pixels.resize(n * static_cast<size_t>(channels));
  for (size_t i = 0; i < n; ++i) {
    if (channels == 1) {  // ITU-R 601-2 luma, as PIL's convert("L")
      const uint8_t* p = &in.pixels[i * 3];
      out.pixels[i] = static_cast<uint8_t>((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000);
    } else {
      std::fill_n(&out.pixels[i * 3], 3, in.pixels[i]);
    }
  }
  return out;
}

Result<std::vector<float>> ToNormalizedCHW(const Image& image, const std::vector<float>& mean, const std::vector<float>& std) {
  const size_t c = static_cast<size_t>(image.channels);
  auto per_channel = [&](const std::vector<float>& v, const char* what) -> Result<std::vector<float>> {
    if (v.size() == 1) return std::vector<float>(c, v[0]);
    if (v.size() != c)
      return InvalidArgument(std::string(what) + " has " + std::to_string(v.size()) + " values for " + std::to_string(c) + " channels");
    return v;
  };
  MLAAS_ASSIGN_OR_RETURN(std::vector<float> m, per_channel(mean, "mean"));
  MLAAS_ASSIGN_OR_RETURN(std::vector<float> s, per_channel(std, "std"));
  for (float x : s)
    if (!(x > 0)) return InvalidArgument("std must be positive");
  const size_t hw = static_cast<size_t>(image.width * image.height);
  std::vector<float> out(c * hw);
  for (size_t ch = 0; ch < c; ++ch) {
    const float scale = 1.0f / (255.0f * s[ch]), shift = m[ch] / s[ch];
    for (size_t i = 0; i < hw; ++i) out[ch * hw + i] = static_cast<float>(image.pixels[i * c + ch]) * scale - shift;
  }
  return out;
}

}  // namespace mlaas::vision
