#include "catalog/catalog.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>

#include "checkpoint/safetensors.h"
#include "common/random.h"
#include "common/text.h"
#include "common/time_util.h"
#include "dataset/image_dataset.h"
#include "dataset/record_reader.h"
#include "storage/digest.h"

namespace mlaas::catalog {

using nlohmann::json;
using storage::Sha256;

std::string_view KindName(Kind kind) { return kind == Kind::kModel ? "model" : "dataset"; }
std::string_view KindPlural(Kind kind) { return kind == Kind::kModel ? "models" : "datasets"; }

std::string_view VisibilityName(Visibility v) { return v == Visibility::kPublic ? "public" : "private"; }
std::optional<Visibility> ParseVisibility(std::string_view name) {
  if (name == "public") return Visibility::kPublic;
  if (name == "private") return Visibility::kPrivate;
  return std::nullopt;
}

namespace {

bool SlugChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'; }

Status Denied(std::string message) { return Status(StatusCode::kPermissionDenied, std::move(message)); }
Status Missing(std::string message, std::string field = {}) {
  return Status(StatusCode::kNotFound, std::move(message), std::move(field));
}

// The digest of a version: SHA-256 over "<sha256>  <path>\n" of its files in path order (the
// sha256sum listing of the directory).
std::string VersionDigest(std::vector<metadata::CatalogFileRecord> files) {
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  Sha256 h;
  for (const auto& f : files) h.Update(f.sha256 + "  " + f.path + "\n");
  return "sha256:" + h.Hex();
}

constexpr size_t kChunk = 1 << 20;
// A dataset version's facts: the columns listed (and previewed), a name's bytes, the preview's.
constexpr size_t kFactsColumns = 256;
constexpr size_t kFactsColumnBytes = 256;
constexpr size_t kPreviewBytes = 256 << 10;

constexpr uint64_t kMaxSafetensorsHeader = 16u << 20;

// Parameters of a safetensors file from its first bytes (0 when they are not a valid header).
int64_t SafetensorsParameters(const std::string& prefix, uint64_t size) {
  auto header = checkpoint::ParseHeader(std::as_bytes(std::span(prefix.data(), prefix.size())), size);
  if (!header.has_value()) return 0;
  int64_t n = 0;
  for (const auto& t : header->tensors) n += t.numel();
  return n;
}

json ReadSmallJson(storage::ObjectStore& store, const std::string& key) {
  auto text = store.GetString(key, 4u << 20);
  if (!text.has_value()) return json();
  json j = json::parse(*text, nullptr, false);
  return j.is_discarded() ? json() : j;
}

}  // namespace

Status CheckSlug(const std::string& name, const std::string& field) {
  const bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' && name[0] != '_' && name[0] != '-' &&
                  std::all_of(name.begin(), name.end(), SlugChar);
  if (ok) return Status::Ok();
  return InvalidArgument(field + " must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
                         field);
}

bool IsReference(std::string_view path) { return StartsWith(path, kScheme); }

std::string Reference::ToString() const {
  std::string out(kScheme);
  if (kind == Kind::kDataset) out += "datasets/";
  out += name;
  if (!alias.empty()) return out + "@" + alias;
  if (version > 0) out += "/" + std::to_string(version);
  return out;
}

Result<Reference> ParseReference(std::string_view text, const std::string& field) {
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("'" + EscapeForLog(text, 200) + "' is not a catalog reference: " + why +
                               " (catalog://<name>, catalog://<name>/<version>, catalog://<name>@<alias>, "
                               "catalog://datasets/<name>...)",
                           field);
  };
  if (!IsReference(text)) return bad("it must start with catalog://");
  std::string_view rest = text.substr(kScheme.size());
  Reference r;
  if (StartsWith(rest, "datasets/")) {
    r.kind = Kind::kDataset;
    rest.remove_prefix(9);
  } else if (StartsWith(rest, "models/")) {
    rest.remove_prefix(7);
  }
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    r.alias = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!CheckSlug(r.alias, field).ok()) return bad("the alias must be a lowercase slug");
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (!r.alias.empty()) return bad("give a version or an alias, not both");
    auto n = ParseInt(rest.substr(slash + 1));
    if (!n || *n <= 0) return bad("the version must be a positive integer");
    r.version = *n;
    rest = rest.substr(0, slash);
  }
  r.name = std::string(rest);
  if (!CheckSlug(r.name, field).ok()) return bad("the name must be a lowercase slug");
  return r;
}

struct Catalog::Impl {
  Impl(metadata::CatalogStore& r, storage::ObjectStore& s, CatalogOptions o)
      : records(r), store(s), options(std::move(o)) {
    if (!options.now_ms) options.now_ms = NowMs;
  }
  metadata::CatalogStore& records;
  storage::ObjectStore& store;
  CatalogOptions options;

