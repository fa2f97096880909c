// PostgreSQL implementation of DeploymentStore (issue 24), over the retrying pool. A write locks
// the database-wide revision row first (UPDATE ... RETURNING), so writes from several API
// servers happen one at a time, then checks the record's revision. Each write carries a token: a
// write retried after a lost reply finds its own earlier success instead of a conflict.
// Heartbeats and ages use the database server's clock.
#include <functional>
#include <memory>
#include <utility>

#include "common/text.h"
#include "metadata/deployment_store.h"
#include "metadata/pg_db.h"
#include "metadata/pg_schema.h"
#include "metadata/pg_stores.h"
#include "metadata/task_rows.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;

constexpr const char* kColumns = "name, owner, labels, gpus, versions, next_number, revision, updated_ms, incarnation";
constexpr const char* kDbNow = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

std::string Num(int64_t v) { return std::to_string(v); }

DeploymentRecord ReadRecord(const PgResult& r, int row) {
  DeploymentRecord d;
  d.name = r.Text(row, 0);
  d.owner = r.Text(row, 1);
  d.labels = ParseLabels(r.Text(row, 2));
  d.gpus = static_cast<int>(r.Int(row, 3));
  d.versions = ParseDeploymentVersions(r.Text(row, 4));
  d.next_number = r.Int(row, 5);
  d.revision = r.Int(row, 6);
  d.updated_ms = r.Int(row, 7);
  d.incarnation = r.Text(row, 8);
  return d;
}

Status Conflict(const std::string& name) {
  return Status(StatusCode::kFailedPrecondition, "deployment " + name + " was changed by another request meanwhile",
                "revision");
}

// The channel every write notifies, inside its transaction: listeners hear of it at its commit.
constexpr const char* kChannel = "mlaas_deployments";

class PgDeploymentStore final : public DeploymentStore {
 public:
  explicit PgDeploymentStore(std::string url) : url_(url), pool_(std::move(url)) {}

  std::unique_ptr<ChangeFeed> Subscribe(std::function<void()> on_change) override {
    return std::make_unique<PgListener>(url_, kChannel,
                                        [on_change = std::move(on_change)](const std::vector<std::string>&) { on_change(); });
  }

