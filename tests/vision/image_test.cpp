// PNG and JPEG decoding (round trips through the encoders, gray and RGB, alpha dropped) and
// every kind of bad file: corrupt PNG, truncated JPEG, a text file, a decompression bomb (a PNG
// claiming 100k x 100k pixels, refused from its header), CMYK; and the transforms.
#include "vision/image.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace mlaas::vision {
namespace {

Image Gradient(int64_t w, int64_t h, int64_t c) {
  Image img{w, h, c, {}};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k) img.pixels.push_back(static_cast<uint8_t>((x * 7 + y * 3 + k * 50) % 256));
  return img;
}

// A PNG chunk with its length and CRC.
std::string Chunk(const std::string& type, const std::string& data) {
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const std::string td = type + data;
  return be32(static_cast<uint32_t>(data.size())) + td +
         be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size()))));
}

TEST(ImageTest, PngRoundTripsGrayAndRgbExactly) {
  for (int64_t c : {1, 3}) {
    const Image img = Gradient(37, 23, c);
    auto png = EncodePng(img);
    ASSERT_TRUE(png.has_value());
    auto header = PeekImage(*png);
    ASSERT_TRUE(header.has_value());
    EXPECT_EQ(header->format, ImageFormat::kPng);
    EXPECT_EQ(header->width, 37);
    EXPECT_EQ(header->height, 23);
    EXPECT_EQ(header->channels, c);
    auto back = DecodeImage(*png);
    ASSERT_TRUE(back.has_value()) << back.error().ToString();
    EXPECT_EQ(back->pixels, img.pixels);
    // Asked for the other channel count: converted.
    auto other = DecodeImage(*png, c == 1 ? 3 : 1);
    ASSERT_TRUE(other.has_value());
    EXPECT_EQ(other->channels, c == 1 ? 3 : 1);
    EXPECT_EQ(other->pixels.size(), static_cast<size_t>(37 * 23 * (c == 1 ? 3 : 1)));
  }
}

TEST(ImageTest, JpegDecodesCloseToWhatWasEncoded) {
  Image img{64, 48, 3, {}};  // smooth, as photographs are: JPEG's case
  for (int64_t y = 0; y < 48; ++y)
    for (int64_t x = 0; x < 64; ++x)
      for (int64_t k = 0; k < 3; ++k) img.pixels.push_back(static_cast<uint8_t>(std::min<int64_t>(255, x * 2 + y * 2 + k * 30)));
  auto jpeg = EncodeJpeg(img, 95);
  ASSERT_TRUE(jpeg.has_value());
  auto header = PeekImage(*jpeg);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->format, ImageFormat::kJpeg);
  EXPECT_EQ(header->channels, 3);
  auto back = DecodeImage(*jpeg);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  ASSERT_EQ(back->pixels.size(), img.pixels.size());
  double err = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) err += std::abs(int(back->pixels[i]) - int(img.pixels[i]));
  EXPECT_LT(err / static_cast<double>(img.pixels.size()), 8.0) << "lossy, but close";
  auto gray = DecodeImage(*jpeg, 1);
  ASSERT_TRUE(gray.has_value());
  EXPECT_EQ(gray->channels, 1);
}

