#include "dataset/image_dataset.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "common/text.h"
#include "dataset/record_reader.h"
#include "storage/listing.h"
#include "vision/idx.h"

namespace mlaas::dataset {

using nlohmann::json;

namespace {

constexpr size_t kSkippedShown = 20;
constexpr int64_t kMaxClasses = 1000;

// The files of a dataset folder: too many is a bad request here (InvalidArgument), as before.
Result<std::vector<storage::ObjectInfo>> ListAll(storage::ObjectStore& store, const std::string& prefix, int64_t max) {
  auto files = storage::ListAllObjects(store, prefix, static_cast<size_t>(max));
  if (!files.has_value() && files.error().code() == StatusCode::kResourceExhausted) return InvalidArgument(files.error().message());
  return files;
}

bool IsImageName(const std::string& key) {
  const std::string lower = ToLower(key);
  for (const char* ext : {".png", ".jpg", ".jpeg"})
    if (lower.size() > std::string_view(ext).size() && lower.ends_with(ext)) return true;
  return false;
}

// Accumulates examples under the budgets, skipping or failing on bad images.
class Collector {
 public:
  Collector(const ImageReadOptions& o, bool fail_on_bad, ImageDataset& out) : o_(o), fail_(fail_on_bad), out_(out) {}

  Status Add(std::string source, Result<vision::Image> decoded, int64_t label) {
    if (!decoded.has_value()) {
      const std::string why = source + ": " + decoded.error().message();
      if (fail_) return InvalidArgument("a bad image: " + why);
      ++out_.skipped;
      if (out_.skipped_examples.size() < kSkippedShown) out_.skipped_examples.push_back(why);
      return Status::Ok();
    }
    vision::Image img = std::move(decoded).value();
    if (o_.channels != 0 && img.channels != o_.channels) img = vision::ToChannels(img, o_.channels);
    if (o_.size && (img.width != o_.size->first || img.height != o_.size->second)) img = vision::Resize(img, o_.size->first, o_.size->second);
    bytes_ += img.pixels.size();
    if (bytes_ > o_.max_pixel_bytes) return OverBudget();
    out_.examples.push_back({std::move(source), std::move(img), label});
    return Status::Ok();
  }
  uint64_t bytes() const { return bytes_; }
  Status OverBudget() const {
    return ResourceExhausted("the decoded images take more than " + FormatBytes(o_.max_pixel_bytes) +
                             " (give a smaller image size, or fewer images)");
  }
  bool Progress(int64_t done, int64_t total) const { return !o_.progress || o_.progress(done, total); }

