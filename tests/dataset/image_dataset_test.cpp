// Image classification datasets from the object store: an image folder, a list (CSV) and IDX
// files, against hand-made files — class names, label_names, resizing and channels, and bad
// images reported by path and skipped (or failing the read, as asked).
#include "dataset/image_dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "storage/local_object_store.h"
#include "testutil/temp_dir.h"
#include "vision/image.h"

namespace mlaas::dataset {
namespace {

using nlohmann::json;
using mlaas::testing::TempDir;

vision::Image Solid(int64_t w, int64_t h, int64_t c, uint8_t v) {
  return vision::Image{w, h, c, std::vector<uint8_t>(static_cast<size_t>(w * h * c), v)};
}

class ImageDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = storage::LocalObjectStore::Create(dir_.path() / "objects", dir_.path() / "tmp");
    ASSERT_TRUE(s.has_value());
    store_ = std::move(s).value();
  }
  void Put(const std::string& key, const std::string& bytes) { ASSERT_TRUE(store_->PutString(key, bytes).has_value()) << key; }
  std::string Png(uint8_t v, int64_t c = 3) { return *vision::EncodePng(Solid(6, 4, c, v)); }
  std::string Jpeg(uint8_t v) { return *vision::EncodeJpeg(Solid(8, 8, 3, v), 95); }

  TempDir dir_;
  std::unique_ptr<storage::ObjectStore> store_;
};

TEST_F(ImageDatasetTest, AnImageFolderIsOneClassPerSubfolderAndBadImagesAreSkippedByPath) {
  Put("pets/dog/a.png", Png(10));
  Put("pets/dog/b.JPG", Jpeg(20));
  Put("pets/cat/c.png", Png(30, 1));
  Put("pets/cat/broken.png", "this is a text file, not a PNG");
  Put("pets/README.md", "not an image, not in a class");
  Put("pets/cat/notes.txt", "ignored: not an image name");
  auto ds = ReadImageDataset(*store_, "pets", json{{"format", "image_folder"}}, {});
  ASSERT_TRUE(ds.has_value()) << ds.error().ToString();
  EXPECT_EQ(ds->label_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(ds->examples.size(), 3u);
  EXPECT_EQ(ds->skipped, 1);
  ASSERT_EQ(ds->skipped_examples.size(), 1u);
  EXPECT_NE(ds->skipped_examples[0].find("pets/cat/broken.png"), std::string::npos);
  EXPECT_NE(ds->skipped_examples[0].find("not a PNG or JPEG"), std::string::npos);
  for (const auto& e : ds->examples) EXPECT_EQ(e.label, e.source.find("/dog/") != std::string::npos ? 1 : 0) << e.source;
  // Failing instead, as asked; the error names the image.
  auto strict = ReadImageDataset(*store_, "pets", json{{"format", "image_folder"}, {"loader_kwargs", {{"on_bad_image", "fail"}}}}, {});
  ASSERT_FALSE(strict.has_value());
  EXPECT_NE(strict.error().message().find("pets/cat/broken.png"), std::string::npos) << strict.error().ToString();
  // Converted and resized as they are read.
  ImageReadOptions o;
  o.channels = 1;
  o.size = std::make_pair(int64_t{3}, int64_t{5});
  auto small = ReadImageDataset(*store_, "pets", json{{"format", "image_folder"}}, o);
  ASSERT_TRUE(small.has_value());
  for (const auto& e : small->examples) {
    EXPECT_EQ(e.image.channels, 1);
    EXPECT_EQ(e.image.width, 3);
    EXPECT_EQ(e.image.height, 5);
  }
  ImageReadOptions tight;
  tight.max_pixel_bytes = 100;
  auto over = ReadImageDataset(*store_, "pets", json{{"format", "image_folder"}}, tight);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), StatusCode::kResourceExhausted);
}

