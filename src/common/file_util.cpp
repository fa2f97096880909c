#include "common/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/text.h"

namespace mlaas {

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::filesystem::path tmp = path;
  tmp += ".tmp-" + NewUuid().substr(0, 8);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return Internal("cannot write " + tmp.filename().string() + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Internal("cannot write " + tmp.filename().string() + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Internal("cannot write " + tmp.filename().string());
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Internal("cannot write " + path.filename().string() + ": " + ec.message());
  }
  return Status::Ok();
}

bool IsAtomicWriteTemporary(std::string_view name) {
  const auto pos = name.rfind(".tmp-");
  if (pos == std::string_view::npos || pos == 0 || name.size() != pos + 13) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(pos) + 5, name.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

Result<std::string> ReadFile(const std::filesystem::path& path, uint64_t max_bytes) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound("cannot read " + path.filename().string() + ": " + ec.message());
  if (size > max_bytes) return ResourceExhausted(path.filename().string() + " is larger than " + FormatBytes(max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path.filename().string());
  std::string out(size, '\0');
  in.read(out.data(), static_cast<std::streamsize>(size));
  if (!in) return Internal("cannot read " + path.filename().string());
  return out;
}

}  // namespace mlaas
