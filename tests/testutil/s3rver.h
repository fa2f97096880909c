// s3rver (npm, tests/storage/s3: a real S3 protocol server that does not check signatures) on a
// free loopback port, with the given buckets, for as long as this object lives.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "testutil/free_port.h"
#include "storage/s3_object_store.h"

extern char** environ;

namespace mlaas::testing {

inline std::filesystem::path S3rverScript() {
  return std::filesystem::path(MLAAS_SOURCE_DIR) / "tests/storage/s3/node_modules/s3rver/bin/s3rver.js";
}
inline bool HaveS3rver() { return std::filesystem::exists(S3rverScript()); }

class S3rver {
 public:
  S3rver() = default;
  S3rver(const S3rver&) = delete;
  S3rver& operator=(const S3rver&) = delete;
  ~S3rver() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Starts it with its data in `dir`/s3 and waits until it lists the first bucket.
  Status Start(const std::filesystem::path& dir, const std::vector<std::string>& buckets) {
    const int port = FreeLoopbackPort();
    // s3rver's continuation tokens use a cipher Node 20's OpenSSL keeps behind the legacy provider.
    args_ = {"/usr/bin/node", "--openssl-legacy-provider", S3rverScript().string(), "-d",
             (dir / "s3").string(), "-a", "127.0.0.1", "-p", std::to_string(port), "-s"};
    for (const auto& b : buckets) args_.insert(args_.end(), {"--configure-bucket", b});
    probe_bucket_ = buckets.front();
    options_.endpoint = "http://127.0.0.1:" + std::to_string(port);
    options_.access_key = options_.secret_key = "S3RVER";
    options_.retries = 0;
    return Resume();
  }

  // Stops the server (its objects stay in its directory); Resume starts it again on the same
  // port: an S3 outage.
  Status Stop() {
    if (pid_ <= 0) return FailedPrecondition("s3rver is not running");
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
    return Status::Ok();
  }
  Status Resume() {
    std::vector<char*> argv;
    for (auto& arg : args_) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return Internal("cannot start s3rver");
    storage::S3ObjectStore probe(options_);
    for (int i = 0; i < 200; ++i) {
      storage::ListOptions l;
      l.prefix = probe_bucket_ + "/";
      if (probe.List(l).has_value()) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Internal("s3rver did not start");
  }

  // Endpoint and credentials for a client of it.
  const storage::S3Options& options() const { return options_; }
  const std::string& endpoint() const { return options_.endpoint; }

 private:
  pid_t pid_ = 0;
  std::vector<std::string> args_;
  std::string probe_bucket_;
  storage::S3Options options_;
};

}  // namespace mlaas::testing
