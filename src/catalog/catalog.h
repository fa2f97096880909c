// mlaas::catalog — the model and dataset registry (docs/catalog.md). A registered model or
// dataset has an owner, a visibility (private or public) and numbered versions; registering
// copies the files into immutable catalog storage (catalog/<models|datasets>/<name>/<n>/ in
// the server's local object store) with a SHA-256 per file and one digest per version, and
// every read of a version checks the files against them (a changed file is an error naming
// it, never served). Aliases (champion, staging...) point at versions; every move is kept in
// an audit trail. `catalog://` references name a version wherever a request takes a path.
// No libtorch; JSON only for the facts and lineage a version carries.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "metadata/catalog_store.h"
#include "storage/storage_registry.h"
#include "tasks/task_manager.h"

namespace mlaas::catalog {

enum class Kind { kModel, kDataset };
std::string_view KindName(Kind kind);    // "model" / "dataset"
std::string_view KindPlural(Kind kind);  // "models" / "datasets"

// Whether a dataset version of these facts is a folder (an image dataset) rather than one file.
bool IsFolderDataset(const nlohmann::json& facts);

enum class Visibility { kPrivate, kPublic };
std::string_view VisibilityName(Visibility v);
std::optional<Visibility> ParseVisibility(std::string_view name);

// A name of the catalog (models, datasets, aliases, tags): [a-z0-9][a-z0-9._-]{0,63}.
// InvalidArgument naming `field` otherwise.
Status CheckSlug(const std::string& name, const std::string& field);

inline constexpr std::string_view kScheme = "catalog://";

// catalog://<name>            the latest version of a model
// catalog://<name>/<n>        version n
// catalog://<name>@<alias>    the version the alias points at
// catalog://datasets/<name>[/<n>|@<alias>]  the same for a dataset
struct Reference {
  Kind kind = Kind::kModel;
  std::string name{};
  int64_t version = 0;  // 0: latest (or the alias's)
  std::string alias{};
  std::string ToString() const;
};
bool IsReference(std::string_view path);
// InvalidArgument naming `field` for a malformed reference.
Result<Reference> ParseReference(std::string_view text, const std::string& field);

// Who asks. Entries private to someone else are invisible (NotFound) unless sees_all.
struct Caller {
  std::string user{};     // empty: anonymous
  bool sees_all = false;  // an admin, or any caller of a server with auth off
};

// Fields of an entry a request may set; unset ones keep their value (or the default).
struct EntryFields {
  std::optional<std::string> description{};
  std::optional<std::string> card{};
  std::optional<Visibility> visibility{};
  std::optional<std::string> objective{};
  std::optional<std::string> license{};
  std::optional<std::vector<std::string>> tags{};
};

using Entry = metadata::CatalogEntryRecord;
using Version = metadata::CatalogVersionRecord;
using AliasEvent = metadata::CatalogAliasEvent;

struct ListQuery {
  Kind kind = Kind::kModel;
  std::string text{};
  std::string objective{};
  std::string tag{};
  std::string owner{};
  std::string visibility{};
  metadata::CatalogSort sort = metadata::CatalogSort::kRecent;
  size_t limit = 50;
  std::string cursor{};
};

// What registering a version copies and records.
struct RegisterRequest {
  Kind kind = Kind::kModel;
  std::string name{};
  // The source: a model directory (key prefix), a dataset file (a text dataset) or a dataset
  // folder (an image dataset), in `source_store`.
  storage::ObjectStore* source_store = nullptr;
  std::string source_key{};
  // Datasets: "csv", "tsv" or "jsonl" (a file), "image_folder" or "idx" (a folder); empty: a
  // file's extension, or for a folder idx when it holds IDX files, else image_folder.
  std::string dataset_format{};
  EntryFields fields{};          // for a new entry (and applied to an existing one)
  nlohmann::json lineage = nlohmann::json::object();
};

// A reference resolved to one verified version.
struct Resolved {
  Reference reference{};   // as asked
  std::string owner{};     // of the entry
  int64_t entry_created_ms = 0;  // tells the entry from a later one of the same name
  Version version{};
  std::string key{};       // where its files are: a directory prefix (model, image dataset) or the file (text dataset)
};

struct OpenedFile {
  std::unique_ptr<storage::ObjectReader> reader{};
  metadata::CatalogFileRecord file{};
  bool first = false;  // the version's first file in path order (one download of a whole folder counts once)
};

struct CatalogOptions {
  uint64_t max_version_bytes = 64ull << 30;  // a version's files together
  size_t max_files = 10000;                  // files of one model version
  size_t max_dataset_files = 200000;         // files of one (image) dataset version
  size_t max_description_bytes = 4096;
  size_t max_card_bytes = 256u << 10;
  size_t max_tags = 32;
  std::function<int64_t()> now_ms{};         // tests inject a clock
};

class Catalog {
 public:
  // `store` is the object store the catalog's files live in (the server's local store).
  Catalog(metadata::CatalogStore& records, storage::ObjectStore& store, CatalogOptions options = {});
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Removes what registrations cut short by a crash left (reserved versions older than an hour).
  Status SweepAbandoned();