TEST_F(ImageDatasetTest, AListNamesImagesRelativeToItsFolderWithStringOrNumericLabels) {
  Put("lists/img/1.png", Png(1));
  Put("lists/img/2.png", Png(2));
  Put("lists/img/3.jpg", Jpeg(3));
  Put("lists/pets.csv", "file,kind\nimg/1.png,dog\nimg/2.png,cat\nimg/3.jpg,dog\nimg/missing.png,cat\n");
  auto ds = ReadImageDataset(*store_, "lists/pets.csv",
                             json{{"format", "csv"}, {"loader_kwargs", {{"image_column", "file"}, {"label_column", "kind"}}}}, {});
  ASSERT_TRUE(ds.has_value()) << ds.error().ToString();
  EXPECT_EQ(ds->label_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(ds->examples.size(), 3u);
  EXPECT_EQ(ds->examples[0].source, "lists/img/1.png");
  EXPECT_EQ(ds->examples[0].label, 1);
  EXPECT_EQ(ds->skipped, 1);
  EXPECT_NE(ds->skipped_examples[0].find("lists/img/missing.png"), std::string::npos);
  // Numeric labels are class indexes, named by label_names (or by their index).
  Put("lists/digits.csv", "image,label\nimg/1.png,0\nimg/2.png,2\n");
  auto digits = ReadImageDataset(*store_, "lists/digits.csv", json{{"format", "csv"}}, {});
  ASSERT_TRUE(digits.has_value());
  EXPECT_EQ(digits->label_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(digits->examples[1].label, 2);
  auto named = ReadImageDataset(*store_, "lists/digits.csv", json{{"format", "csv"}, {"label_names", {"zero", "one", "two"}}}, {});
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(named->label_names[2], "two");
  auto short_names = ReadImageDataset(*store_, "lists/digits.csv", json{{"format", "csv"}, {"label_names", {"zero"}}}, {});
  ASSERT_FALSE(short_names.has_value());
  EXPECT_EQ(short_names.error().field(), "dataset.label_names");
  // Keys that are not keys are bad images, not paths.
  Put("lists/escape.csv", "image,label\n../../etc/passwd,0\nimg/1.png,0\n");
  auto escape = ReadImageDataset(*store_, "lists/escape.csv", json{{"format", "csv"}}, {});
  ASSERT_TRUE(escape.has_value());
  EXPECT_EQ(escape->skipped, 1);
  auto no_column = ReadImageDataset(*store_, "lists/pets.csv", json{{"format", "csv"}}, {});
  ASSERT_FALSE(no_column.has_value());
  EXPECT_NE(no_column.error().message().find("image"), std::string::npos) << no_column.error().ToString();
}

TEST_F(ImageDatasetTest, IdxFoldersAndBadRequests) {
  auto be = [](uint32_t d) { return std::string{char(d >> 24), char(d >> 16), char(d >> 8), char(d)}; };
  Put("fashion/t10k-images-idx3-ubyte", std::string{0, 0, 8, 3} + be(2) + be(2) + be(2) + std::string(8, '\x40'));
  Put("fashion/t10k-labels-idx1-ubyte", std::string{0, 0, 8, 1} + be(2) + std::string{3, 9});
  auto ds = ReadImageDataset(*store_, "fashion", json{{"format", "idx"}}, {});
  ASSERT_TRUE(ds.has_value()) << ds.error().ToString();
  ASSERT_EQ(ds->examples.size(), 2u);
  EXPECT_EQ(ds->examples[1].label, 9);
  EXPECT_EQ(ds->label_names.size(), 10u);
  EXPECT_EQ(ds->label_names[9], "9");
  EXPECT_EQ(ds->examples[0].source, "fashion/t10k-images-idx3-ubyte#0");
  Put("mismatch/train-images-idx3-ubyte", std::string{0, 0, 8, 3} + be(2) + be(2) + be(2) + std::string(8, '\x40'));
  Put("mismatch/train-labels-idx1-ubyte", std::string{0, 0, 8, 1} + be(3) + std::string{3, 9, 1});
  auto mismatch = ReadImageDataset(*store_, "mismatch", json{{"format", "idx"}}, {});
  ASSERT_FALSE(mismatch.has_value());
  EXPECT_NE(mismatch.error().message().find("2 images but 3 labels"), std::string::npos) << mismatch.error().ToString();
  EXPECT_EQ(mismatch.error().field(), "dataset.path");
  auto none = ReadImageDataset(*store_, "pets-none", json{{"format", "idx"}}, {});
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message().find("train-images-idx3-ubyte"), std::string::npos);
  auto format = ReadImageDataset(*store_, "fashion", json{{"format", "parquet"}}, {});
  ASSERT_FALSE(format.has_value());
  EXPECT_EQ(format.error().field(), "dataset.format");
  auto empty = ReadImageDataset(*store_, "fashion", json{{"format", "image_folder"}}, {});
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().field(), "dataset.path");

  // A folder with both splits: train by default, t10k for a held-out set.
  Put("fashion/train-images-idx3-ubyte", std::string{0, 0, 8, 3} + be(3) + be(2) + be(2) + std::string(12, '\x20'));
  Put("fashion/train-labels-idx1-ubyte", std::string{0, 0, 8, 1} + be(3) + std::string{0, 1, 2});
  auto train = ReadImageDataset(*store_, "fashion", json{{"format", "idx"}}, {});
  ASSERT_TRUE(train.has_value());
  EXPECT_EQ(train->examples.size(), 3u);
  ImageReadOptions held_out;
  held_out.idx_split = "t10k";
  auto test = ReadImageDataset(*store_, "fashion", json{{"format", "idx"}}, held_out);
  ASSERT_TRUE(test.has_value());
  EXPECT_EQ(test->examples.size(), 2u);
  // Repeated names, and a numeric label beyond the 1,000 classes allowed.
  auto twice = ReadImageDataset(*store_, "fashion", json{{"format", "idx"}, {"label_names", {"a", "b", "a"}}}, {});
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().field(), "dataset.label_names");
  Put("lists/img/1.png", Png(1));
  Put("lists/far.csv", "image,label\nimg/1.png,0\nimg/1.png,999999\n");
  auto far = ReadImageDataset(*store_, "lists/far.csv", json{{"format", "csv"}}, {});
  ASSERT_FALSE(far.has_value());
  EXPECT_NE(far.error().message().find("1000 classes"), std::string::npos) << far.error().ToString();
}

