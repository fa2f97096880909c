// Client subcommands that talk to a running server over HTTP:
// `mlaas tasks list|show|wait|cancel|logs`, `mlaas objects ls|put|get|rm`,
// `mlaas dataset stats`, `mlaas train`, `mlaas deploy|undeploy|deployments|infer`,
// `mlaas index|search|vector-store` (search_commands.cpp), `mlaas login|logout|whoami|tokens`
// (account_commands.cpp), `mlaas catalog|datasets ...` (catalog_commands.cpp).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"

namespace mlaas {
namespace client {
class ApiClient;
}

namespace cli {

// Exit codes of client commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;   // the request failed, or the task failed/was cancelled
inline constexpr int kExitUsage = 2;    // bad command line
inline constexpr int kExitTimeout = 3;  // `tasks wait --timeout` ran out

struct ClientOptions {
  std::string server = "http://127.0.0.1:8080";
  bool json = false;
  int timeout_seconds = 60;
  std::string token;  // --token / MLAAS_TOKEN; empty: the one `mlaas login` stored for the server
};

// Where `mlaas login` keeps tokens: $XDG_CONFIG_HOME/mlaas/credentials, else
// ~/.config/mlaas/credentials (a JSON object: server URL -> token; mode 0600).
std::filesystem::path CredentialsFile();
// The token for `o.server`: o.token, else the stored one, else empty.
std::string TokenFor(const ClientOptions& o);
// A client of `o.server` with its token.
Result<std::unique_ptr<client::ApiClient>> MakeClient(const ClientOptions& o);

// Prints "error: message (field: f)" to stderr; returns kExitFailed.
int ReportError(const Status& st);

// Prints "waiting Ns: reason" to stderr (ApiClient::PostRetrying's notice of a busy server).
void WaitNotice(const Status& reason, int seconds);

// Creates a client and runs `fn` with it; failures print and become kExitFailed.
int WithClient(const ClientOptions& o, const std::function<int(client::ApiClient&)>& fn);
// Follows task `id` with a progress line until it ends (timeout_s 0: no limit); prints the
// task (JSON or a summary); kExitOk when it succeeded.
int WaitForTask(client::ApiClient& c, const std::string& id, int timeout_s, bool as_json);

// Adds the client subcommands to `app`. Each one, when run, stores its exit code in
// `*exit_code`.
void AddClientCommands(CLI::App& app, ClientOptions& options, int* exit_code);

void AddSearchCommands(CLI::App& app, ClientOptions& options, int* exit_code);  // search_commands.cpp
void AddAccountCommands(CLI::App& app, ClientOptions& options, int* exit_code);  // account_commands.cpp
void AddCatalogCommands(CLI::App& app, ClientOptions& options, int* exit_code);  // catalog_commands.cpp

}  // namespace cli
}  // namespace mlaas