  std::mutex mu;
  // Files checked against their SHA-256, by key: the etag and size they had then. A file
  // whose etag and size are unchanged is not hashed again.
  std::map<std::string, std::pair<std::string, uint64_t>> verified;
  AliasListener listener;

  static bool Sees(const Entry& e, const Caller& c) {
    return c.sees_all || e.visibility == "public" || (!c.user.empty() && e.owner == c.user);
  }
  static bool Owns(const Entry& e, const Caller& c) { return c.sees_all || (!c.user.empty() && e.owner == c.user); }

  Result<Entry> Visible(Kind kind, const std::string& name, const Caller& caller) {
    MLAAS_RETURN_IF_ERROR(CheckSlug(name, "name"));
    auto e = records.GetEntry(std::string(KindName(kind)), name);
    if (!e.has_value() || !Sees(*e, caller)) return Missing("no " + std::string(KindName(kind)) + " named '" + name + "'", "name");
    return e;
  }

  Result<Entry> Owned(Kind kind, const std::string& name, const Caller& caller) {
    MLAAS_ASSIGN_OR_RETURN(Entry e, Visible(kind, name, caller));
    if (!Owns(e, caller))
      return Denied(std::string(KindName(kind)) + " '" + name + "' belongs to " + e.owner + ": only they (or an admin) may change it");
    return e;
  }

  Status Apply(const EntryFields& f, Entry& e) {
    if (f.description) {
      if (f.description->size() > options.max_description_bytes)
        return InvalidArgument("description is longer than " + std::to_string(options.max_description_bytes) + " bytes",
                               "description");
      e.description = *f.description;
    }
    if (f.card) {
      if (f.card->size() > options.max_card_bytes)
        return InvalidArgument("card is longer than " + std::to_string(options.max_card_bytes) + " bytes", "card");
      e.card = *f.card;
    }
    if (f.visibility) e.visibility = std::string(VisibilityName(*f.visibility));
    if (f.objective) {
      if (f.objective->size() > 64) return InvalidArgument("objective is longer than 64 bytes", "objective");
      e.objective = *f.objective;
    }
    if (f.license) {
      if (f.license->size() > 128) return InvalidArgument("license is longer than 128 bytes", "license");
      e.license = *f.license;
    }
    if (f.tags) {
      if (f.tags->size() > options.max_tags)
        return InvalidArgument("at most " + std::to_string(options.max_tags) + " tags", "tags");
      for (size_t i = 0; i < f.tags->size(); ++i) MLAAS_RETURN_IF_ERROR(CheckSlug((*f.tags)[i], "tags[" + std::to_string(i) + "]"));
      e.tags = *f.tags;
      std::sort(e.tags.begin(), e.tags.end());
      e.tags.erase(std::unique(e.tags.begin(), e.tags.end()), e.tags.end());
    }
    for (const std::string* text : {&e.description, &e.card, &e.license, &e.objective}) {
      if (!IsValidUtf8(*text)) return InvalidArgument("text fields must be valid UTF-8");
    }
    return Status::Ok();
  }

  // The source's files: (relative path, key, size).
  struct SourceFile {
    std::string path, key;
    uint64_t size = 0;
  };
  Result<std::vector<SourceFile>> SourceFiles(const RegisterRequest& r, const std::string& field) {
    std::vector<SourceFile> files;
    if (r.kind == Kind::kDataset) {
      auto info = r.source_store->Stat(r.source_key);
      if (info.has_value()) {
        if (dataset::IsImageFolderFormat(r.dataset_format))
          return InvalidArgument("an " + r.dataset_format + " dataset is a folder; '" + r.source_key + "' is a file", field);
        const auto slash = r.source_key.rfind('/');
        files.push_back({slash == std::string::npos ? r.source_key : r.source_key.substr(slash + 1), r.source_key, info->size});
        return files;
      }
      if (info.error().code() != StatusCode::kNotFound) return info.error();
      // A folder: an image dataset.
      MLAAS_ASSIGN_OR_RETURN(files, FolderFiles(r, options.max_dataset_files, field));
      if (files.empty()) return InvalidArgument("no dataset file or folder '" + r.source_key + "' in storage", field);
      if (!r.dataset_format.empty() && !dataset::IsImageFolderFormat(r.dataset_format))
        return InvalidArgument("a " + r.dataset_format + " dataset is one file; '" + r.source_key +
                                   "' is a folder (a folder of images is image_folder or idx)",
                               field);
      return files;
    }
    MLAAS_ASSIGN_OR_RETURN(files, FolderFiles(r, options.max_files, field));
    if (std::none_of(files.begin(), files.end(), [](const SourceFile& f) { return f.path == "config.json"; }))
      return InvalidArgument("no model directory at '" + r.source_key + "' (config.json is missing)", field);
    return files;
  }

