// mlaas::vision — training-time augmentation of images (random crop with padding, horizontal
// flip, small rotations, as torchvision's RandomCrop(padding), RandomHorizontalFlip and
// RandomRotation do), and the conversion of a batch of 8-bit images into the normalised
// channel-first floats a model takes. No libtorch: the loop feeds the floats to a tensor.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "common/result.h"
#include "vision/image.h"

namespace mlaas::vision {

struct AugmentParams {
  int64_t crop_padding = 0;      // pad each side by this many black pixels, crop back at a random offset
  bool horizontal_flip = false;  // mirror left-right with probability 1/2
  double rotation = 0;           // rotate by a uniform angle in [-rotation, rotation] degrees (bilinear, black fill)
  bool any() const { return crop_padding > 0 || horizontal_flip || rotation > 0; }
};

// A random view of `image`, of its size, drawn from `rng`.
Image Augment(const Image& image, const AugmentParams& params, std::mt19937_64& rng);

// Per-channel normalisation: (x / 255 - mean[c]) / std[c]. `mean` and `std` hold one value per
// channel (or one for all); InvalidArgument otherwise, or for a std of 0.
class Normalizer {
 public:
  static Result<Normalizer> Make(int64_t channels, const std::vector<float>& mean, const std::vector<float>& std);
  // Writes `image` (of the normaliser's channels) as [C, H, W] floats at `out`.
  void ToCHW(const Image& image, float* out) const;

 private:
  int64_t channels_ = 0;
  std::vector<float> table_;  // channels x 256: each byte value's normalised float
};

// The per-channel mean and standard deviation of pixels / 255 over `images` (all of `channels`).
void ChannelStats(const std::vector<const Image*>& images, int64_t channels, std::vector<float>& mean, std::vector<float>& std);

}  // namespace mlaas::vision
