// A uniquely named directory under the system temp dir, removed with its contents.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "common/text.h"

namespace mlaas::testing {

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("mlaas-test-" + NewUuid())) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

  // Writes `content` to `rel` (creating parent directories) and returns the full path.
  std::filesystem::path Write(const std::string& rel, const std::string& content) const {
    auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::filesystem::path path_;
};

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace mlaas::testing