 private:
  const ImageReadOptions& o_;
  bool fail_;
  ImageDataset& out_;
  uint64_t bytes_ = 0;
};

Result<std::string> ReadObject(storage::ObjectStore& store, const std::string& key, uint64_t max) {
  auto bytes = store.GetString(key, max);
  if (!bytes.has_value() && bytes.error().code() == StatusCode::kResourceExhausted)
    return InvalidArgument(key + " is larger than " + FormatBytes(max));
  return bytes;
}

// Reads and decodes the images `items` name (key, class), a chunk at a time on up to 4 threads,
// and adds them to `c` in order (so the dataset does not depend on the threads). A key that is
// not one, a missing, oversized, corrupt or undecodable file is a bad image; a store that fails
// otherwise fails the read.
Status DecodeInto(storage::ObjectStore& store, const std::vector<std::pair<std::string, int64_t>>& items,
                  const ImageReadOptions& o, Collector& c) {
  struct Decoded {
    Result<vision::Image> image = InvalidArgument("not read");
    Status fatal;
  };
  const size_t chunk = 256;
  const unsigned threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<Decoded> out(chunk);
  for (size_t start = 0; start < items.size(); start += chunk) {
    if (!c.Progress(static_cast<int64_t>(start), static_cast<int64_t>(items.size()))) return Cancelled("cancelled");
    const size_t n = std::min(chunk, items.size() - start);
    std::atomic<size_t> next{0};
    // What the chunk's images will take decoded, reserved from the header before decoding: the
    // budget holds while a chunk decodes in parallel (a chunk of bombs is refused, not decoded).
    std::atomic<uint64_t> reserved{c.bytes()};
    auto decode = [&](size_t i) {
      const std::string& key = items[start + i].first;
      Decoded& d = out[i];
      d.fatal = Status::Ok();
      if (!storage::ValidateKey(key).ok()) {
        d.image = InvalidArgument("not an object key");
        return;
      }
      auto bytes = ReadObject(store, key, 256u << 20);
      if (!bytes.has_value()) {
        const StatusCode code = bytes.error().code();
        if (code != StatusCode::kInvalidArgument && code != StatusCode::kNotFound) d.fatal = bytes.error();
        d.image = bytes.error();
        return;
      }
      auto header = vision::PeekImage(*bytes);
      if (header.has_value()) {
        const uint64_t need = static_cast<uint64_t>(std::max<int64_t>(0, header->width)) *
                              static_cast<uint64_t>(std::max<int64_t>(0, header->height)) * 3;
        if (header->width * header->height <= o.limits.max_pixels && reserved.fetch_add(need) + need > o.max_pixel_bytes) {
          d.fatal = c.OverBudget();
          return;
        }
      }
      d.image = vision::DecodeImage(*bytes, 0, o.limits);
    };
    auto work = [&] {
      for (size_t i = next++; i < n; i = next++) {
        try {
          decode(i);
        } catch (const std::bad_alloc&) {
          out[i].fatal = ResourceExhausted("not enough memory to decode " + items[start + i].first);
        } catch (const std::exception& e) {
          out[i].fatal = Internal(std::string("decoding ") + items[start + i].first + ": " + e.what());
        }
      }
    };
    std::vector<std::thread> pool;
    for (unsigned k = 1; k < threads && k < n; ++k) pool.emplace_back(work);
    work();
    for (auto& th : pool) th.join();
    for (size_t i = 0; i < n; ++i) {
      MLAAS_RETURN_IF_ERROR(out[i].fatal);
      MLAAS_RETURN_IF_ERROR(c.Add(items[start + i].first, std::move(out[i].image), items[start + i].second));
    }
  }
  return Status::Ok();
}

// The IDX files of one split in folder `key`: (images, labels) keys, for "train" or "t10k"
// (file names with or without .gz).
struct IdxPair {
  std::optional<std::string> images, labels;
  bool found() const { return images && labels; }
};
Result<std::map<std::string, IdxPair>> IdxSplits(storage::ObjectStore& store, const std::string& key) {
  MLAAS_ASSIGN_OR_RETURN(auto files, ListAll(store, key + "/", 1000));
  std::map<std::string, std::string> by_name;
  for (const auto& f : files) by_name[f.key.substr(key.size() + 1)] = f.key;
  auto find = [&](const std::string& stem) -> std::optional<std::string> {
    for (const char* suffix : {"", ".gz"})
      if (auto it = by_name.find(stem + suffix); it != by_name.end()) return it->second;
    return std::nullopt;
  };
  std::map<std::string, IdxPair> out;
  for (const char* split : {"train", "t10k"})
    out[split] = {find(std::string(split) + "-images-idx3-ubyte"), find(std::string(split) + "-labels-idx1-ubyte")};
  return out;
}

Status NoIdxFiles(const std::string& key, const std::string& field) {
  return InvalidArgument("no train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] in '" + key + "'", field + ".path");
}

// The IDX pair in folder `key`, into `c`.
Status ReadIdx(storage::ObjectStore& store, const std::string& key, const ImageReadOptions& o, Collector& c,
               const std::string& field) {
  MLAAS_ASSIGN_OR_RETURN(auto splits, IdxSplits(store, key));
  // The training files first, the test (t10k) ones when there are none — or the other way round
  // for a held-out set (split "t10k").
  const bool test_first = o.idx_split == "t10k";
  const IdxPair& pair = splits[test_first ? "t10k" : "train"].found() ? splits[test_first ? "t10k" : "train"]
                                                                       : splits[test_first ? "train" : "t10k"];
  if (!pair.found()) return NoIdxFiles(key, field);
  const std::optional<std::string>& images = pair.images;
  const std::optional<std::string>& labels = pair.labels;
  const uint64_t max = o.max_pixel_bytes + (1u << 20);
  MLAAS_ASSIGN_OR_RETURN(std::string image_bytes, ReadObject(store, *images, max));
  MLAAS_ASSIGN_OR_RETURN(std::string label_bytes, ReadObject(store, *labels, max));
  auto ds = vision::ReadIdxDataset(image_bytes, label_bytes, {.max_bytes = max});
  if (!ds.has_value()) return ds.error().WithContext(*images).WithField(field + ".path");
  const int64_t n = static_cast<int64_t>(ds->images.size());
  if (n > o.max_images) return InvalidArgument(std::to_string(n) + " images, more than " + std::to_string(o.max_images), field);
  for (int64_t i = 0; i < n; ++i) {
    if (i % 4096 == 0 && !c.Progress(i, n)) return Cancelled("cancelled");
    MLAAS_RETURN_IF_ERROR(c.Add(*images + "#" + std::to_string(i), std::move(ds->images[static_cast<size_t>(i)]),
                                ds->labels[static_cast<size_t>(i)]));
  }
  return Status::Ok();
}

}  // namespace

Result<ImageDataset> ReadImageDataset(storage::ObjectStore& store, const std::string& key, const json& block,
                                      const ImageReadOptions& options, const std::string& field) {
  const std::string format = block.value("format", std::string());
  const json kwargs = block.value("loader_kwargs", json::object());
  const std::string on_bad = kwargs.is_object() ? kwargs.value("on_bad_image", std::string("skip")) : "skip";
  if (on_bad != "skip" && on_bad != "fail")
    return InvalidArgument("on_bad_image must be skip or fail", field + ".loader_kwargs.on_bad_image");
  ImageDataset out;
  Collector c(options, on_bad == "fail", out);
  bool numeric_labels = true;

  if (format == "idx") {
    MLAAS_RETURN_IF_ERROR(ReadIdx(store, key, options, c, field));
  } else if (format == "image_folder") {
    MLAAS_ASSIGN_OR_RETURN(auto files, ListAll(store, key + "/", options.max_images));
    std::set<std::string> classes;
    std::vector<std::pair<std::string, std::string>> images;  // key, class
    for (const auto& f : files) {
      const std::string rel = f.key.substr(key.size() + 1);
      const size_t slash = rel.find('/');
      if (slash == std::string::npos || !IsImageName(rel)) continue;  // files beside the classes, or not images
      classes.insert(rel.substr(0, slash));
      images.emplace_back(f.key, rel.substr(0, slash));
    }
    if (images.empty())
      return InvalidArgument("no PNG or JPEG images in class folders under '" + key + "' (an image_folder is <class>/<image>)",
                             field + ".path");
    out.label_names.assign(classes.begin(), classes.end());
    numeric_labels = false;
    std::vector<std::pair<std::string, int64_t>> items;
    for (const auto& [image_key, cls] : images) items.emplace_back(image_key, std::distance(classes.begin(), classes.find(cls)));
    MLAAS_RETURN_IF_ERROR(DecodeInto(store, items, options, c));
  } else if (format == "csv" || format == "jsonl" || format == "tsv") {
    const std::string image_column = kwargs.value("image_column", std::string("image"));
    const std::string label_column = kwargs.value("label_column", std::string("label"));
    MLAAS_ASSIGN_OR_RETURN(ReaderOptions ro, ReaderOptionsFromRequest(block, key, field));
    ro.columns = {image_column, label_column};
    MLAAS_ASSIGN_OR_RETURN(auto source, store.Open(key));
    MLAAS_ASSIGN_OR_RETURN(auto reader, OpenRecordReader(std::move(source), ro));
    std::vector<std::pair<std::string, std::string>> rows;  // image key, label
    const size_t slash = key.rfind('/');
    const std::string base = slash == std::string::npos ? "" : key.substr(0, slash + 1);
    Row row;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool more, reader->Next(row));
      if (!more) break;
      if (static_cast<int64_t>(rows.size()) >= options.max_images)
        return InvalidArgument("more than " + std::to_string(options.max_images) + " images", field);
      rows.emplace_back(base + row.values[0], row.values[1]);
      if (row.values[1].empty() || row.values[1].find_first_not_of("0123456789") != std::string::npos || row.values[1].size() > 9)
        numeric_labels = false;
    }
    if (rows.empty()) return InvalidArgument("the list names no images", field + ".path");
    std::set<std::string> classes;
    for (const auto& r : rows) classes.insert(r.second);
    if (!numeric_labels) out.label_names.assign(classes.begin(), classes.end());
    std::vector<std::pair<std::string, int64_t>> items;
    for (const auto& [image_key, label] : rows)
      items.emplace_back(image_key, numeric_labels ? std::stoll(label) : std::distance(classes.begin(), classes.find(label)));
    MLAAS_RETURN_IF_ERROR(DecodeInto(store, items, options, c));
  } else {
    return InvalidArgument("an image dataset's format is idx, image_folder, csv, tsv or jsonl", field + ".format");
  }

  if (out.examples.empty())
    return InvalidArgument("no readable image" + (out.skipped_examples.empty() ? std::string() : " (" + out.skipped_examples.front() + ")"),
                           field + ".path");
  // Numeric classes: named by label_names, or by their index.
  if (numeric_labels || format == "idx") {
    int64_t classes = 0;
    for (const auto& e : out.examples) classes = std::max(classes, e.label + 1);
    if (classes > kMaxClasses)
      return InvalidArgument("class " + std::to_string(classes - 1) + " is beyond the " + std::to_string(kMaxClasses) +
                                 " classes an image dataset may have (numeric labels are class indexes)",
                             field + ".path");
    if (block.contains("label_names")) {
      const json& names = block["label_names"];
      if (!names.is_array() || static_cast<int64_t>(names.size()) < classes)
        return InvalidArgument("label_names must name every class: " + std::to_string(classes) + " of them", field + ".label_names");
      out.label_names.clear();
      for (const auto& n : names) {
        if (!n.is_string()) return InvalidArgument("label_names are strings", field + ".label_names");
        out.label_names.push_back(n.get<std::string>());
      }
      std::set<std::string> distinct(out.label_names.begin(), out.label_names.end());
      if (distinct.size() != out.label_names.size())
        return InvalidArgument("label_names must be distinct (two classes would become one)", field + ".label_names");
    } else {
      out.label_names.clear();
      for (int64_t i = 0; i < classes; ++i) out.label_names.push_back(std::to_string(i));
    }
  }
  if (static_cast<int64_t>(out.label_names.size()) > kMaxClasses)
    return InvalidArgument(std::to_string(out.label_names.size()) + " classes, more than the " + std::to_string(kMaxClasses) +
                               " an image dataset may have",
                           field + ".path");
  return out;
}

