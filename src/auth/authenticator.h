// mlaas::auth — who is calling. API tokens (made once and shown once, listed, revoked), the
// bootstrap admin token, and the principal a request runs as (docs/security.md, "Accounts
// and tokens"). A token is "mlaas_<id>_<secret>": the id finds its record, the secret's
// SHA-256 is compared in constant time with the one stored; the secret is never stored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "metadata/account_store.h"

namespace mlaas::auth {

enum class Scope { kRead, kWrite, kAdmin };
std::string_view ScopeName(Scope scope);
std::optional<Scope> ParseScope(std::string_view name);

struct Principal {
  std::string user;  // empty: anonymous
  std::vector<Scope> scopes;
  std::string token_id;
  bool anonymous() const { return user.empty(); }
  // Admin implies every scope, write implies read.
  bool Has(Scope scope) const;
};

// Whom every request runs as when auth is off: the local admin.
Principal LocalAdmin();

// A user name: [a-z0-9][a-z0-9._-]{0,63}; InvalidArgument naming `field` otherwise.
Status CheckUserName(const std::string& name, const std::string& field);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

struct IssuedToken {
  std::string token;  // shown once
  metadata::TokenRecord record;
};

class Authenticator {
 public:
  explicit Authenticator(metadata::AccountStore& store, std::function<int64_t()> now_ms = nullptr);
  ~Authenticator();

  // The admin account ("admin") and its token: `env_token` (MLAAS_ADMIN_TOKEN) when given,
  // replacing the one recorded; otherwise a token made at the first start and written once to
  // `token_file` (mode 0600). Returns what to log: where the token is, never the token.
  Result<std::string> Bootstrap(const std::string& env_token, const std::filesystem::path& token_file);

  // The principal `token` stands for; Unauthenticated for an unknown, malformed, expired or
  // revoked one (the message never says which).
  Result<Principal> Authenticate(std::string_view token);

  // A new token for `user` (created when new) with `scopes` ("read", "write", "admin"),
  // expiring after `expires_in_s` (0: never). Errors name the field.
  Result<IssuedToken> Issue(const std::string& user, const std::vector<std::string>& scopes, int64_t expires_in_s,
                            const std::string& description);
  Result<std::vector<metadata::TokenRecord>> List(const std::string& user);
  Result<metadata::TokenRecord> Get(const std::string& id);
  // Effective at once in this process, within the cache's 10 s in others.
  Status Revoke(const std::string& id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlaas::auth
