#include "auth/authenticator.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "common/file_util.h"
#include "common/random.h"
#include "common/text.h"
#include "common/time_util.h"

namespace mlaas::auth {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "mlaas_";
constexpr size_t kSecretBytes = 32;  // 256 bits
constexpr const char* kAdminUser = "admin";
constexpr const char* kAdminTokenId = "admin";
constexpr int64_t kCacheMs = 10000;      // a token checked once is trusted this long
constexpr int64_t kTouchEveryMs = 60000;  // last use recorded at most this often
constexpr size_t kMaxCached = 10000;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// "mlaas_<id>_<secret>" -> {id, secret}; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> SplitToken(std::string_view token) {
  if (token.size() > 256 || token.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  token.remove_prefix(kPrefix.size());
  const size_t sep = token.find('_');
  if (sep == std::string_view::npos || sep == 0 || sep > 32) return std::nullopt;
  const std::string_view id = token.substr(0, sep), secret = token.substr(sep + 1);
  if (!std::all_of(id.begin(), id.end(), IsLowerAlnum) || secret.empty()) return std::nullopt;
  return std::pair{std::string(id), std::string(secret)};
}

bool SameDigest(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kRead: return "read";
    case Scope::kWrite: return "write";
    case Scope::kAdmin: return "admin";
  }
  return "read";
}

std::optional<Scope> ParseScope(std::string_view name) {
  for (Scope s : {Scope::kRead, Scope::kWrite, Scope::kAdmin})
    if (ScopeName(s) == name) return s;
  return std::nullopt;
}

bool Principal::Has(Scope scope) const {
  for (Scope s : scopes) {
    if (s == scope || s == Scope::kAdmin || (s == Scope::kWrite && scope == Scope::kRead)) return true;
  }
  return false;
}

Principal LocalAdmin() { return Principal{kAdminUser, {Scope::kAdmin}, ""}; }

Status CheckUserName(const std::string& name, const std::string& field) {
  const bool ok = !name.empty() && name.size() <= 64 && IsLowerAlnum(name[0]) &&
                  std::all_of(name.begin(), name.end(), [](char c) { return IsLowerAlnum(c) || c == '.' || c == '_' || c == '-'; });
  if (!ok) return InvalidArgument("a user name is 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", field);
  return Status::Ok();
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), n));
}

struct Authenticator::Impl {
  Impl(metadata::AccountStore& s, std::function<int64_t()> n) : store(s), now(std::move(n)) {}
  metadata::AccountStore& store;
  std::function<int64_t()> now;
  struct Cached {
    Principal principal;
    int64_t checked_ms = 0;
    int64_t expires_ms = 0;  // the token's own expiry (0: never)
  };
  std::mutex mu;
  std::unordered_map<std::string, Cached> cache;  // by the token's SHA-256
  std::unordered_map<std::string, int64_t> touched;  // token id -> last recorded use

  // The principal of `token`, and in *expires_ms its expiry (0: never).
  Result<Principal> Check(std::string_view token, int64_t* expires_ms) {
    const auto unknown = [] { return Status(StatusCode::kUnauthenticated, "the token is not valid (unknown, expired or revoked)"); };
    std::string id, secret;
    if (auto parts = SplitToken(token)) {
      id = parts->first;
      secret = parts->second;
    } else {
      id = kAdminTokenId;  // MLAAS_ADMIN_TOKEN may be any string
      secret = std::string(token);
    }
    auto record = store.GetToken(id);
    if (!record.has_value()) {
      if (record.error().code() == StatusCode::kNotFound) return unknown();
      return record.error();
    }
    if (!SameDigest(Sha256Hex(secret), record->secret_sha256) || record->revoked_ms != 0) return unknown();
    const int64_t t = now();
    if (record->expires_ms != 0 && record->expires_ms <= t) return unknown();
    *expires_ms = record->expires_ms;
    Principal p{record->user, {}, record->id};
    for (const auto& name : record->scopes)
      if (auto s = ParseScope(name)) p.scopes.push_back(*s);
    return p;
  }
};

Authenticator::Authenticator(metadata::AccountStore& store, std::function<int64_t()> now_ms)
    : impl_(std::make_unique<Impl>(store, now_ms ? std::move(now_ms) : std::function<int64_t()>(NowMs))) {}
Authenticator::~Authenticator() = default;

