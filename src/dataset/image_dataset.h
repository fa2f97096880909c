// mlaas::dataset — image classification datasets from the object store (issue 22's contract):
//   {"format": "idx"}           a folder with train-images-idx3-ubyte[.gz] and
//                               train-labels-idx1-ubyte[.gz] (t10k-… when there is no train-…)
//   {"format": "image_folder"}  a folder with one subfolder of PNG/JPEG images per class
//                               (classes in name order, as torchvision's ImageFolder)
//   {"format": "csv"|"jsonl"}   a list of images (loader_kwargs.image_column, default "image":
//                               keys relative to the list's folder) and labels
//                               (loader_kwargs.label_column, default "label")
// Optional "label_names" name numeric classes (else a class is named by its index: "0", "1",
// …; distinct names; at most 1,000 classes). A corrupt or undecodable image is reported by its path and skipped, or fails the read
// with loader_kwargs.on_bad_image: "fail". Images are decoded (sizes checked before anything is
// allocated), and resized and converted when asked, as they are read.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/object_store.h"
#include "vision/image.h"

namespace mlaas::dataset {

struct ImageExample {
  std::string source;  // the image's key, or "<images file>#<index>" for IDX
  vision::Image image;
  int64_t label = 0;   // index into ImageDataset::label_names
};

struct ImageDataset {
  std::vector<ImageExample> examples;
  std::vector<std::string> label_names;
  int64_t skipped = 0;                  // bad images left out
  std::vector<std::string> skipped_examples;  // the first ones: "<key>: <why>"
};

struct ImageReadOptions {
  int64_t channels = 0;                      // 1, 3, or 0: as each image is (IDX: 1)
  std::optional<std::pair<int64_t, int64_t>> size;  // resize every image to (width, height)
  vision::DecodeLimits limits{};
  uint64_t max_pixel_bytes = 4ull << 30;     // all decoded images together
  int64_t max_images = 10'000'000;
  // IDX: the files read from a folder holding both splits: "train" (train-…, else t10k-…) or
  // "t10k" (t10k-…, else train-…; a held-out set).
  std::string idx_split = "train";
  // Called now and then with (images read, images to read) and polled for cancellation.
  std::function<bool(int64_t, int64_t)> progress{};
};

// The image dataset a request's block names (`key` is its resolved key in `store`); errors name
// fields under `field` ("dataset.format", "dataset.label_names", ...).
Result<ImageDataset> ReadImageDataset(storage::ObjectStore& store, const std::string& key, const nlohmann::json& block,
                                      const ImageReadOptions& options, const std::string& field = "dataset");

// The formats whose dataset is a folder: "idx" and "image_folder".
bool IsImageFolderFormat(std::string_view format);
// A folder's format from its files (paths relative to it): idx when it holds IDX image files,
// else image_folder.
std::string GuessFolderFormat(const std::vector<std::string>& relative_paths);

// What an image dataset folder holds, from its listing and (IDX) its arrays' shapes and
// labels, without decoding an image; what the catalog records of a version.
struct ImageClassCount {
  std::string name;
  int64_t images = 0;
};
struct ImageDatasetSummary {
  std::string format;                    // "idx" or "image_folder"
  int64_t images = 0;                    // the training images (IDX: train-…, else t10k-…)
  std::vector<ImageClassCount> classes;  // in class order (IDX: "0", "1", … up to the largest label)
  int64_t held_out_images = 0;           // IDX: t10k-… beside train-…
  int64_t width = 0, height = 0;         // IDX: the images' size (an image folder's files differ: 0)
  std::vector<std::string> samples;      // image_folder: each class's first image (up to 16), relative paths
  int64_t other_files = 0;               // image_folder: files that are not <class>/<image>
};
// InvalidArgument naming `field` (.path, .format) for a folder that is not a dataset of
// `format`: no images, no IDX pair, mismatched IDX counts, more than 1,000 classes, more than
// `max_images` files.
Result<ImageDatasetSummary> SummarizeImageDataset(storage::ObjectStore& store, const std::string& key,
                                                  const std::string& format, const std::string& field = "dataset",
                                                  int64_t max_images = 10'000'000);

}  // namespace mlaas::dataset