  Result<std::vector<DeploymentRecord>> ListDeployments() override {
    return pool_.Run<std::vector<DeploymentRecord>>([&](PgDb& db) -> Result<std::vector<DeploymentRecord>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(std::string("SELECT ") + kColumns + " FROM deployments ORDER BY name"));
      std::vector<DeploymentRecord> out;
      for (int i = 0; i < r.rows(); ++i) out.push_back(ReadRecord(r, i));
      return out;
    });
  }

  Result<std::optional<DeploymentRecord>> GetDeployment(const std::string& name) override {
    return pool_.Run<std::optional<DeploymentRecord>>([&](PgDb& db) -> Result<std::optional<DeploymentRecord>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(std::string("SELECT ") + kColumns + " FROM deployments WHERE name = $1",
                                                  {name}));
      if (r.rows() == 0) return std::optional<DeploymentRecord>();
      return std::optional<DeploymentRecord>(ReadRecord(r, 0));
    });
  }

  Result<int64_t> PutDeployment(const DeploymentRecord& d) override {
    const std::string token = NewUuid();
    bool retried = false;
    return pool_.Run<int64_t>([&](PgDb& db) -> Result<int64_t> {
      return InTransaction<int64_t>(db, [&](PgDb&) -> Result<int64_t> {
        MLAAS_ASSIGN_OR_RETURN(PgResult bumped, db.Query("UPDATE deployments_revision SET revision = revision + 1 "
                                                         "WHERE id = 1 RETURNING revision"));
        if (bumped.rows() == 0) return Internal("the deployments' revision row is missing");
        const int64_t revision = bumped.Int(0, 0);
        MLAAS_ASSIGN_OR_RETURN(PgResult stored, db.Query("SELECT revision, write_token FROM deployments WHERE name = $1 "
                                                         "FOR UPDATE",
                                                         {d.name}));
        const int64_t current = stored.rows() > 0 ? stored.Int(0, 0) : 0;
        if (std::exchange(retried, true) && stored.rows() > 0 && stored.Text(0, 1) == token) return current;
        if (current != d.revision) return Conflict(d.name);
        MLAAS_RETURN_IF_ERROR(
            db.Query(std::string("INSERT INTO deployments (name, owner, labels, gpus, versions, next_number, revision, "
                                 "write_token, incarnation, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, ") +
                         kDbNow +
                         ") ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, labels = excluded.labels, "
                         "incarnation = excluded.incarnation, "
                         "gpus = excluded.gpus, versions = excluded.versions, next_number = excluded.next_number, "
                         "revision = excluded.revision, write_token = excluded.write_token, "
                         "updated_ms = excluded.updated_ms",
                     {d.name, d.owner, LabelsJson(d.labels), Num(d.gpus), DeploymentVersionsJson(d.versions),
                      Num(d.next_number), Num(revision), token, d.incarnation})
                .status());
        MLAAS_RETURN_IF_ERROR(Notify(db));
        return revision;
      });
    });
  }

  Status DeleteDeployment(const std::string& name, int64_t revision) override {
    bool retried = false;
    return pool_.Run<int>([&](PgDb& db) -> Result<int> {
             const bool again = std::exchange(retried, true);
             return InTransaction<int>(db, [&](PgDb&) -> Result<int> {
               MLAAS_RETURN_IF_ERROR(db.Query("UPDATE deployments_revision SET revision = revision + 1 WHERE id = 1").status());
               MLAAS_ASSIGN_OR_RETURN(PgResult stored,
                                      db.Query("SELECT revision FROM deployments WHERE name = $1 FOR UPDATE", {name}));
               if (stored.rows() == 0) {
                 if (again) return 1;  // the first try deleted it (its reply lost)
                 return NotFound("no deployment named '" + name + "'");
               }
               if (stored.Int(0, 0) != revision) return Conflict(name);
               MLAAS_RETURN_IF_ERROR(db.Query("DELETE FROM deployments WHERE name = $1", {name}).status());
               MLAAS_RETURN_IF_ERROR(Notify(db));
               return 1;
             });
           })
        .status();
  }

  Result<int64_t> DeploymentsRevision() override {
    return pool_.Run<int64_t>([&](PgDb& db) -> Result<int64_t> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query("SELECT revision FROM deployments_revision WHERE id = 1"));
      return r.rows() > 0 ? r.Int(0, 0) : int64_t{0};
    });
  }

  Status BeatHost(const ServingHost& h) override {
    return pool_.RunStatus([&](PgDb& db) -> Status {
      MLAAS_RETURN_IF_ERROR(
          db.Query(std::string("INSERT INTO serving_hosts (id, url, labels, gpus, replicas, heartbeat_ms) VALUES "
                               "($1, $2, $3, $4, $5, ") +
                       kDbNow +
                       ") ON CONFLICT (id) DO UPDATE SET url = excluded.url, labels = excluded.labels, "
                       "gpus = excluded.gpus, replicas = excluded.replicas, heartbeat_ms = excluded.heartbeat_ms",
                   {h.id, h.url, LabelsJson(h.labels), Num(h.gpus), DumpJson(h.replicas)})
              .status());
      return db.Query(std::string("DELETE FROM serving_hosts WHERE heartbeat_ms < ") + kDbNow + " - 3600000").status();
    });
  }

  Result<std::vector<ServingHost>> Hosts() override {
    return pool_.Run<std::vector<ServingHost>>([&](PgDb& db) -> Result<std::vector<ServingHost>> {
      MLAAS_ASSIGN_OR_RETURN(PgResult r, db.Query(std::string("SELECT id, url, labels, gpus, replicas, GREATEST(0, ") +
                                                  kDbNow + " - heartbeat_ms) FROM serving_hosts ORDER BY id"));
      std::vector<ServingHost> out;
      for (int i = 0; i < r.rows(); ++i) {
        ServingHost h;
        h.id = r.Text(i, 0);
        h.url = r.Text(i, 1);
        h.labels = ParseLabels(r.Text(i, 2));
        h.gpus = static_cast<int>(r.Int(i, 3));
        h.replicas = ParseStoredJson(r.Text(i, 4), json::object());
        h.age_ms = r.Int(i, 5);
        out.push_back(std::move(h));
      }
      return out;
    });
  }

  Status RemoveHost(const std::string& id) override {
    return pool_.RunStatus(
        [&](PgDb& db) -> Status { return db.Query("DELETE FROM serving_hosts WHERE id = $1", {id}).status(); });
  }

 private:
  // Within a write's transaction: delivered to listeners (Subscribe) when it commits, not at all
  // when it rolls back.
  static Status Notify(PgDb& db) {
    return db.Query("SELECT pg_notify($1, '')", {std::string(kChannel)}).status();
  }

  const std::string url_;
  PgPool pool_;
};

}  // namespace

Result<std::unique_ptr<DeploymentStore>> OpenPgDeploymentStore(const StoreOptions& options) {
  MLAAS_ASSIGN_OR_RETURN(PgDb db, PgDb::Connect(options.url));
  MLAAS_RETURN_IF_ERROR(MigratePg(db));
  return std::unique_ptr<DeploymentStore>(std::make_unique<PgDeploymentStore>(options.url));
}

}  // namespace mlaas::metadata
