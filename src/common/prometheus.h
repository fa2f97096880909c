// Prometheus text exposition helpers shared by the server's and the serving module's metrics.
#pragma once

#include <string>

namespace mlaas {

// A label value escaped for the text format: backslash, double quote and newline.
inline std::string PromEscape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace mlaas
