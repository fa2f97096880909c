// mlaas::Status — the error value every module returns at its public boundary.
//
// A Status is a code from the canonical gRPC/absl set, a human-readable message and,
// for invalid requests, the dotted path of the offending field ("model_train.epochs").
// No exception crosses a module's public header: library adapters catch and convert.
#pragma once

#include <string>
#include <string_view>

namespace mlaas {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // bad input from the caller (HTTP 400)
  kNotFound,            // the specific thing asked for does not exist (404)
  kAlreadyExists,       // create of something that exists (409)
  kFailedPrecondition,  // the system is not in the state the operation needs (409)
  kResourceExhausted,   // a size or rate limit was hit (413/429)
  kUnauthenticated,     // 401
  kPermissionDenied,    // 403
  kUnavailable,         // try again later, e.g. shutting down (503)
  kDeadlineExceeded,    // 504
  kCancelled,           // the operation was cancelled (499)
  kUnimplemented,       // valid request for a capability not built yet (501)
  kInternal,            // a bug or an unexpected failure of a dependency (500)
};

// Stable snake_case name of a code, used in JSON error bodies ("invalid_argument").
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string field = {})
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Dotted path of the request field the error is about; empty when none.
  const std::string& field() const { return field_; }

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;
  // Returns a copy naming `field`.
  Status WithField(std::string field) const;

  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

inline Status InvalidArgument(std::string msg, std::string field = {}) {
  return Status(StatusCode::kInvalidArgument, std::move(msg), std::move(field));
}
inline Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
inline Status AlreadyExists(std::string msg) {
  return Status(StatusCode::kAlreadyExists, std::move(msg));
}
inline Status FailedPrecondition(std::string msg) {
  return Status(StatusCode::kFailedPrecondition, std::move(msg));
}
inline Status ResourceExhausted(std::string msg) {
  return Status(StatusCode::kResourceExhausted, std::move(msg));
}
inline Status Unavailable(std::string msg) {
  return Status(StatusCode::kUnavailable, std::move(msg));
}
inline Status Cancelled(std::string msg) { return Status(StatusCode::kCancelled, std::move(msg)); }
inline Status Unimplemented(std::string msg, std::string field = {}) {
  return Status(StatusCode::kUnimplemented, std::move(msg), std::move(field));
}
inline Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }

}  // namespace mlaas

#define MLAAS_STATUS_CONCAT_INNER(a, b) a##b
#define MLAAS_STATUS_CONCAT(a, b) MLAAS_STATUS_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define MLAAS_RETURN_IF_ERROR(expr)                      \
  do {                                                   \
    ::mlaas::Status mlaas_status_tmp_ = (expr);          \
    if (!mlaas_status_tmp_.ok()) return mlaas_status_tmp_; \
  } while (0)