bool IsImageFolderFormat(std::string_view format) { return format == "idx" || format == "image_folder"; }

std::string GuessFolderFormat(const std::vector<std::string>& relative_paths) {
  for (const auto& p : relative_paths) {
    for (const char* stem : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})
      if (p == stem || p == std::string(stem) + ".gz") return "idx";
  }
  return "image_folder";
}

Result<ImageDatasetSummary> SummarizeImageDataset(storage::ObjectStore& store, const std::string& key,
                                                  const std::string& format, const std::string& field,
                                                  int64_t max_images) {
  ImageDatasetSummary out;
  out.format = format;
  if (format == "image_folder") {
    MLAAS_ASSIGN_OR_RETURN(auto files, ListAll(store, key + "/", max_images));
    std::map<std::string, int64_t> counts;
    std::map<std::string, std::string> first;
    for (const auto& f : files) {
      const std::string rel = f.key.substr(key.size() + 1);
      const size_t slash = rel.find('/');
      if (slash == std::string::npos || !IsImageName(rel)) {
        ++out.other_files;
        continue;
      }
      const std::string cls = rel.substr(0, slash);
      ++counts[cls];
      first.emplace(cls, rel);
      ++out.images;
    }
    if (out.images == 0)
      return InvalidArgument("no PNG or JPEG images in class folders under '" + key + "' (an image_folder is <class>/<image>)",
                             field + ".path");
    if (static_cast<int64_t>(counts.size()) > kMaxClasses)
      return InvalidArgument(std::to_string(counts.size()) + " classes, more than the " + std::to_string(kMaxClasses) +
                                 " an image dataset may have",
                             field + ".path");
    for (const auto& [name, n] : counts) {
      out.classes.push_back({name, n});
      if (out.samples.size() < 16) out.samples.push_back(first[name]);
    }
    return out;
  }
  if (format != "idx") return InvalidArgument("an image dataset folder's format is idx or image_folder", field + ".format");
  MLAAS_ASSIGN_OR_RETURN(auto splits, IdxSplits(store, key));
  // Labels are read (one byte an image, at most max_images); of the images only the shape, the
  // file inflated and counted, not kept.
  const uint64_t max_labels = static_cast<uint64_t>(max_images) + 64;
  const uint64_t max_images_bytes = 2ull << 30;
  // Labels and images of one split: counts agree, every image has one size.
  auto read_split = [&](const IdxPair& pair, std::vector<int64_t>& counts) -> Result<int64_t> {
    MLAAS_ASSIGN_OR_RETURN(std::string label_bytes, ReadObject(store, *pair.labels, max_labels));
    auto labels = vision::ParseIdx(label_bytes, {.max_bytes = max_labels});
    if (!labels.has_value()) return labels.error().WithContext(*pair.labels).WithField(field + ".path");
    MLAAS_ASSIGN_OR_RETURN(std::string image_bytes, ReadObject(store, *pair.images, max_images_bytes));
    auto images = vision::IdxShape(image_bytes, {.max_bytes = max_images_bytes});
    if (!images.has_value()) return images.error().WithContext(*pair.images).WithField(field + ".path");
    if (labels->dims.size() != 1 || images->size() != 3 || (*images)[0] != labels->dims[0] || labels->dims[0] == 0)
      return InvalidArgument(*pair.images + " and " + *pair.labels + " are not N images and their N labels", field + ".path");
    out.height = (*images)[1];
    out.width = (*images)[2];
    for (uint8_t l : labels->values) {
      if (counts.size() <= l) counts.resize(static_cast<size_t>(l) + 1, 0);
      ++counts[l];
    }
    return labels->dims[0];
  };
  const IdxPair& train = splits["train"].found() ? splits["train"] : splits["t10k"];
  if (!train.found()) return NoIdxFiles(key, field);
  std::vector<int64_t> counts, held_out;
  MLAAS_ASSIGN_OR_RETURN(out.images, read_split(train, counts));
  if (splits["train"].found() && splits["t10k"].found()) {
    MLAAS_ASSIGN_OR_RETURN(out.held_out_images, read_split(splits["t10k"], held_out));
  }
  for (size_t i = 0; i < counts.size(); ++i) out.classes.push_back({std::to_string(i), counts[i]});
  return out;
}

}  // namespace mlaas::dataset
