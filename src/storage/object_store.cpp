#include "storage/object_store.h"

#include "common/file_util.h"

#include <algorithm>
#include <fstream>
#include <system_error>

#include "common/text.h"

namespace mlaas::storage {

LocalizedPath::LocalizedPath(LocalizedPath&& other) noexcept
    : path_(std::move(other.path_)), temporary_(other.temporary_) {
  other.temporary_ = false;
}

LocalizedPath::~LocalizedPath() {
  if (temporary_) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

Result<ObjectInfo> ObjectStore::PutString(const std::string& key, std::string_view data) {
  MLAAS_ASSIGN_OR_RETURN(auto writer, Create(key));
  MLAAS_RETURN_IF_ERROR(writer->Write(data));
  return writer->Commit();
}

Result<std::string> ObjectStore::GetString(const std::string& key, uint64_t max_bytes) {
  MLAAS_ASSIGN_OR_RETURN(auto reader, Open(key));
  if (reader->info().size > max_bytes) {
    return ResourceExhausted("object '" + key + "' is " + FormatBytes(reader->info().size) +
                             ", more than the " + FormatBytes(max_bytes) + " allowed here");
  }
  std::string out;
  out.resize(reader->info().size);
  size_t filled = 0;
  while (filled < out.size()) {
    MLAAS_ASSIGN_OR_RETURN(size_t n, reader->Read(out.data() + filled, out.size() - filled));
    if (n == 0) break;
    filled += n;
  }
  out.resize(filled);
  return out;
}

namespace {

class StringReader final : public ObjectReader {
 public:
  StringReader(std::string data, std::string key) : data_(std::move(data)) {
    info_.key = std::move(key);
    info_.size = data_.size();
  }
  const ObjectInfo& info() const override { return info_; }
  Result<size_t> Read(char* buf, size_t n) override {
    size_t take = std::min(n, data_.size() - pos_);
    std::copy_n(data_.data() + pos_, take, buf);
    pos_ += take;
    return take;
  }
  Status Seek(uint64_t offset) override {
    pos_ = std::min<size_t>(offset, data_.size());
    return Status::Ok();
  }

 private:
  std::string data_;
  size_t pos_ = 0;
  ObjectInfo info_;
};

Status CheckSegments(std::string_view text, std::string_view what, bool allow_trailing_slash) {
  if (text.size() > 1024) return InvalidArgument(std::string(what) + " is longer than 1024 bytes");
  // Named escaped: a %0A in a URL decodes to a newline that must not reach a log line as one.
  const std::string shown = " '" + EscapeForLog(text, 256) + "'";
  if (!IsValidUtf8(text)) return InvalidArgument(std::string(what) + shown + " is not valid UTF-8");
  // C0, DEL, C1 (U+0080-U+009F: NEL, an 8-bit CSI), the line and paragraph separators and the
  // bidi controls (a name that shows as another).
  for (size_t i = 0; i < text.size(); ++i) {
    if (ControlCharBytes(text, i) > 0) return InvalidArgument(std::string(what) + shown + " contains a control character");
  }
  if (!text.empty() && text.front() == '/') {
    return InvalidArgument(std::string(what) + " must not start with '/'");
  }
  if (!allow_trailing_slash && !text.empty() && text.back() == '/') {
    return InvalidArgument(std::string(what) + " must not end with '/'");
  }
  auto parts = Split(text, '/');
  if (allow_trailing_slash && !parts.empty() && parts.back().empty()) parts.pop_back();
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p == "..") return InvalidArgument(std::string(what) + " must not contain '..'");
    if (p == ".") return InvalidArgument(std::string(what) + " must not contain '.' segments");
    // An empty last segment of a prefix is a partial name ("a/b" + ""), which is fine.
    if (p.empty() && !(allow_trailing_slash && i + 1 == parts.size())) {
      return InvalidArgument(std::string(what) + " must not contain empty segments ('//')");
    }
  }
  return Status::Ok();
}

}  // namespace

std::unique_ptr<ObjectReader> MemoryReader(std::string data, std::string key) {
  return std::make_unique<StringReader>(std::move(data), std::move(key));
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return InvalidArgument("object key must not be empty");
  MLAAS_RETURN_IF_ERROR(CheckSegments(key, "object key", false));
  const auto slash = key.rfind('/');
  if (IsAtomicWriteTemporary(key.substr(slash == std::string_view::npos ? 0 : slash + 1)))
    return InvalidArgument("object key '" + std::string(key) +
                           "' ends like a file being written (.tmp- and 8 hex digits), a name the server reserves");
  return Status::Ok();
}

Status ValidatePrefix(std::string_view prefix) {
  if (prefix.empty()) return Status::Ok();
  return CheckSegments(prefix, "prefix", true);
}

Status ObjectStore::PutFile(const std::string& key, const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Internal("cannot read the local file to store as '" + key + "'");
  MLAAS_ASSIGN_OR_RETURN(auto writer, Create(key));
  std::string buf(1 << 20, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) MLAAS_RETURN_IF_ERROR(writer->Write(std::string_view(buf.data(), static_cast<size_t>(in.gcount()))));
  }
  return writer->Commit().status();
}

Result<std::vector<std::string>> ListLocalFiles(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) names.push_back(it->path().lexically_relative(dir).generic_string());
  }
  if (ec) return Internal("cannot list a local directory: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

Status ObjectStore::DeleteMany(const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    if (Status st = Delete(k); !st.ok() && st.code() != StatusCode::kNotFound) return st;
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ObjectStore::PutDirectory(const std::string& prefix, const std::filesystem::path& dir,
                                                           const std::string& last) {
  MLAAS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListLocalFiles(dir));
  // Sorted already: `last` moves to the end.
  std::stable_partition(names.begin(), names.end(), [&](const std::string& n) { return n != last; });
  std::vector<std::string> keys;
  for (const auto& n : names) {
    keys.push_back(prefix + "/" + n);
    MLAAS_RETURN_IF_ERROR(PutFile(keys.back(), dir / n));
  }
  return keys;
}

}  // namespace mlaas::storage
