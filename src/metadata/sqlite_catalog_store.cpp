// SQLite implementation of CatalogStore: one connection under a mutex, like the other stores.
// Alias moves and version reservations run in BEGIN IMMEDIATE transactions, so processes
// sharing the database see them whole.
#include <algorithm>
#include <functional>
#include <mutex>

#include "common/text.h"
#include "common/time_util.h"
#include "metadata/catalog_rows.h"
#include "metadata/catalog_store.h"
#include "metadata/pg_stores.h"
#include "metadata/sqlite_db.h"
#include "metadata/sqlite_schema.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;

class SqliteCatalogStore final : public CatalogStore {
 public:
  explicit SqliteCatalogStore(SqliteDb db) : db_(std::move(db)) {}

  Status Migrate() {
    std::lock_guard lock(mu_);
    return MigrateSqlite(db_);
  }

  Status CreateEntry(const CatalogEntryRecord& e) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto ins, db_.Prepare(
        "INSERT OR IGNORE INTO catalog_entries (kind, name, owner, visibility, description, card, objective, "
        "model_type, license, labels, tags, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    ins.Bind(1, e.kind).Bind(2, e.name).Bind(3, e.owner).Bind(4, e.visibility).Bind(5, e.description).Bind(6, e.card);
    ins.Bind(7, e.objective).Bind(8, e.model_type).Bind(9, e.license).Bind(10, json(e.labels).dump());
    ins.Bind(11, json(e.tags).dump()).Bind(12, e.created_ms).Bind(13, e.updated_ms);
    MLAAS_RETURN_IF_ERROR(ins.Run());
    if (db_.Changes() == 0) return Status(StatusCode::kAlreadyExists, "a " + e.kind + " named '" + e.name + "' is registered", "name");
    return Status::Ok();
  }

  Result<CatalogEntryRecord> GetEntry(const std::string& kind, const std::string& name) override {
    std::lock_guard lock(mu_);
    return GetEntryLocked(kind, name);
  }