TEST(ImageTest, BadFilesAreClearErrorsNeverCrashes) {
  auto png = EncodePng(Gradient(40, 40, 3));
  auto jpeg = EncodeJpeg(Gradient(40, 40, 3));
  ASSERT_TRUE(png.has_value() && jpeg.has_value());
  struct Case {
    const char* what;
    std::string bytes;
    const char* says;
  };
  std::string corrupt = *png;
  for (size_t i = 60; i < corrupt.size() - 20; i += 7) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  // A decompression bomb: a valid header claiming 100000 x 100000 pixels, a few bytes of data.
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const std::string bomb = std::string("\x89PNG\r\n\x1a\n", 8) +
                           Chunk("IHDR", be32(100000) + be32(100000) + std::string("\x08\x02\x00\x00\x00", 5)) +
                           Chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) + Chunk("IEND", "");
  const std::vector<Case> cases = {
      {"corrupt PNG", corrupt, "PNG"},
      {"truncated PNG", png->substr(0, png->size() / 2), "PNG"},
      {"truncated JPEG", jpeg->substr(0, jpeg->size() / 2), "JPEG"},
      {"text file", "label,text\n1,hello\n", "not a PNG or JPEG"},
      {"empty", "", "not a PNG or JPEG"},
      {"PNG signature only", std::string("\x89PNG\r\n\x1a\n", 8), "PNG"},
      {"JPEG marker only", std::string("\xff\xd8\xff", 3), "JPEG"},
      {"decompression bomb", bomb, "100000x100000"},
  };
  for (const auto& c : cases) {
    auto r = DecodeImage(c.bytes, 3);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << c.what << ": " << r.error().ToString();
    EXPECT_NE(r.error().message().find(c.says), std::string::npos) << c.what << ": " << r.error().ToString();
  }
  // Limits are the caller's.
  auto small = DecodeImage(*png, 3, {.max_pixels = 100, .max_side = 20000});
  ASSERT_FALSE(small.has_value());
  EXPECT_NE(small.error().message().find("40x40"), std::string::npos);
}

TEST(ImageTest, ResizeChannelsAndNormalisation) {
  Image flat{4, 4, 1, std::vector<uint8_t>(16, 200)};
  Image up = Resize(flat, 9, 7);
  EXPECT_EQ(up.width, 9);
  EXPECT_EQ(up.height, 7);
  for (uint8_t v : up.pixels) EXPECT_EQ(v, 200) << "a flat image stays flat";
  Image two{2, 1, 1, {0, 255}};
  Image wide = Resize(two, 4, 1);
  EXPECT_EQ(wide.pixels, (std::vector<uint8_t>{0, 64, 191, 255})) << "pixel centres aligned, as PIL";
  Image rgb{1, 1, 3, {255, 0, 0}};
  EXPECT_EQ(ToChannels(rgb, 1).pixels, std::vector<uint8_t>{76}) << "ITU-R 601 luma";
  EXPECT_EQ(ToChannels(Image{1, 1, 1, {9}}, 3).pixels, (std::vector<uint8_t>{9, 9, 9}));
  Image px{2, 1, 3, {0, 255, 51, 255, 0, 102}};
  auto chw = ToNormalizedCHW(px, {0.5f}, {0.5f});
  ASSERT_TRUE(chw.has_value());
  ASSERT_EQ(chw->size(), 6u);
  EXPECT_FLOAT_EQ((*chw)[0], -1.0f);  // R of pixel 0
  EXPECT_FLOAT_EQ((*chw)[1], 1.0f);   // R of pixel 1
  EXPECT_FLOAT_EQ((*chw)[2], 1.0f);   // G of pixel 0
  EXPECT_NEAR((*chw)[4], 0.2f * 2 - 1, 1e-6);  // B of pixel 0
  EXPECT_FALSE(ToNormalizedCHW(px, {0.5f, 0.5f}, {0.5f}).has_value());
  EXPECT_FALSE(ToNormalizedCHW(px, {0.5f}, {0.0f}).has_value());
}

// The fuzz target's seeds (tests/vision/fuzz/seeds): small valid files of each kind.
TEST(ImageTest, WritesFuzzSeedsWhenAsked) {
  const char* out = std::getenv("MLAAS_WRITE_VISION_FUZZ_SEEDS");
  if (out == nullptr) GTEST_SKIP() << "MLAAS_WRITE_VISION_FUZZ_SEEDS is not set";
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(std::filesystem::path(out) / name, std::ios::binary) << bytes;
  };
  write("gray.png", *EncodePng(Gradient(9, 7, 1)));
  write("rgb.png", *EncodePng(Gradient(12, 5, 3)));
  write("rgb.jpg", *EncodeJpeg(Gradient(16, 16, 3), 50));
  write("gray.jpg", *EncodeJpeg(Gradient(8, 8, 1), 50));
  std::string idx{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3};
  idx += std::string(18, '\x7f');
  write("images.idx3", idx);
  write("labels.idx1", std::string{0, 0, 8, 1, 0, 0, 0, 2, 3, 4});
}

}  // namespace
}  // namespace mlaas::vision