  // The files under the source folder, at most `max`.
  Result<std::vector<SourceFile>> FolderFiles(const RegisterRequest& r, size_t max, const std::string& field) {
    std::vector<SourceFile> files;
    storage::ListOptions list;
    list.prefix = r.source_key + "/";
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(storage::ListResult page, r.source_store->List(list));
      for (const auto& o : page.objects) {
        files.push_back({o.key.substr(list.prefix.size()), o.key, o.size});
        if (files.size() > max)
          return InvalidArgument("the folder has more than " + std::to_string(max) + " files", field);
      }
      if (!page.is_truncated) break;
      list.continuation_token = page.next_continuation_token;
    }
    return files;
  }

  // Copies one file, hashing it; `head` keeps its first bytes when asked (safetensors header).
  Result<metadata::CatalogFileRecord> CopyFile(storage::ObjectStore& from, const SourceFile& f, const std::string& to_key,
                                               std::string* head) {
    MLAAS_ASSIGN_OR_RETURN(auto reader, from.Open(f.key));
    MLAAS_ASSIGN_OR_RETURN(auto writer, store.Create(to_key));
    Sha256 h;
    std::string buf(kChunk, '\0');
    uint64_t total = 0;
    uint64_t head_wanted = 8;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
      if (n == 0) break;
      std::string_view chunk(buf.data(), n);
      h.Update(chunk);
      MLAAS_RETURN_IF_ERROR(writer->Write(chunk));
      total += n;
      // `head` holds the file's first bytes: the length field, then the header it announces.
      const uint64_t chunk_start = total - n;
      while (head && head->size() < head_wanted && head->size() < total) {
        const uint64_t off = head->size() - chunk_start;
        head->append(chunk.substr(off, std::min<uint64_t>(n - off, head_wanted - head->size())));
        if (head_wanted == 8 && head->size() == 8) {
          uint64_t len = 0;
          std::memcpy(&len, head->data(), 8);
          if (len == 0 || len > kMaxSafetensorsHeader) break;
          head_wanted = 8 + len;
        }
      }
      if (total > options.max_version_bytes) return InvalidArgument("the version is larger than the catalog allows");
    }
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectInfo info, writer->Commit());
    metadata::CatalogFileRecord rec{f.path, total, h.Hex()};
    std::lock_guard lock(mu);
    verified[to_key] = {info.etag, info.size};
    return rec;
  }

  // Facts of a model version from its files (config, parameters, card).
  json ModelFacts(const std::string& prefix, int64_t parameters) {
    json facts = json::object();
    json config = ReadSmallJson(store, prefix + "/config.json");
    if (config.is_object()) {
      if (config.contains("model_type") && config["model_type"].is_string()) facts["model_type"] = config["model_type"];
      if (config.contains("architectures") && config["architectures"].is_array()) facts["architectures"] = config["architectures"];
      if (auto l = config.find("id2label"); l != config.end() && l->is_object()) {
        std::vector<std::pair<int64_t, std::string>> labels;
        for (auto it = l->begin(); it != l->end(); ++it) {
          if (auto id = ParseInt(it.key()); id && it->is_string()) labels.emplace_back(*id, it->get<std::string>());
        }
        std::sort(labels.begin(), labels.end());
        json names = json::array();
        for (auto& [id, label] : labels) names.push_back(label);
        facts["labels"] = names;
      }
    }
    if (parameters > 0) facts["parameters"] = parameters;
    return facts;
  }

  // Facts of a dataset version: format, columns, rows and the first 20 rows.
  Result<json> DatasetFacts(storage::ObjectStore& from, const std::string& key, const std::string& format, uint64_t size) {
    json block = json::object();
    if (!format.empty()) block["format"] = format;
    MLAAS_ASSIGN_OR_RETURN(dataset::ReaderOptions ro, dataset::ReaderOptionsFromRequest(block, key, "dataset"));
    ro.utf8 = dataset::Utf8Policy::kReplace;
    MLAAS_ASSIGN_OR_RETURN(auto source, from.Open(key));
    MLAAS_ASSIGN_OR_RETURN(auto reader, dataset::OpenRecordReader(std::move(source), ro));
    // Facts are read with every version: a wide file's are cut to the first kFactsColumns
    // columns (names and values cut too), and the preview ends with the row that passes
    // kPreviewBytes (a row is at most 256 x (256 + 1024) bytes).
    // A name that repeats an earlier one is shown as pandas shows it ("a", "a.1", "a.2"), so that
    // the preview's rows, keyed by name, keep each column's value.
    std::vector<std::string> names;
    {
      std::set<std::string> seen;
      for (size_t i = 0; i < reader->columns().size() && i < kFactsColumns; ++i) {
        const std::string base = Utf8Cut(reader->columns()[i], kFactsColumnBytes);
        std::string name = base;
        for (int k = 1; !seen.insert(name).second; ++k) name = base + "." + std::to_string(k);
        names.push_back(std::move(name));
      }
    }
    auto column = [&](size_t i) { return names[i]; };
    json preview = json::array();
    size_t preview_bytes = 0;
    dataset::Row row;
    int64_t rows = 0;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool more, reader->Next(row));
      if (!more) break;
      if (rows < 20 && preview_bytes < kPreviewBytes) {
        json r = json::object();
        for (size_t i = 0; i < reader->columns().size() && i < row.values.size() && i < kFactsColumns; ++i) {
          std::string name = column(i);
          preview_bytes += name.size();
          if (i < row.missing.size() && row.missing[i]) {
            r[name] = nullptr;
          } else {
            std::string value = Utf8Cut(row.values[i], 1024);
            preview_bytes += value.size();
            r[name] = std::move(value);
          }
        }
        preview.push_back(std::move(r));
      }
      ++rows;
    }
    const std::vector<std::string>& columns = names;
    const bool tsv = ro.format == dataset::Format::kCsv && ro.delimiter == '\t';
    return json{{"format", tsv ? "tsv" : std::string(dataset::FormatName(ro.format))},
                {"columns", columns},
                {"column_count", reader->columns().size()},
                {"rows", rows},
                {"size", size},
                {"preview", preview}};
  }

  // Facts of an image dataset version (a folder): its format, images and classes.
  Result<json> ImageDatasetFacts(storage::ObjectStore& from, const std::string& prefix, const std::string& format,
                                 uint64_t size) {
    MLAAS_ASSIGN_OR_RETURN(dataset::ImageDatasetSummary sum,
                           dataset::SummarizeImageDataset(from, prefix, format, "dataset",
                                                          static_cast<int64_t>(options.max_dataset_files)));
    json classes = json::array();
    for (const auto& c : sum.classes) classes.push_back({{"name", c.name}, {"images", c.images}});
    json facts = {{"format", sum.format}, {"images", sum.images}, {"classes", classes}, {"size", size}};
    if (sum.held_out_images > 0) facts["held_out_images"] = sum.held_out_images;
    if (sum.width > 0) facts["image_size"] = {sum.width, sum.height};
    if (!sum.samples.empty()) facts["samples"] = sum.samples;
    if (sum.other_files > 0) facts["other_files"] = sum.other_files;
    return facts;
  }

  void RemoveObjects(const std::string& prefix) {
    storage::ListOptions list;
    list.prefix = prefix + "/";
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = store.List(list);
      if (!page.has_value()) return;
      std::vector<std::string> keys;
      for (const auto& o : page->objects) keys.push_back(o.key);
      (void)store.DeleteMany(keys);
      if (!page->is_truncated) return;
      list.continuation_token = page->next_continuation_token;
    }
  }

  // Readers load every file under a version's directory: none may be there that registration
  // did not record.
  Status NothingUnrecorded(const Version& v, const std::string& prefix) {
    storage::ListOptions list;
    list.prefix = prefix + "/";
    for (int pages = 0; pages < 100; ++pages) {
      MLAAS_ASSIGN_OR_RETURN(storage::ListResult page, store.List(list));
      for (const auto& o : page.objects) {
        const std::string path = o.key.substr(list.prefix.size());
        if (std::none_of(v.files.begin(), v.files.end(), [&](const auto& f) { return f.path == path; })) {
          spdlog::error("catalog {} {} version {}: unrecorded file {}", v.kind, v.name, v.version, path);
          return Internal("file '" + path + "' in " + v.kind + " " + v.name + " version " + std::to_string(v.version) +
                          " was not registered with it: the version is not served");
        }
      }
      if (!page.is_truncated) return Status::Ok();
      list.continuation_token = page.next_continuation_token;
    }
    return Status::Ok();
  }

  Status VerifyFile(const Version& v, const metadata::CatalogFileRecord& f) {
    const std::string key = VersionPrefix(v.kind == "dataset" ? Kind::kDataset : Kind::kModel, v.name, v.version) + "/" + f.path;
    const auto changed = [&](const std::string& why) {
      spdlog::error("catalog {} {} version {}: file {} {}", v.kind, v.name, v.version, f.path, why);
      return Internal("file '" + f.path + "' of " + v.kind + " " + v.name + " version " + std::to_string(v.version) + " " + why +
                      ": it changed on disk after it was registered, and is not served");
    };
    auto info = store.Stat(key);
    if (!info.has_value()) return changed("is missing");
    if (info->size != f.size) return changed("has a different size than when registered");
    {
      std::lock_guard lock(mu);
      auto it = verified.find(key);
      if (it != verified.end() && it->second.first == info->etag && it->second.second == info->size) return Status::Ok();
    }
    MLAAS_ASSIGN_OR_RETURN(auto reader, store.Open(key));
    Sha256 h;
    std::string buf(kChunk, '\0');
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
      if (n == 0) break;
      h.Update(std::string_view(buf.data(), n));
    }
    if (h.Hex() != f.sha256) return changed("does not match its recorded SHA-256");
    std::lock_guard lock(mu);
    verified[key] = {info->etag, info->size};
    return Status::Ok();
  }
};