Result<Principal> Authenticator::Authenticate(std::string_view token) {
  Impl& m = *impl_;
  const std::string key = Sha256Hex(token);
  const int64_t t = m.now();
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (auto it = m.cache.find(key); it != m.cache.end()) {
      const auto& c = it->second;
      if (t - c.checked_ms < kCacheMs && (c.expires_ms == 0 || c.expires_ms > t)) return c.principal;
      m.cache.erase(it);
    }
  }
  int64_t expires = 0;
  MLAAS_ASSIGN_OR_RETURN(Principal p, m.Check(token, &expires));
  bool touch = false;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.cache.size() >= kMaxCached) m.cache.clear();
    m.cache[key] = Impl::Cached{p, t, expires};
    int64_t& last = m.touched[p.token_id];
    if (t - last >= kTouchEveryMs) {
      last = t;
      touch = true;
    }
  }
  if (touch) (void)m.store.TouchToken(p.token_id, t);
  return p;
}

Result<IssuedToken> Authenticator::Issue(const std::string& user, const std::vector<std::string>& scopes,
                                         int64_t expires_in_s, const std::string& description) {
  MLAAS_RETURN_IF_ERROR(CheckUserName(user, "user"));
  if (scopes.empty()) return InvalidArgument("a token needs at least one scope: read, write or admin", "scopes");
  std::vector<std::string> names;
  for (const auto& s : scopes) {
    if (!ParseScope(s)) return InvalidArgument("unknown scope '" + s + "' (read, write or admin)", "scopes");
    if (std::find(names.begin(), names.end(), s) == names.end()) names.push_back(s);
  }
  if (expires_in_s < 0 || expires_in_s > 10LL * 365 * 24 * 3600)
    return InvalidArgument("expires_in is seconds from now, 0 (never) up to ten years", "expires_in");
  if (description.size() > 256) return InvalidArgument("a description is at most 256 bytes", "description");
  MLAAS_RETURN_IF_ERROR(impl_->store.EnsureUser(user).status());
  const std::string secret = RandomHex(kSecretBytes);
  metadata::TokenRecord r;
  r.id = RandomHex(8);
  r.user = user;
  r.scopes = names;
  r.description = description;
  r.secret_sha256 = Sha256Hex(secret);
  r.created_ms = impl_->now();
  r.expires_ms = expires_in_s > 0 ? r.created_ms + expires_in_s * 1000 : 0;
  MLAAS_RETURN_IF_ERROR(impl_->store.InsertToken(r));
  return IssuedToken{std::string(kPrefix) + r.id + "_" + secret, r};
}

Result<std::vector<metadata::TokenRecord>> Authenticator::List(const std::string& user) {
  return impl_->store.ListTokens(user);
}

Result<metadata::TokenRecord> Authenticator::Get(const std::string& id) { return impl_->store.GetToken(id); }

Status Authenticator::Revoke(const std::string& id) {
  MLAAS_RETURN_IF_ERROR(impl_->store.RevokeToken(id, impl_->now()));
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto it = impl_->cache.begin(); it != impl_->cache.end();)
    it = it->second.principal.token_id == id ? impl_->cache.erase(it) : std::next(it);
  return Status::Ok();
}

Result<std::string> Authenticator::Bootstrap(const std::string& env_token, const fs::path& token_file) {
  Impl& m = *impl_;
  MLAAS_RETURN_IF_ERROR(m.store.EnsureUser(kAdminUser).status());
  metadata::TokenRecord r;
  r.id = kAdminTokenId;
  r.user = kAdminUser;
  r.scopes = {"admin"};
  r.description = "bootstrap admin token";
  r.created_ms = m.now();
  if (!env_token.empty()) {
    if (env_token.size() < 16) return InvalidArgument("MLAAS_ADMIN_TOKEN must be at least 16 characters", "MLAAS_ADMIN_TOKEN");
    const auto parts = SplitToken(env_token);
    if (parts && parts->first != kAdminTokenId)
      return InvalidArgument("MLAAS_ADMIN_TOKEN of the form mlaas_<id>_<secret> must use the id 'admin'",
                             "MLAAS_ADMIN_TOKEN");
    r.secret_sha256 = Sha256Hex(parts ? parts->second : env_token);
  } else {
    auto existing = m.store.GetToken(kAdminTokenId);
    if (existing.has_value()) return std::string("the admin token was written to " + token_file.string() + " at the first start");
    const std::string secret = RandomHex(kSecretBytes);
    const std::string token = std::string(kPrefix) + kAdminTokenId + "_" + secret;
    r.secret_sha256 = Sha256Hex(secret);
    if (Status st = WriteFileAtomic(token_file, token + "\n", 0600); !st.ok())
      return Internal("cannot write the admin token file " + token_file.string() + ": " + st.message());
  }
  Status st = m.store.InsertToken(r);
  if (st.code() == StatusCode::kAlreadyExists) st = m.store.ResetToken(r);
  MLAAS_RETURN_IF_ERROR(st);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.cache.clear();
  }
  if (!env_token.empty()) return std::string("the admin token is the one in MLAAS_ADMIN_TOKEN");
  return std::string("the admin token was written to " + token_file.string() + " (mode 0600); it is shown nowhere else");
}

}  // namespace mlaas::auth
