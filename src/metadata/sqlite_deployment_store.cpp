// SQLite implementation of DeploymentStore: one connection under a mutex; each write a
// BEGIN IMMEDIATE transaction that checks the record's revision and bumps the database-wide one.
#include <mutex>

#include "common/text.h"
#include "common/time_util.h"
#include "metadata/deployment_store.h"
#include "metadata/pg_stores.h"
#include "metadata/sqlite_db.h"
#include "metadata/sqlite_schema.h"
#include "metadata/task_rows.h"

namespace mlaas::metadata {
namespace {

using nlohmann::json;

constexpr const char* kColumns = "name, owner, labels, gpus, versions, next_number, revision, updated_ms, incarnation";
constexpr int64_t kForgetHostsAfterMs = 3600'000;

DeploymentRecord ReadRecord(const SqliteStatement& s) {
  DeploymentRecord r;
  r.name = s.Text(0);
  r.owner = s.Text(1);
  r.labels = ParseLabels(s.Text(2));
  r.gpus = static_cast<int>(s.Int(3));
  r.versions = ParseDeploymentVersions(s.Text(4));
  r.next_number = s.Int(5);
  r.revision = s.Int(6);
  r.updated_ms = s.Int(7);
  r.incarnation = s.Text(8);
  return r;
}

Status Conflict(const std::string& name) {
  return Status(StatusCode::kFailedPrecondition, "deployment " + name + " was changed by another request meanwhile",
                "revision");
}

class SqliteDeploymentStore final : public DeploymentStore {
 public:
  SqliteDeploymentStore(SqliteDb db, std::function<int64_t()> now) : db_(std::move(db)), now_(std::move(now)) {}

  Status Migrate() {
    std::lock_guard lock(mu_);
    return MigrateSqlite(db_);
  }

