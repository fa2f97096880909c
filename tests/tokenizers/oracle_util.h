// Helpers of the tests that compare with the Hugging Face reference (tests/tokenizers/oracle).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mlaas::tokenizers::testing {

inline const std::filesystem::path kData = MLAAS_TOKENIZER_TEST_DATA;
inline const std::filesystem::path kOracle = MLAAS_TOKENIZER_ORACLE;

// Runs `node oracle.js ARGS`; records a test failure (with its output) when it fails.
inline std::string Oracle(const std::string& args) {
  if (!std::filesystem::exists(kOracle / "node_modules/tokenizers")) {
    ADD_FAILURE() << "the reference is not installed: run scripts/install-deps.sh";
    return "";
  }
  std::string cmd = "node '" + (kOracle / "oracle.js").string() + "' " + args + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd << "\n" << out;
  return out;
}

inline std::vector<nlohmann::json> ReadJsonl(const std::filesystem::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

}  // namespace mlaas::tokenizers::testing
