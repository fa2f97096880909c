// Terminal output of the CLI: aligned tables, a progress bar, JSON.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mlaas::cli {

// Prints rows under a header, each column padded to its widest cell.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

void PrintJson(const nlohmann::json& j);

// A one-line progress display on stderr: redrawn in place on a terminal, printed at most
// every few seconds (and on message changes) otherwise.
class ProgressLine {
 public:
  ProgressLine();
  // fraction < 0: unknown.
  void Update(double fraction, const std::string& text);
  void Finish();

 private:
  bool tty_;
  bool drawn_ = false;
  int64_t last_print_ms_ = 0;
};

}  // namespace mlaas::cli
