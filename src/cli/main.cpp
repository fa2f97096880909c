// The `mlaas` command: the server (`serve`), standalone task workers (`worker`) and the
// client subcommands that talk to a running server.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "common/text.h"
#include "cli/client_commands.h"
#include "cli/model_commands.h"
#include "cli/server_command.h"
#include "cli/tokenizer_commands.h"

#ifndef MLAAS_VERSION
#define MLAAS_VERSION "dev"
#endif

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server
  using namespace mlaas::cli;

  CLI::App app{"mlaas — Machine Learning as a Service: train, host, serve and search models.\n"
               "Start a server with `mlaas serve`; other commands talk to it over HTTP.",
               "mlaas"};
  app.set_version_flag("--version", std::string("mlaas ") + MLAAS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // --server/--json/--timeout also work after the subcommand

  ClientOptions client;
  app.add_option("--server", client.server, "URL of the mlaas server (client commands)")
      ->envname("MLAAS_SERVER")
      ->capture_default_str();
  app.add_option("--token", client.token,
                 "API token of a server with auth on (default: the one `mlaas login` stored for --server)")
      ->envname("MLAAS_TOKEN");
  app.add_flag("--json", client.json, "Print machine-readable JSON instead of tables");
  app.add_option("--timeout", client.timeout_seconds, "HTTP timeout in seconds (client commands)")
      ->envname("MLAAS_TIMEOUT")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();

  int exit_code = 0;
  ServerConfig serve_config;
  auto* serve = app.add_subcommand(
      "serve", "Run the API server (REST API, task workers, object storage) until SIGINT/SIGTERM");
  AddServerOptions(*serve, serve_config, /*api=*/true);
  serve->callback([&] { exit_code = RunServer(serve_config, /*api=*/true); });

  ServerConfig worker_config;
  auto* worker = app.add_subcommand(
      "worker", "Run task workers only, sharing the data directory and database of a server");
  AddServerOptions(*worker, worker_config, /*api=*/false);
  worker->callback([&] { exit_code = RunServer(worker_config, /*api=*/false); });

  AddClientCommands(app, client, &exit_code);
  AddTokenizerCommands(app, &client.json, &exit_code);
  AddModelCommands(app, client, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  } catch (const std::exception& e) {
    // An answer of a shape no command expects (a server that is not mlaas, or a hostile one):
    // a message and a failure, never an abort.
    std::cerr << "error: an unexpected answer or failure: " << mlaas::EscapeControlCharacters(e.what()) << "\n";
    return kExitFailed;
  }
  return exit_code;
}
