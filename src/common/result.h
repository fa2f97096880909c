// mlaas::Result<T> — a value or a non-OK Status. Member names follow std::expected
// (has_value, value, error) so it can become an alias once the project moves to C++23.
#pragma once

#include <cassert>
#include <utility>
#include <variant>

#include "common/status.h"

namespace mlaas {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Status& error() const { return std::get<1>(v_); }
  // OK when a value is held, the error otherwise.
  Status status() const { return has_value() ? Status::Ok() : error(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mlaas

// MLAAS_ASSIGN_OR_RETURN(auto x, Compute()) — unwraps a Result or returns its error.
#define MLAAS_ASSIGN_OR_RETURN(lhs, expr) \
  MLAAS_ASSIGN_OR_RETURN_IMPL(MLAAS_STATUS_CONCAT(mlaas_result_, __LINE__), lhs, expr)
#define MLAAS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.has_value()) return tmp.error();         \
  lhs = std::move(tmp).value()
