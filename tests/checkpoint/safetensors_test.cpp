#include "checkpoint/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "testutil/temp_dir.h"

namespace mlaas::checkpoint {
namespace {

using mlaas::testing::TempDir;

std::span<const std::byte> Bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)};
}

// An image with a hand-written header and `data_size` zero bytes of data.
std::string Image(const std::string& header, size_t data_size) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + std::string(data_size, '\0');
}

TEST(SafetensorsTest, RoundTripsTensorsAndMetadata) {
  std::vector<float> w = {1.5f, -2.0f, 3.25f, 0.0f, 1e-8f, 7.0f};
  std::vector<float> b = {0.5f, -0.5f};
  std::vector<uint16_t> half = {0x3C00, 0xC000};  // 1.0, -2.0 in F16
  auto bytes = SerializeSafetensors(
      {{"layer.weight", DType::kF32, {2, 3}, Bytes(w)},
       {"layer.bias", DType::kF32, {2}, Bytes(b)},
       {"half", DType::kF16, {2}, {reinterpret_cast<const std::byte*>(half.data()), 4}}},
      {{"format", "pt"}, {"trained_by", "mlaas"}});
  ASSERT_TRUE(bytes.has_value()) << bytes.error().ToString();
  EXPECT_EQ((8 + (static_cast<uint8_t>((*bytes)[0]) | static_cast<uint8_t>((*bytes)[1]) << 8)) % 8, 0);
  auto f = SafetensorsFile::FromBytes(*bytes);
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ((*f)->metadata().at("trained_by"), "mlaas");
  const TensorInfo* t = (*f)->Find("layer.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->numel(), 6);
  auto data = (*f)->Data(*t);
  ASSERT_EQ(data.size(), 24u);
  EXPECT_EQ(std::memcmp(data.data(), w.data(), 24), 0);
  EXPECT_EQ((*f)->Find("half")->dtype, DType::kF16);
  EXPECT_EQ((*f)->Find("nope"), nullptr);

  // Written again from what was read: the same bytes.
  std::vector<TensorToWrite> again;
  for (const auto& info : (*f)->tensors()) again.push_back({info.name, info.dtype, info.shape, (*f)->Data(info)});
  EXPECT_EQ(*SerializeSafetensors(again, (*f)->metadata()), *bytes);
}

TEST(SafetensorsTest, WritesAtomicallyAndMapsFiles) {
  TempDir dir;
  std::vector<float> v(1000, 0.25f);
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", {{"x", DType::kF32, {10, 100}, Bytes(v)}}).ok());
  auto f = SafetensorsFile::Open(dir / "model.safetensors");
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  auto d = (*f)->Data(*(*f)->Find("x"));
  float x;
  std::memcpy(&x, d.data() + 400, 4);
  EXPECT_EQ(x, 0.25f);
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // no temp file left behind
  EXPECT_EQ(SafetensorsFile::Open(dir / "missing.safetensors").error().code(), StatusCode::kNotFound);
}

TEST(SafetensorsTest, RefusesBadTensorsWhenWriting) {
  std::vector<float> v(3);
  EXPECT_FALSE(SerializeSafetensors({{"a", DType::kF32, {2, 2}, Bytes(v)}}).has_value());
  EXPECT_FALSE(SerializeSafetensors({{"a", DType::kF32, {3}, Bytes(v)}, {"a", DType::kF32, {3}, Bytes(v)}}).has_value());
  EXPECT_FALSE(SerializeSafetensors({{"__metadata__", DType::kF32, {3}, Bytes(v)}}).has_value());
}

struct Malformed {
  std::string name;
  std::string image;
  std::string expect;  // fragment of the error message
};

TEST(SafetensorsTest, MalformedFilesGiveClearErrors) {
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string huge_len(8, '\0');
  huge_len[6] = 1;  // 2^48
  std::string good = Image(ok, 8);
  const std::vector<Malformed> cases = {
      {"empty file", "", "shorter than its 8-byte"},
      {"header length past the end", Image(ok, 8).substr(0, 20), "past the end"},
      {"header length over 100 MB", huge_len + "{}", "over 100 MB"},
      {"header not JSON", Image("{not json", 0), "not valid JSON"},
      {"header is an array", Image("[1,2]", 0), "not a JSON object"},
      {"header nested deep", Image(std::string(100000, '[') + std::string(100000, ']'), 0), "nests deeper"},
      {"header not UTF-8", Image("{\"\xff\":1}", 0), "not valid UTF-8"},
      {"truncated data", good.substr(0, good.size() - 4), "past the end of the file"},
      {"unknown dtype", Image(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8), "unsupported dtype Q4"},
      {"size mismatch", Image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12"},
      {"overlapping tensors",
       Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "overlaps"},
      {"gap between tensors",
       Image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12),
       "gap"},
      {"trailing bytes", Image(ok, 12), "bytes after the last tensor"},
      {"begin after end", Image(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8), "begin after"},
      {"negative shape", Image(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative"},
      {"missing offsets", Image(R"({"w":{"dtype":"F32","shape":[2]}})", 8), "data_offsets"},
      {"metadata not strings", Image(R"({"__metadata__":{"a":1}})", 0), "not a string"},
      {"empty tensor name", Image(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "empty name"},
      {"huge shape", Image(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})", 8), "too large"},
  };
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    auto f = SafetensorsFile::FromBytes(c.image);
    ASSERT_FALSE(f.has_value()) << c.name;
    EXPECT_EQ(f.error().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(f.error().message().find(c.expect), std::string::npos) << c.name << ": " << f.error().message();
  }
  // Errors about one tensor name it.
  EXPECT_NE(SafetensorsFile::FromBytes(cases[8].image).error().message().find("tensor 'w'"), std::string::npos);
}

TEST(SafetensorsTest, ReadsShardIndexes) {
  TempDir dir;
  dir.Write("model.safetensors.index.json",
            R"({"metadata": {"total_size": 16}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                 "b": "model-00002-of-00002.safetensors"}})");
  auto idx = ReadShardIndex(dir / "model.safetensors.index.json");
  ASSERT_TRUE(idx.has_value());
  EXPECT_EQ(idx->at("b"), "model-00002-of-00002.safetensors");
  dir.Write("bad.json", R"({"weight_map": {"a": "../../etc/passwd"}})");
  EXPECT_FALSE(ReadShardIndex(dir / "bad.json").has_value());
}

}  // namespace
}  // namespace mlaas::checkpoint