TEST_F(ImageDatasetTest, TheDecodedBudgetHoldsWhileImagesDecodeInParallel) {
  for (int i = 0; i < 40; ++i) Put("big/c" + std::to_string(i % 2) + "/" + std::to_string(i) + ".png", Png(static_cast<uint8_t>(i)));
  ImageReadOptions small;
  small.max_pixel_bytes = 10 * 6 * 4 * 3;  // ten images' worth
  auto r = ReadImageDataset(*store_, "big", json{{"format", "image_folder"}}, small);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kResourceExhausted) << r.error().ToString();
  auto fine = ReadImageDataset(*store_, "big", json{{"format", "image_folder"}}, {});
  ASSERT_TRUE(fine.has_value());
  EXPECT_EQ(fine->examples.size(), 40u);
  for (size_t i = 1; i < fine->examples.size(); ++i) EXPECT_LT(fine->examples[i - 1].source, fine->examples[i].source);  // in order
}

// The real thing: Debian's dataset-fashion-mnist (gzip'd IDX), read from the object store.
TEST_F(ImageDatasetTest, ReadsDebiansFashionMnist) {
  const std::filesystem::path debian = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(debian / "train-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"})
    ASSERT_TRUE(store_->PutFile(std::string("fashion/") + f, debian / f).ok());
  for (const char* f : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    ASSERT_TRUE(store_->PutFile(std::string("fashion-test/") + f, debian / f).ok());
  const json names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  auto train = ReadImageDataset(*store_, "fashion", json{{"format", "idx"}, {"label_names", names}}, {});
  ASSERT_TRUE(train.has_value()) << train.error().ToString();
  EXPECT_EQ(train->examples.size(), 60000u);
  EXPECT_EQ(train->label_names[9], "Ankle boot");
  std::vector<int64_t> per_class(10, 0);
  for (const auto& e : train->examples) {
    ASSERT_EQ(e.image.width, 28);
    ASSERT_EQ(e.image.height, 28);
    ++per_class[static_cast<size_t>(e.label)];
  }
  for (int64_t n : per_class) EXPECT_EQ(n, 6000) << "Fashion-MNIST's training split is balanced";
  auto test = ReadImageDataset(*store_, "fashion-test", json{{"format", "idx"}}, {});
  ASSERT_TRUE(test.has_value()) << test.error().ToString();
  EXPECT_EQ(test->examples.size(), 10000u);
}

}  // namespace
}  // namespace mlaas::dataset
