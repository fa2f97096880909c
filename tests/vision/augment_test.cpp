#include "vision/augment.h"

#include <gtest/gtest.h>

namespace mlaas::vision {
namespace {

Image Gradient(int64_t w, int64_t h, int64_t c) {
  Image im{w, h, c, std::vector<uint8_t>(static_cast<size_t>(w * h * c))};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k) im.pixels[static_cast<size_t>((y * w + x) * c + k)] = static_cast<uint8_t>(10 * x + y + k);
  return im;
}

uint8_t At(const Image& im, int64_t x, int64_t y, int64_t k = 0) {
  return im.pixels[static_cast<size_t>((y * im.width + x) * im.channels + k)];
}

TEST(AugmentTest, NothingAskedIsTheSameImage) {
  Image im = Gradient(7, 5, 3);
  std::mt19937_64 rng(1);
  EXPECT_EQ(Augment(im, {}, rng).pixels, im.pixels);
}

TEST(AugmentTest, FlipMirrorsAboutHalfTheTime) {
  Image im = Gradient(6, 4, 1);
  std::mt19937_64 rng(3);
  int mirrored = 0;
  for (int i = 0; i < 200; ++i) {
    Image out = Augment(im, {.horizontal_flip = true}, rng);
    if (out.pixels == im.pixels) continue;
    ++mirrored;
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 6; ++x) ASSERT_EQ(At(out, x, y), At(im, 5 - x, y));
  }
  EXPECT_GT(mirrored, 70);
  EXPECT_LT(mirrored, 130);
}

TEST(AugmentTest, PaddedCropShiftsByAtMostThePaddingAndFillsBlack) {
  Image im = Gradient(8, 8, 2);
  for (auto& p : im.pixels) p = static_cast<uint8_t>(p + 1);  // no source pixel is 0
  std::mt19937_64 rng(7);
  bool shifted = false;
  for (int i = 0; i < 50; ++i) {
    Image out = Augment(im, {.crop_padding = 2}, rng);
    ASSERT_EQ(out.width, 8);
    ASSERT_EQ(out.pixels.size(), im.pixels.size());
    // Find the shift from a pixel inside, then check every pixel against it.
    int64_t dx = 99, dy = 99;
    for (int64_t cy = -2; cy <= 2 && dx == 99; ++cy)
      for (int64_t cx = -2; cx <= 2; ++cx)
        if (At(out, 4, 4) == At(im, 4 + cx, 4 + cy) && At(out, 3, 3) == At(im, 3 + cx, 3 + cy)) {
          dx = cx;
          dy = cy;
          break;
        }
    ASSERT_NE(dx, 99);
    shifted |= dx != 0 || dy != 0;
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x) {
        const int64_t sx = x + dx, sy = y + dy;
        const uint8_t want = sx < 0 || sy < 0 || sx >= 8 || sy >= 8 ? 0 : At(im, sx, sy, 1);
        ASSERT_EQ(At(out, x, y, 1), want) << x << "," << y;
      }
  }
  EXPECT_TRUE(shifted);
}

TEST(AugmentTest, RotationKeepsTheCentreAndBlackensCorners) {
  Image im{9, 9, 1, std::vector<uint8_t>(81, 200)};
  std::mt19937_64 rng(11);
  bool corner_black = false;
  for (int i = 0; i < 20; ++i) {
    Image out = Augment(im, {.rotation = 30}, rng);
    EXPECT_EQ(At(out, 4, 4), 200);
    corner_black |= At(out, 0, 0) < 200;
  }
  EXPECT_TRUE(corner_black);
}

TEST(AugmentTest, NormalizerAndChannelStats) {
  auto bad = Normalizer::Make(3, {0.5f, 0.5f}, {0.5f});
  EXPECT_FALSE(bad.has_value());
  EXPECT_FALSE(Normalizer::Make(1, {0.5f}, {0.0f}).has_value());
  auto n = Normalizer::Make(2, {0.0f, 0.5f}, {1.0f, 0.5f});
  ASSERT_TRUE(n.has_value());
  Image im{2, 1, 2, {255, 0, 0, 255}};
  float out[4];
  n->ToCHW(im, out);
  EXPECT_FLOAT_EQ(out[0], 1.0f);   // channel 0: x
  EXPECT_FLOAT_EQ(out[1], 0.0f);
  EXPECT_FLOAT_EQ(out[2], -1.0f);  // channel 1: (x - 0.5) / 0.5
  EXPECT_FLOAT_EQ(out[3], 1.0f);
  std::vector<float> mean, std;
  Image half{2, 1, 1, {0, 255}};
  ChannelStats({&half}, 1, mean, std);
  EXPECT_NEAR(mean[0], 0.5, 1e-6);
  EXPECT_NEAR(std[0], 0.5, 1e-6);
}

}  // namespace
}  // namespace mlaas::vision