  Result<std::vector<DeploymentRecord>> ListDeployments() override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kColumns + " FROM deployments ORDER BY name"));
    std::vector<DeploymentRecord> out;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return out;
      out.push_back(ReadRecord(q));
    }
  }

  Result<std::optional<DeploymentRecord>> GetDeployment(const std::string& name) override {
    std::lock_guard lock(mu_);
    return GetLocked(name);
  }

  Result<int64_t> PutDeployment(const DeploymentRecord& r) override {
    std::lock_guard lock(mu_);
    return InTransaction<int64_t>(db_, [&]() -> Result<int64_t> {
      MLAAS_ASSIGN_OR_RETURN(auto stored, GetLocked(r.name));
      if ((stored ? stored->revision : 0) != r.revision) return Conflict(r.name);
      MLAAS_ASSIGN_OR_RETURN(int64_t revision, Bump());
      MLAAS_ASSIGN_OR_RETURN(
          auto up, db_.Prepare("INSERT INTO deployments (name, owner, labels, gpus, versions, next_number, revision, "
                               "updated_ms, incarnation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                               "owner = excluded.owner, labels = excluded.labels, gpus = excluded.gpus, "
                               "incarnation = excluded.incarnation, "
                               "versions = excluded.versions, next_number = excluded.next_number, "
                               "revision = excluded.revision, updated_ms = excluded.updated_ms"));
      up.Bind(1, r.name).Bind(2, r.owner).Bind(3, LabelsJson(r.labels)).Bind(4, static_cast<int64_t>(r.gpus));
      up.Bind(5, DeploymentVersionsJson(r.versions)).Bind(6, r.next_number).Bind(7, revision).Bind(8, now_());
      up.Bind(9, r.incarnation);
      MLAAS_RETURN_IF_ERROR(up.Run());
      return revision;
    });
  }

  Status DeleteDeployment(const std::string& name, int64_t revision) override {
    std::lock_guard lock(mu_);
    return InTransaction<int>(db_, [&]() -> Result<int> {
             MLAAS_ASSIGN_OR_RETURN(auto stored, GetLocked(name));
             if (!stored) return NotFound("no deployment named '" + name + "'");
             if (stored->revision != revision) return Conflict(name);
             MLAAS_RETURN_IF_ERROR(Bump().status());
             MLAAS_ASSIGN_OR_RETURN(auto del, db_.Prepare("DELETE FROM deployments WHERE name = ?"));
             del.Bind(1, name);
             MLAAS_RETURN_IF_ERROR(del.Run());
             return 1;
           })
        .status();
  }

  Result<int64_t> DeploymentsRevision() override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT revision FROM deployments_revision WHERE id = 1"));
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    return row ? q.Int(0) : int64_t{0};
  }

  Status BeatHost(const ServingHost& h) override {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    MLAAS_ASSIGN_OR_RETURN(auto up, db_.Prepare("INSERT INTO serving_hosts (id, url, labels, gpus, replicas, heartbeat_ms) "
                                                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                                                "url = excluded.url, labels = excluded.labels, gpus = excluded.gpus, "
                                                "replicas = excluded.replicas, heartbeat_ms = excluded.heartbeat_ms"));
    up.Bind(1, h.id).Bind(2, h.url).Bind(3, LabelsJson(h.labels)).Bind(4, static_cast<int64_t>(h.gpus));
    up.Bind(5, DumpJson(h.replicas)).Bind(6, now);
    MLAAS_RETURN_IF_ERROR(up.Run());
    MLAAS_ASSIGN_OR_RETURN(auto old, db_.Prepare("DELETE FROM serving_hosts WHERE heartbeat_ms < ?"));
    old.Bind(1, now - kForgetHostsAfterMs);
    return old.Run();
  }

  Result<std::vector<ServingHost>> Hosts() override {
    std::lock_guard lock(mu_);
    const int64_t now = now_();
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT id, url, labels, gpus, replicas, heartbeat_ms FROM serving_hosts "
                                               "ORDER BY id"));
    std::vector<ServingHost> out;
    for (;;) {
      MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return out;
      ServingHost h;
      h.id = q.Text(0);
      h.url = q.Text(1);
      h.labels = ParseLabels(q.Text(2));
      h.gpus = static_cast<int>(q.Int(3));
      h.replicas = ParseStoredJson(q.Text(4), json::object());
      h.age_ms = std::max<int64_t>(0, now - q.Int(5));
      out.push_back(std::move(h));
    }
  }

  Status RemoveHost(const std::string& id) override {
    std::lock_guard lock(mu_);
    MLAAS_ASSIGN_OR_RETURN(auto del, db_.Prepare("DELETE FROM serving_hosts WHERE id = ?"));
    del.Bind(1, id);
    return del.Run();
  }

 private:
  Result<std::optional<DeploymentRecord>> GetLocked(const std::string& name) {
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare(std::string("SELECT ") + kColumns + " FROM deployments WHERE name = ?"));
    q.Bind(1, name);
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return std::optional<DeploymentRecord>();
    return std::optional<DeploymentRecord>(ReadRecord(q));
  }

  // The database-wide revision, bumped (in the caller's transaction).
  Result<int64_t> Bump() {
    MLAAS_RETURN_IF_ERROR(db_.Exec("UPDATE deployments_revision SET revision = revision + 1 WHERE id = 1"));
    MLAAS_ASSIGN_OR_RETURN(auto q, db_.Prepare("SELECT revision FROM deployments_revision WHERE id = 1"));
    MLAAS_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Internal("the deployments' revision row is missing");
    return q.Int(0);
  }

  std::mutex mu_;
  SqliteDb db_;
  std::function<int64_t()> now_;
};

}  // namespace

Result<std::unique_ptr<DeploymentStore>> OpenDeploymentStore(const StoreOptions& options) {
  if (IsPostgresUrl(options.url)) return OpenPgDeploymentStore(options);
  MLAAS_ASSIGN_OR_RETURN(std::string path, SqlitePath(options.url));
  MLAAS_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path));
  auto now = options.now_ms ? options.now_ms : std::function<int64_t()>(NowMs);
  auto store = std::make_unique<SqliteDeploymentStore>(std::move(db), std::move(now));
  MLAAS_RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<DeploymentStore>(std::move(store));
}

}  // namespace mlaas::metadata
