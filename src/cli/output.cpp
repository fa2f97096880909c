#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "common/time_util.h"

namespace mlaas::cli {

namespace {
size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
}  // namespace

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = DisplayWidth(header[i]);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], DisplayWidth(r[i]));
    }
  }
  auto print = [&](const std::vector<std::string>& r) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - DisplayWidth(r[i]) + 2, ' ');
    }
    std::cout << line << "\n";
  };
  print(header);
  for (const auto& r : rows) print(r);
}

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

ProgressLine::ProgressLine() : tty_(::isatty(STDERR_FILENO) == 1) {}

void ProgressLine::Update(double fraction, const std::string& text) {
  int64_t now = NowMs();
  // Off a terminal (logs, CI) print a line at most every 5 seconds, plus the last one.
  if (!tty_ && last_print_ms_ != 0 && fraction < 1.0 && now - last_print_ms_ < 5000) return;
  last_print_ms_ = now;
  std::string bar;
  if (fraction >= 0) {
    const int width = 30;
    int filled = static_cast<int>(std::min(1.0, fraction) * width + 0.5);
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%3d%%", static_cast<int>(std::min(1.0, fraction) * 100));
    bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] " + pct + " ";
  }
  if (tty_) {
    std::cerr << "\r\033[K" << bar << text << std::flush;
    drawn_ = true;
  } else {
    std::cerr << bar << text << "\n";
  }
}

void ProgressLine::Finish() {
  if (tty_ && drawn_) std::cerr << "\n";
  drawn_ = false;
}

}  // namespace mlaas::cli
