// Runs the real `mlaas serve` binary for end-to-end tests: a fresh port, a given data
// directory, its log captured to a file, and ways to stop it gently or kill -9 it.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "client/api_client.h"
#include "common/status.h"
#include "testutil/wait.h"

extern char** environ;

namespace mlaas::testing {

inline std::string MlaasBinary() { return MLAAS_BINARY; }

// Sends `sig` to process `pid` and reaps it; its wait status (-1 when there is no process).
// `pid` becomes -1.
inline int KillAndReap(pid_t& pid, int sig) {
  if (pid <= 0) return -1;
  ::kill(pid, sig);
  int status = 0;
  waitpid(pid, &status, 0);
  pid = -1;
  return status;
}

class ServerProcess {
 public:
  ServerProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args = {})
      : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)) {}
  ~ServerProcess() {
    if (pid_ > 0) Kill(SIGKILL);
  }

  // Starts the server and waits until /healthz answers.
  Status Start() {
    std::filesystem::create_directories(data_dir_);
    port_file_ = data_dir_.string() + ".port";
    log_file_ = data_dir_.string() + ".log";
    std::filesystem::remove(port_file_);
    std::vector<std::string> args = {MlaasBinary(),  "serve",          "--port", "0",
                                     "--port-file", port_file_,        "--data-dir",
                                     data_dir_.string(), "--log-level", "debug"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return Internal("cannot start " + args[0]);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Internal("server exited during start; log:\n" + Log());
      }
      std::ifstream in(port_file_);
      if (in >> port_ && port_ > 0) {
        auto c = client::ApiClient::Create(url(), 5);
        if (c.has_value() && (*c)->Get("/healthz").has_value()) return Status::Ok();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Internal("server did not become healthy; log:\n" + Log());
  }

  // Sends `sig` and reaps the process; returns its wait status.
  int Kill(int sig) { return KillAndReap(pid_, sig); }

  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    return waitpid(pid_, &status, WNOHANG) == 0;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::unique_ptr<client::ApiClient> Client(int timeout_seconds = 30) const {
    return std::move(client::ApiClient::Create(url(), timeout_seconds)).value();
  }
  std::string Log() const {
    std::ifstream in(log_file_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  const std::filesystem::path& data_dir() const { return data_dir_; }

 private:
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_args_;
  std::string port_file_, log_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Runs `mlaas worker` (tasks only, no HTTP) with its log captured to a file.
class WorkerProcess {
 public:
  // Its log goes to <data_dir>.<log_name>.log (several workers may share a data directory).
  WorkerProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args = {}, std::string log_name = "worker")
      : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)), log_name_(std::move(log_name)) {}
  ~WorkerProcess() {
    if (pid_ > 0) Kill(SIGKILL);
  }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Spawns the worker (it inherits this process's environment).
  Status Start() {
    std::filesystem::create_directories(data_dir_);
    log_file_ = data_dir_.string() + "." + log_name_ + ".log";
    std::vector<std::string> args = {MlaasBinary(), "worker", "--data-dir", data_dir_.string()};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return Internal("cannot spawn mlaas worker");
    }
    return Status::Ok();
  }

  // Sends `sig` and waits for the exit; the wait status.
  int Kill(int sig) { return KillAndReap(pid_, sig); }
  // Waits up to `limit` for the worker to exit by itself; its wait status, or -1 on timeout.
  int WaitExit(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  pid_t pid() const { return pid_; }
  std::string Log() const {
    std::ifstream in(log_file_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_args_;
  std::string log_name_;
  std::string log_file_;
  pid_t pid_ = -1;
};

// Polls task `id` until it succeeds, fails or is cancelled (a failed expectation after
// `limit`) and returns its last view.
inline nlohmann::json WaitForTaskEnd(client::ApiClient& c, const std::string& id,
                                     std::chrono::seconds limit = std::chrono::seconds(120)) {
  nlohmann::json t;
  bool ended = WaitFor(
      [&] {
        auto r = c.Get("/api/v1/tasks/" + id);
        if (!r.has_value()) return false;
        t = *r;
        const std::string s = t["task_status"];
        return s == "succeeded" || s == "failed" || s == "cancelled";
      },
      limit);
  EXPECT_TRUE(ended) << t.dump();
  return t;
}

// Writes a CSV dataset of `rows` rows straight into the server's local storage.
inline void WriteBigCsv(const std::filesystem::path& file, int64_t rows) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out << "id,text,label\n";
  static const char* kLabels[] = {"BA", "LNF", "MI", "[NoSite]"};
  std::string line;
  for (int64_t i = 0; i < rows; ++i) {
    line = std::to_string(i) + ",\"INFN sezione di Bari, Via Orabona " + std::to_string(i % 97) +
           ", Italy\"," + kLabels[i % 4] + "\n";
    out << line;
  }
}

}  // namespace mlaas::testing
