// `mlaas tokenizer train|encode`: local tokenizer work, no server needed.
#pragma once

#include <CLI/CLI.hpp>

namespace mlaas::cli {

void AddTokenizerCommands(CLI::App& app, bool* json_output, int* exit_code);

}  // namespace mlaas::cli