  // A new entry owned by the caller (who must be a user). AlreadyExists (409) for a name in use.
  Result<Entry> Create(Kind kind, const std::string& name, const EntryFields& fields, const Caller& caller);
  // NotFound when absent or invisible to the caller.
  Result<Entry> Get(Kind kind, const std::string& name, const Caller& caller);
  // The owner (or an admin) only: PermissionDenied for others who see it, NotFound for the rest.
  Result<Entry> Update(Kind kind, const std::string& name, const EntryFields& fields, const Caller& caller);
  Status Delete(Kind kind, const std::string& name, const Caller& caller);
  Result<metadata::CatalogPage> List(const ListQuery& query, const Caller& caller);

  // Copies the source into a new version (creating the entry, owned by the caller, when new).
  Result<Version> Register(const RegisterRequest& request, const Caller& caller);
  Result<std::vector<Version>> Versions(Kind kind, const std::string& name, const Caller& caller);
  Result<Version> GetVersion(Kind kind, const std::string& name, int64_t version, const Caller& caller);

  // The version a reference names, its files verified against their digests.
  Result<Resolved> Resolve(const Reference& reference, const Caller& caller);
  // One file of a version, verified, opened for reading. NotFound for a path it does not have.
  Result<OpenedFile> OpenFile(Kind kind, const std::string& name, int64_t version, const std::string& path,
                              const Caller& caller);
  // Checks every file of `version` against its size and SHA-256 (hashing again only files
  // changed since they were last checked); DataLoss naming the first that differs.
  Status Verify(const Version& version);

  // Aliases: point (version > 0) or delete (version 0). The owner (or an admin) only.
  Result<AliasEvent> MoveAlias(Kind kind, const std::string& name, const std::string& alias, int64_t version,
                               const Caller& caller);
  Result<std::vector<metadata::CatalogAliasRecord>> Aliases(Kind kind, const std::string& name, const Caller& caller);
  Result<std::vector<AliasEvent>> AliasHistory(Kind kind, const std::string& name, int64_t after_seq, size_t limit,
                                               const Caller& caller);

  // Counts towards an entry's popularity (failures are logged, never returned).
  void Count(Kind kind, const std::string& name, metadata::CatalogCounter counter);

  // Called after every alias move (in the thread that moved it), e.g. to roll deployments
  // that follow the alias. Set before serving.
  using AliasListener = std::function<void(Kind kind, const std::string& name, const AliasEvent& event)>;
  void SetAliasListener(AliasListener listener);

  // Where version `n` of an entry keeps its files: catalog/<kind plural>/<name>/<n>.
  static std::string VersionPrefix(Kind kind, const std::string& name, int64_t version);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Wraps a training task's handler: when the request has "catalog": {"model", "alias"?,
// "visibility"?, "description"?} and the task succeeds, the saved model (model_save) is
// registered as a new version (the model the result's "model_save" names — a sweep's best trial
// — or else the request's model_save), owned by who submitted the task (`admin_user` on a server
// without accounts), with the task's request and result as its lineage, and the alias moved
// to it; the result's "catalog" member names the version. A failed registration fails the task.
tasks::TaskHandler RegisteringTrainedModels(tasks::TaskHandler train, Catalog& catalog,
                                            const storage::StorageRegistry& storage, std::string admin_user);

}  // namespace mlaas::catalog
