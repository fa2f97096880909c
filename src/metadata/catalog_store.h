// mlaas::metadata — the catalog's records: registered models and datasets, their immutable
// versions (files with their SHA-256, one digest, facts, lineage), aliases and the audit trail
// of alias moves, in the metadata database beside tasks and accounts (docs/catalog.md). The
// files themselves live in the object store (catalog::Catalog copies and verifies them).
// Thread-safe; several processes may share the database.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "metadata/task_store.h"

namespace mlaas::metadata {

struct CatalogEntryRecord {
  std::string kind{};        // "model" | "dataset"
  std::string name{};
  std::string owner{};
  std::string visibility{};  // "private" | "public"
  std::string description{};
  std::string card{};        // markdown
  std::string objective{};
  std::string model_type{};
  std::string license{};
  std::vector<std::string> labels{};
  std::vector<std::string> tags{};
  int64_t latest_version = 0;  // newest ready version; 0: none yet
  int64_t downloads = 0;
  int64_t predictions = 0;
  int64_t deployments = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct CatalogFileRecord {
  std::string path{};  // relative to the version's directory, '/'-separated
  uint64_t size = 0;
  std::string sha256{};
};

struct CatalogVersionRecord {
  std::string kind{};
  std::string name{};
  int64_t version = 0;
  bool ready = false;  // false while its files are copied (invisible to readers)
  std::string digest{};
  std::vector<CatalogFileRecord> files{};  // empty in listings (ListVersions): an image dataset has many
  int64_t file_count = 0;                  // how many files, in listings too
  uint64_t size = 0;
  nlohmann::json facts = nlohmann::json::object();    // what the files hold (model config, dataset columns...)
  nlohmann::json lineage = nlohmann::json::object();  // where it came from (task, request, base model, dataset, metrics)
  std::string created_by{};
  int64_t created_ms = 0;
};

struct CatalogAliasRecord {
  std::string alias{};
  int64_t version = 0;
  std::string updated_by{};
  int64_t updated_ms = 0;
};

// One move of an alias: from_version 0 when it was created, to_version 0 when it was deleted.
struct CatalogAliasEvent {
  int64_t seq = 0;
  std::string alias{};
  int64_t from_version = 0;
  int64_t to_version = 0;
  std::string by{};
  int64_t time_ms = 0;
};

enum class CatalogSort { kRecent, kPopular, kName };

struct CatalogQuery {
  std::string kind{};
  std::string text{};        // in the name, description or tags (case-insensitive)
  std::string objective{};
  std::string tag{};
  std::string owner{};
  std::string visibility{};  // "" | "public" | "private"
  // Who looks: entries private to others are left out unless sees_all.
  std::string viewer{};
  bool sees_all = false;
  CatalogSort sort = CatalogSort::kRecent;
  size_t limit = 50;
  std::string cursor{};      // next_cursor of the previous page
};

struct CatalogPage {
  std::vector<CatalogEntryRecord> entries{};
  std::string next_cursor{};  // empty on the last page
};

enum class CatalogCounter { kDownloads, kPredictions, kDeployments };

class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  // AlreadyExists when an entry of that kind has the name.
  virtual Status CreateEntry(const CatalogEntryRecord& entry) = 0;
  // NotFound when absent.
  virtual Result<CatalogEntryRecord> GetEntry(const std::string& kind, const std::string& name) = 0;
  // Replaces the editable fields (description, card, visibility, objective, model_type,
  // license, labels, tags) and updated_ms. NotFound when absent.
  virtual Status UpdateEntry(const CatalogEntryRecord& entry) = 0;
  // The entry, its versions, aliases and audit trail. NotFound when absent.
  virtual Status DeleteEntry(const std::string& kind, const std::string& name) = 0;
  // InvalidArgument naming "cursor" for a cursor this store did not issue.
  virtual Result<CatalogPage> ListEntries(const CatalogQuery& query) = 0;

  // Takes the next version number of the entry (1, 2, 3...; a name registered again after a
  // delete continues after the deleted entry's numbers) for a version whose files are being
  // copied: it is invisible until CompleteVersion. NotFound for an unknown entry.
  virtual Result<int64_t> ReserveVersion(const std::string& kind, const std::string& name,
                                         const std::string& created_by, int64_t now_ms) = 0;
  // Records the files, digest, facts and lineage of a reserved version and makes it visible
  // (the entry's latest_version and updated_ms move).
  virtual Status CompleteVersion(const CatalogVersionRecord& version) = 0;
  // Forgets a reserved version that did not complete.
  virtual Status DropVersion(const std::string& kind, const std::string& name, int64_t version) = 0;
  // Reserved versions older than `before_ms` (left by a crash).
  virtual Result<std::vector<CatalogVersionRecord>> StaleReservations(int64_t before_ms) = 0;
  // NotFound for an unknown or not yet complete version.
  virtual Result<CatalogVersionRecord> GetVersion(const std::string& kind, const std::string& name,
                                                  int64_t version) = 0;
  // The complete versions, newest first.
  virtual Result<std::vector<CatalogVersionRecord>> ListVersions(const std::string& kind, const std::string& name) = 0;

  // Points `alias` at `version` (a complete one; NotFound otherwise), or deletes it when
  // `version` is 0 (NotFound when there is no such alias), and appends the move to the audit
  // trail, in one transaction. Returns the move.
  virtual Result<CatalogAliasEvent> MoveAlias(const std::string& kind, const std::string& name, const std::string& alias,
                                              int64_t version, const std::string& by, int64_t now_ms) = 0;
  virtual Result<std::vector<CatalogAliasRecord>> ListAliases(const std::string& kind, const std::string& name) = 0;
  // The audit trail, oldest first, after event `after_seq`.
  virtual Result<std::vector<CatalogAliasEvent>> AliasEvents(const std::string& kind, const std::string& name,
                                                             int64_t after_seq, size_t limit) = 0;

  // Counts a download, a prediction served or a deployment towards the entry's popularity.
  virtual Status Count(const std::string& kind, const std::string& name, CatalogCounter counter, int64_t n) = 0;
};

// Opens (creating and migrating when needed) the catalog store of the database options.url.
Result<std::unique_ptr<CatalogStore>> OpenCatalogStore(const StoreOptions& options);

}  // namespace mlaas::metadata
