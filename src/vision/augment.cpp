#include "vision/augment.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace mlaas::vision {

Image Augment(const Image& in, const AugmentParams& p, std::mt19937_64& rng) {
  const int64_t w = in.width, h = in.height, c = in.channels;
  int64_t dx = 0, dy = 0;  // the crop's offset from the unpadded origin, in [-pad, pad]
  if (p.crop_padding > 0) {
    std::uniform_int_distribution<int64_t> off(-p.crop_padding, p.crop_padding);
    dx = off(rng);
    dy = off(rng);
  }
  const bool flip = p.horizontal_flip && (rng() & 1u);
  double angle = 0;
  if (p.rotation > 0) angle = std::uniform_real_distribution<double>(-p.rotation, p.rotation)(rng) * std::numbers::pi / 180.0;
  Image out;
  out.width = w;
  out.height = h;
  out.channels = c;
  out.pixels.assign(in.pixels.size(), 0);
  const uint8_t* src = in.pixels.data();
  uint8_t* dst = out.pixels.data();
  if (angle == 0) {  // whole pixels: a shifted (and mirrored) copy
    for (int64_t y = 0; y < h; ++y) {
      const int64_t sy = y + dy;
      if (sy < 0 || sy >= h) continue;
      for (int64_t x = 0; x < w; ++x) {
        const int64_t sx = (flip ? w - 1 - x : x) + dx;
        if (sx < 0 || sx >= w) continue;
        std::copy_n(src + (sy * w + sx) * c, c, dst + (y * w + x) * c);
      }
    }
    return out;
  }
  // Each output pixel from the source point it came from: undo the flip and the crop, then the
  // rotation about the image's centre; bilinear between the four neighbours, black outside.
  const double cx = static_cast<double>(w - 1) / 2, cy = static_cast<double>(h - 1) / 2;
  const double cs = std::cos(angle), sn = std::sin(angle);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const double px = static_cast<double>((flip ? w - 1 - x : x) + dx) - cx;
      const double py = static_cast<double>(y + dy) - cy;
      const double sx = cs * px + sn * py + cx;
      const double sy = -sn * px + cs * py + cy;
      const double fx = std::floor(sx), fy = std::floor(sy);
      const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
      const double ax = sx - fx, ay = sy - fy;
      if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) continue;
      for (int64_t k = 0; k < c; ++k) {
        auto at = [&](int64_t xx, int64_t yy) -> double {
          if (xx < 0 || yy < 0 || xx >= w || yy >= h) return 0.0;
          return src[(yy * w + xx) * c + k];
        };
        const double v = (1 - ay) * ((1 - ax) * at(x0, y0) + ax * at(x0 + 1, y0)) +
                         ay * ((1 - ax) * at(x0, y0 + 1) + ax * at(x0 + 1, y0 + 1));
        dst[(y * w + x) * c + k] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
  return out;
}

Result<Normalizer> Normalizer::Make(int64_t channels, const std::vector<float>& mean, const std::vector<float>& std) {
  auto sized = [&](const std::vector<float>& v) { return v.size() == 1 || static_cast<int64_t>(v.size()) == channels; };
  if (channels < 1 || !sized(mean) || !sized(std))
    return InvalidArgument("the normalisation needs one mean and one std per channel (" + std::to_string(channels) + ")");
  Normalizer n;
  n.channels_ = channels;
  n.table_.resize(static_cast<size_t>(channels) * 256);
  for (int64_t c = 0; c < channels; ++c) {
    const float m = mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)];
    const float s = std[std.size() == 1 ? 0 : static_cast<size_t>(c)];
    if (!(s > 0) || !std::isfinite(s) || !std::isfinite(m)) return InvalidArgument("a normalisation std must be above 0");
    for (int v = 0; v < 256; ++v) n.table_[static_cast<size_t>(c * 256 + v)] = (static_cast<float>(v) / 255.0f - m) / s;
  }
  return n;
}

void Normalizer::ToCHW(const Image& image, float* out) const {
  const int64_t plane = image.width * image.height;
  const uint8_t* px = image.pixels.data();
  for (int64_t c = 0; c < channels_; ++c) {
    const float* t = table_.data() + c * 256;
    float* o = out + c * plane;
    for (int64_t i = 0; i < plane; ++i) o[i] = t[px[i * channels_ + c]];
  }
}

void ChannelStats(const std::vector<const Image*>& images, int64_t channels, std::vector<float>& mean, std::vector<float>& std) {
  std::vector<double> sum(static_cast<size_t>(channels), 0), sq(static_cast<size_t>(channels), 0);
  std::vector<uint64_t> hist(static_cast<size_t>(channels) * 256, 0);
  uint64_t n = 0;
  for (const Image* im : images) {
    const size_t count = im->pixels.size() / static_cast<size_t>(channels);
    for (size_t i = 0; i < count; ++i)
      for (int64_t c = 0; c < channels; ++c) ++hist[static_cast<size_t>(c) * 256 + im->pixels[i * static_cast<size_t>(channels) + static_cast<size_t>(c)]];
    n += count;
  }
  mean.assign(static_cast<size_t>(channels), 0.5f);
  std.assign(static_cast<size_t>(channels), 0.5f);
  if (n == 0) return;
  for (int64_t c = 0; c < channels; ++c) {
    for (int v = 0; v < 256; ++v) {
      const double x = v / 255.0, k = static_cast<double>(hist[static_cast<size_t>(c) * 256 + static_cast<size_t>(v)]);
      sum[static_cast<size_t>(c)] += k * x;
      sq[static_cast<size_t>(c)] += k * x * x;
    }
    const double m = sum[static_cast<size_t>(c)] / static_cast<double>(n);
    const double var = std::max(0.0, sq[static_cast<size_t>(c)] / static_cast<double>(n) - m * m);
    mean[static_cast<size_t>(c)] = static_cast<float>(m);
    std[static_cast<size_t>(c)] = static_cast<float>(std::max(std::sqrt(var), 1e-3));
  }
}

}  // namespace mlaas::vision
