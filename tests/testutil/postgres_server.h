// A private PostgreSQL 15 cluster (Debian's postgresql-15) in a temporary directory, listening
// on a free loopback port for as long as this object lives: initdb (as the postgres user when
// the tests run as root: initdb refuses root), pg_ctl start -w, pg_ctl stop -m fast at the end.
// Trust authentication on loopback, the superuser "mlaas", fsync off (a test server).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/result.h"
#include "common/status.h"
#include "testutil/free_port.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {

inline const std::filesystem::path kPgBin = "/usr/lib/postgresql/15/bin";

class PostgresServer {
 public:
  PostgresServer() = default;
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer() {
    if (started_) (void)Stop();
  }

  Status Start() {
    if (!std::filesystem::exists(kPgBin / "initdb"))
      return FailedPrecondition("PostgreSQL 15 is not installed (scripts/install-deps.sh installs postgresql-15)");
    port_ = FreeLoopbackPort();
    const std::string data = (dir_.path() / "data").string();
    if (::geteuid() == 0) {  // the cluster's files belong to the postgres user, who runs it
      std::filesystem::permissions(dir_.path(), std::filesystem::perms::all);
      if (Shell("chown postgres:postgres " + Quote(dir_.path().string())) != 0) return Internal("chown failed");
    }
    if (Shell(Bin("initdb") + " -D " + Quote(data) + " -U mlaas -A trust -E UTF8 --no-sync > " +
              Quote((dir_.path() / "initdb.log").string()) + " 2>&1") != 0)
      return Internal("initdb failed: see " + (dir_.path() / "initdb.log").string());
    started_ = true;
    return Resume();
  }

  // pg_ctl start -w (after Start, or again after Stop: the same data, the same port).
  Status Resume() {
    const std::string data = (dir_.path() / "data").string();
    const std::string options = "-p " + std::to_string(port_) + " -k " + dir_.path().string() +
                                " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off";
    if (Shell(Bin("pg_ctl") + " -D " + Quote(data) + " -o " + Quote(options) + " -l " +
              Quote((dir_.path() / "server.log").string()) + " -w -t 60 start > /dev/null 2>&1") != 0)
      return Internal("pg_ctl start failed: see " + (dir_.path() / "server.log").string());
    return Status::Ok();
  }

  Status Stop() {
    const std::string data = (dir_.path() / "data").string();
    if (Shell(Bin("pg_ctl") + " -D " + Quote(data) + " -m fast -w stop > /dev/null 2>&1") != 0)
      return Internal("pg_ctl stop failed");
    return Status::Ok();
  }

  // postgresql://mlaas@127.0.0.1:PORT/postgres
  std::string url() const { return "postgresql://mlaas@127.0.0.1:" + std::to_string(port_) + "/postgres"; }
  // The URL of a new, empty database `name` on this server (dropped first if it exists).
  Result<std::string> FreshDatabase(const std::string& name) const {
    const std::string psql = Bin("psql") + " -q -v ON_ERROR_STOP=1 -d " + Quote(url()) + " -c ";
    if (Shell(psql + Quote("DROP DATABASE IF EXISTS " + name) + " > /dev/null 2>&1") != 0 ||
        Shell(psql + Quote("CREATE DATABASE " + name) + " > /dev/null 2>&1") != 0)
      return Internal("could not create database " + name);
    return url().substr(0, url().rfind('/') + 1) + name;
  }
  int port() const { return port_; }

 private:
  static std::string Quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  static std::string Bin(const std::string& tool) {
    const std::string path = Quote((kPgBin / tool).string());
    return ::geteuid() == 0 ? "runuser -u postgres -- " + path : path;
  }
  static int Shell(const std::string& command) { return std::system(command.c_str()); }

  TempDir dir_;
  int port_ = 0;
  bool started_ = false;
};

// One server for the whole test process, started on first use and stopped at exit; tests take
// a fresh database each (FreshDatabase) so that they share nothing else.
inline Result<PostgresServer*> SharedPostgres() {
  static PostgresServer server;
  static const Status started = server.Start();
  if (!started.ok()) return started;
  return &server;
}

// A new, empty database on the shared server.
inline Result<std::string> FreshTestDatabase() {
  static int databases = 0;
  MLAAS_ASSIGN_OR_RETURN(PostgresServer * server, SharedPostgres());
  return server->FreshDatabase("test" + std::to_string(++databases));
}

}  // namespace mlaas::testing
