// Helpers shared by the benchmarks: running a peer process, taking medians, and recording each
// measure for the benchmark guard (bench/check.sh).
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
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

// Appends one measure, ours beside a peer's, as a JSON line to the file named by
// $MLAAS_BENCH_RECORDS (nothing when unset, or when either side was not measured). `ratio` is
// always "> 1: mlaas is better": ours / peer for rates (higher_is_better), peer / ours for times.
inline void Record(const std::string& id, const std::string& what, double ours, double peer, const std::string& unit,
                   bool higher_is_better = true) {
  const char* path = std::getenv("MLAAS_BENCH_RECORDS");
  if (path == nullptr || *path == '\0' || !(ours > 0) || !(peer > 0)) return;
  const nlohmann::json line = {{"id", id},     {"what", what}, {"ours", ours},
                               {"peer", peer}, {"unit", unit}, {"ratio", higher_is_better ? ours / peer : peer / ours}};
  std::ofstream(path, std::ios::app) << line.dump() << "\n";
}

}  // namespace mlaas::bench