  Status UpdateEntry(const CatalogEntryRecord& e) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto up, db_.Prepare(
        "UPDATE catalog_entries SET description = ?, card = ?, visibility = ?, objective = ?, model_type = ?, "
        "license = ?, labels = ?, tags = ?, updated_ms = ? WHERE kind = ? AND name = ?"));
    up.Bind(1, e.description).Bind(2, e.card).Bind(3, e.visibility).Bind(4, e.objective).Bind(5, e.model_type);
    up.Bind(6, e.license).Bind(7, json(e.labels).dump()).Bind(8, json(e.tags).dump()).Bind(9, e.updated_ms);
    up.Bind(10, e.kind).Bind(11, e.name);
    MLAAS_RETURN_IF_ERROR(up.Run());
    if (db_.Changes() == 0) return NotFound("no " + e.kind + " named '" + e.name + "'");
    return Status::Ok();
  }

  Status DeleteEntry(const std::string& kind, const std::string& name) override {
    std::lock_guard lock(mu_);
    return InTransaction<bool>(db_, [&]() -> Result<bool> {
             MLAAS_ASSIGN_OR_RETURN(auto retire, db_.Prepare(
                 "INSERT INTO catalog_retired (kind, name, last_version) "
                 "SELECT ?, ?, COALESCE(MAX(version), 0) FROM catalog_versions WHERE kind = ? AND name = ? "
                 "ON CONFLICT (kind, name) DO UPDATE SET last_version = MAX(last_version, excluded.last_version)"));
             retire.Bind(1, kind).Bind(2, name).Bind(3, kind).Bind(4, name);
             MLAAS_RETURN_IF_ERROR(retire.Run());
             MLAAS_ASSIGN_OR_RETURN(auto del, db_.Prepare("DELETE FROM catalog_entries WHERE kind = ? AND name = ?"));
             del.Bind(1, kind).Bind(2, name);
             MLAAS_RETURN_IF_ERROR(del.Run());
             if (db_.Changes() == 0) return NotFound("no " + kind + " named '" + name + "'");
             return true;
           })
        .status();
  }

  Result<CatalogPage> ListEntries(const CatalogQuery& q) override {
    MLAAS_ASSIGN_OR_RETURN(CatalogListQuery list, BuildCatalogListQuery(q, /*postgres=*/false));
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto st, db_.Prepare(list.sql));
    for (size_t i = 0; i < list.values.size(); ++i) {
      const int at = static_cast<int>(i) + 1;
      if (const auto* n = std::get_if<int64_t>(&list.values[i])) {
        st.Bind(at, *n);
      } else {
        st.Bind(at, std::get<std::string>(list.values[i]));
      }
    }
    CatalogPage page;
    int64_t last_key = 0;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      if (page.entries.size() == list.limit) {
        page.next_cursor = list.NextCursor(page.entries.back(), last_key);
        break;
      }
      page.entries.push_back(ReadEntry(st));
      last_key = st.Int(list.KeyColumn());
    }
    return page;
  }

  Result<int64_t> ReserveVersion(const std::string& kind, const std::string& name, const std::string& created_by,
                                 int64_t now_ms) override {
    std::lock_guard lock(mu_);
    return InTransaction<int64_t>(db_, [&]() -> Result<int64_t> {
      MLAAS_RETURN_IF_ERROR(GetEntryLocked(kind, name).status());
      MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(
          "SELECT MAX((SELECT COALESCE(MAX(version), 0) FROM catalog_versions WHERE kind = ?1 AND name = ?2), "
          "(SELECT COALESCE(MAX(last_version), 0) FROM catalog_retired WHERE kind = ?1 AND name = ?2))"));
      q.Bind(1, kind).Bind(2, name);
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      const int64_t next = (row ? q.Int(0) : 0) + 1;
      MLAAS_ASSIGN_OR_RETURN(auto ins, db_.Prepare(
          "INSERT INTO catalog_versions (kind, name, version, ready, created_by, created_ms) VALUES (?, ?, ?, 0, ?, ?)"));
      ins.Bind(1, kind).Bind(2, name).Bind(3, next).Bind(4, created_by).Bind(5, now_ms);
      MLAAS_RETURN_IF_ERROR(ins.Run());
      return next;
    });
  }

  Status CompleteVersion(const CatalogVersionRecord& v) override {
    const std::string files = FilesJson(v);
    std::lock_guard lock(mu_);
    return InTransaction<bool>(db_, [&]() -> Result<bool> {
             MLAAS_ASSIGN_OR_RETURN(auto up, db_.Prepare(
                 "UPDATE catalog_versions SET ready = 1, digest = ?, files = ?, size = ?, facts = ?, lineage = ? "
                 "WHERE kind = ? AND name = ? AND version = ? AND ready = 0"));
             up.Bind(1, v.digest).Bind(2, files).Bind(3, static_cast<int64_t>(v.size));
             up.Bind(4, v.facts.dump(-1, ' ', false, json::error_handler_t::replace));
             up.Bind(5, v.lineage.dump(-1, ' ', false, json::error_handler_t::replace));
             up.Bind(6, v.kind).Bind(7, v.name).Bind(8, v.version);
             MLAAS_RETURN_IF_ERROR(up.Run());
             if (db_.Changes() == 0)
               return NotFound("no reserved version " + std::to_string(v.version) + " of " + v.kind + " '" + v.name + "'");
             MLAAS_ASSIGN_OR_RETURN(auto entry, db_.Prepare(
                 "UPDATE catalog_entries SET latest_version = MAX(latest_version, ?), updated_ms = ? "
                 "WHERE kind = ? AND name = ?"));
             entry.Bind(1, v.version).Bind(2, v.created_ms).Bind(3, v.kind).Bind(4, v.name);
             MLAAS_RETURN_IF_ERROR(entry.Run());
             return true;
           })
        .status();
  }

  Status DropVersion(const std::string& kind, const std::string& name, int64_t version) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto del, db_.Prepare("DELETE FROM catalog_versions WHERE kind = ? AND name = ? AND version = ? AND ready = 0"));
    del.Bind(1, kind).Bind(2, name).Bind(3, version);
    return del.Run();
  }

  Result<std::vector<CatalogVersionRecord>> StaleReservations(int64_t before_ms) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT " + std::string(kVersionColumns) +
                                               " FROM catalog_versions WHERE ready = 0 AND created_ms < ?"));
    q.Bind(1, before_ms);
    return ReadVersions(q);
  }

  Result<CatalogVersionRecord> GetVersion(const std::string& kind, const std::string& name, int64_t version) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT " + std::string(kVersionColumns) +
                                               " FROM catalog_versions WHERE kind = ? AND name = ? AND version = ? AND ready = 1"));
    q.Bind(1, kind).Bind(2, name).Bind(3, version);
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Missing(kind + " '" + name + "' has no version " + std::to_string(version), "version");
    return ReadVersion(q);
  }

  Result<std::vector<CatalogVersionRecord>> ListVersions(const std::string& kind, const std::string& name) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT " + VersionListColumns(/*postgres=*/false) +
                                               " FROM catalog_versions WHERE kind = ? AND name = ? AND ready = 1 "
                                               "ORDER BY version DESC"));
    q.Bind(1, kind).Bind(2, name);
    return ReadVersions(q, /*with_files=*/false);
  }

  Result<CatalogAliasEvent> MoveAlias(const std::string& kind, const std::string& name, const std::string& alias,
                                      int64_t version, const std::string& by, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    return InTransaction<CatalogAliasEvent>(db_, [&]() -> Result<CatalogAliasEvent> {
      MLAAS_ASSIGN_OR_RETURN(auto cur, db_.Prepare("SELECT version FROM catalog_aliases WHERE kind = ? AND name = ? AND alias = ?"));
      cur.Bind(1, kind).Bind(2, name).Bind(3, alias);
      MLAAS_ASSIGN_OR_RETURN(bool has, cur.Step());
      CatalogAliasEvent event{0, alias, has ? cur.Int(0) : 0, version, by, now_ms};
      if (version == 0) {
        if (!has) return Missing(kind + " '" + name + "' has no alias '" + alias + "'", "alias");
        MLAAS_ASSIGN_OR_RETURN(auto del, db_.Prepare("DELETE FROM catalog_aliases WHERE kind = ? AND name = ? AND alias = ?"));
        del.Bind(1, kind).Bind(2, name).Bind(3, alias);
        MLAAS_RETURN_IF_ERROR(del.Run());
      } else {
        MLAAS_ASSIGN_OR_RETURN(auto v, db_.Prepare("SELECT 1 FROM catalog_versions WHERE kind = ? AND name = ? AND version = ? AND ready = 1"));
        v.Bind(1, kind).Bind(2, name).Bind(3, version);
        MLAAS_ASSIGN_OR_RETURN(bool exists, v.Step());
        if (!exists) return Missing(kind + " '" + name + "' has no version " + std::to_string(version), "version");
        MLAAS_ASSIGN_OR_RETURN(auto put, db_.Prepare(
            "INSERT INTO catalog_aliases (kind, name, alias, version, updated_by, updated_ms) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, name, alias) DO UPDATE SET version = excluded.version, updated_by = excluded.updated_by, "
            "updated_ms = excluded.updated_ms"));
        put.Bind(1, kind).Bind(2, name).Bind(3, alias).Bind(4, version).Bind(5, by).Bind(6, now_ms);
        MLAAS_RETURN_IF_ERROR(put.Run());
      }
      MLAAS_ASSIGN_OR_RETURN(auto log, db_.Prepare(
          "INSERT INTO catalog_alias_events (kind, name, alias, from_version, to_version, by_user, time_ms) "
          "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq"));
      log.Bind(1, kind).Bind(2, name).Bind(3, alias).Bind(4, event.from_version).Bind(5, version).Bind(6, by).Bind(7, now_ms);
      MLAAS_ASSIGN_OR_RETURN(bool row, log.Step());
      if (row) event.seq = log.Int(0);
      MLAAS_RETURN_IF_ERROR(log.Run());
      return event;
    });
  }

  Result<std::vector<CatalogAliasRecord>> ListAliases(const std::string& kind, const std::string& name) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT alias, version, updated_by, updated_ms FROM catalog_aliases "
                                               "WHERE kind = ? AND name = ? ORDER BY alias"));
    q.Bind(1, kind).Bind(2, name);
    std::vector<CatalogAliasRecord> out;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return out;
      out.push_back({q.Text(0), q.Int(1), q.Text(2), q.Int(3)});
    }
  }

  Result<std::vector<CatalogAliasEvent>> AliasEvents(const std::string& kind, const std::string& name, int64_t after_seq,
                                                     size_t limit) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(
        "SELECT seq, alias, from_version, to_version, by_user, time_ms FROM catalog_alias_events "
        "WHERE kind = ? AND name = ? AND seq > ? ORDER BY seq LIMIT ?"));
    q.Bind(1, kind).Bind(2, name).Bind(3, after_seq).Bind(4, static_cast<int64_t>(limit));
    std::vector<CatalogAliasEvent> out;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return out;
      out.push_back({q.Int(0), q.Text(1), q.Int(2), q.Int(3), q.Text(4), q.Int(5)});
    }
  }

  Status Count(const std::string& kind, const std::string& name, CatalogCounter counter, int64_t n) override {
    const char* column = counter == CatalogCounter::kDownloads     ? "downloads"
                         : counter == CatalogCounter::kPredictions ? "predictions"
                                                                   : "deployments";
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto up, db_.Prepare(std::string("UPDATE catalog_entries SET ") + column + " = " + column +
                                                " + ?, popularity = popularity + ? WHERE kind = ? AND name = ?"));
    up.Bind(1, n).Bind(2, n).Bind(3, kind).Bind(4, name);
    return up.Run();
  }

 private:
  Result<CatalogEntryRecord> GetEntryLocked(const std::string& kind, const std::string& name) {
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT " + std::string(kEntryColumns) +
                                               " FROM catalog_entries WHERE kind = ? AND name = ?"));
    q.Bind(1, kind).Bind(2, name);
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Missing("no " + kind + " named '" + name + "'", "name");
    return ReadEntry(q);
  }

  Result<std::vector<CatalogVersionRecord>> ReadVersions(SqliteStatement& q, bool with_files = true) {
    std::vector<CatalogVersionRecord> out;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return out;
      out.push_back(ReadVersion(q, with_files));
    }
  }

  std::mutex mu_;
  SqliteDb db_;
};

}  // namespace

Result<std::unique_ptr<CatalogStore>> OpenCatalogStore(const StoreOptions& options) {
  if (IsPostgresUrl(options.url)) return OpenPgCatalogStore(options);
  MLAAS_ASSIGN_OR_RETURN(std::string path, SqlitePath(options.url));
  MLAAS_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path));
  auto store = std::make_unique<SqliteCatalogStore>(std::move(db));
  MLAAS_RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<CatalogStore>(std::move(store));
}

}  // namespace mlaas::metadata
