// Client subcommands that talk to a running server over HTTP:
// `mlaas tasks list|show|wait|cancel|logs`, `mlaas objects ls|put|get|rm`,
// `mlaas dataset stats`, `mlaas train`, `mlaas deploy|undeploy|deployments|infer`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "common/status.h"

namespace mlaas::cli {

// Exit codes of client commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;   // the request failed, or the task failed/was cancelled
inline constexpr int kExitUsage = 2;    // bad command line
inline constexpr int kExitTimeout = 3;  // `tasks wait --timeout` ran out

struct ClientOptions {
  std::string server = "http://127.0.0.1:8080";
  bool json = false;
  int timeout_seconds = 60;
};

// Prints "error: message (field: f)" to stderr; returns kExitFailed.
int ReportError(const Status& st);

// Adds the client subcommands to `app`. Each one, when run, stores its exit code in
// `*exit_code`.
void AddClientCommands(CLI::App& app, ClientOptions& options, int* exit_code);

}  // namespace mlaas::cli
