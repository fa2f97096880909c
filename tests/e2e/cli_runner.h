// Runs the `mlaas` binary as a user would (through the shell, stdin empty) and captures its
// exit code and output.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "e2e/server_process.h"
#include "testutil/temp_dir.h"

namespace mlaas::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// `mlaas <args>`; stderr goes to `err_file` (and CliResult::err) when given, else into out.
inline CliResult RunMlaas(const std::vector<std::string>& args, const std::filesystem::path& err_file = {}) {
  std::string cmd = ShellQuote(MlaasBinary());
  for (const auto& a : args) cmd += " " + ShellQuote(a);
  cmd += err_file.empty() ? " 2>&1" : " 2>" + ShellQuote(err_file.string());
  cmd += " </dev/null";
  CliResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (!err_file.empty()) r.err = ReadFile(err_file);
  return r;
}

}  // namespace mlaas::testing
