// Helpers shared by the benchmarks: running a peer process and taking medians.
#pragma once

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace mlaas::bench {

// Runs `cmd` through the shell and returns its stdout ("" and a message on stderr on failure).
inline std::string Run(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) {
    std::cerr << "failed: " << cmd << "\n" << out << "\n";
    return {};
  }
  return out;
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace mlaas::bench
