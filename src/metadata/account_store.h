// mlaas::metadata — accounts: users and their API tokens, in the metadata database beside the
// tasks (docs/security.md, "Accounts and tokens"). The store keeps a token's SHA-256 only:
// the secret itself is shown once, when the token is made (auth::Authenticator), and never
// stored, logged or returned. Thread-safe; several processes may share the database.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "metadata/task_store.h"

namespace mlaas::metadata {

struct UserRecord {
  std::string name;
  int64_t created_ms = 0;
};

struct TokenRecord {
  std::string id;                   // public handle (listed, revoked by it)
  std::string user;
  std::vector<std::string> scopes;  // "read", "write", "admin"
  std::string description;
  std::string secret_sha256;        // hex SHA-256 of the secret
  int64_t created_ms = 0;
  int64_t expires_ms = 0;           // 0: never
  int64_t last_used_ms = 0;         // 0: never used
  int64_t revoked_ms = 0;           // 0: live
};

class AccountStore {
 public:
  virtual ~AccountStore() = default;

  // The user, created when new.
  virtual Result<UserRecord> EnsureUser(const std::string& name) = 0;
  // Inserts a token (its user must exist); AlreadyExists for an id in use.
  virtual Status InsertToken(const TokenRecord& token) = 0;
  // Replaces the secret hash, scopes and expiry of token `id` and makes it live again
  // (the bootstrap admin token when MLAAS_ADMIN_TOKEN changes); NotFound when absent.
  virtual Status ResetToken(const TokenRecord& token) = 0;
  // NotFound for an unknown id.
  virtual Result<TokenRecord> GetToken(const std::string& id) = 0;
  // Every token of `user` (empty: of everyone), newest first.
  virtual Result<std::vector<TokenRecord>> ListTokens(const std::string& user) = 0;
  // NotFound for an unknown id; revoking twice keeps the first time.
  virtual Status RevokeToken(const std::string& id, int64_t now_ms) = 0;
  virtual Status TouchToken(const std::string& id, int64_t now_ms) = 0;
};

// Opens (creating and migrating when needed) the account store of the database options.url.
Result<std::unique_ptr<AccountStore>> OpenAccountStore(const StoreOptions& options);

}  // namespace mlaas::metadata