Catalog::Catalog(metadata::CatalogStore& records, storage::ObjectStore& store, CatalogOptions options)
    : impl_(std::make_unique<Impl>(records, store, std::move(options))) {}
Catalog::~Catalog() = default;

bool IsFolderDataset(const json& facts) {
  return facts.is_object() && facts.contains("format") && facts["format"].is_string() &&
         dataset::IsImageFolderFormat(facts["format"].get<std::string>());
}

std::string Catalog::VersionPrefix(Kind kind, const std::string& name, int64_t version) {
  return "catalog/" + std::string(KindPlural(kind)) + "/" + name + "/" + std::to_string(version);
}

Status Catalog::SweepAbandoned() {
  MLAAS_ASSIGN_OR_RETURN(auto stale, impl_->records.StaleReservations(impl_->options.now_ms() - 3600'000));
  for (const auto& v : stale) {
    impl_->RemoveObjects(VersionPrefix(v.kind == "dataset" ? Kind::kDataset : Kind::kModel, v.name, v.version));
    MLAAS_RETURN_IF_ERROR(impl_->records.DropVersion(v.kind, v.name, v.version));
    spdlog::info("catalog: removed version {} of {} {}, whose registration was cut short", v.version, v.kind, v.name);
  }
  return Status::Ok();
}

Result<Entry> Catalog::Create(Kind kind, const std::string& name, const EntryFields& fields, const Caller& caller) {
  MLAAS_RETURN_IF_ERROR(CheckSlug(name, "name"));
  if (caller.user.empty()) return Status(StatusCode::kUnauthenticated, "registering needs a user's token");
  Entry e;
  e.kind = std::string(KindName(kind));
  e.name = name;
  e.owner = caller.user;
  e.visibility = "private";
  MLAAS_RETURN_IF_ERROR(impl_->Apply(fields, e));
  e.created_ms = e.updated_ms = impl_->options.now_ms();
  MLAAS_RETURN_IF_ERROR(impl_->records.CreateEntry(e));
  return e;
}

Result<Entry> Catalog::Get(Kind kind, const std::string& name, const Caller& caller) {
  return impl_->Visible(kind, name, caller);
}

Result<Entry> Catalog::Update(Kind kind, const std::string& name, const EntryFields& fields, const Caller& caller) {
  MLAAS_ASSIGN_OR_RETURN(Entry e, impl_->Owned(kind, name, caller));
  MLAAS_RETURN_IF_ERROR(impl_->Apply(fields, e));
  e.updated_ms = impl_->options.now_ms();
  MLAAS_RETURN_IF_ERROR(impl_->records.UpdateEntry(e));
  return e;
}

Status Catalog::Delete(Kind kind, const std::string& name, const Caller& caller) {
  MLAAS_ASSIGN_OR_RETURN(Entry e, impl_->Owned(kind, name, caller));
  MLAAS_ASSIGN_OR_RETURN(auto versions, impl_->records.ListVersions(e.kind, name));
  MLAAS_RETURN_IF_ERROR(impl_->records.DeleteEntry(e.kind, name));
  for (const auto& v : versions) impl_->RemoveObjects(VersionPrefix(kind, name, v.version));
  return Status::Ok();
}

Result<metadata::CatalogPage> Catalog::List(const ListQuery& query, const Caller& caller) {
  metadata::CatalogQuery q;
  q.kind = std::string(KindName(query.kind));
  if (query.text.size() > 256) return InvalidArgument("q is longer than 256 bytes", "q");
  q.text = query.text;
  q.objective = query.objective;
  q.tag = query.tag;
  q.owner = query.owner;
  if (!query.visibility.empty() && !ParseVisibility(query.visibility))
    return InvalidArgument("visibility must be public or private", "visibility");
  q.visibility = query.visibility;
  q.viewer = caller.user;
  q.sees_all = caller.sees_all;
  q.sort = query.sort;
  q.limit = query.limit;
  q.cursor = query.cursor;
  return impl_->records.ListEntries(q);
}

Result<Version> Catalog::Register(const RegisterRequest& r, const Caller& caller) {
  const std::string field = r.kind == Kind::kModel ? "model.path" : "dataset.path";
  MLAAS_RETURN_IF_ERROR(CheckSlug(r.name, "name"));
  if (caller.user.empty()) return Status(StatusCode::kUnauthenticated, "registering needs a user's token");
  if (r.source_store == nullptr) return InvalidArgument("no source to register", field);
  const std::string kind(KindName(r.kind));
  // Nothing is created before the source is checked and described, so that a registration
  // failing there leaves the name as it was (free, when it was).
  auto entry = impl_->records.GetEntry(kind, r.name);
  if (!entry.has_value() && entry.error().code() != StatusCode::kNotFound) return entry.error();
  auto owned = [&](const Entry& e) -> Status {
    if (!Impl::Owns(e, caller)) {
      if (!Impl::Sees(e, caller))
        return Status(StatusCode::kAlreadyExists, "the name '" + r.name + "' is taken by another user's " + kind, "name");
      return Denied(kind + " '" + r.name + "' belongs to " + e.owner + ": only they (or an admin) may add versions");
    }
    Entry check = e;  // the request's fields are checked before anything is copied
    return impl_->Apply(r.fields, check);
  };
  if (entry.has_value()) MLAAS_RETURN_IF_ERROR(owned(*entry));
  MLAAS_ASSIGN_OR_RETURN(auto files, impl_->SourceFiles(r, field));
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  if (total > impl_->options.max_version_bytes)
    return InvalidArgument("the source holds " + FormatBytes(total) + ", more than the catalog takes in one version (" +
                               FormatBytes(impl_->options.max_version_bytes) + ")",
                           field);

  // An image dataset (a folder) is checked and described before anything is copied.
  const bool folder = r.kind == Kind::kDataset && files.front().key != r.source_key;
  json folder_facts;
  if (folder) {
    std::string format = r.dataset_format;
    if (format.empty()) {
      std::vector<std::string> paths;
      for (const auto& f : files) paths.push_back(f.path);
      format = dataset::GuessFolderFormat(paths);
    }
    MLAAS_ASSIGN_OR_RETURN(folder_facts, impl_->ImageDatasetFacts(*r.source_store, r.source_key, format, total));
  }
  // A dataset file is read (and described) from its source, before anything is copied.
  json file_facts;
  if (r.kind == Kind::kDataset && !folder) {
    auto facts = impl_->DatasetFacts(*r.source_store, r.source_key, r.dataset_format, total);
    if (!facts.has_value()) return facts.error().WithField("dataset.path");
    file_facts = std::move(facts).value();
  }
  if (!entry.has_value()) {
    auto created = Create(r.kind, r.name, r.fields, caller);
    if (!created.has_value() && created.error().code() != StatusCode::kAlreadyExists) return created.error();
    entry = impl_->records.GetEntry(kind, r.name);
    if (!entry.has_value()) return entry.error();
    MLAAS_RETURN_IF_ERROR(owned(*entry));  // another user's, made meanwhile
  }

  const int64_t now = impl_->options.now_ms();
  MLAAS_ASSIGN_OR_RETURN(int64_t number, impl_->records.ReserveVersion(kind, r.name, caller.user, now));
  const std::string prefix = VersionPrefix(r.kind, r.name, number);
  Version v;
  v.kind = kind;
  v.name = r.name;
  v.version = number;
  v.created_by = caller.user;
  v.created_ms = now;
  v.lineage = r.lineage.is_object() ? r.lineage : json::object();
  Status st = [&]() -> Status {
   try {
    int64_t parameters = 0;
    for (const auto& f : files) {
      std::string head;
      const bool weights = f.path.size() > 12 && f.path.ends_with(".safetensors");
      MLAAS_ASSIGN_OR_RETURN(auto rec, impl_->CopyFile(*r.source_store, f, prefix + "/" + f.path, weights ? &head : nullptr));
      if (weights) parameters += SafetensorsParameters(head, rec.size);
      v.size += rec.size;
      v.files.push_back(std::move(rec));
    }
    std::sort(v.files.begin(), v.files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
    v.digest = VersionDigest(v.files);
    if (r.kind == Kind::kModel) {
      v.facts = impl_->ModelFacts(prefix, parameters);
    } else {
      v.facts = folder ? folder_facts : file_facts;
    }
    v.ready = true;
    return impl_->records.CompleteVersion(v);
   } catch (const std::exception& e) {
    return Internal(std::string("registering failed: ") + e.what());
   }
  }();
  if (!st.ok()) {
    impl_->RemoveObjects(prefix);
    (void)impl_->records.DropVersion(kind, r.name, number);
    return st;
  }
  // The entry takes what the new version tells about it, where the request left it unset (read
  // again: it may have changed while the files were copied).
  auto fresh = impl_->records.GetEntry(kind, r.name);
  if (!fresh.has_value()) return v;  // deleted meanwhile: the version went with it
  Entry e = std::move(fresh).value();
  EntryFields fields = r.fields;
  if (!fields.objective && e.objective.empty()) {
    const json& req = v.lineage.contains("request") ? v.lineage["request"] : json();
    if (req.is_object() && req.contains("model") && req["model"].is_object() && req["model"].contains("objective") &&
        req["model"]["objective"].is_string())
      fields.objective = req["model"]["objective"].get<std::string>();
  }
  if (!fields.card && e.card.empty() && r.kind == Kind::kModel) {
    auto card = impl_->store.GetString(prefix + "/README.md", impl_->options.max_card_bytes);
    if (card.has_value() && IsValidUtf8(*card)) fields.card = *card;
  }
  if (Status applied = impl_->Apply(fields, e); applied.ok()) {
    if (v.facts.contains("model_type") && v.facts["model_type"].is_string()) e.model_type = v.facts["model_type"];
    if (v.facts.contains("labels") && v.facts["labels"].is_array()) e.labels = v.facts["labels"].get<std::vector<std::string>>();
    e.updated_ms = now;
    if (Status up = impl_->records.UpdateEntry(e); !up.ok()) spdlog::warn("catalog: {}", up.ToString());
  }
  spdlog::info("catalog: {} {} version {} registered by {} ({} files, {}, {})", kind, r.name, number, caller.user,
               v.files.size(), FormatBytes(v.size), v.digest);
  return v;
}

Result<std::vector<Version>> Catalog::Versions(Kind kind, const std::string& name, const Caller& caller) {
  MLAAS_RETURN_IF_ERROR(impl_->Visible(kind, name, caller).status());
  return impl_->records.ListVersions(std::string(KindName(kind)), name);
}

Result<Version> Catalog::GetVersion(Kind kind, const std::string& name, int64_t version, const Caller& caller) {
  MLAAS_RETURN_IF_ERROR(impl_->Visible(kind, name, caller).status());
  return impl_->records.GetVersion(std::string(KindName(kind)), name, version);
}

Result<Resolved> Catalog::Resolve(const Reference& ref, const Caller& caller) {
  MLAAS_ASSIGN_OR_RETURN(Entry e, impl_->Visible(ref.kind, ref.name, caller));
  int64_t number = ref.version;
  if (!ref.alias.empty()) {
    MLAAS_ASSIGN_OR_RETURN(auto aliases, impl_->records.ListAliases(e.kind, e.name));
    auto it = std::find_if(aliases.begin(), aliases.end(), [&](const auto& a) { return a.alias == ref.alias; });
    if (it == aliases.end()) return Missing(e.kind + " '" + e.name + "' has no alias '" + ref.alias + "'", "alias");
    number = it->version;
  } else if (number == 0) {
    number = e.latest_version;
    if (number == 0) return Missing(e.kind + " '" + e.name + "' has no version yet", "version");
  }
  MLAAS_ASSIGN_OR_RETURN(Version v, impl_->records.GetVersion(e.kind, e.name, number));
  MLAAS_RETURN_IF_ERROR(Verify(v));
  MLAAS_RETURN_IF_ERROR(impl_->NothingUnrecorded(v, VersionPrefix(ref.kind, e.name, number)));
  Resolved out;
  out.reference = ref;
  out.owner = e.owner;
  out.entry_created_ms = e.created_ms;
  out.key = VersionPrefix(ref.kind, e.name, number);
  if (ref.kind == Kind::kDataset && !v.files.empty() && !IsFolderDataset(v.facts)) out.key += "/" + v.files.front().path;
  out.version = std::move(v);
  return out;
}

Status Catalog::Verify(const Version& version) {
  for (const auto& f : version.files) MLAAS_RETURN_IF_ERROR(impl_->VerifyFile(version, f));
  return Status::Ok();
}

Result<OpenedFile> Catalog::OpenFile(Kind kind, const std::string& name, int64_t version, const std::string& path,
                                     const Caller& caller) {
  MLAAS_ASSIGN_OR_RETURN(Version v, GetVersion(kind, name, version, caller));
  auto it = std::find_if(v.files.begin(), v.files.end(), [&](const auto& f) { return f.path == path; });
  if (it == v.files.end())
    return Missing(v.kind + " " + name + " version " + std::to_string(version) + " has no file '" + EscapeForLog(path, 200) + "'",
                   "path");
  MLAAS_RETURN_IF_ERROR(impl_->VerifyFile(v, *it));
  MLAAS_ASSIGN_OR_RETURN(auto reader, impl_->store.Open(VersionPrefix(kind, name, version) + "/" + path));
  return OpenedFile{std::move(reader), *it, it == v.files.begin()};
}

Result<AliasEvent> Catalog::MoveAlias(Kind kind, const std::string& name, const std::string& alias, int64_t version,
                                      const Caller& caller) {
  MLAAS_RETURN_IF_ERROR(CheckSlug(alias, "alias"));
  if (version < 0) return InvalidArgument("version must be a positive integer", "version");
  MLAAS_ASSIGN_OR_RETURN(Entry e, impl_->Owned(kind, name, caller));
  MLAAS_ASSIGN_OR_RETURN(AliasEvent event,
                         impl_->records.MoveAlias(e.kind, name, alias, version, caller.user, impl_->options.now_ms()));
  spdlog::info("catalog: {} {} alias {} moved from version {} to {} by {}", e.kind, name, alias, event.from_version,
               event.to_version, caller.user);
  AliasListener listener;
  {
    std::lock_guard lock(impl_->mu);
    listener = impl_->listener;
  }
  if (listener) listener(kind, name, event);
  return event;
}

Result<std::vector<metadata::CatalogAliasRecord>> Catalog::Aliases(Kind kind, const std::string& name, const Caller& caller) {
  MLAAS_ASSIGN_OR_RETURN(Entry e, impl_->Visible(kind, name, caller));
  return impl_->records.ListAliases(e.kind, name);
}

Result<std::vector<AliasEvent>> Catalog::AliasHistory(Kind kind, const std::string& name, int64_t after_seq, size_t limit,
                                                      const Caller& caller) {
  MLAAS_ASSIGN_OR_RETURN(Entry e, impl_->Visible(kind, name, caller));
  return impl_->records.AliasEvents(e.kind, name, after_seq, limit);
}

void Catalog::Count(Kind kind, const std::string& name, metadata::CatalogCounter counter) {
  if (Status st = impl_->records.Count(std::string(KindName(kind)), name, counter, 1); !st.ok())
    spdlog::warn("catalog: cannot count a use of {}: {}", name, st.ToString());
}

void Catalog::SetAliasListener(AliasListener listener) {
  std::lock_guard lock(impl_->mu);
  impl_->listener = std::move(listener);
}

}  // namespace mlaas::catalog

namespace mlaas::catalog {

tasks::TaskHandler RegisteringTrainedModels(tasks::TaskHandler train, Catalog& catalog,
                                            const storage::StorageRegistry& storage, std::string admin_user) {
  return [train = std::move(train), &catalog, &storage, admin_user](tasks::TaskContext& ctx) -> Result<json> {
    MLAAS_ASSIGN_OR_RETURN(json result, train(ctx));
    const json& params = ctx.params();
    if (!params.contains("catalog") || !params["catalog"].is_object()) return result;
    const json& target = params["catalog"];
    // The request's as_admin (set by the API, which checked the name with the same rule at submit).
    const Caller caller = ctx.submitted_by().empty() ? Caller{admin_user, true}
                                                     : Caller{ctx.submitted_by(), target.value("as_admin", false)};
    ctx.ReportStage(1.0, "registering the model in the catalog");
    // A sweep's result names its best trial's model_save; a training task saved to its own.
    const json& save = result.contains("model_save") ? result["model_save"] : params["model_save"];
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef out, storage.Resolve(save, "model_save"));
    RegisterRequest r;
    r.kind = Kind::kModel;
    r.name = target.value("model", "");
    r.source_store = out.store;
    r.source_key = out.key;
    if (target.contains("description")) r.fields.description = target["description"].get<std::string>();
    if (target.contains("visibility")) r.fields.visibility = ParseVisibility(target["visibility"].get<std::string>());
    json request = params;
    request.erase("catalog");
    r.lineage = {{"source_task", ctx.id()},
                 {"request", request},
                 {"base_model", params.contains("model") ? params["model"] : json()},
                 {"dataset", params.contains("dataset") ? params["dataset"] : json()},
                 {"metrics", {{"evaluation", result.value("evaluation", json())}, {"history", result.value("history", json())}}}};
    auto v = catalog.Register(r, caller);
    if (!v.has_value()) return v.error().WithContext("the model was trained and saved, but registering it failed");
    json registered = {{"model", v->name},
                       {"version", v->version},
                       {"reference", Reference{Kind::kModel, v->name, v->version}.ToString()},
                       {"digest", v->digest}};
    if (target.contains("alias")) {
      auto moved = catalog.MoveAlias(Kind::kModel, v->name, target["alias"].get<std::string>(), v->version, caller);
      if (!moved.has_value()) return moved.error().WithContext("version " + std::to_string(v->version) + " is registered, but its alias");
      registered["alias"] = target["alias"];
    }
    ctx.Log("info", "registered as " + registered["reference"].get<std::string>() + " (" + v->digest + ")");
    result["catalog"] = registered;
    return result;
  };
}

}  // namespace mlaas::catalog
