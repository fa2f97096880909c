// SHA-256 of streamed bytes and of files (OpenSSL), and URI escaping for object stores spoken
// to over HTTP: one implementation for the catalog's copies, the hub's downloads, the S3
// store and the CLI's pulls.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mlaas::storage {

// Incremental SHA-256; Hex() ends it.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  std::string Hex();  // lower-case hex

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Lower-case hex SHA-256 of a file, read in chunks; InvalidArgument when it cannot be read.
Result<std::string> Sha256OfFile(const std::filesystem::path& file);

// RFC 3986 percent-encoding of everything but unreserved characters (and '/' when kept).
std::string UriEncode(std::string_view s, bool keep_slash);

}  // namespace mlaas::storage
