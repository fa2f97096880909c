// PostgreSQL implementation of CatalogStore (issue 24), over the retrying pool. Version
// reservations, alias moves and deletions run in transactions that first lock the entry's row
// (SELECT ... FOR UPDATE), so API servers on several hosts number versions and move aliases
// one at a time per entry. A call retried after a lost reply checks for its own earlier
// success where a second run would say otherwise (create, complete, delete); a retried
// reservation leaves an unused number for the sweeper, a retried alias move or counter may
// count twice.
#include <utility>

#include "common/text.h"
#include "metadata/catalog_rows.h"
#include "metadata/catalog_store.h"
#include "metadata/pg_db.h"
#include "metadata/pg_schema.h"
#include "metadata/pg_stores.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;

struct Row {
  const PgResult& r;
  int row;
  std::string Text(int col) const { return r.IsNull(row, col) ? "" : r.Text(row, col); }
  int64_t Int(int col) const { return r.IsNull(row, col) ? 0 : r.Int(row, col); }
};

std::string Num(int64_t v) { return std::to_string(v); }
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// `sql` with each `?` (outside quotes) numbered $1, $2, ...
std::string Numbered(const std::string& sql) {
  std::string out;
  int n = 0;
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (c == '?' && !quoted) {
      out += "$" + std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

class PgCatalogStore final : public CatalogStore {
 public:
  explicit PgCatalogStore(std::string url) : pool_(std::move(url)) {}

  Status CreateEntry(const CatalogEntryRecord& e) override {
    bool retried = false;
    Result<int> inserted = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      if (std::exchange(retried, true)) {
        // The first try may have committed (its reply lost): the same owner and time are ours.
        MLAAS_ASSIGN_OR_RETURN(PgResult mine, db.Query("SELECT 1 FROM catalog_entries WHERE kind = $1 AND name = $2 AND "
                                                       "owner = $3 AND created_ms = $4",
                                                       {e.kind, e.name, e.owner, Num(e.created_ms)}));
        if (mine.rows() > 0) return 1;
      }
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r,
          db.Query("INSERT INTO catalog_entries (kind, name, owner, visibility, description, card, objective, model_type, "
                   "license, labels, tags, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                   "$12, $13) ON CONFLICT (kind, name) DO NOTHING RETURNING name",
                   {e.kind, e.name, e.owner, e.visibility, e.description, e.card, e.objective, e.model_type, e.license,
                    json(e.labels).dump(), json(e.tags).dump(), Num(e.created_ms), Num(e.updated_ms)}));
      return r.rows();
    });
    if (!inserted.has_value()) return inserted.error();
    if (*inserted == 0)
      return Status(StatusCode::kAlreadyExists, "a " + e.kind + " named '" + e.name + "' is registered", "name");
    return Status::Ok();
  }

  Result<CatalogEntryRecord> GetEntry(const std::string& kind, const std::string& name) override {
    return pool_.Run<CatalogEntryRecord>([&](PgDb& db) { return GetEntryOn(db, kind, name, false); });
  }

  Status UpdateEntry(const CatalogEntryRecord& e) override {
    Result<int> changed = pool_.Run<int>([&](PgDb& db) -> Result<int> {
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r, db.Query("UPDATE catalog_entries SET description = $1, card = $2, visibility = $3, objective = $4, "
                               "model_type = $5, license = $6, labels = $7, tags = $8, updated_ms = $9 "
                               "WHERE kind = $10 AND name = $11 RETURNING name",
                               {e.description, e.card, e.visibility, e.objective, e.model_type, e.license,
                                json(e.labels).dump(), json(e.tags).dump(), Num(e.updated_ms), e.kind, e.name}));
      return r.rows();
    });
    if (!changed.has_value()) return changed.error();
    return *changed == 0 ? NotFound("no " + e.kind + " named '" + e.name + "'") : Status::Ok();
  }

  Status DeleteEntry(const std::string& kind, const std::string& name) override {
    bool retried = false;
    return pool_.RunStatus([&](PgDb& conn) {
      return InTransaction<bool>(conn, [&](PgDb& db) -> Result<bool> {
               auto entry = GetEntryOn(db, kind, name, /*lock=*/true);
               if (!entry.has_value() && std::exchange(retried, true) && entry.error().code() == StatusCode::kNotFound) {
                 // A retry after a lost reply: gone, and retired, means the first try deleted it.
                 MLAAS_ASSIGN_OR_RETURN(PgResult retired, db.Query("SELECT 1 FROM catalog_retired WHERE kind = $1 AND "
                                                                   "name = $2",
                                                                   {kind, name}));
                 if (retired.rows() > 0) return true;
               }
               retried = true;
               MLAAS_RETURN_IF_ERROR(entry.status());
               // Version numbers are never reused, even by a new entry of the same name.
               MLAAS_RETURN_IF_ERROR(
                   db.Query("INSERT INTO catalog_retired (kind, name, last_version) "
                            "SELECT $1, $2, COALESCE(MAX(version), 0) FROM catalog_versions WHERE kind = $1 AND name = $2 "
                            "ON CONFLICT (kind, name) DO UPDATE SET last_version = "
                            "GREATEST(catalog_retired.last_version, excluded.last_version)",
                            {kind, name})
                       .status());
               MLAAS_RETURN_IF_ERROR(
                   db.Query("DELETE FROM catalog_entries WHERE kind = $1 AND name = $2", {kind, name}).status());
               return true;
             })
          .status();
    });
  }

  Result<CatalogPage> ListEntries(const CatalogQuery& q) override {
    MLAAS_ASSIGN_OR_RETURN(CatalogListQuery list, BuildCatalogListQuery(q, /*postgres=*/true));
    std::vector<PgParam> params;
    for (const auto& v : list.values) {
      if (const auto* n = std::get_if<int64_t>(&v)) {
        params.emplace_back(Num(*n));
      } else {
        params.emplace_back(std::get<std::string>(v));
      }
    }
    const std::string sql = Numbered(list.sql);
    return pool_.Run<CatalogPage>([&](PgDb& db) -> Result<CatalogPage> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(sql, params));
      CatalogPage page;
      int64_t last_key = 0;
      for (int i = 0; i < r.rows(); ++i) {
        if (page.entries.size() == list.limit) {
          page.next_cursor = list.NextCursor(page.entries.back(), last_key);
          break;
        }
        page.entries.push_back(ReadEntry(Row{r, i}));
        last_key = Row{r, i}.Int(list.KeyColumn());
      }
      return page;
    });
  }

  Result<int64_t> ReserveVersion(const std::string& kind, const std::string& name, const std::string& created_by,
                                 int64_t now_ms) override {
    return pool_.Run<int64_t>([&](PgDb& conn) {
      return InTransaction<int64_t>(conn, [&](PgDb& db) -> Result<int64_t> {
        MLAAS_RETURN_IF_ERROR(GetEntryOn(db, kind, name, /*lock=*/true).status());
        MLAAS_ASSIGN_OR_RETURN(
            PgResult r, db.Query("SELECT GREATEST((SELECT COALESCE(MAX(version), 0) FROM catalog_versions WHERE kind = $1 "
                                 "AND name = $2), (SELECT COALESCE(MAX(last_version), 0) FROM catalog_retired WHERE "
                                 "kind = $1 AND name = $2))",
                                 {kind, name}));
        const int64_t next = r.Int(0, 0) + 1;
        MLAAS_RETURN_IF_ERROR(db.Query("INSERT INTO catalog_versions (kind, name, version, ready, created_by, created_ms) "
                                       "VALUES ($1, $2, $3, 0, $4, $5)",
                                       {kind, name, Num(next), created_by, Num(now_ms)})
                                  .status());
        return next;
      });
    });
  }

  Status CompleteVersion(const CatalogVersionRecord& v) override {
    const std::string files = FilesJson(v);
    bool retried = false;
    return pool_.RunStatus([&](PgDb& conn) {
      return InTransaction<bool>(conn, [&](PgDb& db) -> Result<bool> {
               if (std::exchange(retried, true)) {
                 // The first try may have committed (its reply lost): the version is ready with
                 // this digest. (Saying NotFound here would make the caller delete its files.)
                 MLAAS_ASSIGN_OR_RETURN(PgResult done, db.Query("SELECT 1 FROM catalog_versions WHERE kind = $1 AND "
                                                                "name = $2 AND version = $3 AND ready = 1 AND digest = $4",
                                                                {v.kind, v.name, Num(v.version), v.digest}));
                 if (done.rows() > 0) return true;
               }
               MLAAS_ASSIGN_OR_RETURN(
                   PgResult r, db.Query("UPDATE catalog_versions SET ready = 1, digest = $1, files = $2, size = $3, "
                                        "facts = $4, lineage = $5 WHERE kind = $6 AND name = $7 AND version = $8 AND "
                                        "ready = 0 RETURNING version",
                                        {v.digest, files, Num(static_cast<int64_t>(v.size)), Dump(v.facts),
                                         Dump(v.lineage), v.kind, v.name, Num(v.version)}));
               if (r.rows() == 0)
                 return NotFound("no reserved version " + std::to_string(v.version) + " of " + v.kind + " '" + v.name +
                                 "'");
               MLAAS_RETURN_IF_ERROR(db.Query("UPDATE catalog_entries SET latest_version = GREATEST(latest_version, $1), "
                                              "updated_ms = $2 WHERE kind = $3 AND name = $4",
                                              {Num(v.version), Num(v.created_ms), v.kind, v.name})
                                         .status());
               return true;
             })
          .status();
    });
  }

  Status DropVersion(const std::string& kind, const std::string& name, int64_t version) override {
    return pool_.RunStatus([&](PgDb& db) {
      return db.Query("DELETE FROM catalog_versions WHERE kind = $1 AND name = $2 AND version = $3 AND ready = 0",
                      {kind, name, Num(version)})
          .status();
    });
  }

  Result<std::vector<CatalogVersionRecord>> StaleReservations(int64_t before_ms) override {
    return Versions("SELECT " + std::string(kVersionColumns) + " FROM catalog_versions WHERE ready = 0 AND created_ms < $1",
                    {Num(before_ms)}, true);
  }

  Result<CatalogVersionRecord> GetVersion(const std::string& kind, const std::string& name, int64_t version) override {
    MLAAS_ASSIGN_OR_RETURN(auto found, Versions("SELECT " + std::string(kVersionColumns) +
                                                    " FROM catalog_versions WHERE kind = $1 AND name = $2 AND "
                                                    "version = $3 AND ready = 1",
                                                {kind, name, Num(version)}, true));
    if (found.empty()) return Missing(kind + " '" + name + "' has no version " + std::to_string(version), "version");
    return std::move(found.front());
  }

  Result<std::vector<CatalogVersionRecord>> ListVersions(const std::string& kind, const std::string& name) override {
    return Versions("SELECT " + VersionListColumns(/*postgres=*/true) +
                        " FROM catalog_versions WHERE kind = $1 AND name = $2 AND ready = 1 ORDER BY version DESC",
                    {kind, name}, false);
  }

  Result<CatalogAliasEvent> MoveAlias(const std::string& kind, const std::string& name, const std::string& alias,
                                      int64_t version, const std::string& by, int64_t now_ms) override {
    return pool_.Run<CatalogAliasEvent>([&](PgDb& conn) {
      return InTransaction<CatalogAliasEvent>(conn, [&](PgDb& db) -> Result<CatalogAliasEvent> {
        // The entry's row lock orders concurrent moves of its aliases.
        MLAAS_RETURN_IF_ERROR(GetEntryOn(db, kind, name, /*lock=*/true).status());
        MLAAS_ASSIGN_OR_RETURN(
            PgResult cur, db.Query("SELECT version FROM catalog_aliases WHERE kind = $1 AND name = $2 AND alias = $3",
                                   {kind, name, alias}));
        const bool has = cur.rows() > 0;
        CatalogAliasEvent event{0, alias, has ? cur.Int(0, 0) : 0, version, by, now_ms};
        if (version == 0) {
          if (!has) return Missing(kind + " '" + name + "' has no alias '" + alias + "'", "alias");
          MLAAS_RETURN_IF_ERROR(db.Query("DELETE FROM catalog_aliases WHERE kind = $1 AND name = $2 AND alias = $3",
                                         {kind, name, alias})
                                    .status());
        } else {
          MLAAS_ASSIGN_OR_RETURN(
              PgResult exists, db.Query("SELECT 1 FROM catalog_versions WHERE kind = $1 AND name = $2 AND version = $3 "
                                        "AND ready = 1",
                                        {kind, name, Num(version)}));
          if (exists.rows() == 0) return Missing(kind + " '" + name + "' has no version " + std::to_string(version), "version");
          MLAAS_RETURN_IF_ERROR(
              db.Query("INSERT INTO catalog_aliases (kind, name, alias, version, updated_by, updated_ms) VALUES ($1, $2, "
                       "$3, $4, $5, $6) ON CONFLICT (kind, name, alias) DO UPDATE SET version = excluded.version, "
                       "updated_by = excluded.updated_by, updated_ms = excluded.updated_ms",
                       {kind, name, alias, Num(version), by, Num(now_ms)})
                  .status());
        }
        MLAAS_ASSIGN_OR_RETURN(
            PgResult log, db.Query("INSERT INTO catalog_alias_events (kind, name, alias, from_version, to_version, by_user, "
                                   "time_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                                   {kind, name, alias, Num(event.from_version), Num(version), by, Num(now_ms)}));
        if (log.rows() > 0) event.seq = log.Int(0, 0);
        return event;
      });
    });
  }

  Result<std::vector<CatalogAliasRecord>> ListAliases(const std::string& kind, const std::string& name) override {
    return pool_.Run<std::vector<CatalogAliasRecord>>([&](PgDb& db) -> Result<std::vector<CatalogAliasRecord>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT alias, version, updated_by, updated_ms FROM catalog_aliases "
                                                  "WHERE kind = $1 AND name = $2 ORDER BY alias COLLATE \"C\"",
                                                  {kind, name}));
      std::vector<CatalogAliasRecord> out;
      for (int i = 0; i < r.rows(); ++i) out.push_back({r.Text(i, 0), r.Int(i, 1), r.Text(i, 2), r.Int(i, 3)});
      return out;
    });
  }

  Result<std::vector<CatalogAliasEvent>> AliasEvents(const std::string& kind, const std::string& name, int64_t after_seq,
                                                     size_t limit) override {
    return pool_.Run<std::vector<CatalogAliasEvent>>([&](PgDb& db) -> Result<std::vector<CatalogAliasEvent>> {
      MLAAS_ASSIGN_OR_RETURN(
          PgResult r, db.Query("SELECT seq, alias, from_version, to_version, by_user, time_ms FROM catalog_alias_events "
                               "WHERE kind = $1 AND name = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                               {kind, name, Num(after_seq), Num(static_cast<int64_t>(limit))}));
      std::vector<CatalogAliasEvent> out;
      for (int i = 0; i < r.rows(); ++i)
        out.push_back({r.Int(i, 0), r.Text(i, 1), r.Int(i, 2), r.Int(i, 3), r.Text(i, 4), r.Int(i, 5)});
      return out;
    });
  }

  Status Count(const std::string& kind, const std::string& name, CatalogCounter counter, int64_t n) override {
    const char* column = counter == CatalogCounter::kDownloads     ? "downloads"
                         : counter == CatalogCounter::kPredictions ? "predictions"
                                                                   : "deployments";
    return pool_.RunStatus([&](PgDb& db) {
      return db.Query(std::string("UPDATE catalog_entries SET ") + column + " = " + column +
                          " + $1, popularity = popularity + $1 WHERE kind = $2 AND name = $3",
                      {Num(n), kind, name})
          .status();
    });
  }

 private:
  static Result<CatalogEntryRecord> GetEntryOn(PgDb& db, const std::string& kind, const std::string& name, bool lock) {
    MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT " + std::string(kEntryColumns) +
                                                    " FROM catalog_entries WHERE kind = $1 AND name = $2" +
                                                    (lock ? " FOR UPDATE" : ""),
                                                {kind, name}));
    if (r.rows() == 0) return Missing("no " + kind + " named '" + name + "'", "name");
    return ReadEntry(Row{r, 0});
  }

  Result<std::vector<CatalogVersionRecord>> Versions(const std::string& sql, const std::vector<PgParam>& params,
                                                     bool with_files) {
    return pool_.Run<std::vector<CatalogVersionRecord>>([&](PgDb& db) -> Result<std::vector<CatalogVersionRecord>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(sql, params));
      std::vector<CatalogVersionRecord> out;
      for (int i = 0; i < r.rows(); ++i) out.push_back(ReadVersion(Row{r, i}, with_files));
      return out;
    });
  }

  PgPool pool_;
};

}  // namespace

Result<std::unique_ptr<CatalogStore>> OpenPgCatalogStore(const StoreOptions& options) {
  MLAAS_ASSIGN_OR_RETURN(PgDb db, PgDb::Connect(options.url));
  MLAAS_RETURN_IF_ERROR(MigratePg(db));
  return std::unique_ptr<CatalogStore>(std::make_unique<PgCatalogStore>(options.url));
}

}  // namespace mlaas::metadata
