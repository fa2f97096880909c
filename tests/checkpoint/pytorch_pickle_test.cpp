// PyTorch checkpoints written by Debian's python3-torch (make_pickles.py, run by the test) read
// through the restricted unpickler: the zip and legacy formats, views, dtypes, nesting; and
// malicious pickles refused, naming the global, without running anything.
#include "checkpoint/pytorch_pickle.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "testutil/temp_dir.h"

namespace mlaas::checkpoint {
namespace {

using mlaas::testing::TempDir;

struct Expected {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<double> values;
};

class PytorchPickleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string cmd = "/usr/bin/python3 " MLAAS_SOURCE_DIR "/tests/checkpoint/make_pickles.py " + dir_->path().string() +
                            " > " + (dir_->path() / "log.txt").string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "python3-torch could not write the checkpoints";
    std::ifstream in(dir_->path() / "expected.txt");
    for (std::string line; std::getline(in, line);) {
      std::stringstream parts(line);
      std::string name, dtype, shape, values;
      std::getline(parts, name, '\t');
      std::getline(parts, dtype, '\t');
      std::getline(parts, shape, '\t');
      std::getline(parts, values, '\t');
      Expected e{dtype, {}, {}};
      std::stringstream s(shape), v(values);
      for (int64_t d; s >> d;) e.shape.push_back(d);
      for (double x; v >> x;) e.values.push_back(x);
      expected_[name] = e;
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  static double ValueAt(const LoadedTensor& t, size_t i) {
    const char* p = t.data.data() + i * DTypeSize(t.dtype);
    switch (t.dtype) {
      case DType::kF32: { float f; std::memcpy(&f, p, 4); return f; }
      case DType::kI64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
      case DType::kF16: {
        uint16_t h; std::memcpy(&h, p, 2);
        const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
        const double sign = (h & 0x8000) ? -1 : 1;
        if (exp == 0) return sign * std::ldexp(mant, -24);
        return sign * std::ldexp(1024 + mant, exp - 25);
      }
      case DType::kBF16: {
        uint16_t b; std::memcpy(&b, p, 2);
        uint32_t bits = uint32_t(b) << 16; float f; std::memcpy(&f, &bits, 4); return f;
      }
      default: return NAN;
    }
  }

  void ExpectAll(const std::vector<LoadedTensor>& tensors) {
    ASSERT_EQ(tensors.size(), expected_.size());
    for (const auto& t : tensors) {
      SCOPED_TRACE(t.name);
      auto e = expected_.find(t.name);
      ASSERT_NE(e, expected_.end());
      EXPECT_EQ(t.shape, e->second.shape);
      ASSERT_EQ(t.data.size() / DTypeSize(t.dtype), e->second.values.size());
      for (size_t i = 0; i < e->second.values.size(); ++i) EXPECT_EQ(ValueAt(t, i), e->second.values[i]) << "element " << i;
    }
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::map<std::string, Expected> expected_;
};

TEST_F(PytorchPickleTest, TheZipFormatLoadsEveryTensorWithItsValues) {
  auto t = ReadPytorchStateDict(dir_->path() / "zip.bin");
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  ExpectAll(*t);
}

TEST_F(PytorchPickleTest, TheLegacyFormatLoadsTheSame) {
  auto t = ReadPytorchStateDict(dir_->path() / "legacy.bin");
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  ExpectAll(*t);
}

TEST_F(PytorchPickleTest, AStateDictOneLevelDownIsFound) {
  auto t = ReadPytorchStateDict(dir_->path() / "nested.bin");
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  ExpectAll(*t);
}

TEST_F(PytorchPickleTest, MaliciousPicklesAreRefusedNamingTheGlobalAndRunNothing) {
  for (const auto& [file, global] : std::vector<std::pair<std::string, std::string>>{
           {"evil_reduce.bin", "posix.system"}, {"evil_zip.bin", "posix.system"}, {"evil_eval.bin", "builtins.eval"}}) {
    auto t = ReadPytorchStateDict(dir_->path() / file);
    ASSERT_FALSE(t.has_value()) << file;
    EXPECT_NE(t.error().message().find("global '" + global + "' is not allowed"), std::string::npos) << t.error().ToString();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_->path() / "pwned"));
}

// A list nested 200,000 deep (400 KB) is freed without a recursion as deep; a view whose
// strides repeat one element into a gigabyte is refused before it is made.
TEST_F(PytorchPickleTest, DeepNestingAndRepeatingStridesAreErrorsNeverCrashes) {
  const size_t depth = 200000;
  const std::string deep = std::string("\x80\x02") + std::string(depth, ']') + std::string(depth - 1, 'a') + ".";
  auto t = ParsePytorchStateDict(deep);
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message().find("a bare pickle"), std::string::npos) << t.error().ToString();
  // The same chain dropped while the pickle runs (POP, then None is the value).
  const std::string popped = deep.substr(0, deep.size() - 1) + "0N.";
  auto p = ParsePytorchStateDict(popped);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message().find("a bare pickle"), std::string::npos) << p.error().ToString();

  auto expanding = ReadPytorchStateDict(dir_->path() / "expanding.bin");
  ASSERT_FALSE(expanding.has_value());
  EXPECT_EQ(expanding.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(expanding.error().message().find("at most 8 times the bytes stored"), std::string::npos)
      << expanding.error().ToString();
}

TEST_F(PytorchPickleTest, ItConvertsToSafetensorsThatReadBack) {
  auto t = ReadPytorchStateDict(dir_->path() / "zip.bin");
  ASSERT_TRUE(t.has_value());
  auto image = ToSafetensors(*t);
  ASSERT_TRUE(image.has_value()) << image.error().ToString();
  auto file = SafetensorsFile::FromBytes(*image);
  ASSERT_TRUE(file.has_value()) << file.error().ToString();
  const TensorInfo* transposed = (*file)->Find("transposed");
  ASSERT_NE(transposed, nullptr);
  EXPECT_EQ(transposed->shape, (std::vector<int64_t>{6, 4}));
}

TEST_F(PytorchPickleTest, TruncatedAndCorruptedFilesAreErrorsNeverCrashes) {
  std::ifstream in(dir_->path() / "zip.bin", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  for (size_t cut : {size_t{0}, size_t{3}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_FALSE(ParsePytorchStateDict(std::string_view(bytes).substr(0, cut)).has_value()) << cut;
  }
  std::ifstream lin(dir_->path() / "legacy.bin", std::ios::binary);
  std::string legacy((std::istreambuf_iterator<char>(lin)), {});
  for (size_t cut : {size_t{20}, legacy.size() / 2, legacy.size() - 1}) {
    EXPECT_FALSE(ParsePytorchStateDict(std::string_view(legacy).substr(0, cut)).has_value()) << cut;
  }
  // Every byte flipped in turn in the legacy file's pickle part: an error or a state dict.
  for (size_t i = 0; i < std::min<size_t>(legacy.size(), 1500); ++i) {
    std::string bad = legacy;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    (void)ParsePytorchStateDict(bad);
  }
}

}  // namespace
}  // namespace mlaas::checkpoint
