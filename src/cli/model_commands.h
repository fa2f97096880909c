// `mlaas model init` (a model directory from a preset/config) and `mlaas predict` (NLP
// predictions, locally on a model directory or on the server with --remote).
#pragma once

#include <CLI/CLI.hpp>

#include "cli/client_commands.h"

namespace mlaas::cli {

void AddModelCommands(CLI::App& app, ClientOptions& client, int* exit_code);

}  // namespace mlaas::cli
